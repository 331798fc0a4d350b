"""A folder of PNG/JPEG pictures as a dataset, prepared as torchvision's ``ImageFolder`` with
``Resize(size)`` and ``CenterCrop(size)`` prepares it for PyTorch's DCGAN example.

    photos/                      photos/cats/001.jpg, photos/dogs/002.png, ...  (one class a
      001.jpg  002.png ...       subfolder, as ImageFolder reads them: labels 0, 1, ... in the
                                 order of the sorted folder names) or the pictures themselves

Each picture is converted to RGB, scaled (bilinear) so that its *shorter* side is ``size``
pixels, keeping its proportions, then cut to the ``size`` x ``size`` square at its centre. This
is how the 64x64 DCGAN of the paper is usually trained on a folder such as CelebA's:
``python examples/train_svhn.py --dataset path/to/photos --image-size 64``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from minigan.data.download import DataError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def is_image_folder(name: str | os.PathLike) -> bool:
    """Whether a ``--dataset`` value names a folder of pictures rather than a dataset or an
    .npz file: an existing folder, or any other path with a separator in it (which the loader
    then reports as missing, rather than as an unknown dataset name)."""
    text = str(name)
    if text.lower().endswith(".npz"):
        return False
    return Path(text).is_dir() or "/" in text or os.sep in text


def resize_and_center_crop(picture: Image.Image, size: int) -> Image.Image:
    """``Resize(size)`` then ``CenterCrop(size)`` as torchvision does them on a PIL image.

    Resize: the shorter side becomes ``size``, the longer one ``int(size * long / short)``
    (rounded down, as torchvision does). CenterCrop: the crop's top-left corner is
    ``round((H - size) / 2), round((W - size) / 2)``.
    """
    width, height = picture.size
    if width <= height:
        new = (size, int(size * height / width))
    else:
        new = (int(size * width / height), size)
    if new != (width, height):
        picture = picture.resize(new, Image.BILINEAR)
    width, height = picture.size
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    return picture.crop((left, top, left + size, top + size))


def find_pictures(root: Path) -> tuple[list[Path], list[int], list[str]]:
    """The picture files of ``root`` and their class indices: one class per subfolder that
    holds pictures (sorted names, as ImageFolder), or one class 0 when only ``root`` itself
    holds them (subfolders without pictures, such as a run folder, are ignored)."""

    def pictures(folder: Path, deep: bool) -> list[Path]:
        found = folder.rglob("*") if deep else folder.iterdir()
        return sorted(p for p in found if p.suffix.lower() in EXTENSIONS and p.is_file())

    subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    groups = [(p.name, pictures(p, deep=True)) for p in subfolders]
    groups = [(name, files) for name, files in groups if files] or [(root.name,
                                                                     pictures(root, False))]
    files = [f for _, group in groups for f in group]
    labels = [index for index, (_, group) in enumerate(groups) for _ in group]
    return files, labels, [name for name, _ in groups]


def load_image_folder(path: str | os.PathLike, size: int = 64, progress: bool = True
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Every picture under the folder ``path`` as ``(N, 3, size, size) uint8`` images (resized
    and centre-cropped, see the module's docstring), and ``(N,) int64`` class labels.

    A file that is not a readable picture raises a one-line ``DataError`` naming it.
    """
    from minigan.progress import tqdm

    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    if size < 1:
        raise DataError(f"image size must be at least 1, got {size}")
    files, labels, _ = find_pictures(root)
    if not files:
        raise DataError(f"{root} holds no pictures ({', '.join(EXTENSIONS)}), directly or in "
                        f"one subfolder per class")
    images = np.empty((len(files), 3, size, size), dtype=np.uint8)
    for i, file in enumerate(tqdm(files, desc=f"reading {root.name}", unit="image",
                                  disable=not progress, leave=False)):
        try:
            with Image.open(file) as picture:
                square = resize_and_center_crop(picture.convert("RGB"), size)
        except (OSError, UnidentifiedImageError, ValueError) as error:
            reason = " ".join(str(error).split()) or type(error).__name__
            raise DataError(f"{file} is not a readable picture ({reason})") from None
        images[i] = np.asarray(square).transpose(2, 0, 1)
    return images, np.asarray(labels, dtype=np.int64)
