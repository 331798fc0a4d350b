"""The synthetic house numbers: an offline dataset that is random-looking yet reproducible.

A seed fixes every colour, size, angle and neighbour digit, so two runs with the same seed train
on identical data; different seeds (and the train and test splits) give different images.
"""

from __future__ import annotations

import numpy as np
import pytest

from minigan.data import DataError, load_dataset, make_synthetic_digits


def test_shapes_dtypes_and_labels():
    images, labels = make_synthetic_digits(40, seed=3)
    assert images.shape == (40, 3, 32, 32) and images.dtype == np.uint8
    assert labels.shape == (40,) and labels.dtype == np.int64
    assert labels.min() >= 0 and labels.max() <= 9


def test_same_seed_same_images_other_seed_other_images():
    a, la = make_synthetic_digits(20, seed=1)
    b, lb = make_synthetic_digits(20, seed=1)
    c, _ = make_synthetic_digits(20, seed=2)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(a, c)


def test_images_are_not_constant_and_differ_from_each_other():
    images, _ = make_synthetic_digits(20, seed=0)
    per_image_std = images.reshape(20, -1).std(axis=1)
    assert per_image_std.min() > 5  # a digit on a background, not a flat colour
    assert len({im.tobytes() for im in images}) == 20


def test_digit_pixels_stand_out_from_the_background():
    """The centre of the image (where the digit is) varies more than a flat background would."""
    images, _ = make_synthetic_digits(50, seed=0, channels=1)
    centre = images[:, 0, 8:24, 8:24].astype(float)
    assert np.median(centre.max(axis=(1, 2)) - centre.min(axis=(1, 2))) > 60


def test_grey_and_other_sizes():
    images, _ = make_synthetic_digits(5, seed=0, size=28, channels=1)
    assert images.shape == (5, 1, 28, 28)


def test_load_dataset_synthetic_splits_differ():
    train, _ = load_dataset("synthetic", "train", n=10)
    test, _ = load_dataset("synthetic", "test", n=10)
    assert train.shape == test.shape == (10, 3, 32, 32)
    assert not np.array_equal(train, test)


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(DataError, match="unknown dataset 'imagenet'.*svhn, cifar10, mnist, "
                                        "synthetic"):
        load_dataset("imagenet")
