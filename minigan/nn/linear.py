"""The fully connected layer."""

from __future__ import annotations

from typing import Any

import numpy

from minigan import ops
from minigan.nn import init
from minigan.nn.module import Module, Parameter


class Linear(Module):
    """y = x @ weight.T + bias, as ``torch.nn.Linear``.

    x: (N, in_features) -> y: (N, out_features); weight: (out_features, in_features).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 rng: numpy.random.Generator | None = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        shape = (out_features, in_features)
        self.weight = Parameter(init.pytorch_default(shape, shape, rng))
        self.bias = Parameter(init.pytorch_default((out_features,), shape, rng)) if bias else None

    def forward(self, x: Any) -> Any:
        self.check_input(x, ("N", self.in_features), self.weight.dtype)
        bias = self.bias.data if self.bias is not None else None
        y, self._cache = ops.linear_forward(x, self.weight.data, bias)
        return y

    def backward(self, dy: Any) -> Any:
        dx, dw, db = ops.linear_backward(dy, self._saved_cache(dy),
                                         self.needs_param_grads())
        self.weight.accumulate(dw)
        if self.bias is not None:
            self.bias.accumulate(db)
        return dx

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
