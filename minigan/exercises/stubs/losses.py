"""Exercise: binary cross-entropy on logits, stable for logits of any size.

The discriminator outputs a raw score x (a logit); the probability that the image is real is
s = sigmoid(x) = 1 / (1 + exp(-x)). A loss that takes logits rather than probabilities can be
evaluated without ever forming log(0) or exp(large). The loss is a 0-d array in the logits'
dtype, averaged over all elements as PyTorch does ('mean' reduction). Its backward pass takes
``dloss``, the gradient of the final objective with respect to this scalar (1.0 when the loss
*is* the objective), and returns d objective / d logits.

The grader compares your loss with an independent formula, checks the gradient with finite
differences, and feeds logits as large as 1000: no overflow warning, no inf, no nan allowed.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from minigan.backend import get_array_module

Array = Any


class BCEWithLogitsCache(NamedTuple):
    logits: Array   # any shape
    targets: Any    # same shape, values in [0, 1], or one number


def bce_with_logits_forward(logits: Array, targets: Any) -> tuple[Array, BCEWithLogitsCache]:
    """Binary cross-entropy of sigmoid(logits) against targets, mean over all elements.

    logits: any shape; targets: same shape, in [0, 1], or one number for every element
    ->  loss: 0-d array
    loss = mean(-t * log(s) - (1 - t) * log(1 - s)),  s = sigmoid(x)
    """
    xp = get_array_module(logits)  # noqa: F841
    # Hint: write log(s) and log(1 - s) with exp(-x) and simplify each element's loss; then
    # ask where exp can overflow and rewrite so that it only ever sees numbers <= 0. Targets
    # may be an array or one number; the loss is a 0-d array.
    raise NotImplementedError("bce_with_logits_forward: write me")


def bce_with_logits_backward(dloss: Any, cache: BCEWithLogitsCache) -> Array:
    """Gradient of the mean binary cross-entropy.

    dloss: a number or 0-d array  ->  dlogits: shaped like the logits
    dlogits = dloss * (sigmoid(x) - t) / n,  n = number of elements
    """
    # Hint: sigmoid computed naively overflows for x far below 0 (minigan.ops.activations has
    # a stable one); a float64 dloss must not promote float32 logits.
    raise NotImplementedError("bce_with_logits_backward: write me")
