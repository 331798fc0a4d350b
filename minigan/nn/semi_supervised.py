"""The two pieces a semi-supervised GAN adds to a classifier (Salimans et al., 2016).

* ``LogSumExp``: (N, K) class logits -> (N,) real/fake logit, log(sum_k exp(l_k)). A classifier
  followed by it is a GAN discriminator with no extra output (``minigan/ops/logsumexp.py``
  derives why).
* ``FeatureMatchingLoss``: the generator's loss, the squared distance between the mean feature
  vectors of a real and a fake batch (``minigan/ops/feature_matching.py``).

Both call their kernels through ``minigan.ops`` when they run, so that a learner's own versions
can be swapped in there.
"""

from __future__ import annotations

from typing import Any

from minigan import ops
from minigan.nn.module import Module


class LogSumExp(Module):
    """y_n = log(sum_k exp(x_nk)): x (N, K) -> y (N,); dx = dy[:, None] * softmax(x)."""

    def forward(self, x: Any) -> Any:
        self.check_input(x, ("N", "K"))
        y, self._cache = ops.logsumexp_forward(x)
        return y

    def backward(self, dy: Any) -> Any:
        return ops.logsumexp_backward(dy, self._saved_cache(dy))


class FeatureMatchingLoss(Module):
    """loss = mean_d (mean_n real[n, d] - mean_n fake[n, d])**2, returned as a Python float.

    ``loss = criterion(real_features, fake_features)`` with (N_r, D) and (N_f, D) arrays;
    ``criterion.backward()`` returns d loss / d fake_features, (N_f, D): the generator's
    gradient (the real features are data to it). The kernel,
    ``ops.feature_matching_backward``, gives the gradient at the real features too.
    """

    def forward(self, real_features: Any, fake_features: Any) -> float:
        self.check_input(real_features, ("N", "D"))
        self.check_input(fake_features, ("N", real_features.shape[1]))
        loss, self._cache = ops.feature_matching_forward(real_features, fake_features)
        return float(loss)

    def backward(self, dloss: float = 1.0) -> Any:
        _, d_fake = ops.feature_matching_backward(dloss, self._saved_cache(dloss))
        return d_fake
