"""``load_train_test``: which images train, which are held out, and the sentence that says so.

The idea: an example gets a labelled train/test pair whatever is at hand (both splits, one
``.npz`` file, or only MNIST's test files offline), never an image in both halves, and a note
that tells the learner which case it was. The datasets here are fakes put in place of
``load_dataset``, so nothing is downloaded or read from a cache.
"""

from __future__ import annotations

import numpy as np
import pytest

import minigan.data
from minigan.data import DataError, load_train_test, mnist_test_files_instead


def numbered(n: int, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 1x2x2 images whose pixels all hold their index (mod 256), labels = the index."""
    index = np.arange(first, first + n)
    images = np.broadcast_to((index % 256).astype(np.uint8)[:, None, None, None], (n, 1, 2, 2))
    return np.ascontiguousarray(images), index.astype(np.int64)


@pytest.fixture
def fake_datasets(monkeypatch):
    """Put a dict ``{(name, split): (images, labels)}`` in place of every dataset on disk.

    A missing entry fails as a missing file does; each call is recorded as
    ``(name, split, download)``.
    """
    at_hand: dict = {}
    calls: list = []

    def fake_load(name, split="train", data_dir=None, download=True, **kw):
        calls.append((str(name), split, download))
        if (str(name), split) not in at_hand:
            raise DataError(f"{name} {split}: files not found")
        return at_hand[(str(name), split)]

    monkeypatch.setattr(minigan.data, "load_dataset", fake_load)
    return at_hand, calls


def test_both_splits_are_used_as_they_are(fake_datasets):
    at_hand, _ = fake_datasets
    at_hand[("svhn", "train")] = numbered(50)
    at_hand[("svhn", "test")] = numbered(20, first=100)
    (x, y), (tx, ty), note = load_train_test("svhn")
    np.testing.assert_array_equal(y, np.arange(50))
    np.testing.assert_array_equal(ty, np.arange(100, 120))
    np.testing.assert_array_equal(x[:, 0, 0, 0], np.arange(50))   # images stay with labels
    assert note == "svhn: training and test splits"


def test_limit_and_test_size_keep_the_first_images_and_the_note_says_so(fake_datasets):
    at_hand, _ = fake_datasets
    at_hand[("svhn", "train")] = numbered(50)
    at_hand[("svhn", "test")] = numbered(20, first=100)
    (x, y), (tx, ty), note = load_train_test(
        "svhn", limit=7, test_size=5, both_note="{name}: both",
        limit_note=" (--limit: {n} training images)",
        test_size_note=" (--test-size: only the first {n} held-out images)")
    np.testing.assert_array_equal(y, np.arange(7))
    np.testing.assert_array_equal(ty, np.arange(100, 105))
    assert len(x) == 7 and len(tx) == 5
    assert note == ("svhn: both (--limit: 7 training images) (--test-size: only the first 5 "
                    "held-out images)")


def test_one_npz_file_is_split_80_20(tmp_path):
    images, labels = numbered(10)
    path = tmp_path / "mine.npz"
    np.savez(path, images=images, labels=labels)
    (x, y), (tx, ty), note = load_train_test(
        str(path), split_note=": the first {cut} train, the last {rest} are held out")
    np.testing.assert_array_equal(y, np.arange(8))
    np.testing.assert_array_equal(ty, [8, 9])
    np.testing.assert_array_equal(tx[:, 0, 0, 0], [8, 9])
    assert note == f"{path}: the first 8 train, the last 2 are held out"


def test_only_mnists_test_files_first_8000_train(fake_datasets):
    at_hand, calls = fake_datasets
    at_hand[("mnist", "test")] = numbered(10_000)
    (x, y), (tx, ty), note = load_train_test("mnist", download=True)
    assert calls[-1] == ("mnist", "test", False)       # the fallback never downloads
    np.testing.assert_array_equal(y, np.arange(8000))
    np.testing.assert_array_equal(ty, np.arange(8000, 10_000))
    assert not set(y) & set(ty)
    assert note == ("only MNIST's test files are at hand: the first 8000 images train, the last "
                    "2000 are held out")


def test_the_examples_own_wording_of_the_fallback(fake_datasets):
    at_hand, _ = fake_datasets
    at_hand[("mnist", "test")] = numbered(10_000)
    *_, note = load_train_test(
        "mnist", limit=100, fallback_note="only MNIST's test files",
        split_note=": the first {cut} train, the rest are held out",
        limit_note=" (--limit: {n} training images)")
    assert note == ("only MNIST's test files: the first 8000 train, the rest are held out "
                    "(--limit: 100 training images)")


def test_without_any_files_the_first_error_is_raised(fake_datasets):
    with pytest.raises(DataError, match="^mnist train: files not found$"):
        load_train_test("mnist")
    with pytest.raises(DataError, match="^svhn train: files not found$"):
        load_train_test("svhn")                          # only MNIST falls back


def test_another_dataset_never_falls_back_to_mnist(fake_datasets):
    at_hand, calls = fake_datasets
    at_hand[("mnist", "test")] = numbered(100)
    at_hand[("svhn", "train")] = numbered(100)
    with pytest.raises(DataError, match="^svhn test: files not found$"):
        load_train_test("svhn")
    assert ("mnist", "test", False) not in calls


def test_images_without_labels_are_refused(tmp_path):
    path = tmp_path / "unlabelled.npz"
    np.savez(path, images=numbered(10)[0])
    with pytest.raises(DataError, match="unlabelled.npz has no labels: accuracy needs them$"):
        load_train_test(str(path), why_labels="accuracy needs them")


def test_mnist_test_files_instead_for_a_script_that_needs_one_set(fake_datasets):
    at_hand, calls = fake_datasets
    at_hand[("mnist", "test")] = numbered(30)
    images, labels = mnist_test_files_instead("mnist", DataError("no training files"))
    np.testing.assert_array_equal(labels, np.arange(30))
    assert calls == [("mnist", "test", False)]
    with pytest.raises(DataError, match="^no training files$"):
        mnist_test_files_instead("cifar10", DataError("no training files"))


def test_a_folder_of_pictures_is_one_set_split_in_a_fixed_shuffled_order(fake_datasets,
                                                                          tmp_path):
    # A folder is read class by class: split by position, the held-out images would all be of
    # the last classes (issue found by a walkthrough: the examples refused folders outright).
    at_hand, calls = fake_datasets
    folder = tmp_path / "pictures"
    folder.mkdir()
    images, _ = numbered(100)
    labels = np.repeat(np.arange(10), 10)                        # class by class, as read
    at_hand[(str(folder), "train")] = (images, labels)
    (x, y), (tx, ty), note = load_train_test(folder)
    assert [c[1] for c in calls] == ["train"]                    # no test split asked for
    assert len(y) == 80 and len(ty) == 20 and len(set(ty.tolist())) > 5
    assert sorted(np.concatenate([x, tx])[:, 0, 0, 0].tolist()) == list(range(100))
    assert "in a fixed shuffled order" in note
    (x2, _), _, _ = load_train_test(folder)
    assert np.array_equal(x, x2)                                  # the same split every time
