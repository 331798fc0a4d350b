"""minigan's answers to the two course tasks that have no function of that name elsewhere.

Every other exercise's solution is minigan's own function of the same name (``minigan.ops``,
``minigan.optim``, ``minigan.gan``, ``minigan.metrics``); these two are thin names for what
minigan already has: the data loader's pixel scaling, and the reference loops of
``minigan/ops/reference.py``.
"""

from __future__ import annotations

from typing import Any

from minigan.data.loader import scale_images
from minigan.ops.reference import conv2d_reference

Array = Any


def scale(x: Array, feature_range: tuple[float, float] = (-1, 1)) -> Array:
    """uint8 pixels 0..255 -> float32 in feature_range (0 -> low end, 255 -> high end).

    x: uint8, any shape -> same shape, float32. The loader's ``scale_images`` gives [-1, 1];
    a linear map takes [-1, 1] to any other range.
    """
    low, high = feature_range
    unit = scale_images(x)                     # in [-1, 1]
    return (unit + 1) / 2 * (high - low) + low


def conv2d_naive(x: Array, w: Array, b: Array | None = None, stride: int = 1,
                 padding: int = 0) -> Array:
    """2-D convolution by its definition (``conv2d_reference``): x (N, C, H, W), w (F, C, K, K),
    b (F,) or None -> y (N, F, H_out, W_out), H_out = (H + 2P - K) // S + 1."""
    return conv2d_reference(x, w, b, stride, padding)
