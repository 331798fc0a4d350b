"""Layers that only change an array's shape: Flatten and Reshape. Backward undoes the reshape."""

from __future__ import annotations

import math
from typing import Any

from minigan.nn.module import Module, ShapeError


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...)."""

    def forward(self, x: Any) -> Any:
        self._cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: Any) -> Any:
        return dy.reshape(self._saved_cache(dy))


class Reshape(Module):
    """(N, ...) -> (N, *shape), e.g. the generator's (N, 512) -> (N, 128, 2, 2)."""

    def __init__(self, *shape: int):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: Any) -> Any:
        per_example = math.prod(self.shape)
        if x.ndim < 2 or math.prod(x.shape[1:]) != per_example:
            raise ShapeError(f"{self._describe()}: expected input of shape (N, {per_example}) "
                             f"(or any (N, ...) with {per_example} values per example), "
                             f"got {tuple(x.shape)}")
        self._cache = x.shape
        return x.reshape(x.shape[0], *self.shape)

    def backward(self, dy: Any) -> Any:
        return dy.reshape(self._saved_cache(dy))

    def extra_repr(self) -> str:
        return ", ".join(str(d) for d in self.shape)
