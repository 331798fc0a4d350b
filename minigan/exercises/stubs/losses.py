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
    # Hints:
    # * with log(s) = -log(1 + exp(-x)) and log(1 - s) = -x - log(1 + exp(-x)), each element
    #   is x - x*t + log(1 + exp(-x)); that overflows in exp(-x) when x is very negative;
    # * add and remove max(x, 0): the same value is max(x, 0) - x*t + log(1 + exp(-|x|)), and
    #   exp now only ever sees a number <= 0. xp.log1p keeps precision when exp(...) is tiny;
    # * targets may come in another dtype, or as one number for every element (a "real"
    #   label of 0.9, say): t = xp.asarray(targets, dtype=logits.dtype) handles both;
    # * NumPy's .mean() gives a scalar: wrap it, xp.asarray(...), to get a 0-d array.
    raise NotImplementedError("bce_with_logits_forward: write me")


def bce_with_logits_backward(dloss: Any, cache: BCEWithLogitsCache) -> Array:
    """Gradient of the mean binary cross-entropy.

    dloss: a number or 0-d array  ->  dlogits: shaped like the logits
    dlogits = dloss * (sigmoid(x) - t) / n,  n = number of elements
    """
    # Hints:
    # * sigmoid(x) computed as 1 / (1 + exp(-x)) overflows for x far below 0; minigan's
    #   stable version is minigan.ops.activations.sigmoid (or write the two-branch form);
    # * turn dloss into an array of x's dtype (xp.asarray(dloss, dtype=x.dtype)) so that a
    #   float64 dloss does not promote float32 logits.
    raise NotImplementedError("bce_with_logits_backward: write me")
