"""minigan: a deep-learning framework written from scratch to show how a DCGAN works.

Start reading at ``minigan/ops/conv2d.py`` (a kernel), ``minigan/nn/conv.py`` (the layer that
holds its parameters) and ``minigan/gan/step.py`` (one training step).
"""

from typing import Any

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


def __getattr__(name: str) -> Any:
    """``minigan.use_backend`` etc., imported from ``minigan.backend`` on first use.

    Lazily, so that ``import minigan.startup`` (the first line of every script, see there)
    does not load NumPy before the script's Ctrl-C handling is in place.
    """
    if name in __all__:
        from minigan import backend

        return getattr(backend, name)
    raise AttributeError(f"module 'minigan' has no attribute {name!r}")
