"""Losses as modules: ``loss = criterion(logits, target)`` returns a Python float and
``criterion.backward()`` returns d loss / d logits (an array shaped like the logits)."""

from __future__ import annotations

from typing import Any

from minigan import ops
from minigan.nn.module import Module


class BCEWithLogitsLoss(Module):
    """Binary cross-entropy on raw logits, mean over all elements (``torch.nn.BCEWithLogitsLoss``).

    loss = mean(-t * log(sigmoid(x)) - (1 - t) * log(1 - sigmoid(x))), computed in a form that
    stays finite for logits of any size. ``target`` may be an array or a number (every element).

    ``to_float=False`` returns the loss as a 0-d array where it was computed instead: reading a
    Python float makes the host wait for the GPU, which a training loop should only do when it
    logs (see ``GANTrainer``).
    """

    def __init__(self, to_float: bool = True):
        super().__init__()
        self.to_float = to_float

    def forward(self, logits: Any, target: Any) -> Any:
        # A number such as 0.9 (a smoothed "real" label) stays a number: the kernel uses it for
        # every element without making an array of it.
        if hasattr(target, "shape") and target.shape != logits.shape:
            raise ValueError(f"BCEWithLogitsLoss: target shape {tuple(target.shape)} does not "
                             f"match logits shape {tuple(logits.shape)}")
        loss, self._cache = ops.bce_with_logits_forward(logits, target)
        return float(loss) if self.to_float else loss

    def backward(self, dloss: float = 1.0) -> Any:
        return ops.bce_with_logits_backward(dloss, self._saved_cache(dloss))


class CrossEntropyLoss(Module):
    """Softmax cross-entropy of (N, K) logits against (N,) integer labels, mean over N."""

    def forward(self, logits: Any, labels: Any) -> float:
        self.check_input(logits, ("N", "K"))
        if tuple(labels.shape) != (logits.shape[0],):
            raise ValueError(f"CrossEntropyLoss: expected labels of shape ({logits.shape[0]},), "
                             f"got {tuple(labels.shape)}")
        loss, self._cache = ops.softmax_cross_entropy_forward(logits, labels)
        return float(loss)

    def backward(self, dloss: float = 1.0) -> Any:
        return ops.softmax_cross_entropy_backward(dloss, self._saved_cache(dloss))
