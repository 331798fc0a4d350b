"""Weight initialisers. Each returns a new array on the active backend in the default dtype.

The layers' defaults follow PyTorch, so a minigan layer starts from the same distribution as the
PyTorch layer of the same shape:

* Conv2d, ConvTranspose2d, Linear: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)). (PyTorch
  writes this as ``kaiming_uniform_(a=sqrt(5))``, whose bound sqrt(6 / ((1 + 5) fan_in)) is the
  same number.)
* ``fan_in`` is ``weight.shape[1] * K * K``. For ConvTranspose2d, whose weight is
  (in, out, K, K), that is ``out * K * K``: a quirk of PyTorch that we keep for comparability.

The DCGAN paper instead draws every weight from N(0, 0.02) and batch norm's gamma from
N(1, 0.02); ``minigan.gan.dcgan`` applies that with ``normal``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from minigan.backend import default_dtype, global_rng, to_device


def fan_in(shape: tuple[int, ...]) -> int:
    """Inputs feeding one output: shape[1] times the kernel area (1 for Linear)."""
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive


def uniform(shape: tuple[int, ...], bound: float, rng: numpy.random.Generator | None = None,
            dtype: Any = None) -> Any:
    """U(-bound, bound) samples."""
    rng = rng or global_rng()
    values = rng.uniform(-bound, bound, size=shape)
    return to_device(values.astype(dtype or default_dtype()))


def normal(shape: tuple[int, ...], mean: float = 0.0, std: float = 1.0,
           rng: numpy.random.Generator | None = None, dtype: Any = None) -> Any:
    """N(mean, std**2) samples."""
    rng = rng or global_rng()
    values = rng.normal(mean, std, size=shape)
    return to_device(values.astype(dtype or default_dtype()))


def pytorch_default(shape: tuple[int, ...], weight_shape: tuple[int, ...],
                    rng: numpy.random.Generator | None = None) -> Any:
    """PyTorch's default for a weight or bias of a layer whose weight has ``weight_shape``."""
    return uniform(shape, 1.0 / math.sqrt(fan_in(weight_shape)), rng)


def zeros(shape: tuple[int, ...], dtype: Any = None) -> Any:
    return to_device(numpy.zeros(shape, dtype=dtype or default_dtype()))


def ones(shape: tuple[int, ...], dtype: Any = None) -> Any:
    return to_device(numpy.ones(shape, dtype=dtype or default_dtype()))
