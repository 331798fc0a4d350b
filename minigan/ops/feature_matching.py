"""Feature matching: the generator's loss in the semi-supervised GAN of Salimans et al. (2016).

Instead of asking the generator to fool the discriminator's last output, ask it to produce a
batch whose *average features* (the activations of one of the discriminator's hidden layers)
equal those of a real batch:

    loss = (1/D) * sum_d (mean_n f_real[n, d] - mean_n f_fake[n, d])**2

A generator trained this way does not chase the discriminator's current weak spot, which keeps
training stable, and its samples cover the statistics the classifier uses: what the
discriminator-as-classifier needs to learn from unlabelled images.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from minigan.backend import get_array_module

Array = Any


class FeatureMatchingCache(NamedTuple):
    difference: Array  # (D,) mean real feature minus mean fake feature
    n_real: int        # rows of the real batch
    n_fake: int        # rows of the fake batch


def feature_matching_forward(
    real_features: Array, fake_features: Array,
) -> tuple[Array, FeatureMatchingCache]:
    """Mean squared difference between the average real and the average fake feature vector.

    real_features: (N_r, D); fake_features: (N_f, D)  ->  loss: 0-d array
    loss = mean_d (mean_n real[n, d] - mean_n fake[n, d])**2
    """
    xp = get_array_module(real_features, fake_features)
    if real_features.ndim != 2 or fake_features.ndim != 2 \
            or real_features.shape[1] != fake_features.shape[1]:
        raise ValueError(f"feature_matching: expected (N_r, D) and (N_f, D) features, got shapes "
                         f"{tuple(real_features.shape)} and {tuple(fake_features.shape)}")
    difference = real_features.mean(axis=0) - fake_features.mean(axis=0)
    loss = xp.asarray((difference * difference).mean())  # asarray: NumPy's mean gives a scalar
    return loss, FeatureMatchingCache(difference, len(real_features), len(fake_features))


def feature_matching_backward(dloss: Any, cache: FeatureMatchingCache) -> tuple[Array, Array]:
    """Gradients of the feature-matching loss with respect to both batches of features.

    dloss: a number or 0-d array  ->  d_real: (N_r, D), d_fake: (N_f, D)
    With g = dloss * 2 * difference / D, every real row gets  g / N_r  and every fake row
    -g / N_f: each row moves its batch's mean by 1/N of its own change.
    """
    xp = get_array_module(cache.difference)
    diff = cache.difference
    g = diff * (xp.asarray(dloss, dtype=diff.dtype) * 2 / diff.size)
    d_real = xp.broadcast_to(g / cache.n_real, (cache.n_real, diff.size)).copy()
    d_fake = xp.broadcast_to(-g / cache.n_fake, (cache.n_fake, diff.size)).copy()
    return d_real, d_fake
