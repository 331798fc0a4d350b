"""SVHN (Street View House Numbers), the cropped-digit version: 32x32 colour photos of digits.

The files are MATLAB ``.mat`` files holding two arrays:

* ``X``: ``(32, 32, 3, N)`` uint8, i.e. height, width, channel, *then* the image index;
* ``y``: ``(N, 1)``, the digit, where the digit 0 is stored as the label 10.

``load_svhn`` turns them into the layout every minigan layer expects: images ``(N, 3, 32, 32)``
uint8 and labels ``(N,)`` int64 in 0..9.
"""

from __future__ import annotations

import os

import numpy as np

from minigan.data.download import DataError, find_or_download

BASE_URL = "http://ufldl.stanford.edu/housenumbers/"
# split -> (file name, published MD5)
FILES = {
    "train": ("train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373"),  # 73,257 images
    "test": ("test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3"),  # 26,032 images
    "extra": ("extra_32x32.mat", "a93ce644f1a588dc4d68dda5feec44a7"),  # 531,131 easier images
}


def load_svhn(
    split: str = "train", data_dir: str | os.PathLike | None = None, download: bool = True,
    base_url: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load one SVHN split, downloading and checking it first if needed.

    Returns ``images: (N, 3, 32, 32) uint8`` and ``labels: (N,) int64`` in 0..9.
    ``data_dir=None`` means ``default_data_dir()``; the file is looked for in ``data_dir`` and
    ``data_dir/svhn`` and downloaded into the latter.
    """
    if split not in FILES:
        raise DataError(f"unknown SVHN split {split!r}: choose one of {', '.join(FILES)}")
    filename, md5 = FILES[split]
    path = find_or_download(filename, base_url or BASE_URL, md5, data_dir, "svhn", download)
    return read_svhn_mat(path)


def read_svhn_mat(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an SVHN ``.mat`` file: ``X (32, 32, 3, N)`` -> ``(N, 3, 32, 32)``, label 10 -> 0."""
    from scipy.io import loadmat  # scipy is slow to import; only SVHN needs it

    try:
        mat = loadmat(path)
    except Exception as error:  # scipy raises many types for a bad file (ValueError, ...)
        raise DataError(f"cannot read {path} as a MATLAB file ({' '.join(str(error).split())}): "
                        "delete it and download it again") from None
    if "X" not in mat or "y" not in mat:
        raise DataError(f"{path} has no 'X' and 'y' arrays, so it is not an SVHN file: "
                        "delete it and download it again")
    x, y = mat["X"], np.asarray(mat["y"]).reshape(-1)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.dtype != np.uint8 or x.shape[3] != y.size:
        raise DataError(f"{path}: expected X (32, 32, 3, N) uint8 and y (N, 1), got X {x.shape} "
                        f"{x.dtype} and y {mat['y'].shape}: delete it and download it again")
    labels = y.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() > 10):
        raise DataError(f"{path}: labels must be 0..10, found {labels.min()}..{labels.max()}")
    labels[labels == 10] = 0  # SVHN follows MATLAB's 1-based habit: the digit 0 is class 10
    # (H, W, C, N) -> (N, C, H, W); copy so each image is contiguous in memory
    images = np.ascontiguousarray(x.transpose(3, 2, 0, 1))
    return images, labels
