"""Mini-batches for training: shuffled per epoch, reproducible, scaled to [-1, 1].

Scaling. Datasets are kept as uint8 (0..255): four times smaller than float32. Each batch is
scaled on its own, as the course does, with

    x = pixels / 255 * 2 - 1        # 0 -> -1.0, 255 -> +1.0

because the generator ends in ``tanh``, whose outputs lie in [-1, 1]: real and fake images must
live on the same scale for the discriminator to compare them. ``unscale_images`` undoes it to
save generated samples as pictures.

Reproducible shuffling. Epoch ``e`` is shuffled with ``numpy.random.default_rng([seed, e])``, a
generator that depends on nothing but the seed and the epoch number. So any epoch can be
rebuilt exactly at any time, and a run resumed from a checkpoint taken after batch ``k`` of
epoch ``e`` calls ``loader.epoch(e, start_batch=k)`` and sees the very batches it would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from minigan.backend import get_array_module, to_device, to_numpy
from minigan.data.download import DataError


def scale_images(images: Any) -> Any:
    """uint8 pixels ``(..., H, W)`` in 0..255 -> float32 in [-1, 1], on the same device."""
    xp = get_array_module(images)
    return images.astype(xp.float32) / 255 * 2 - 1


def unscale_images(x: Any) -> np.ndarray:
    """Floats in [-1, 1] (e.g. generator output) -> uint8 0..255 NumPy array, same shape.

    Values outside [-1, 1] are clipped; the result is on the host, ready to save as an image.
    """
    x = to_numpy(x).astype(np.float32)
    return np.clip(np.rint((x + 1) / 2 * 255), 0, 255).astype(np.uint8)


class DataLoader:
    """Iterate over ``(x, y)`` mini-batches of a uint8 image dataset.

    ``images``: ``(N, C, H, W)`` uint8; ``labels``: ``(N,)`` integers, or None.
    Each batch gives ``x: (B, C, H, W)`` float32 in [-1, 1] and ``y: (B,)`` int64 (or None),
    both on the active backend. ``len(loader)`` is the number of batches in one epoch; with
    ``drop_last`` (the default) the last, smaller batch is dropped, so every batch has the
    same size, which keeps batch-norm statistics comparable from step to step. (As in PyTorch,
    fewer images than ``batch_size`` with ``drop_last`` gives ``len(loader) == 0``: callers
    should check that before training.)

    ``for x, y in loader.epoch(e, start_batch=k)`` gives the batches of epoch ``e`` from batch
    ``k`` on; the same ``(seed, e)`` always gives the same batches, which is what lets a resumed
    run continue exactly (the epoch is named, never implied by how often the loader was used).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None,
                 batch_size: int = 128, shuffle: bool = True, drop_last: bool = True,
                 seed: int = 0) -> None:
        images = to_numpy(images)
        if images.ndim != 4 or images.dtype != np.uint8:
            raise DataError(f"DataLoader needs uint8 images of shape (N, C, H, W), got "
                            f"{images.dtype} {images.shape}: pass the arrays a load_* gives")
        if labels is not None:
            labels = to_numpy(labels).astype(np.int64, copy=False)
            if labels.shape != (len(images),):
                raise DataError(f"DataLoader: labels have shape {labels.shape}, expected "
                                f"({len(images)},), one per image")
        if batch_size < 1:
            raise DataError(f"DataLoader: batch_size must be at least 1, got {batch_size}")
        if len(images) == 0:
            raise DataError("DataLoader: the dataset has no images")
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.seed = seed

    def __len__(self) -> int:
        n, b = len(self.images), self.batch_size
        return n // b if self.drop_last else -(-n // b)  # -(-n // b) rounds up

    def order(self, epoch: int) -> np.ndarray:
        """The order in which epoch ``epoch`` visits the images: ``(N,)`` indices."""
        if not self.shuffle:
            return np.arange(len(self.images))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.images))

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[Any, Any]]:
        """Yield the ``(x, y)`` batches of epoch ``epoch``, starting at batch ``start_batch``."""
        if not 0 <= start_batch <= len(self):
            raise DataError(f"start_batch must be in 0..{len(self)}, got {start_batch}")
        order = self.order(epoch)
        for b in range(start_batch, len(self)):
            index = order[b * self.batch_size:(b + 1) * self.batch_size]
            # move uint8 to the device (4x less to copy than float32), then scale there
            x = scale_images(to_device(self.images[index]))
            y = None if self.labels is None else to_device(self.labels[index])
            yield x, y

    def __repr__(self) -> str:
        return (f"DataLoader({len(self.images)} images {self.images.shape[1:]}, "
                f"batch_size={self.batch_size}, {len(self)} batches/epoch, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed})")
