"""ResizeBilinear: images to a fixed size, as ``torch.nn.functional.interpolate(x, size,
mode="bilinear", align_corners=False)``; the kernel is ``minigan.ops.resize``."""

from __future__ import annotations

from typing import Any

from minigan import ops
from minigan.nn.module import Module


class ResizeBilinear(Module):
    """x: (N, C, H, W) -> y: (N, C, *size); no parameters.

    ``size`` is an int (a square) or an (H_out, W_out) pair. Inception-v3 is fed 299x299 images.
    """

    def __init__(self, size: int | tuple[int, int]):
        super().__init__()
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def forward(self, x: Any) -> Any:
        self.check_input(x, ("N", "C", "H", "W"))
        y, self._cache = ops.resize_bilinear_forward(x, self.size)
        return y

    def backward(self, dy: Any) -> Any:
        return ops.resize_bilinear_backward(dy, self._saved_cache(dy))

    def extra_repr(self) -> str:
        return f"size={self.size}"
