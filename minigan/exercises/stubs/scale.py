"""Exercise: scale pixels for a generator that ends in tanh.

The generator's last layer is tanh, so its images have values in [-1, 1]. The real images the
discriminator compares them with must live on the same scale, or D could tell real from fake
by the range alone. Datasets keep pixels as uint8, 0..255 (four times smaller than float32),
and each batch is scaled just before it goes in.

The grader feeds uint8 arrays of several shapes, always holding 0 and 255, and checks the
values (0 -> low end, 255 -> high end, linear in between), the dtype (float32) and that the
input is left as it was.
"""

from __future__ import annotations

from typing import Any

Array = Any


def scale(x: Array, feature_range: tuple[float, float] = (-1, 1)) -> Array:
    """uint8 pixels 0..255 -> float32 in feature_range (0 -> low end, 255 -> high end).

    x: uint8, any shape -> same shape, float32. The loader's ``scale_images`` gives [-1, 1];
    a linear map takes [-1, 1] to any other range.
    """
    # Hint: a linear map sends 0 to the low end and 255 to the high end; what does it do to a
    # pixel halfway? Which dtype must the arithmetic happen in?
    raise NotImplementedError("scale: write me")
