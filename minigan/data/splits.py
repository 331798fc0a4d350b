"""A labelled train/test pair for the examples that train on one split and score the other.

``load_train_test`` loads a dataset's training and test splits; when only one set of images is
at hand (an ``.npz`` file or a folder of pictures of one's own, or MNIST offline with only its
test files), it splits that set in two, so an example still runs. It also returns a sentence
saying where the images came from, for the example's summary: a learner reading it should know
what was measured on what. The examples keep their own wording by passing the sentence's pieces.
"""

from __future__ import annotations

import os

import numpy as np

from minigan.data.download import DataError

Pair = tuple[np.ndarray, np.ndarray]

TEST_ONLY_SPLIT = 8000  # one set alone: the first 8000 images train, the rest are held out


def mnist_test_files_instead(
    name: str | os.PathLike, error: DataError, data_dir: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """MNIST's test split, read from disk, in place of a split that failed with ``error``.

    Why: MNIST's test files (``t10k-*``) are small and often the only ones at hand offline; an
    example can still train and score on them. Re-raises ``error`` for any other dataset, and
    when the test files are not on disk either (never downloads them).
    """
    from minigan.data import load_dataset  # the package imports this module

    if str(name) != "mnist":
        raise error
    try:
        return load_dataset("mnist", "test", data_dir=data_dir, download=False)
    except DataError:
        raise error from None


def load_train_test(
    name: str | os.PathLike, data_dir: str | os.PathLike | None = None, download: bool = True,
    *, limit: int | None = None, test_size: int | None = None,
    why_labels: str = "this needs them",
    both_note: str = "{name}: training and test splits",
    fallback_note: str = "only MNIST's test files are at hand",
    split_note: str = ": the first {cut} images train, the last {rest} are held out",
    limit_note: str = " (only the first {n} training images)",
    test_size_note: str = " (only the first {n} held-out images)",
) -> tuple[Pair, Pair, str]:
    """Load ``(train_images, train_labels), (test_images, test_labels)`` and a note on them.

    Both splits of dataset ``name`` when it has them. With one set only (an ``.npz`` file, or
    MNIST with only its test files on disk: ``mnist_test_files_instead``), the first
    ``TEST_ONLY_SPLIT`` images (80% of a smaller set) train and the rest are held out.
    ``limit`` keeps the first training images, ``test_size`` the first held-out ones.

    The note: ``both_note`` (formatted with ``name``) for two splits; ``name`` for an ``.npz``
    file, or ``fallback_note`` for MNIST's test files, followed by ``split_note`` (with ``cut``,
    the training images, and ``rest``, the held-out ones) when one set was split; then
    ``limit_note`` (with ``n``, the training images kept) when ``limit`` applies, and
    ``test_size_note`` (with ``n``, the held-out images kept) when ``test_size`` leaves some out.

    Raises ``DataError`` when the images have no labels (``why_labels`` says what needs them),
    or when the dataset cannot be loaded.
    """
    from minigan.data import is_image_folder, is_npz_path, load_dataset  # the package imports us

    test: tuple[np.ndarray, np.ndarray | None] | None
    folder = is_image_folder(name) and not is_npz_path(name)
    try:
        train = load_dataset(name, "train", data_dir=data_dir, download=download)
        test = None if is_npz_path(name) or folder else load_dataset(
            name, "test", data_dir=data_dir, download=download)
        note = str(name) if test is None else both_note.format(name=name)
    except DataError as error:
        train = mnist_test_files_instead(name, error, data_dir)
        test = None
        note = fallback_note
    images, labels = train
    if labels is None:
        raise DataError(f"{name} has no labels: {why_labels}")
    if folder:   # read class by class: the last images would all be the last classes
        order = np.random.default_rng(0).permutation(len(images))
        images, labels = images[order], labels[order]
        note += " (in a fixed shuffled order: the folder is read class by class)"
    if test is None:  # one set of images: split it
        cut = TEST_ONLY_SPLIT if len(images) > TEST_ONLY_SPLIT else int(len(images) * 0.8)
        test = (images[cut:], labels[cut:])
        images, labels = images[:cut], labels[:cut]
        note += split_note.format(cut=cut, rest=len(test[0]))
    test_images, test_labels = test
    assert test_labels is not None  # a dataset's test split has labels when its training one has
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
        note += limit_note.format(n=len(images))
    if test_size is not None and test_size < len(test_images):
        test_images, test_labels = test_images[:test_size], test_labels[:test_size]
        note += test_size_note.format(n=test_size)
    return (images, labels), (test_images, test_labels), note
