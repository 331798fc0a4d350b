"""Images of one's own from an ``.npz`` file: every layout it accepts, every way it can fail.

The idea: the loader turns whatever common layout the file holds into the one layout minigan
uses, ``(N, C, H, W) uint8``, without changing a single pixel, and anything it cannot use is
refused with one line that says what is wrong and how to fix it. Labels are optional; labels
that do not match the images are dropped with a warning rather than silently misaligned.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from minigan.data import DataError, dataset_label, load_dataset, load_npz_images
from tests.helpers import shared_data


def pixels(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def save(tmp_path, name="mine.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_nchw_comes_back_unchanged(tmp_path):
    images = pixels((5, 3, 8, 6))
    got, labels = load_npz_images(save(tmp_path, images=images))
    assert got.dtype == np.uint8 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, images)
    assert labels is None                               # no labels array: None


def test_grey_nhw_gets_a_channel_axis(tmp_path):
    images = pixels((4, 7, 5))
    got, _ = load_npz_images(save(tmp_path, images=images))
    assert got.shape == (4, 1, 7, 5)
    np.testing.assert_array_equal(got[:, 0], images)


@pytest.mark.parametrize("channels", [1, 3])
def test_nhwc_is_transposed_pixel_for_pixel(tmp_path, channels):
    nhwc = pixels((3, 10, 12, channels))
    got, _ = load_npz_images(save(tmp_path, images=nhwc))
    assert got.shape == (3, channels, 10, 12) and got.flags.c_contiguous
    for n, y, x, c in [(0, 0, 0, 0), (2, 9, 11, channels - 1), (1, 4, 7, channels // 2)]:
        assert got[n, c, y, x] == nhwc[n, y, x, c]
    np.testing.assert_array_equal(got.transpose(0, 2, 3, 1), nhwc)


def test_labels_come_back_as_int64(tmp_path):
    labels = np.array([3, 0, 9, 1], dtype=np.uint8)
    _, got = load_npz_images(save(tmp_path, images=pixels((4, 1, 4, 4)), labels=labels))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, [3, 0, 9, 1])


def test_labels_of_another_length_are_ignored_with_a_warning(tmp_path):
    path = save(tmp_path, images=pixels((5, 3, 4, 4)), labels=np.arange(4))
    with pytest.warns(UserWarning) as record:
        images, labels = load_npz_images(path)
    assert labels is None and len(images) == 5
    assert [str(w.message) for w in record] == [
        f"{path}: 4 labels for 5 images, so the labels are ignored"]


def test_labels_that_are_not_integers_are_ignored_with_a_warning(tmp_path):
    path = save(tmp_path, images=pixels((2, 3, 4, 4)), labels=np.array([0.5, 1.5]))
    with pytest.warns(UserWarning, match="labels are float64, not integers"):
        assert load_npz_images(path)[1] is None


def test_float_images_are_refused(tmp_path):
    path = save(tmp_path, images=pixels((2, 3, 4, 4)).astype(np.float32) / 255)
    with pytest.raises(DataError, match="float32, not uint8: convert them to uint8 in 0..255"):
        load_npz_images(path)


def test_no_images_array_names_the_arrays_there_are(tmp_path):
    path = save(tmp_path, x_train=pixels((2, 3, 4, 4)), y_train=np.arange(2))
    with pytest.raises(DataError, match=r"no 'images' array \(it has x_train, y_train\)"):
        load_npz_images(path)


@pytest.mark.parametrize("shape", [(2, 4, 4, 4), (2, 3, 4, 4, 1), (6,), (0, 3, 4, 4)])
def test_shapes_that_are_not_images_are_refused(tmp_path, shape):
    path = save(tmp_path, images=np.zeros(shape, np.uint8))
    with pytest.raises(DataError, match=rf"images have shape {re_shape(shape)}"):
        load_npz_images(path)


def re_shape(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


def test_a_missing_file_and_a_file_that_is_no_npz_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="no such file") as missing:
        load_npz_images(tmp_path / "nowhere.npz")
    (tmp_path / "text.npz").write_text("not a zip\n")
    with pytest.raises(DataError, match="is not an .npz file") as text:
        load_npz_images(tmp_path / "text.npz")
    np.save(tmp_path / "single.npy", pixels((2, 3, 4, 4)))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")   # one array, not a zip of them
    with pytest.raises(DataError, match="is not an .npz file"):
        load_npz_images(tmp_path / "single.npz")
    for error in (missing.value, text.value):
        assert "\n" not in str(error)


def test_pickled_arrays_are_never_loaded(tmp_path):
    path = save(tmp_path, images=np.array([None, 1], dtype=object))
    with pytest.raises(DataError, match="not a readable .npz file"):
        load_npz_images(path)


def test_load_dataset_reads_an_npz_path_and_refuses_other_splits(tmp_path):
    images = pixels((3, 3, 32, 32))
    path = save(tmp_path, images=images, labels=np.array([1, 2, 3]))
    got, labels = load_dataset(str(path), "train")
    np.testing.assert_array_equal(got, images)
    np.testing.assert_array_equal(labels, [1, 2, 3])
    with pytest.raises(DataError, match=r"no 'test' split") as refused:
        load_dataset(path, "test")
    assert "\n" not in str(refused.value)


def test_dataset_label_is_the_file_stem():
    assert dataset_label("../some/where/cats.npz") == "cats"
    assert dataset_label("SVHN") == "svhn"


def test_the_cifar10_sample_beside_the_repo():
    path = shared_data("cifar10-sample", "cifar10_sample.npz")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        images, labels = load_npz_images(path)
    assert images.shape == (6000, 3, 32, 32) and images.dtype == np.uint8
    assert images.flags.c_contiguous and 0 < images.mean() < 255
    assert [str(w.message) for w in record] == []   # one label per image: nothing to warn about
    assert labels.shape == (6000,)
    # The first 1,000 images of each of six CIFAR-10 batches: every class appears in each.
    assert sorted(set(labels.tolist())) == list(range(10))
    assert np.bincount(labels, minlength=10).min() >= 450
