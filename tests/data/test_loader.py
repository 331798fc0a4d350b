"""Mini-batches: scaled to [-1, 1], shuffled per epoch, and exactly reproducible for resuming.

The loader shuffles epoch ``e`` with a generator seeded by ``(seed, e)`` alone, so the batches
of any epoch can be rebuilt at any time. That is what lets a training run stop after batch
``k`` and, resumed from a checkpoint, continue with exactly the batches it would have seen.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan.backend import to_numpy
from minigan.data import DataError, DataLoader, scale_images, unscale_images


def _dataset(n, shape=(1, 2, 2)):
    """Image i is filled with the value i (mod 256), so a batch tells us which images it holds."""
    images = (np.arange(n) % 256).astype(np.uint8)[:, None, None, None]
    return np.broadcast_to(images, (n, *shape)).copy(), np.arange(n, dtype=np.int64)


def _labels_of(batches):
    return [to_numpy(y) for _, y in batches]


@given(n=st.integers(1, 60), batch_size=st.integers(1, 20), drop_last=st.booleans())
def test_batch_count_and_every_image_once_per_epoch(n, batch_size, drop_last):
    images, labels = _dataset(n)
    loader = DataLoader(images, labels, batch_size=batch_size, drop_last=drop_last)
    expected = n // batch_size if drop_last else -(-n // batch_size)
    assert len(loader) == expected
    seen = np.concatenate([np.empty(0, np.int64), *_labels_of(loader.epoch(0))])
    assert len(seen) == (len(loader) * batch_size if drop_last else n)
    assert len(set(seen.tolist())) == len(seen)  # nobody twice
    if not drop_last:
        assert sorted(seen.tolist()) == list(range(n))  # everybody once


def test_batches_are_float32_in_minus_one_to_one_and_match_labels():
    images, labels = _dataset(256)
    images[0] = 0
    images[255] = 255
    loader = DataLoader(images, labels, batch_size=64, shuffle=False)
    xs = []
    for x, y in loader.epoch(0):
        assert x.dtype == np.float32 and x.shape == (64, 1, 2, 2) and y.dtype == np.int64
        x, y = to_numpy(x), to_numpy(y)
        np.testing.assert_allclose(x[:, 0, 0, 0], images[y, 0, 0, 0] / 255 * 2 - 1, atol=1e-6)
        xs.append(x)
    xs = np.concatenate(xs)
    assert xs.min() == -1.0 and xs.max() == 1.0


def test_same_seed_and_epoch_same_order_other_epoch_other_order():
    images, labels = _dataset(100)
    a = DataLoader(images, labels, batch_size=10, seed=7)
    b = DataLoader(images, labels, batch_size=10, seed=7)
    order = np.concatenate(_labels_of(a.epoch(3)))
    np.testing.assert_array_equal(order, np.concatenate(_labels_of(b.epoch(3))))
    assert not np.array_equal(order, np.concatenate(_labels_of(a.epoch(4))))
    other_seed = DataLoader(images, labels, batch_size=10, seed=8)
    assert not np.array_equal(order, np.concatenate(_labels_of(other_seed.epoch(3))))


def test_resuming_mid_epoch_gives_the_tail_of_the_epoch():
    images, labels = _dataset(50)
    loader = DataLoader(images, labels, batch_size=8, seed=1)
    full = list(loader.epoch(2))
    tail = list(loader.epoch(2, start_batch=4))
    assert len(tail) == len(full) - 4
    for (x1, y1), (x2, y2) in zip(full[4:], tail):
        np.testing.assert_array_equal(to_numpy(x1), to_numpy(x2))
        np.testing.assert_array_equal(to_numpy(y1), to_numpy(y2))
    assert list(loader.epoch(2, start_batch=len(loader))) == []


def test_too_few_images_for_one_full_batch_gives_an_empty_epoch():
    images, labels = _dataset(5)
    loader = DataLoader(images, labels, batch_size=8)
    assert len(loader) == 0 and list(loader.epoch(0)) == []
    assert len(DataLoader(images, labels, batch_size=8, drop_last=False)) == 1


def test_no_shuffle_keeps_dataset_order_and_no_labels_gives_none():
    images, _ = _dataset(10)
    loader = DataLoader(images, batch_size=4, shuffle=False, drop_last=False)
    batches = list(loader.epoch(0))
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    assert all(y is None for _, y in batches)
    np.testing.assert_array_equal(unscale_images(batches[0][0])[:, 0, 0, 0], [0, 1, 2, 3])


def test_scale_and_unscale_round_trip_every_pixel_value():
    pixels = np.arange(256, dtype=np.uint8)
    x = scale_images(pixels)
    assert x.dtype == np.float32 and x[0] == -1 and x[-1] == 1
    np.testing.assert_array_equal(unscale_images(x), pixels)
    assert unscale_images(np.array([-3.0, 5.0])).tolist() == [0, 255]  # clipped


@pytest.mark.parametrize("kwargs, message", [
    (dict(images=np.zeros((5, 3, 4, 4), np.float32)), "uint8"),
    (dict(images=np.zeros((5, 4, 4), np.uint8)), r"\(N, C, H, W\)"),
    (dict(labels=np.zeros(4)), "one per image"),
    (dict(batch_size=0), "at least 1"),
    (dict(images=np.zeros((0, 1, 4, 4), np.uint8)), "no images"),
])
def test_bad_arguments_are_clear_errors(kwargs, message):
    args = dict(images=np.zeros((5, 1, 4, 4), np.uint8), labels=None, batch_size=2)
    args.update(kwargs)
    with pytest.raises(DataError, match=message):
        DataLoader(**args)
