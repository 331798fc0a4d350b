"""Losses on raw scores (logits): binary cross-entropy and softmax cross-entropy.

Both take logits rather than probabilities because the combined formula can be evaluated
without ever forming log(0) or exp(large): the sigmoid or softmax and the log are folded into
one expression that is exact and finite for logits of any size.

Each loss is a 0-d array in the logits' dtype, averaged as PyTorch does ('mean' reduction).
Its backward pass takes ``dloss``, the gradient of the final objective with respect to this
scalar loss (1.0 when the loss *is* the objective), and returns d objective / d logits.
"""

from __future__ import annotations

from numbers import Number
from typing import Any, NamedTuple

from minigan.backend import fuse, get_array_module
from minigan.ops.activations import sigmoid
from minigan.ops.switch import fast_kernels_enabled

Array = Any


class BCEWithLogitsCache(NamedTuple):
    logits: Array   # any shape
    targets: Any    # same shape, values in [0, 1]; or one number (a scalar of the logits' dtype)


class BCEWithLogitsFastCache(NamedTuple):
    """The fast forward's cache: the plain one, plus what its backward would compute again."""

    logits: Array
    targets: Any
    exp_neg_abs: Array | None   # exp(-|logits|)


class SoftmaxCrossEntropyCache(NamedTuple):
    probs: Array    # (N, K) softmax of the logits
    labels: Array   # (N,) integer class of each row


def bce_with_logits_forward(logits: Array, targets: Any) -> tuple[Array, BCEWithLogitsCache]:
    """Binary cross-entropy of sigmoid(logits) against targets, mean over all elements.

    logits: any shape; targets: same shape, in [0, 1], or one number for every element
    ->  loss: 0-d array
    loss = mean(-t * log(s) - (1 - t) * log(1 - s)),  s = sigmoid(x)
    """
    if fast_kernels_enabled():  # the same lines in fewer array operations: see the _fast variant
        return bce_with_logits_forward_fast(logits, targets)
    xp = get_array_module(logits)
    x, t = logits, _targets_like(logits, targets)
    # Using log(s) = -log(1 + exp(-x)) and log(1 - s) = -x - log(1 + exp(-x)), each element is
    #     x - x*t + log(1 + exp(-x)),
    # which overflows for x << 0. Adding and removing max(x, 0) gives the same value as
    #     max(x, 0) - x*t + log(1 + exp(-|x|)),
    # where exp only ever sees a non-positive number, and log1p keeps precision when the
    # exponential is tiny. Logit 1000 with target 0 costs 1000 + log1p(exp(-1000)) = 1000.
    per_element = xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-xp.abs(x)))
    loss = xp.asarray(per_element.mean())  # asarray: NumPy's mean returns a scalar, not an array
    return loss, BCEWithLogitsCache(logits=x, targets=t)


def bce_with_logits_backward(dloss: Any, cache: BCEWithLogitsCache) -> Array:
    """Gradient of the mean binary cross-entropy.

    dloss: a number or 0-d array  ->  dlogits: shaped like the logits
    dlogits = dloss * (sigmoid(x) - t) / n,  n = number of elements
    """
    if fast_kernels_enabled():
        return bce_with_logits_backward_fast(dloss, cache)
    xp = get_array_module(cache.logits)
    x, t = cache.logits, cache.targets
    # dloss is often the Python float 1.0, sometimes a float64 array: either way, use x's dtype.
    scale = xp.asarray(dloss, dtype=x.dtype) / x.size
    return (sigmoid(x) - t) * scale


# ---------------------------------------------------------------- the fast variants
# The same formulas in fewer array operations (each one a kernel launch on a GPU, where these
# (N, 1) arrays are far too small for anything but the launches to matter): the element-wise
# lines as one ``fuse`` function each (see minigan/backend.py). A fused body may use operators
# only, so exp and log1p are taken outside it and passed in.

def bce_with_logits_forward_fast(
    logits: Array, targets: Any,
) -> tuple[Array, BCEWithLogitsFastCache]:
    """``bce_with_logits_forward`` in five array operations instead of nine; it keeps exp(-|x|)
    in the cache, so that the backward pass need not compute it again."""
    xp = get_array_module(logits)
    x, t = logits, _targets_like(logits, targets)
    exp_neg_abs = xp.exp(negative_abs(x))                  # exp(-|x|), in (0, 1]
    per_element = bce_terms(x, t, xp.log1p(exp_neg_abs))
    loss = xp.asarray(per_element.mean())
    return loss, BCEWithLogitsFastCache(logits=x, targets=t, exp_neg_abs=exp_neg_abs)


def bce_with_logits_backward_fast(
    dloss: Any, cache: BCEWithLogitsCache | BCEWithLogitsFastCache,
) -> Array:
    """``bce_with_logits_backward`` in one array operation instead of thirteen (three when the
    cache comes from the plain forward, which does not keep exp(-|x|))."""
    xp = get_array_module(cache.logits)
    x, t = cache.logits, cache.targets
    exp_neg_abs = getattr(cache, "exp_neg_abs", None)   # only the fast forward keeps it
    if isinstance(dloss, Number):   # worked out on the host: no array operation
        scale = x.dtype.type(dloss / x.size)
    else:
        scale = xp.asarray(dloss, dtype=x.dtype) / x.size
    if exp_neg_abs is None:
        exp_neg_abs = xp.exp(negative_abs(x))
    return bce_gradient(x, t, exp_neg_abs, scale)


@fuse
def negative_abs(x):
    """-|x|: x where x <= 0, -x where x > 0 (a multiplication by -1 or 1, so exact)."""
    return x * (1 - 2 * (x > 0).astype(x.dtype))


@fuse
def bce_terms(x, t, log1p_exp_neg_abs):
    """max(x, 0) - x * t + log(1 + exp(-|x|)), given the last term."""
    positive_part = x * (x > 0).astype(x.dtype)            # max(x, 0)
    return positive_part - x * t + log1p_exp_neg_abs


@fuse
def bce_gradient(x, t, exp_neg_abs, scale):
    """(sigmoid(x) - t) * scale, with sigmoid(x) from e = exp(-|x|) as
    ``minigan.ops.activations.sigmoid`` computes it: 1 / (1 + e) where x >= 0, e / (1 + e)
    where x < 0."""
    non_negative = (x >= 0).astype(x.dtype)                # 1 where x >= 0, 0 elsewhere
    probability = (non_negative + (1 - non_negative) * exp_neg_abs) / (1 + exp_neg_abs)
    return (probability - t) * scale


def _targets_like(logits: Array, targets: Any) -> Any:
    """Targets in the logits' dtype: an array of the logits' shape, or one number."""
    if isinstance(targets, Number):           # a number such as 0.9: no array is made
        return logits.dtype.type(targets)
    if targets.shape != logits.shape:
        raise ValueError(f"bce_with_logits: targets of shape {tuple(targets.shape)} do not match "
                         f"logits of shape {tuple(logits.shape)}")
    # Targets of another dtype (float64 labels, say) must not promote float32 logits.
    return targets.astype(logits.dtype, copy=False)


def softmax_cross_entropy_forward(
    logits: Array, labels: Array,
) -> tuple[Array, SoftmaxCrossEntropyCache]:
    """Softmax cross-entropy (negative log-likelihood of the true class), mean over the batch.

    logits: (N, K); labels: (N,) integers in [0, K)  ->  loss: 0-d array
    loss = -(1/N) sum_n log softmax(logits[n])[labels[n]]
    """
    xp = get_array_module(logits)
    n, k = logits.shape
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise ValueError(f"softmax_cross_entropy: expected ({n},) integer labels, got "
                         f"{labels.dtype} labels of shape {tuple(labels.shape)}")
    if n > 0 and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise ValueError(f"softmax_cross_entropy: labels must lie in [0, {k})")
    # Softmax does not change when a constant is subtracted from a row. Subtracting the row's
    # maximum makes every exponent <= 0 (no overflow) and the largest term exactly 1 (so the sum
    # is >= 1 and its log is finite).
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    loss = -xp.asarray(log_probs[xp.arange(n), labels].mean())
    return loss, SoftmaxCrossEntropyCache(probs=xp.exp(log_probs), labels=labels)


def softmax_cross_entropy_backward(dloss: Any, cache: SoftmaxCrossEntropyCache) -> Array:
    """Gradient of the mean softmax cross-entropy.

    dloss: a number or 0-d array  ->  dlogits: (N, K)
    dlogits = dloss * (softmax(logits) - one_hot(labels)) / N
    """
    xp = get_array_module(cache.probs)
    probs, labels = cache.probs, cache.labels
    n, k = probs.shape
    one_hot = (labels[:, None] == xp.arange(k)).astype(probs.dtype)  # (N, K): 1 at the true class
    scale = xp.asarray(dloss, dtype=probs.dtype) / n
    return (probs - one_hot) * scale
