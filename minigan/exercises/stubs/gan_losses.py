"""Exercise: the two GAN losses, ``real_loss`` and ``fake_loss``.

D's output is a raw logit; each loss is the mean binary cross-entropy of sigmoid(logit) against
one target for the whole batch:

    real_loss(D(x))     D should call real images real: target real_label (1, or 0.9 with
                        one-sided label smoothing, which keeps D from growing overconfident)
    fake_loss(D(G(z)))  D should call fakes fake: target 0
    G's loss            real_loss(D(G(z))): "flipped labels", G wants its images called real

Each returns the loss (a 0-d array) and d loss / d logits (the logits' shape), the gradient
that D.backward starts from. Use the bce_with_logits kernels through ``ops`` (looked up at call
time, so that with ``--kernels`` your own kernels do the work).

The grader compares both losses and both gradients with a formula of its own, for real_label 1
and 0.9, and with logits as large as 1000 (no overflow allowed).
"""

from __future__ import annotations

from typing import Any

from minigan import ops  # noqa: F401  (ops.bce_with_logits_forward, ops.bce_with_logits_backward)

Array = Any


def real_loss(logits: Array, real_label: float = 1.0) -> tuple[Array, Array]:
    """Mean BCE of logits (N, 1) against the target ``real_label``. Returns (loss, d_logits)."""
    # Hint: one forward kernel call with the right target, one backward call; which dloss does
    # the backward pass take when the loss itself is the objective?
    raise NotImplementedError("real_loss: write me")


def fake_loss(logits: Array) -> tuple[Array, Array]:
    """Mean BCE of logits (N, 1) against the target 0. Returns (loss, d_logits)."""
    # Hint: real_loss with another target.
    raise NotImplementedError("fake_loss: write me")
