"""One switch between the plain kernels and their fast variants.

Every kernel's body is its textbook version: a slice loop, a matrix product, the steps of a
derivation. Where a faster way to compute the same numbers exists, it is a separately named
function, reached by one guarded statement at the top of the plain kernel (two lines, as the
style checker wants)::

    def im2col(x, kernel_size, stride=1, padding=0):
        if fast_kernels_enabled():  # same numbers, one copy through a window view
            return im2col_fast(x, kernel_size, stride, padding)
        ...the plain slice loop...

``FAST_VARIANTS`` below lists every such guard: which plain kernel hands over to which fast
function. ``tests/ops/test_switch.py`` finds the guards in the source and compares them with this
list, so a new fast variant cannot be added without being named here. What a fast variant does
beyond its kernel (``im2col_fast`` reuses a zero-bordered buffer per shape and thread, the fast
BCE forward keeps exp(-|x|) in its cache, the fast batch-norm kernels use ``fuse`` and cached
vectors of ones) happens inside it, so with the switch off none of it runs. Three guards sit outside
``minigan/ops``: ``Sequential`` lets a layer run the layer right after it in its own kernels
(``forward_pairing`` in ``minigan/nn/module.py``): a batch norm and the activation after it,
through ``minigan/ops/batchnorm_activation.py``; on a GPU the training step's first line
(``minigan/gan/step.py``) hands the same step to ``minigan/gan/one_pass.py``, which runs each
network once per update (``runs_as_one_batch`` asks for this switch on); and on a two-core CPU the
trainer's ``train_step`` hands the step to ``minigan/gan/split_step.py``, which runs it on both
halves of the batch at once (``SplitStep.pays`` asks for this switch on too).

This is how Chainer's convolution is written. Training runs fast (the default); to read or step
through the plain code, turn the switch off::

    from minigan import ops
    with ops.fast_kernels(False):       # plain kernels inside the block, the old state after it
        loss = trainer.train_step(real)

or for a whole process, ``MINIGAN_KERNELS=plain python examples/train_svhn.py ...`` (the training
scripts also take ``--plain-kernels``). Both paths give the same numbers up to rounding
(``tests/gan/test_fast_vs_plain.py`` holds them to 1e-10 over three float64 DCGAN steps).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

ENV_VARIABLE = "MINIGAN_KERNELS"

# (module in minigan.ops, plain kernel, its fast variant): every guard in minigan/ops.
FAST_VARIANTS: tuple[tuple[str, str, str], ...] = (
    ("im2col", "im2col", "im2col_fast"),
    ("im2col", "col2im", "col2im_fast"),
    ("conv2d", "conv2d_forward", "conv2d_forward_fast"),
    ("conv2d", "conv2d_input_grad", "conv2d_input_grad_fast"),
    ("conv_transpose2d", "conv_transpose2d_forward", "conv_transpose2d_forward_fast"),
    ("batchnorm", "batch_norm_forward", "batch_norm_forward_fast"),
    ("batchnorm", "batch_norm_eval_forward", "batch_norm_eval_forward_fast"),
    ("batchnorm", "batch_norm_backward", "batch_norm_backward_fast"),
    ("batchnorm", "update_running_stats", "update_running_stats_fast"),
    ("batchnorm", "batch_norm_train_forward", "batch_norm_forward_with_running_stats_fast"),
    ("pooling", "max_pool2d_forward", "max_pool2d_forward_fast"),
    ("pooling", "max_pool2d_backward", "max_pool2d_backward_fast"),
    ("pooling", "avg_pool2d_forward", "avg_pool2d_forward_fast"),
    ("activations", "relu_backward", "relu_backward_fast"),
    ("losses", "bce_with_logits_forward", "bce_with_logits_forward_fast"),
    ("losses", "bce_with_logits_backward", "bce_with_logits_backward_fast"),
    ("activations", "relu_forward", "relu_forward_fast"),
    ("activations", "leaky_relu_forward", "leaky_relu_forward_fast"),
    ("activations", "leaky_relu_backward", "leaky_relu_backward_fast"),
    ("activations", "tanh_backward", "tanh_backward_fast"),
)
CHOICES = ("plain", "fast")


def _state_from_environment() -> bool:
    """Fast unless ``MINIGAN_KERNELS=plain``; any other value is a one-line error."""
    value = os.environ.get(ENV_VARIABLE, "").strip().lower() or "fast"
    if value not in CHOICES:
        raise ValueError(f"{ENV_VARIABLE} must be 'plain' or 'fast', got "
                         f"{os.environ[ENV_VARIABLE]!r}")
    return value == "fast"


# None until first asked: the environment is read then (not at import, where a bad value would
# stop every ``import minigan`` with a traceback instead of a script's one-line error).
_enabled: bool | None = None


def fast_kernels_enabled() -> bool:
    """True when the kernels take their fast variants (the default), False for the plain ones."""
    global _enabled
    if _enabled is None:
        _enabled = _state_from_environment()
    return _enabled


def use_fast_kernels(enabled: bool) -> None:
    """Set the switch for the rest of the process (as ``--plain-kernels`` does)."""
    global _enabled
    _enabled = bool(enabled)


@contextmanager
def fast_kernels(enabled: bool = True) -> Iterator[None]:
    """Use the fast kernel variants (``enabled=True``) or the plain ones inside a ``with`` block.

    The previous state comes back when the block ends, even after an exception, so blocks nest.
    """
    global _enabled
    previous = _enabled
    _enabled = bool(enabled)
    try:
        yield
    finally:
        _enabled = previous
