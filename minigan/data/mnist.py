"""MNIST: 70,000 grey 28x28 handwritten digits, read from the original gzip IDX files.

IDX is a tiny self-describing format. Its header is

    byte 0-1  zero
    byte 2    element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
              0x0E float64
    byte 3    number of dimensions D
    then      D sizes, each a big-endian uint32

followed by the elements, big-endian, last dimension fastest (C order). The image files are
``(N, 28, 28)`` uint8 and the label files ``(N,)`` uint8.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from minigan.data.download import DataError, find_or_download

BASE_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # a mirror of the original files
FILES = {  # file name -> published MD5
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
PREFIX = {"train": "train", "test": "t10k"}
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_mnist(
    split: str = "train", data_dir: str | os.PathLike | None = None, download: bool = True,
    base_url: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load one MNIST split: ``images (N, 1, 28, 28) uint8`` and ``labels (N,) int64`` in 0..9.

    ``data_dir`` may be a folder that already holds the ``.gz`` files (they are checked, not
    downloaded again); otherwise they are downloaded into ``data_dir/mnist``.
    """
    if split not in PREFIX:
        raise DataError(f"unknown MNIST split {split!r}: choose one of {', '.join(PREFIX)}")
    paths = {}
    for kind in ("images", "labels"):
        name = f"{PREFIX[split]}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"
        paths[kind] = find_or_download(name, base_url or BASE_URL, FILES[name], data_dir,
                                       "mnist", download)
    images, labels = read_idx(paths["images"]), read_idx(paths["labels"])
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1:
        raise DataError(f"MNIST files hold shapes {images.shape} and {labels.shape}, expected "
                        "(N, 28, 28) and (N,): delete them and download them again")
    if len(images) != len(labels):
        raise DataError(f"MNIST {split}: {len(images)} images but {len(labels)} labels")
    return images.astype(np.uint8)[:, None], labels.astype(np.int64)  # add the channel axis


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not) into a NumPy array in native byte order."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":  # the gzip magic number
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"cannot read {path} ({' '.join(str(error).split())}): "
                        "delete it and download it again") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()}): "
                        "delete it and download it again")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated inside its header: delete it and download it again")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(f"{path} is {what} ({len(raw)} bytes, header says {expected}): "
                        "delete it and download it again")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # native order; also a writable copy
