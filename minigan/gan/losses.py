"""The two GAN losses, as the course writes them: ``real_loss`` and ``fake_loss``.

D's output is a raw logit; each loss is the mean binary cross-entropy of sigmoid(logit) against
a target, computed by the ``bce_with_logits`` kernels of ``minigan/ops/losses.py`` in a form
that stays finite for logits of any size:

    real_loss(D(x))     = mean BCE(D(x), real_label)   D should call real images real (1, or
                                                       0.9 with one-sided label smoothing)
    fake_loss(D(G(z)))  = mean BCE(D(G(z)), 0)         ... and fakes fake
    G's loss            = real_loss(D(G(z)))           "flipped labels": G wants its images
                                                       called real

Each returns the loss (a 0-d array, left on the device) together with d loss / d logits (the
logits' shape), the gradient that ``D.backward`` starts from. The kernels are looked up in
``minigan.ops`` at call time, so a learner's own kernels (``minigan.exercises``) take over.
"""

from __future__ import annotations

from typing import Any

from minigan import ops

Array = Any


def real_loss(logits: Array, real_label: float = 1.0) -> tuple[Array, Array]:
    """Mean BCE of logits (N, 1) against the target ``real_label``. Returns (loss, d_logits)."""
    loss, cache = ops.bce_with_logits_forward(logits, real_label)
    return loss, ops.bce_with_logits_backward(1.0, cache)


def fake_loss(logits: Array) -> tuple[Array, Array]:
    """Mean BCE of logits (N, 1) against the target 0. Returns (loss, d_logits)."""
    loss, cache = ops.bce_with_logits_forward(logits, 0.0)
    return loss, ops.bce_with_logits_backward(1.0, cache)
