"""Exercise: leaky ReLU and tanh, forward and backward.

Each acts on every entry on its own, so its backward pass is the upstream gradient times the
local derivative, entry by entry: ``dx = dy * f'(x)``. The forward pass returns ``(y, cache)``,
where the cache holds whatever makes ``f'(x)`` cheap to get back.

All functions accept any shape and keep the input's dtype (float32 in, float32 out).
The grader checks the values and, with finite differences in float64, the gradients.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from minigan.backend import get_array_module

Array = Any


class LeakyReluCache(NamedTuple):
    slope: Array  # d leaky_relu / dx: 1.0 where x > 0, negative_slope elsewhere


class TanhCache(NamedTuple):
    y: Array  # tanh(x)


def leaky_relu_forward(x: Array, negative_slope: float = 0.01) -> tuple[Array, LeakyReluCache]:
    """y = x where x > 0, negative_slope * x elsewhere.  x: any shape -> y: same shape.

    DCGAN's discriminator uses negative_slope = 0.2, so that negative inputs still pass a
    (smaller) gradient back instead of none at all.
    """
    xp = get_array_module(x)  # noqa: F841  (numpy or cupy: use xp.where, xp.tanh, ...)
    # Hint: the local derivative takes one value where x > 0 and another elsewhere; an array
    # of it, shaped like x, gives y and is all the backward pass needs (LeakyReluCache).
    raise NotImplementedError("leaky_relu_forward: write me")


def leaky_relu_backward(dy: Array, cache: LeakyReluCache) -> Array:
    """dx = dy * (1 where x > 0, negative_slope elsewhere).  dy: shaped like x -> dx: same."""
    # Hint: the chain rule, entry by entry, with what the forward pass saved.
    raise NotImplementedError("leaky_relu_backward: write me")


def tanh_forward(x: Array) -> tuple[Array, TanhCache]:
    """y = tanh(x), in (-1, 1).  x: any shape -> y: same shape."""
    # Hint: NumPy and CuPy have tanh; what does the backward pass need from here?
    raise NotImplementedError("tanh_forward: write me")


def tanh_backward(dy: Array, cache: TanhCache) -> Array:
    """dx = dy * (1 - y**2), since d tanh(x)/dx = 1 - tanh(x)**2."""
    raise NotImplementedError("tanh_backward: write me")
