"""The hand-written kernels: pure functions, no classes holding state, no NumPy import.

Each op is a pair::

    y, cache = <op>_forward(x, ...)        # cache: a small NamedTuple of what backward needs
    grads = <op>_backward(dy, cache)       # dx (and dw, db for ops with weights)

and runs on NumPy or CuPy, whichever its inputs live on (``get_array_module``). The pairs are
re-exported here; helpers such as ``im2col`` stay in their modules (``minigan.ops.im2col``), so
that a module's name never means a function.

The layers of ``minigan.nn`` look the pairs up here, at call time (``ops.conv2d_forward(...)``),
so setting an attribute of this module swaps a kernel for every layer (the exercises use that
to run a learner's own functions). ``__all__`` lists exactly those swappable pairs.

``fast_kernels(False)`` (a context manager) or ``MINIGAN_KERNELS=plain`` runs the plain textbook
bodies of the kernels instead of their fast variants; see ``switch.py``.
"""

from minigan.ops.activations import (
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from minigan.ops.batchnorm import (
    batch_norm_backward,
    batch_norm_eval_forward,
    batch_norm_forward,
    batch_norm_train_forward,
    update_running_stats,
)
from minigan.ops.concat import concat_backward, concat_forward
from minigan.ops.conv2d import conv2d_backward, conv2d_forward
from minigan.ops.conv_transpose2d import conv_transpose2d_backward, conv_transpose2d_forward
from minigan.ops.dropout import dropout_backward, dropout_forward
from minigan.ops.feature_matching import feature_matching_backward, feature_matching_forward
from minigan.ops.linear import linear_backward, linear_forward
from minigan.ops.logsumexp import logsumexp_backward, logsumexp_forward
from minigan.ops.losses import (
    bce_with_logits_backward,
    bce_with_logits_forward,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)
from minigan.ops.pooling import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    global_avg_pool_backward,
    global_avg_pool_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)
from minigan.ops.resize import resize_bilinear_backward, resize_bilinear_forward

# The switch (not a kernel, so not in __all__, the list of swappable kernels).
from minigan.ops.switch import fast_kernels as fast_kernels
from minigan.ops.switch import fast_kernels_enabled as fast_kernels_enabled
from minigan.ops.switch import use_fast_kernels as use_fast_kernels

__all__ = [
    "bce_with_logits_backward", "bce_with_logits_forward", "batch_norm_backward",
    "batch_norm_eval_forward", "batch_norm_forward", "batch_norm_train_forward",
    "conv2d_backward",
    "conv2d_forward", "conv_transpose2d_backward", "conv_transpose2d_forward",
    "dropout_backward", "dropout_forward", "leaky_relu_backward", "leaky_relu_forward",
    "linear_backward", "linear_forward", "relu_backward", "relu_forward",
    "sigmoid_backward", "sigmoid_forward", "softmax_cross_entropy_backward",
    "softmax_cross_entropy_forward", "tanh_backward", "tanh_forward", "update_running_stats",
    # the semi-supervised GAN's kernels (examples/semi_supervised.py)
    "feature_matching_backward", "feature_matching_forward", "logsumexp_backward",
    "logsumexp_forward",
    # Inception-v3's kernels (pooling, concatenation, resizing)
    "avg_pool2d_backward", "avg_pool2d_forward", "concat_backward", "concat_forward",
    "global_avg_pool_backward", "global_avg_pool_forward", "max_pool2d_backward",
    "max_pool2d_forward", "resize_bilinear_backward", "resize_bilinear_forward",
]
