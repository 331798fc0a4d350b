"""Conv2d and ConvTranspose2d layers: Parameters around the kernels of ``minigan.ops``."""

from __future__ import annotations

from typing import Any

import numpy

from minigan import ops
from minigan.nn import init
from minigan.nn.module import Module, Parameter, ShapeError
from minigan.ops.im2col import IntOrPair, pair

# (KH, KW, C, F) in memory: the rows of ``minigan.ops.conv2d.weight_matrix``, (KH*KW*C, F). A
# weight stored so (``Parameter.memory_order``) is its own weight matrix, seen through a view.
WEIGHT_MATRIX_ORDER = (2, 3, 1, 0)


class _ConvLayer(Module):
    """What Conv2d and ConvTranspose2d share: adding their kernel's weight and bias gradients.

    Each defines the two backward entry points: ``backward`` (input gradient too) and
    ``backward_params`` (the input is data: the kernel skips dx). Both skip the weight gradients
    when the parameters are frozen: the rule is in ``minigan/nn/module.py``'s docstring."""

    weight: Parameter
    bias: Parameter | None

    def _add_param_grads(self, dw: Any, db: Any) -> None:
        self.weight.accumulate(dw)
        if self.bias is not None:
            self.bias.accumulate(db)


def _check_sizes(layer: str, **sizes: Any) -> None:
    """Refuse at construction what no input could fit: a kernel size or stride below 1, a
    negative padding (each an int or an (h, w) pair), or no channels."""
    for name, value in sizes.items():
        least = 0 if name == "padding" else 1
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if not isinstance(v, (int, numpy.integer)) or v < least:
                rule = "0 or more" if least == 0 else "at least 1"
                raise ValueError(f"{layer}: {name} must be {rule}, got {value!r}")


class Conv2d(_ConvLayer):
    """2-D convolution, as ``torch.nn.Conv2d``.

    x: (N, in_channels, H, W) -> y: (N, out_channels, H_out, W_out),
    H_out = (H + 2 * padding_h - kernel_h) // stride_h + 1, W_out likewise.
    ``kernel_size``, ``stride`` and ``padding`` are each an int (the same along H and W) or an
    (h, w) pair, e.g. ``kernel_size=(1, 7), padding=(0, 3)`` for Inception-v3's 1 x 7 layers.
    weight: (out_channels, in_channels, KH, KW); bias: (out_channels,) unless ``bias=False``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair,
                 stride: IntOrPair = 1, padding: IntOrPair = 0, bias: bool = True,
                 rng: numpy.random.Generator | None = None):
        _check_sizes("Conv2d", in_channels=in_channels, out_channels=out_channels,
                     kernel_size=kernel_size, stride=stride, padding=padding)
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        # Kept as given (an int stays an int, so print(layer) reads as it was written).
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        shape = (out_channels, in_channels, *pair(kernel_size))
        self.weight = Parameter(init.pytorch_default(shape, shape, rng))
        self.weight.memory_order = WEIGHT_MATRIX_ORDER   # in a flat buffer: no layout copies
        self.bias = Parameter(init.pytorch_default((out_channels,), shape, rng)) if bias else None

    def forward(self, x: Any) -> Any:
        self.check_input(x, ("N", self.in_channels, "H", "W"), self.weight.dtype)
        (KH, KW), (PH, PW) = pair(self.kernel_size), pair(self.padding)
        if x.shape[2] + 2 * PH < KH or x.shape[3] + 2 * PW < KW:
            raise ShapeError(f"{self._describe()}: input of size {tuple(x.shape[2:])} is smaller "
                             f"than the kernel ({self.kernel_size}) even after padding")
        bias = self.bias.data if self.bias is not None else None
        y, self._cache = ops.conv2d_forward(x, self.weight.data, bias, self.stride, self.padding)
        return y

    def backward(self, dy: Any) -> Any:
        dx, dw, db = ops.conv2d_backward(dy, self._saved_cache(dy), self.needs_param_grads())
        self._add_param_grads(dw, db)
        return dx

    def backward_params(self, dy: Any) -> None:
        _, dw, db = ops.conv2d_backward(dy, self._saved_cache(dy), self.needs_param_grads(),
                                        need_input_grad=False)
        self._add_param_grads(dw, db)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


class ConvTranspose2d(_ConvLayer):
    """2-D transposed convolution, as ``torch.nn.ConvTranspose2d``: the adjoint of Conv2d.

    x: (N, in_channels, H, W) -> y: (N, out_channels, H_out, W_out),
    H_out = (H - 1) * stride_h - 2 * padding_h + kernel_h + output_padding_h, W_out likewise.
    ``kernel_size``, ``stride``, ``padding`` and ``output_padding`` are each an int or an (h, w)
    pair. weight: (in_channels, out_channels, KH, KW) (PyTorch's layout); bias: (out_channels,).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair,
                 stride: IntOrPair = 1, padding: IntOrPair = 0, output_padding: IntOrPair = 0,
                 bias: bool = True, rng: numpy.random.Generator | None = None):
        _check_sizes("ConvTranspose2d", in_channels=in_channels, out_channels=out_channels,
                     kernel_size=kernel_size, stride=stride, padding=padding)
        super().__init__()
        if not all(0 <= op < max(s, 1) for op, s in zip(pair(output_padding), pair(stride))):
            raise ValueError(f"output_padding must be smaller than stride, got {output_padding}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.padding, self.output_padding = padding, output_padding
        shape = (in_channels, out_channels, *pair(kernel_size))
        self.weight = Parameter(init.pytorch_default(shape, shape, rng))
        self.weight.memory_order = WEIGHT_MATRIX_ORDER   # in a flat buffer: no layout copies
        self.bias = Parameter(init.pytorch_default((out_channels,), shape, rng)) if bias else None

    def forward(self, x: Any) -> Any:
        self.check_input(x, ("N", self.in_channels, "H", "W"), self.weight.dtype)
        bias = self.bias.data if self.bias is not None else None
        y, self._cache = ops.conv_transpose2d_forward(x, self.weight.data, bias, self.stride,
                                                      self.padding, self.output_padding)
        return y

    def backward(self, dy: Any) -> Any:
        dx, dw, db = ops.conv_transpose2d_backward(dy, self._saved_cache(dy),
                                                   self.needs_param_grads())
        self._add_param_grads(dw, db)
        return dx

    def backward_params(self, dy: Any) -> None:
        _, dw, db = ops.conv_transpose2d_backward(dy, self._saved_cache(dy),
                                                  self.needs_param_grads(), need_input_grad=False)
        self._add_param_grads(dw, db)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, "
                f"output_padding={self.output_padding}, bias={self.bias is not None}")
