"""Dropout: during training, zero each value with probability p and scale the rest by 1/(1-p)."""

from __future__ import annotations

from typing import Any

import numpy

from minigan import ops
from minigan.backend import global_rng, make_rng
from minigan.nn.module import Module


class Dropout(Module):
    """Inverted dropout. Its masks come from its own seeded generator ``self.rng`` (seeded from the
    global one unless given), so a run is repeatable and a checkpoint can store the generator."""

    def __init__(self, p: float = 0.5, rng: numpy.random.Generator | None = None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.rng = rng if rng is not None else make_rng(int(global_rng().integers(2**63)))

    def forward(self, x: Any) -> Any:
        y, self._cache = ops.dropout_forward(x, self.p, self.rng, self.training)
        return y

    def backward(self, dy: Any) -> Any:
        return ops.dropout_backward(dy, self._saved_cache(dy))

    def extra_repr(self) -> str:
        return f"p={self.p}"
