"""Channel concatenation: several feature maps side by side, as one deeper feature map.

An Inception block runs a few branches on the same input (1x1, 3x3, 5x5 convolutions, a pooling)
and stacks their outputs along the channel axis: (N, C1, H, W), (N, C2, H, W), ...
-> (N, C1 + C2 + ..., H, W). Nothing is computed, only placed, so the backward pass is the cut
back into pieces: each branch gets the slice of dy that its channels occupy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from minigan.backend import get_array_module

Array = Any


class ConcatCache(NamedTuple):
    sizes: tuple[int, ...]   # how many channels (entries along ``axis``) each input had
    axis: int


def concat_forward(xs: Sequence[Array], axis: int = 1) -> tuple[Array, ConcatCache]:
    """y = the inputs joined along ``axis`` (channels, by default).

    xs: a list of (N, C_k, H, W) -> y: (N, sum_k C_k, H, W); every other axis must agree.
    """
    if len(xs) == 0:
        raise ValueError("concat needs at least one array")
    xp = get_array_module(xs[0])
    shapes = [tuple(x.shape) for x in xs]
    others = {s[:axis] + s[axis + 1:] for s in shapes}
    if len(others) != 1:
        raise ValueError(f"concat along axis {axis} needs every other axis to agree, got "
                         f"shapes {shapes}")
    return xp.concatenate(xs, axis=axis), ConcatCache(tuple(s[axis] for s in shapes), axis)


def concat_backward(dy: Array, cache: ConcatCache) -> list[Array]:
    """[dx_1, dx_2, ...]: dy cut back into the pieces the inputs occupied along ``axis``.

    dy: (N, sum_k C_k, H, W) -> dx_k: (N, C_k, H, W). Each piece is a view of dy (no copy).
    """
    pieces, start = [], 0
    index: list[Any] = [slice(None)] * dy.ndim
    for size in cache.sizes:
        index[cache.axis] = slice(start, start + size)
        pieces.append(dy[tuple(index)])
        start += size
    return pieces
