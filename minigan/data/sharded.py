"""The loader of one process in data-parallel training: its share of every batch.

As PyTorch's ``DistributedSampler``, it is told how many processes there are (``size``) and
which one it serves (``rank``); nothing here talks to other processes. Every process shuffles
epoch e with the same seeded generator as ``DataLoader`` does, so the step's N*B images are
exactly those of a one-process ``DataLoader(batch_size=N*B)``, and process r keeps slice r of
them (B images). See ``minigan/distributed.py`` for the rest of data-parallel training.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy

from minigan.backend import to_device
from minigan.data.download import DataError
from minigan.data.loader import DataLoader, scale_images


class ShardedLoader(DataLoader):
    """The DataLoader of process ``rank`` of ``size``: together they cover each epoch once.

    ``batch_size`` is the whole step's batch, all processes together (N*B); it must divide by
    N = ``size``. ``len(loader)`` is the number of steps per epoch, the same on every process;
    the last images that do not fill a whole step are dropped, as with ``drop_last``.
    """

    def __init__(self, images: numpy.ndarray, labels: numpy.ndarray | None = None,
                 batch_size: int = 128, rank: int = 0, size: int = 1, shuffle: bool = True,
                 seed: int = 0) -> None:
        super().__init__(images, labels, batch_size=batch_size, shuffle=shuffle,
                         drop_last=True, seed=seed)
        if not 0 <= rank < size:
            raise DataError(f"rank must be in 0..{size - 1}, got {rank}")
        if batch_size % size:
            raise DataError(f"--batch-size {batch_size} must be a multiple of the number of "
                             f"processes, {size}: each takes an equal share of every batch")
        self.rank, self.size = rank, size

    def indices(self, epoch: int, batch: int, order: numpy.ndarray | None = None) -> numpy.ndarray:
        """The dataset indices of this process's share of step ``batch`` of epoch ``epoch``
        (``order``: the epoch's ``self.order(epoch)``, if already made)."""
        order = self.order(epoch) if order is None else order
        whole = order[batch * self.batch_size:(batch + 1) * self.batch_size]  # every process's
        share = self.batch_size // self.size
        return whole[self.rank * share:(self.rank + 1) * share]

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[Any, Any]]:
        """Yield this process's ``(x, y)`` share of each batch of epoch ``epoch`` from
        ``start_batch`` on: x (B, C, H, W) in [-1, 1], y (B,) or None, B = batch_size / N."""
        if not 0 <= start_batch <= len(self):
            raise DataError(f"start_batch must be in 0..{len(self)}, got {start_batch}")
        order = self.order(epoch)                   # the same shuffle on every process
        for b in range(start_batch, len(self)):
            index = self.indices(epoch, b, order)
            x = scale_images(to_device(self.images[index]))
            y = None if self.labels is None else to_device(self.labels[index])
            yield x, y
