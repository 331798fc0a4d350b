"""The gradient-reversal layer of domain-adversarial training (Ganin & Lempitsky, 2015).

Forward it is the identity; backward it multiplies the gradient by ``-scale`` (the paper's
lambda). Put it between a feature extractor and a *domain* classifier:

    features -> GradientReversal -> domain classifier -> loss on "which domain is this from?"

One backward pass then trains the domain classifier to tell the domains apart (its own
parameters get the ordinary gradient) while the feature extractor, below the reversal, receives
the opposite gradient: it moves its features so that the domain classifier does *worse*. At the
equilibrium the features carry no sign of which domain an image came from, and a label
classifier trained on the labelled domain works on the other one too.

It is the adversarial game of a GAN played inside one network, with no alternating steps: the
minus sign in the backward pass is the whole trick.
"""

from __future__ import annotations

from typing import Any

from minigan.nn.module import Module


class GradientReversal(Module):
    """y = x forward; dx = -scale * dy backward. No parameters.

    x: any shape -> y: the same array. ``scale`` (lambda, >= 0) may be changed between steps;
    the paper raises it from 0 to 1 during training (``dann_schedule`` in
    ``examples/domain_adversarial.py``) so that the domain classifier's early, noisy gradients
    do not disturb the features before they are any good.
    """

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    @property
    def scale(self) -> float:
        return self._scale

    @scale.setter
    def scale(self, value: float) -> None:
        if not value >= 0:  # also refuses nan
            raise ValueError(f"GradientReversal: scale must be 0 or more, got {value}")
        self._scale = float(value)

    def forward(self, x: Any) -> Any:
        self._cache = True  # nothing to remember; marks that forward has run
        return x

    def backward(self, dy: Any) -> Any:
        self._saved_cache(dy)
        # A Python float keeps dy's dtype (float32 stays float32).
        return dy * -self._scale

    def extra_repr(self) -> str:
        return f"scale={self._scale:g}"
