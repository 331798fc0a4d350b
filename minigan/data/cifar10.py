"""CIFAR-10: 60,000 colour photos (32x32) of ten kinds of object, from the "binary version".

The archive ``cifar-10-binary.tar.gz`` holds a folder ``cifar-10-batches-bin`` with
``data_batch_1.bin`` .. ``data_batch_5.bin`` (training, 10,000 images each) and
``test_batch.bin``. Each file is a run of 3073-byte records: one label byte (0..9), then the
image as 3072 bytes, all red, then all green, then all blue, each row by row, which is exactly
the ``(3, 32, 32)`` layout minigan uses, so a reshape is all it takes.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from minigan.data.download import DataError, extract_tar, find_or_download, resolve_data_dir

BASE_URL = "https://www.cs.toronto.edu/~kriz/"
ARCHIVE = "cifar-10-binary.tar.gz"
ARCHIVE_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
FOLDER = "cifar-10-batches-bin"
SPLITS = {
    "train": [f"data_batch_{i}.bin" for i in range(1, 6)],
    "test": ["test_batch.bin"],
}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")
RECORD = 1 + 3 * 32 * 32  # label byte + pixels


def load_cifar10(
    split: str = "train", data_dir: str | os.PathLike | None = None, download: bool = True,
    base_url: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load one CIFAR-10 split: ``images (N, 3, 32, 32) uint8``, ``labels (N,) int64`` in 0..9.

    The archive is downloaded (and checked) into ``data_dir/cifar10`` and extracted there once;
    later calls read the extracted ``.bin`` files directly.
    """
    if split not in SPLITS:
        raise DataError(f"unknown CIFAR-10 split {split!r}: choose one of {', '.join(SPLITS)}")
    folder = _batches_folder(data_dir)
    if folder is None or not all((folder / f).exists() for f in SPLITS[split]):
        archive = find_or_download(ARCHIVE, base_url or BASE_URL, ARCHIVE_MD5, data_dir,
                                   "cifar10", download)
        folder = _extract(archive)
    parts = [read_cifar_batch(folder / f) for f in SPLITS[split]]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return images, labels


def _batches_folder(data_dir) -> Path | None:
    """The extracted batch folder, if one already exists in ``data_dir`` or ``data_dir/cifar10``."""
    root = resolve_data_dir(data_dir)
    for candidate in (root / FOLDER, root / "cifar10" / FOLDER):
        if candidate.is_dir():
            return candidate
    return None


def _extract(archive: Path) -> Path:
    """Extract ``archive`` next to itself; return the batch folder.

    We extract into a temporary folder and rename it into place at the end, so an interrupted
    extraction never leaves a half-filled folder that a later run would trust.
    """
    target = archive.parent / FOLDER
    try:
        with tempfile.TemporaryDirectory(dir=archive.parent, prefix=".extract-") as tmp:
            extract_tar(archive, tmp)
            extracted = Path(tmp) / FOLDER
            if not extracted.is_dir():
                raise DataError(f"{archive} has no {FOLDER}/ folder: it is not the CIFAR-10 "
                                "binary archive; delete it and download it again")
            if target.exists():  # a stale, incomplete folder: move it aside to be deleted
                os.replace(target, Path(tmp) / "old")
            os.replace(extracted, target)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DataError(f"cannot extract {archive} ({' '.join(str(error).split())}): check that "
                        "its folder is writable, or delete it and download it again") from None
    return target


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one ``.bin`` batch: ``(N, 3, 32, 32) uint8`` images and ``(N,) int64`` labels."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD:
        raise DataError(f"{path} is {raw.size} bytes, not a whole number of {RECORD}-byte "
                        "CIFAR-10 records: delete it and extract the archive again")
    records = raw.reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise DataError(f"{path} holds label {labels.max()}; CIFAR-10 labels are 0..9")
    images = np.ascontiguousarray(records[:, 1:].reshape(-1, 3, 32, 32))
    return images, labels
