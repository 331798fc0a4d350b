"""How ``Sequential`` runs a batch norm and the activation right after it as one pair of kernels.

DCGAN's hidden blocks are conv -> BatchNorm2d -> ReLU (generator) or LeakyReLU (discriminator).
Run layer by layer, batch norm writes its output, the activation reads it back and writes its
own, and in the backward pass the activation writes dy * slope for batch norm to read. With
the fast kernels on, ``Sequential`` runs such a pair through the two layers' pair methods
(``forward_and_activate`` and ``input_grad_through_slope`` of batch norm, ``keep_slope`` and
``saved_slope`` of the activation), which call ``minigan.ops.batchnorm_activation``: the same
numbers with one array operation (one kernel launch on a GPU, one pass over memory on the
CPU) fewer in each direction. Both layers keep the caches, running statistics and ``.grad``
they would have had, so either one's own ``backward`` still works after a paired forward, and
a pair's backward works after a layer-by-layer forward.

A pair is only run together when the layers are exactly those (a subclass, SyncBatchNorm2d
say, may do more in its forward), the batch norm is in training mode, its buffers have the
input's dtype, and the kernels in ``minigan.ops`` are minigan's own: a learner's kernels
swapped in by an exercise run as they are, one layer at a time.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from minigan import ops
from minigan.nn.activation import LeakyReLU, ReLU
from minigan.nn.batchnorm import BatchNorm1d, BatchNorm2d
from minigan.nn.module import Module
from minigan.ops import activations, batchnorm

# The kernels a paired layer would otherwise call: all must still be minigan's own.
REPLACED_KERNELS = (
    batchnorm.batch_norm_train_forward, batchnorm.batch_norm_forward,
    batchnorm.update_running_stats, batchnorm.batch_norm_backward,
    activations.relu_forward, activations.relu_backward,
    activations.leaky_relu_forward, activations.leaky_relu_backward,
)


def _own_kernels() -> bool:
    """True unless one of REPLACED_KERNELS was swapped in ``minigan.ops`` (a wrapper made with
    functools.wraps around minigan's own, a timer say, still counts as minigan's)."""
    return all(inspect.unwrap(getattr(ops, kernel.__name__)) is kernel
               for kernel in REPLACED_KERNELS)


def _is_pair(bn: Module, activation: Module) -> bool:
    return type(bn) in (BatchNorm1d, BatchNorm2d) and type(activation) in (ReLU, LeakyReLU)


def forward(layers: Sequence[Module], x: Any) -> Any:
    """``Sequential.forward`` with each (batch norm, activation) pair run as one."""
    i = 0
    while i < len(layers):
        layer, after = layers[i], layers[i + 1] if i + 1 < len(layers) else None
        if (after is not None and _is_pair(layer, after) and layer.training
                and getattr(x, "dtype", None) == layer.running_mean.dtype and _own_kernels()):
            x, slope = layer.forward_and_activate(x, after.negative_slope)
            after.keep_slope(slope)
            i += 2
        else:
            x = layer(x)
            i += 1
    return x


def backward(layers: Sequence[Module], dy: Any) -> Any:
    """The layers' backward passes, last first, with each (batch norm, activation) pair whose
    batch norm ran in training mode taken back as one, whatever ran their forward."""
    i = len(layers) - 1
    while i >= 0:
        before, layer = layers[i - 1] if i >= 1 else None, layers[i]
        if (before is not None and _is_pair(before, layer) and before.cache is not None
                and before.cache.training and layer.cache is not None and _own_kernels()):
            dy = before.input_grad_through_slope(dy, layer.saved_slope(dy))
            i -= 2
        else:
            dy = layer.backward(dy)
            i -= 1
    return dy
