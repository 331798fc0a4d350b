"""Scores for generated images: Fréchet distance (FID) and Inception Score.

Both start from the outputs of a fixed classifier run on images:

* FID compares the *features* of real and generated images. ``feature_statistics`` fits a
  Gaussian (mean, covariance) to each set, ``frechet_distance`` measures how far apart the two
  Gaussians are (lower is better). The real-data statistics are saved once with
  ``save_statistics`` and reused with ``load_statistics``.
* The Inception Score looks only at the classifier's *probabilities* on generated images:
  ``inception_score`` is high when each image gets a confident label and the labels vary
  (higher is better).

The math (``frechet``, ``inception_score``, ``statistics``) works on NumPy arrays on the host
(CuPy inputs are copied over). ``features`` is the classifier, built from minigan's own layers,
whose features and probabilities feed the math, and ``gan_eval`` scores a generator with it.
Training that classifier is ``minigan.classifier.train_classifier``: the metrics import neither
the optimizer nor the data package.
"""

from minigan.metrics.features import FeatureNet, accuracy
from minigan.metrics.frechet import SingularCovarianceWarning, frechet_distance
from minigan.metrics.gan_eval import (
    GANEvaluator,
    SmallSampleWarning,
    real_statistics,
    save_real_statistics,
    statistics_path,
)
from minigan.metrics.inception_score import inception_score
from minigan.metrics.statistics import (
    feature_statistics,
    load_statistics,
    load_statistics_meta,
    save_statistics,
)

__all__ = [
    "FeatureNet",
    "GANEvaluator",
    "SingularCovarianceWarning",
    "SmallSampleWarning",
    "accuracy",
    "real_statistics",
    "save_real_statistics",
    "statistics_path",
    "feature_statistics",
    "frechet_distance",
    "inception_score",
    "load_statistics",
    "load_statistics_meta",
    "save_statistics",
]
