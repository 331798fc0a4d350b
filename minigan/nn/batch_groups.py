"""Several batches through a network as one batch, each normalised by batch norm on its own.

``model(concatenate([a, b]))`` gives ``model(a)`` and ``model(b)`` one after the other (up to
rounding) when every layer treats each example on its own (convolutions, linear layers,
activations, reshapes) and every batch norm keeps its statistics per batch. The second is what
``statistics_per_group`` arranges, for the batch norm + activation pairs whose kernels can
(``minigan/ops/batchnorm_groups.py``); the first is what ``runs_as_one_batch`` checks before
anyone relies on it. ``minigan/gan/one_pass.py`` uses both for the training step on a GPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from minigan.nn.activation import LeakyReLU, ReLU, Sigmoid, Tanh
from minigan.nn.batchnorm import _BatchNorm
from minigan.nn.conv import Conv2d, ConvTranspose2d
from minigan.nn.linear import Linear
from minigan.nn.module import Module, Sequential
from minigan.nn.shape import Flatten, Reshape
from minigan.ops import fast_kernels_enabled

# Layers whose output for one example depends on that example alone, and on no random draw.
# Exact types: a subclass may have changed forward.
PER_EXAMPLE = (Conv2d, ConvTranspose2d, Linear, LeakyReLU, ReLU, Sigmoid, Tanh, Flatten, Reshape)


def runs_as_one_batch(model: Module, x: Any) -> bool:
    """True if ``model``, in training mode with the fast kernels on, can take several batches
    of inputs like ``x`` as one, each batch norm keeping statistics per batch: a Sequential
    (its own forward and backward) of PER_EXAMPLE layers and of batch norms that each run with
    the ReLU or LeakyReLU right after them (``_BatchNorm.runs_with``). Anything else (dropout,
    which would draw one mask for all the batches; a learner's kernels swapped in; a batch
    norm on its own) says False, and the batches must go through one at a time."""
    if not (fast_kernels_enabled() and isinstance(model, Sequential) and model.training
            and _own_passes(model)):
        return False
    layers = model.layers
    after_batch_norm = False
    for layer, following in zip(layers, [*layers[1:], None]):
        if isinstance(layer, _BatchNorm):
            if following is None or not layer.runs_with(following, x):
                return False
            after_batch_norm = True
        elif after_batch_norm:
            after_batch_norm = False      # the activation the batch norm runs with
        elif type(layer) not in PER_EXAMPLE:
            return False
    return True


@contextlib.contextmanager
def statistics_per_group(model: Module, groups: int) -> Iterator[None]:
    """Inside the block, every batch norm in ``model`` sees its input as ``groups`` batches of
    the same size, one after the other along the batch axis, and normalises each with its own
    statistics (and updates its running statistics once per batch, in order). The backward
    passes may run inside the block or after it: each cache remembers its groups."""
    if groups < 1:
        raise ValueError(f"statistics_per_group: groups must be at least 1, got {groups}")
    batch_norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    before = [bn.statistics_groups for bn in batch_norms]
    for bn in batch_norms:
        bn.statistics_groups = groups
    try:
        yield
    finally:
        for bn, groups_before in zip(batch_norms, before):
            bn.statistics_groups = groups_before


def _own_passes(model: Sequential) -> bool:
    """The model runs as Sequential does: a subclass has not changed how its layers are run."""
    kind = type(model)
    return all(getattr(kind, name) is getattr(Sequential, name)
               for name in ("forward", "backward", "backward_params", "_gradient_through"))
