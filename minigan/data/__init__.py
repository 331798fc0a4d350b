"""Datasets, checked downloads and the mini-batch loader.

Every loader returns NumPy arrays ``images: (N, C, H, W) uint8`` and ``labels: (N,) int64``;
``DataLoader`` turns them into float32 batches in [-1, 1] on the active backend::

    from minigan.data import DataLoader, load_dataset
    images, labels = load_dataset("svhn", "train")        # (73257, 3, 32, 32) uint8
    for x, y in DataLoader(images, labels, batch_size=128).epoch(0):
        ...                                                # x: (128, 3, 32, 32) float32

Files are cached in ``default_data_dir()`` (``$MINIGAN_DATA``, else ``~/.cache/minigan``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from minigan.data.cifar10 import load_cifar10
from minigan.data.download import (
    DataError,
    default_data_dir,
    extract_tar,
    find_or_download,
    md5_of,
)
from minigan.data.loader import DataLoader, scale_images, unscale_images
from minigan.data.mnist import load_mnist, read_idx
from minigan.data.svhn import load_svhn, read_svhn_mat
from minigan.data.synthetic import make_synthetic_digits

DATASETS = ("svhn", "cifar10", "mnist", "synthetic")
SYNTHETIC_SIZES = {"train": 10_000, "test": 2_000}


def load_dataset(
    name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
    download: bool = True, **kw: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Load dataset ``name`` (one of ``DATASETS``): ``(N, C, H, W) uint8`` images, ``(N,)`` labels.

    Extra keywords go to the dataset's own loader (``base_url=`` for the downloaded ones;
    ``n=``, ``seed=``, ``size=``, ``channels=`` for ``"synthetic"``, which needs no files and
    has 10,000 training and 2,000 test images unless ``n`` is given).
    """
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
    raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")


__all__ = [
    "DATASETS",
    "DataError",
    "DataLoader",
    "default_data_dir",
    "extract_tar",
    "find_or_download",
    "load_cifar10",
    "load_dataset",
    "load_mnist",
    "load_svhn",
    "make_synthetic_digits",
    "md5_of",
    "read_idx",
    "read_svhn_mat",
    "scale_images",
    "unscale_images",
]
