"""Your own images from an ``.npz`` file: the simplest way to train on data minigan does not know.

An ``.npz`` file is NumPy's zip of named arrays. minigan reads two of them:

* ``images`` (required): ``uint8`` pixels in 0..255, shaped ``(N, C, H, W)`` with ``C`` 1 (grey)
  or 3 (colour), ``(N, H, W)`` for grey images, or ``(N, H, W, C)`` as most image libraries
  store them;
* ``labels`` (optional): ``N`` integers, one class per image (needed only to train the feature
  network of ``examples/train_classifier.py``).

Any other arrays in the file are left alone. To make such a file from your own pictures::

    import numpy as np
    images = np.stack([...])                  # e.g. (N, 32, 32, 3) uint8, one image per row
    np.savez("my_images.npz", images=images)  # add labels=... if you have them

then ``python examples/train_svhn.py --dataset my_images.npz``.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from minigan.checkpoint import DamagedFileError, read_npz
from minigan.data.download import DataError

CHANNELS = (1, 3)


def load_npz_images(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """The ``images`` of an ``.npz`` file as ``(N, C, H, W) uint8``, and its ``labels`` or None.

    ``images`` may be ``(N, C, H, W)`` or ``(N, H, W, C)`` with ``C`` 1 or 3, or ``(N, H, W)``
    (grey). ``(N, H, W)`` gets a channel axis and ``(N, H, W, C)`` is transposed to
    ``(N, C, H, W)``; an array whose second axis is 1 or 3 is taken to be ``(N, C, H, W)``
    already. The result is C-contiguous.

    ``labels`` come back as ``(N,) int64`` when the file has ``N`` integer labels, as None when
    it has none; labels that do not match the images (another count) are ignored with a
    warning. Anything else wrong with the file raises a one-line ``DataError``. Nothing is
    unpickled: the arrays must be plain numbers or strings.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (--dataset takes a dataset name or the path of "
                        f"an .npz file)")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not an .npz file (a zip of named arrays, as numpy.savez "
                        f"writes it): save the pictures with numpy.savez(file, images=...)")
    try:
        archive = read_npz(path, ".npz file")   # the checked loader of every file minigan reads
    except DamagedFileError as error:
        raise DataError(str(error)) from None
    names = list(archive)
    if "images" not in names:
        have = ", ".join(names) if names else "no arrays at all"
        raise DataError(f"{path} has no 'images' array (it has {have}): save the "
                        f"pictures with numpy.savez(file, images=...)")
    images = archive["images"]
    labels = archive.get("labels")

    images = _to_nchw(images, path)
    return images, _check_labels(labels, len(images), path)


def _to_nchw(images: np.ndarray, path: Path) -> np.ndarray:
    if images.dtype != np.uint8:
        raise DataError(f"{path}: images are {images.dtype}, not uint8: convert them to uint8 "
                        f"in 0..255, e.g. (x * 255).round().astype(numpy.uint8) for floats in "
                        f"0..1")
    shape = images.shape
    if images.ndim == 3:                                          # (N, H, W): grey
        images = images[:, None]
    elif images.ndim == 4 and shape[1] not in CHANNELS and shape[3] in CHANNELS:
        images = images.transpose(0, 3, 1, 2)                     # (N, H, W, C) -> (N, C, H, W)
    elif images.ndim != 4 or shape[1] not in CHANNELS:
        raise DataError(f"{path}: images have shape {shape}; expected (N, C, H, W) or "
                        f"(N, H, W, C) with C 1 or 3, or (N, H, W) for grey images")
    if min(images.shape, default=0) == 0:
        raise DataError(f"{path}: images have shape {shape}, which holds no pixels")
    return np.ascontiguousarray(images)


def _check_labels(labels: np.ndarray | None, n: int, path: Path) -> np.ndarray | None:
    if labels is None:
        return None
    if labels.shape != (n,):
        count = f"{len(labels)} labels" if labels.ndim == 1 else f"labels of shape {labels.shape}"
        warnings.warn(f"{path}: {count} for {n} images, so the labels are ignored",
                      stacklevel=3)
        return None
    if not np.issubdtype(labels.dtype, np.integer):
        warnings.warn(f"{path}: labels are {labels.dtype}, not integers, so the labels are "
                      f"ignored", stacklevel=3)
        return None
    return labels.astype(np.int64)
