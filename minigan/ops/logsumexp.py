"""Log-sum-exp of class logits: how a K-class classifier also says "real" or "fake".

Salimans et al. (2016, "Improved Techniques for Training GANs") turn a classifier with K class
logits l_1..l_K into a GAN discriminator without adding an output. Give "fake" a (K+1)-th logit
fixed at 0; then

    p(real | x) = sum_k exp(l_k) / (sum_k exp(l_k) + exp(0)) = Z / (Z + 1) = sigmoid(log Z),

with Z = sum_k exp(l_k). So ``log Z = logsumexp(l)`` *is* the real/fake logit, and the usual
binary cross-entropy on logits applies to it unchanged. Its gradient is the softmax:

    d logsumexp(l) / d l_k = exp(l_k) / Z = softmax(l)_k.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from minigan.backend import get_array_module

Array = Any


class LogSumExpCache(NamedTuple):
    probs: Array  # (N, K) softmax of the logits: the gradient of each row's logsumexp


def logsumexp_forward(logits: Array) -> tuple[Array, LogSumExpCache]:
    """Row-wise log(sum(exp(logits))), computed without overflow.

    logits: (N, K)  ->  y: (N,)
    y_n = m_n + log(sum_k exp(l_nk - m_n)),  m_n = max_k l_nk
    """
    xp = get_array_module(logits)
    if logits.ndim != 2:
        raise ValueError(f"logsumexp: expected (N, K) logits, got shape {tuple(logits.shape)}")
    # Subtracting the row's maximum makes every exponent <= 0 (no overflow) and the largest
    # term exactly 1 (the sum is >= 1, so its log is finite); adding it back changes nothing.
    top = logits.max(axis=1, keepdims=True)
    exps = xp.exp(logits - top)
    sums = exps.sum(axis=1, keepdims=True)
    y = (top + xp.log(sums))[:, 0]
    return y, LogSumExpCache(probs=exps / sums)


def logsumexp_backward(dy: Array, cache: LogSumExpCache) -> Array:
    """Gradient of the row-wise logsumexp.

    dy: (N,)  ->  dlogits: (N, K)
    dlogits_nk = dy_n * softmax(l_n)_k
    """
    return cache.probs * dy[:, None]
