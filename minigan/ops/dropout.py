"""Inverted dropout: zero each value with probability p during training, scale the rest by 1/(1-p).

Scaling the survivors at training time ("inverted" dropout) keeps the expected value of every
entry unchanged, E[y] = (1 - p) * x / (1 - p) = x, so evaluation needs no correction at all: the
layer is simply the identity there.

The mask is drawn on the host by a ``numpy.random.Generator`` (``minigan.backend.uniform``), so
one seed gives the same mask on NumPy and on CuPy.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from minigan.backend import get_array_module, to_numpy, uniform

Array = Any


class DropoutCache(NamedTuple):
    mask: Array | None  # 0 for dropped entries, 1/(1-p) for kept ones; None when y = x


def dropout_forward(
    x: Array, p: float, rng: Any, training: bool = True,
) -> tuple[Array, DropoutCache]:
    """Inverted dropout.

    x: any shape -> y: same shape.  p: probability of dropping an entry, 0 <= p < 1.
    rng: a numpy.random.Generator that draws the mask.
    y = x * mask, mask = 1/(1-p) with probability 1-p and 0 with probability p.
    With training=False, or p = 0, y is x itself and no random numbers are drawn.
    """
    xp = get_array_module(x)
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x, DropoutCache(mask=None)
    u = uniform(rng, x.shape, dtype=x.dtype)  # on the active backend
    if get_array_module(u) is not xp:  # x lives on the other backend: bring the draw over to it
        u = xp.asarray(to_numpy(u))
    # Compare in x's dtype on both backends, so that NumPy and CuPy make the same decisions.
    keep = (u >= x.dtype.type(p)).astype(x.dtype)  # P(u >= p) = 1 - p for u uniform in [0, 1)
    mask = keep * x.dtype.type(1 / (1 - p))
    return x * mask, DropoutCache(mask=mask)


def dropout_backward(dy: Array, cache: DropoutCache) -> Array:
    """dx = dy * mask: the gradient flows only through the kept entries, with the same scale."""
    if cache.mask is None:
        return dy
    return dy * cache.mask
