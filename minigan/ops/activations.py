"""Element-wise activations: ReLU, leaky ReLU, tanh and sigmoid.

Each one acts on every entry independently, so its backward pass is the upstream gradient
times the local derivative, entry by entry: ``dx = dy * f'(x)``. The forward pass saves whatever
makes ``f'(x)`` cheapest to get back:

* ReLU and leaky ReLU save ``f'(x)`` itself, an array holding 1 or the slope;
* tanh and sigmoid save their output ``y``, because their derivatives are simple in terms of it:
  ``tanh' = 1 - y**2`` and ``sigmoid' = y * (1 - y)``.

All functions accept any shape and keep the input's dtype.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from minigan.backend import fuse, get_array_module
from minigan.ops.switch import fast_kernels_enabled

Array = Any


class ReluCache(NamedTuple):
    mask: Array  # d relu / dx: 1.0 where x > 0, 0.0 elsewhere (x's dtype and shape)


class LeakyReluCache(NamedTuple):
    slope: Array  # d leaky_relu / dx: 1.0 where x > 0, negative_slope elsewhere


class TanhCache(NamedTuple):
    y: Array  # tanh(x)


class SigmoidCache(NamedTuple):
    y: Array  # sigmoid(x)


# ---------------------------------------------------------------------------------------------
# ReLU and leaky ReLU. The local derivative is stored as a float array and *multiplied*, rather
# than chosen with xp.where: one multiplication is the cheapest element-wise pass there is, and
# forward and backward become the same one-line operation.
# ---------------------------------------------------------------------------------------------


def relu_forward(x: Array) -> tuple[Array, ReluCache]:
    """y = max(x, 0), element-wise.  x: any shape -> y: same shape."""
    if fast_kernels_enabled():  # one pass, no mask array kept: relu_forward_fast
        return relu_forward_fast(x)
    mask = (x > 0).astype(x.dtype)      # 1 where the unit is on, 0 where it is off
    return x * mask, ReluCache(mask=mask)


def relu_backward(dy: Array, cache: ReluCache) -> Array:
    """dx = dy where x > 0, 0 elsewhere (the kink at 0 gets derivative 0, as in PyTorch)."""
    if fast_kernels_enabled():  # the mask from the kept output, in the same pass
        return relu_backward_fast(dy, cache)
    return dy * cache.mask


# The fast variants: the forward pass keeps the output instead of a mask (y > 0 exactly where
# x > 0), so it is one pass (``maximum``, one GPU kernel) and one new array instead of three
# passes and two arrays; the backward pass tests y > 0 inside its one kernel. Inception-v3's
# scoring, which runs no backward pass, never makes a mask at all.

class ReluFastCache(NamedTuple):
    y: Array  # max(x, 0); the plain cache's mask is (y > 0) as a float array

    @property
    def mask(self) -> Array:
        """The plain cache's field, worked out when asked (by the plain backward, if the switch
        was turned off between a fast forward and its backward)."""
        return (self.y > 0).astype(self.y.dtype)


def relu_forward_fast(x: Array) -> tuple[Array, ReluFastCache]:
    """``relu_forward`` as one ``maximum``, keeping y (the same numbers: y = x where x > 0, else
    0; the plain x * mask gives -0.0 for negative x, which equals 0.0)."""
    xp = get_array_module(x)
    y = xp.maximum(x, x.dtype.type(0))
    return y, ReluFastCache(y=y)


def relu_backward_fast(dy: Array, cache: ReluCache | ReluFastCache) -> Array:
    """``relu_backward`` from either cache: dy * (y > 0) in one kernel from the fast one."""
    if isinstance(cache, ReluFastCache):
        return relu_gradient(dy, cache.y)
    return dy * cache.mask


@fuse
def relu_gradient(dy, y):
    """dy where y > 0, 0 elsewhere."""
    return dy * (y > 0).astype(dy.dtype)


def leaky_relu_forward(x: Array, negative_slope: float = 0.01) -> tuple[Array, LeakyReluCache]:
    """y = x where x > 0, negative_slope * x elsewhere.  x: any shape -> y: same shape.

    DCGAN's discriminator uses negative_slope = 0.2, so that negative inputs still pass a
    (smaller) gradient back instead of none at all.
    """
    # A Python float would be fine with NumPy's rules, but a float64 NumPy scalar (say, a slope
    # read from a config array) would promote float32 to float64: convert it to x's dtype first.
    if fast_kernels_enabled():  # the lines as one GPU kernel: leaky_relu_forward_fast
        return leaky_relu_forward_fast(x, negative_slope)
    xp = get_array_module(x)
    alpha = x.dtype.type(negative_slope)
    slope = xp.where(x > 0, x.dtype.type(1), alpha)   # the local derivative dy/dx
    return x * slope, LeakyReluCache(slope=slope)


def leaky_relu_forward_fast(x: Array, negative_slope: float = 0.01,
                            ) -> tuple[Array, LeakyReluCache]:
    """``leaky_relu_forward`` as one fused kernel (``leaky_relu_and_slope``)."""
    alpha = x.dtype.type(negative_slope)
    y, slope = leaky_relu_and_slope(x, alpha, 1 - alpha)
    return y, LeakyReluCache(slope=slope)


@fuse  # one GPU kernel for the three passes (see minigan/backend.py)
def leaky_relu_and_slope(x, alpha, one_minus_alpha):
    """slope = 1 where x > 0, alpha elsewhere; y = x * slope."""
    slope = (x > 0).astype(x.dtype)   # 1 where x > 0, 0 elsewhere
    slope *= one_minus_alpha          # in place (no new arrays): 1 - alpha where x > 0, else 0
    slope += alpha                    # 1 where x > 0, alpha elsewhere
    return x * slope, slope


def leaky_relu_backward(dy: Array, cache: LeakyReluCache) -> Array:
    """dx = dy * (1 where x > 0, negative_slope elsewhere)."""
    if fast_kernels_enabled():  # dx laid out like x: leaky_relu_backward_fast
        return leaky_relu_backward_fast(dy, cache)
    return dy * cache.slope


def leaky_relu_backward_fast(dy: Array, cache: LeakyReluCache) -> Array:
    """``leaky_relu_backward`` written into an array laid out like x (``empty_like`` keeps the
    slope's memory order), the same product. What it buys: after a Flatten's backward, dy is
    NCHW while x was channels-last, and NumPy (CuPy too) would give dx NCHW memory, which the
    batch norm before it must then copy back to rows (one launch and one pass per layer)."""
    xp = get_array_module(dy)
    return xp.multiply(dy, cache.slope, out=xp.empty_like(cache.slope))


# ---------------------------------------------------------------------------------------------
# tanh and sigmoid: the derivative is written in terms of the output.
# ---------------------------------------------------------------------------------------------


def tanh_forward(x: Array) -> tuple[Array, TanhCache]:
    """y = tanh(x), in (-1, 1).  x: any shape -> y: same shape."""
    xp = get_array_module(x)
    y = xp.tanh(x)
    return y, TanhCache(y=y)


def tanh_backward(dy: Array, cache: TanhCache) -> Array:
    """dx = dy * (1 - y**2), since d tanh(x)/dx = 1 - tanh(x)**2."""
    if fast_kernels_enabled():  # the same line as one GPU kernel instead of three
        return tanh_backward_fast(dy, cache)
    return dy * (1 - cache.y * cache.y)


def tanh_backward_fast(dy: Array, cache: TanhCache) -> Array:
    """``tanh_backward`` as one fused kernel (``tanh_gradient``)."""
    return tanh_gradient(dy, cache.y)


@fuse  # one GPU kernel for the three passes (see minigan/backend.py)
def tanh_gradient(dy, y):
    """dy * (1 - y * y), element by element."""
    return dy * (1 - y * y)


def sigmoid(x: Array) -> Array:
    """sigmoid(x) = 1 / (1 + exp(-x)), computed without overflow for any x.

    The textbook formula overflows in exp(-x) for x below about -88 (float32) or -709 (float64).
    Both branches below only ever take exp of a non-positive number, so exp(-|x|) is in (0, 1]:
        x >= 0:  1 / (1 + exp(-|x|))
        x <  0:  exp(-|x|) / (1 + exp(-|x|))     (the same value, multiplied through by exp(x))
    """
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_forward(x: Array) -> tuple[Array, SigmoidCache]:
    """y = 1 / (1 + exp(-x)), in (0, 1), stable for large |x|.  x: any shape -> y: same shape."""
    y = sigmoid(x)
    return y, SigmoidCache(y=y)


def sigmoid_backward(dy: Array, cache: SigmoidCache) -> Array:
    """dx = dy * y * (1 - y), since d sigmoid(x)/dx = sigmoid(x) * (1 - sigmoid(x))."""
    y = cache.y
    return dy * y * (1 - y)
