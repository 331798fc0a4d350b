"""Losses as modules: ``loss = criterion(logits, target)`` returns a Python float and
``criterion.backward()`` returns d loss / d logits (an array shaped like the logits)."""

from __future__ import annotations

from typing import Any

from minigan import ops
from minigan.backend import get_array_module
from minigan.nn.module import Module


class BCEWithLogitsLoss(Module):
    """Binary cross-entropy on raw logits, mean over all elements (``torch.nn.BCEWithLogitsLoss``).

    loss = mean(-t * log(sigmoid(x)) - (1 - t) * log(1 - sigmoid(x))), computed in a form that
    stays finite for logits of any size. ``target`` may be an array or a number (every element).
    """

    def forward(self, logits: Any, target: Any) -> float:
        if not hasattr(target, "shape"):  # a number such as 0.9 (a smoothed "real" label)
            target = get_array_module(logits).full(logits.shape, target, dtype=logits.dtype)
        if target.shape != logits.shape:
            raise ValueError(f"BCEWithLogitsLoss: target shape {tuple(target.shape)} does not "
                             f"match logits shape {tuple(logits.shape)}")
        loss, self._cache = ops.bce_with_logits_forward(logits, target.astype(logits.dtype))
        return float(loss)

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
