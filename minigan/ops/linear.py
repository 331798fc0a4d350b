"""The fully connected (affine) layer: y = x @ w.T + b.

The weight uses PyTorch's layout, ``(D_out, D_in)``: row ``j`` of ``w`` holds the input weights of
output unit ``j``. The backward pass is three matrix products' worth of bookkeeping:

    dx = dy @ w          (N, D_out) @ (D_out, D_in) -> (N, D_in)
    dw = dy.T @ x        (D_out, N) @ (N, D_in)     -> (D_out, D_in)
    db = sum_n dy[n]     (D_out,)
"""

from __future__ import annotations

from typing import Any, NamedTuple

from minigan.backend import get_array_module

Array = Any


class LinearCache(NamedTuple):
    """What the backward pass needs: the input and the weight (``b`` only matters as 'is there
    one?', since the gradient of the bias does not depend on its value)."""

    x: Array        # (N, D_in)
    w: Array        # (D_out, D_in)
    has_bias: bool


def linear_forward(x: Array, w: Array, b: Array | None = None) -> tuple[Array, LinearCache]:
    """Affine map of a batch of vectors.

    x: (N, D_in), w: (D_out, D_in), b: (D_out,) or None  ->  y: (N, D_out)
    y[n, j] = sum_i x[n, i] * w[j, i] + b[j]
    """
    xp = get_array_module(x)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"linear_forward: expected x (N, D_in) and w (D_out, D_in), got x "
                         f"{tuple(x.shape)} and w {tuple(w.shape)}")
    y = xp.matmul(x, w.T)
    if b is not None:
        y = y + b  # b broadcasts over the batch: the same bias for every row
    return y, LinearCache(x=x, w=w, has_bias=b is not None)


def linear_backward(
    dy: Array, cache: LinearCache, need_weight_grad: bool = True,
) -> tuple[Array, Array | None, Array | None]:
    """Gradients of the affine map.

    dy: (N, D_out)  ->  dx: (N, D_in), dw: (D_out, D_in), db: (D_out,)
    dx = dy @ w,  dw = dy.T @ x,  db = dy summed over the batch.
    db is None when the forward pass had no bias. dw and db are None when
    ``need_weight_grad`` is False (a frozen layer only passes the gradient on to its input).
    """
    xp = get_array_module(dy)
    dx = xp.matmul(dy, cache.w)
    if not need_weight_grad:
        return dx, None, None
    dw = xp.matmul(dy.T, cache.x)
    # Every row of the batch used the same bias, so the bias collects the gradient of every row.
    db = dy.sum(axis=0) if cache.has_bias else None
    return dx, dw, db
