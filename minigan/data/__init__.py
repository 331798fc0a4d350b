"""Datasets, checked downloads and the mini-batch loader.

Every loader returns NumPy arrays ``images: (N, C, H, W) uint8`` and ``labels: (N,) int64``;
``DataLoader`` turns them into float32 batches in [-1, 1] on the active backend::

    from minigan.data import DataLoader, load_dataset
    images, labels = load_dataset("svhn", "train")        # (73257, 3, 32, 32) uint8
    for x, y in DataLoader(images, labels, batch_size=128).epoch(0):
        ...                                                # x: (128, 3, 32, 32) float32

Files are cached in ``default_data_dir()`` (``$MINIGAN_DATA``, else ``~/.cache/minigan``).
Your own images work too: ``load_dataset("my_images.npz")`` reads an ``.npz`` file with an
``images`` array (see ``minigan.data.npz``); its ``labels`` are None when the file has none
that match the images. ``load_train_test`` gives a labelled train/test pair, splitting one set
in two when only one is at hand.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from minigan.data.cifar10 import load_cifar10
from minigan.data.download import (
    DataError,
    default_data_dir,
    extract_tar,
    find_or_download,
    md5_of,
    use_mirror,
)
from minigan.data.folder import is_image_folder, load_image_folder
from minigan.data.loader import DataLoader, scale_images, unscale_images
from minigan.data.mnist import load_mnist, read_idx
from minigan.data.npz import load_npz_images
from minigan.data.splits import TEST_ONLY_SPLIT, load_train_test, mnist_test_files_instead
from minigan.data.svhn import load_svhn, read_svhn_mat
from minigan.data.synthetic import make_synthetic_digits

DATASETS = ("svhn", "cifar10", "mnist", "synthetic")
SYNTHETIC_SIZES = {"train": 10_000, "test": 2_000}


def is_npz_path(name: str | os.PathLike) -> bool:
    """Whether a ``--dataset`` value names an ``.npz`` file of one's own rather than a dataset."""
    return str(name).lower().endswith(".npz")


def dataset_label(name: str | os.PathLike) -> str:
    """A short name for a dataset, for default file names: ``runs/<label>``.

    The file's stem for an ``.npz`` path (``photos/cats.npz`` -> ``cats``), the folder's name
    for a folder of pictures (``data/celeba/`` -> ``celeba``), else the name.
    """
    if is_npz_path(name):
        return Path(name).stem
    if str(name).lower() not in DATASETS and is_image_folder(name):
        return Path(name).resolve().name
    return str(name).lower()


def load_dataset(
    name: str | os.PathLike, split: str = "train", data_dir: str | os.PathLike | None = None,
    download: bool = True, **kw: Any,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Load dataset ``name`` (one of ``DATASETS``): ``(N, C, H, W) uint8`` images, ``(N,)`` labels.

    Extra keywords go to the dataset's own loader (``base_url=`` for the downloaded ones;
    ``n=``, ``seed=``, ``size=``, ``channels=`` for ``"synthetic"``, which needs no files and
    has 10,000 training and 2,000 test images unless ``n`` is given).

    ``name`` may also be the path of an ``.npz`` file (``load_npz_images``): one set of images,
    so its only split is ``"train"``, ``data_dir`` and ``download`` do not apply, and the
    labels are None when the file has none that match its images.

    ``name`` may also be a folder of pictures (``load_image_folder``; ``size=`` gives the
    square they are resized and cropped to, 64 by default): its only split is ``"train"``.
    """
    if str(name).lower() not in DATASETS and is_image_folder(name):
        if split != "train":
            raise DataError(f"{name} is one folder of pictures with no {split!r} split: use "
                            f"the train split (the default)")
        return load_image_folder(name, **kw)
    if is_npz_path(name):
        if split != "train":
            raise DataError(f"{name} is one set of images with no {split!r} split: use the "
                            f"train split (the default)")
        if kw:
            raise TypeError(f"load_dataset: {', '.join(kw)} do not apply to an .npz file")
        return load_npz_images(name)
    name = str(name).lower()
    if name == "svhn":
        return load_svhn(split, data_dir, download, **kw)
    if name == "cifar10":
        return load_cifar10(split, data_dir, download, **kw)
    if name == "mnist":
        return load_mnist(split, data_dir, download, **kw)
    if name == "synthetic":
        if split not in SYNTHETIC_SIZES:
            raise DataError(f"unknown synthetic split {split!r}: choose train or test")
        n = kw.pop("n", SYNTHETIC_SIZES[split])
        seed = kw.pop("seed", 0)
        # the split is part of the seed so that train and test never share images
        return make_synthetic_digits(n, seed=[seed, list(SYNTHETIC_SIZES).index(split)], **kw)
    raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)} or the "
                    f"path of an .npz file")


__all__ = [
    "DATASETS",
    "TEST_ONLY_SPLIT",
    "DataError",
    "DataLoader",
    "dataset_label",
    "default_data_dir",
    "extract_tar",
    "find_or_download",
    "is_image_folder",
    "is_npz_path",
    "load_cifar10",
    "load_dataset",
    "load_image_folder",
    "load_mnist",
    "load_npz_images",
    "load_svhn",
    "load_train_test",
    "make_synthetic_digits",
    "md5_of",
    "mnist_test_files_instead",
    "read_idx",
    "read_svhn_mat",
    "scale_images",
    "unscale_images",
    "use_mirror",
]
