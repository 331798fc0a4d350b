"""A folder of PNG/JPEG pictures as a dataset, prepared as torchvision's ``ImageFolder`` with
``Resize(size)`` and ``CenterCrop(size)`` prepares it for PyTorch's DCGAN example.

Which files count -- the rule, the same in the code below:

* **Pictures** are files ending in .png, .jpg, .jpeg, .bmp, .gif or .webp (any case). Other
  files (notes, CSVs) are not pictures and are skipped; a picture file that cannot be read is an
  error naming it. Hidden files and folders (a name starting with ".", such as
  ``.ipynb_checkpoints``) are skipped, and so are symbolic links to folders.
* **Subfolders are classes**, as in ``ImageFolder``: when the folder has subfolders holding
  pictures, each one is a class (labels 0, 1, ... in the order of the sorted names), and its
  pictures at any depth belong to it. Subfolders with no pictures at all are not classes.
* **Pictures directly in the folder** are one class (label 0) when the folder has no class
  subfolders -- ``ImageFolder`` would refuse such a folder, but a GAN needs no labels. A
  folder with pictures of its own *and* class subfolders is refused, saying why: ``ImageFolder``
  would silently skip the top-level pictures, and reading them as an extra class would give
  other labels than ``ImageFolder``; move them into a subfolder, or point at one subfolder.
* **A minigan run is never read as pictures**: a folder holding a run (``config.json`` or
  ``checkpoint.npz``) is refused as a dataset, and a run folder inside a dataset (``--out``
  under ``--dataset``) is skipped with a warning, so a run's own samples never become training
  images.

    photos/                      photos/cats/001.jpg, photos/dogs/002.png, ...  (one class a
      001.jpg  002.png ...       subfolder) or the pictures themselves (one class)

Each picture is converted to RGB, scaled (bilinear) so that its *shorter* side is ``size``
pixels, keeping its proportions, then cut to the ``size`` x ``size`` square at its centre. This
is how the 64x64 DCGAN of the paper is usually trained on a folder such as CelebA's:
``python examples/train_svhn.py --dataset path/to/photos --image-size 64``. A 16-bit grey PNG
(0..65535) is first scaled to 8 bits (0..255): converted as is, every value above 255 would
become white. A picture of more than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (about 89
million: a "decompression bomb", a small file that expands to gigabytes) is refused, naming it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from minigan.data.download import DataError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
RUN_FILES = ("config.json", "checkpoint.npz")   # what makes a folder a minigan run


def is_image_folder(name: str | os.PathLike) -> bool:
    """Whether a ``--dataset`` value names a folder of pictures rather than a dataset or an
    .npz file: an existing folder, or any other path with a separator in it (which the loader
    then reports as missing, rather than as an unknown dataset name)."""
    text = str(name)
    if not text.strip() or text.lower().endswith(".npz"):
        return False      # "" is not "the current folder": refused as an unknown dataset
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


def holds_a_run(folder: Path) -> bool:
    """Whether ``folder`` is a minigan run folder (it holds one of ``RUN_FILES``)."""
    return any((folder / name).is_file() for name in RUN_FILES)


def _is_picture(name: str) -> bool:
    return name.lower().endswith(EXTENSIONS) and not name.startswith(".")


def _pictures_under(folder: Path) -> list[Path]:
    """The pictures at any depth under ``folder``, sorted, skipping hidden folders, symbolic
    links to folders (``os.walk`` does not follow them: no loops) and run folders."""
    found = []
    for current, subfolders, files in os.walk(folder):
        here = Path(current)
        keep = []
        for sub in sorted(subfolders):
            if sub.startswith("."):
                continue
            if holds_a_run(here / sub):
                warnings.warn(f"skipping {here / sub}: it holds a minigan run "
                              f"({', '.join(RUN_FILES)}), whose samples are not training "
                              f"pictures", stacklevel=3)
                continue
            keep.append(sub)
        subfolders[:] = keep          # os.walk descends only into these
        found += [here / f for f in files if _is_picture(f) and (here / f).is_file()]
    return sorted(found)


def find_pictures(root: Path) -> tuple[list[Path], list[int], list[str]]:
    """The picture files of ``root`` and their class indices, by the rule of the module's
    docstring: one class per subfolder that holds pictures (sorted names, as ImageFolder), or
    one class 0 when only ``root`` itself holds them. Raises DataError for a folder that holds
    a run, or pictures of its own beside class subfolders."""
    if holds_a_run(root):
        raise DataError(f"{root} holds a minigan run ({', '.join(RUN_FILES)}), not a dataset: "
                        f"give the folder of the pictures to learn from (a run's folder is "
                        f"--out)")
    entries = sorted(root.iterdir())
    subfolders = [p for p in entries if p.is_dir() and not p.is_symlink()
                  and not p.name.startswith(".")]
    own = [p for p in entries if _is_picture(p.name) and p.is_file()]
    groups = []
    for sub in subfolders:
        if holds_a_run(sub):
            warnings.warn(f"skipping {sub}: it holds a minigan run ({', '.join(RUN_FILES)}), "
                          f"whose samples are not training pictures", stacklevel=2)
            continue
        files = _pictures_under(sub)
        if files:
            groups.append((sub.name, files))
    if groups and own:
        raise DataError(f"{root} holds {len(own)} picture(s) of its own (such as {own[0].name}) "
                        f"and {len(groups)} subfolder(s) of pictures ({groups[0][0]}, ...): "
                        f"subfolders are classes, as in torchvision's ImageFolder, which would "
                        f"skip the top-level pictures; move them into a subfolder, or give one "
                        f"subfolder as the dataset")
    if not groups:
        groups = [(root.name, own)]
    files = [f for _, group in groups for f in group]
    labels = [index for index, (_, group) in enumerate(groups) for _ in group]
    return files, labels, [name for name, _ in groups]


def read_picture(file: Path) -> Image.Image:
    """The picture in ``file`` as an 8-bit RGB image; DataError (one line naming the file) if
    it is not a readable picture or is larger than ``Image.MAX_IMAGE_PIXELS``."""
    try:
        with warnings.catch_warnings():
            # PIL only warns between MAX_IMAGE_PIXELS and twice that, and raises above: both
            # are refused here, before the pixels are decoded.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as picture:
                if picture.mode.startswith("I"):
                    picture = _sixteen_to_eight_bits(picture)
                return picture.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{file} is too large to be read as a picture (more than "
                        f"{Image.MAX_IMAGE_PIXELS:,} pixels: a decompression bomb?)") from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise DataError(f"{file} is not a readable picture ({reason})") from None


def _sixteen_to_eight_bits(picture: Image.Image) -> Image.Image:
    """A 16-bit grey picture (PIL modes I;16* and I, values 0..65535) as 8-bit grey (0..255):
    divided by 257, rounded, since 65535 / 257 = 255."""
    values = np.asarray(picture, dtype=np.int64)
    return Image.fromarray(np.clip((values + 128) // 257, 0, 255).astype(np.uint8), mode="L")


def load_image_folder(path: str | os.PathLike, size: int = 64, progress: bool = True
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Every picture under the folder ``path`` as ``(N, 3, size, size) uint8`` images (resized
    and centre-cropped, see the module's docstring), and ``(N,) int64`` class labels.

    Which files count is the module docstring's rule. A file that is not a readable picture,
    a decompression bomb, a run folder, or pictures beside class subfolders raise a one-line
    ``DataError`` naming the file or folder.
    """
    from minigan.progress import tqdm

    if not str(path).strip():
        raise DataError("the folder of pictures is an empty path (not the current folder)")
    root = Path(path)
    if root.is_file():   # one picture (or any file) where a folder of them was meant
        raise DataError(f"{root} is a file: give the folder that holds the pictures (or one "
                        f"subfolder per class), or an .npz file")
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
        square = resize_and_center_crop(read_picture(file), size)
        images[i] = np.asarray(square).transpose(2, 0, 1)
    return images, np.asarray(labels, dtype=np.int64)
