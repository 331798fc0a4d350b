"""minigan: a deep-learning framework written from scratch to show how a DCGAN works.

Start reading at ``minigan/ops/conv2d.py`` (a kernel), ``minigan/nn/conv.py`` (the layer that
holds its parameters) and ``minigan/gan/step.py`` (one training step).
"""

from minigan.backend import (
    BackendError,
    array_module,
    backend_name,
    get_array_module,
    to_device,
    to_numpy,
    use_backend,
)

__all__ = [
    "BackendError",
    "array_module",
    "backend_name",
    "get_array_module",
    "to_device",
    "to_numpy",
    "use_backend",
]
__version__ = "0.1.0"
