"""Score a generator with FID and IS, using a FeatureNet trained by minigan (see ``features.py``).

    evaluate = GANEvaluator("runs/features_svhn.npz", num_samples=10000)
    scores = evaluate(G)   # {"fid": 23.1, "inception_score": 7.2, "inception_score_std": 0.1}

What happens in one call:

1. draw ``num_samples`` latent vectors z ~ U(-1, 1) (or N(0, 1) for a G trained on those) from
   a *fixed* seed, so that two calls on
   the same G give the same numbers and successive epochs are scored on the same z;
2. run G in eval mode (batch norm uses its running statistics, as when sampling) in batches,
   and put G back in the mode it was in;
3. FeatureNet gives each image a feature vector and class probabilities p(y|x);
4. FID = Fréchet distance between a Gaussian fitted to the generated features and the one
   fitted to the real images' features, computed once by ``examples/train_classifier.py`` and
   cached next to the network (``<name>_stats.npz``);
5. IS = exp(E_x KL(p(y|x) || p(y))) over the generated images, as mean and std over 10 splits.

The numbers are the domain-specific FID and IS of minigan's own classifier: comparable between
runs scored with the same feature network file, and *not* comparable with published
Inception-v3 numbers.

Sample size matters for FID. With D feature dimensions the covariance of N samples has rank at
most N - 1, and the estimate of FID is biased upwards for small N (the bias shrinks like 1/N).
Reference FIDs use 10,000 or 50,000 samples; below 2048 this module warns.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy

from minigan.backend import get_array_module, make_rng
from minigan.latent import check_distribution, sample_z
from minigan.metrics.features import FeatureNet
from minigan.metrics.frechet import frechet_distance
from minigan.metrics.inception_score import inception_score
from minigan.metrics.statistics import (
    feature_statistics,
    load_statistics,
    load_statistics_meta,
    save_statistics,
)
from minigan.nn import Module

__all__ = ["MIN_RELIABLE_SAMPLES", "GANEvaluator", "SmallSampleWarning", "real_statistics",
           "save_real_statistics", "statistics_path"]

MIN_RELIABLE_SAMPLES = 2048  # below this, warn: FID from fewer samples is noticeably biased


class SmallSampleWarning(UserWarning):
    """FID was asked for with fewer samples than ``MIN_RELIABLE_SAMPLES``."""


def statistics_path(features_path: str | Path) -> Path:
    """Where the real-data statistics of a feature network live: ``runs/x.npz`` ->
    ``runs/x_stats.npz``."""
    path = Path(features_path)
    return path.with_name(f"{path.stem}_stats.npz")


def real_statistics(net: FeatureNet, images: Any, batch_size: int = 500, progress: bool = False
                    ) -> tuple[numpy.ndarray, numpy.ndarray]:
    """(mu, sigma) of ``net``'s features over real images: (N, C, S, S) uint8 -> (D,), (D, D)."""
    return feature_statistics(net.features(images, batch_size, progress))


def save_real_statistics(net: FeatureNet, images: Any, path: str | Path,
                         batch_size: int = 500, progress: bool = False, **meta: Any) -> Path:
    """Compute ``real_statistics`` and save them to ``path``, tagged with the network's
    fingerprint (so they are never used with another network)."""
    mu, sigma = real_statistics(net, images, batch_size, progress)
    return save_statistics(path, mu, sigma, count=len(images), features=net.fingerprint(),
                           **meta)


def on_shares(world: Any, compute: Callable[[Any], tuple], images: Any) -> tuple:
    """``compute(images)``, a tuple of per-image arrays (N, ...), with each rank of ``world``
    computing the rows of its share: rank r the r-th of ``size`` consecutive slices. The slices
    are put together on every rank by adding them into zeros (x + 0 is exactly x), so every rank
    gets the same arrays, the ones one process computes, and then the same scores. Without a
    world (None, or one process) it is ``compute(images)``."""
    if world is None or world.size == 1:
        return compute(images)
    xp, n = get_array_module(images), len(images)
    lo, hi = n * world.rank // world.size, n * (world.rank + 1) // world.size
    together = []
    for part in compute(images[lo:hi]):
        whole = xp.zeros((n, *part.shape[1:]), dtype=part.dtype)
        whole[lo:hi] = part
        together.append(world.allreduce_sum(whole))
    return tuple(together)


class GANEvaluator:
    """A callable that scores a generator: ``GANEvaluator(path)(G) -> dict`` of floats.

    Args:
        features_path: a FeatureNet file written by ``examples/train_classifier.py``.
        num_samples: images to generate for each evaluation (10,000 is the usual FID setting;
            fewer than 2048 gives a SmallSampleWarning).
        batch_size: images generated and scored at a time (memory, not results).
        seed: seed of the latent vectors; the same seed gives the same z on every call.
        z_distribution: "uniform" in [-1, 1] (the course's choice) or "normal": use the one G
            was trained with (``TrainConfig.z_distribution``).
        stats_path: the real-data statistics (default: ``statistics_path(features_path)``).

    It fits ``GANTrainer(..., evaluate=GANEvaluator(...))`` directly: the trainer calls it every
    ``config.metrics_every`` epochs and records the returned numbers. In a data-parallel run the
    trainer hands it the world of ranks (``share_with``), and every rank scores its share of the
    images (see ``on_shares``).
    """

    world: Any = None   # the ranks that share the scoring (minigan.distributed.World), if any

    def __init__(self, features_path: str | Path, num_samples: int = 10000,
                 batch_size: int = 500, seed: int = 0, stats_path: str | Path | None = None,
                 z_distribution: str = "uniform", progress: bool = False):
        self.progress = progress   # tqdm bars while generating and extracting features
        check_distribution(z_distribution, "z_distribution")
        self.z_distribution = z_distribution
        if num_samples < 2:
            raise ValueError(f"num_samples must be at least 2, got {num_samples}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.features_path = Path(features_path)
        self.stats_path = Path(stats_path) if stats_path else statistics_path(features_path)
        self.net = FeatureNet.load(self.features_path)
        if not self.stats_path.is_file():
            raise FileNotFoundError(f"no real-data statistics at {self.stats_path}: "
                                    f"examples/train_classifier.py writes them beside the "
                                    f"feature network")
        self.mu_real, self.sigma_real = load_statistics(self.stats_path)
        made_by = load_statistics_meta(self.stats_path).get("features")
        if made_by is not None and made_by != self.net.fingerprint():
            raise ValueError(f"{self.stats_path} was computed with a different feature network "
                             f"than {self.features_path}: FID needs both from the same network")
        if self.mu_real.shape != (self.net.feature_dim,):
            raise ValueError(f"{self.stats_path} holds {self.mu_real.shape[0]}-d statistics, "
                             f"but the network has {self.net.feature_dim} features")
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        if num_samples < MIN_RELIABLE_SAMPLES:
            d = self.net.feature_dim
            warnings.warn(
                f"FID from {num_samples} samples (< {MIN_RELIABLE_SAMPLES}) is biased upwards "
                f"and noisy: few samples estimate the {d}x{d} feature covariance poorly (it is "
                f"singular with {d} samples or fewer); use at least {MIN_RELIABLE_SAMPLES}, "
                f"or 10000 for numbers to report",
                SmallSampleWarning, stacklevel=2)

    def generate(self, G: Module) -> Any:
        """``num_samples`` images from G (eval mode, fixed z), in [-1, 1]: (N, C, S, S)."""
        z_size = int(getattr(G, "z_size", 0)) or G.parameters()[0].shape[1]
        dtype = G.parameters()[0].dtype
        rng = make_rng(self.seed)
        was_training = G.training
        G.eval()
        try:
            from minigan.progress import tqdm

            batches = []
            starts = range(0, self.num_samples, self.batch_size)
            for start in tqdm(starts, desc="generating", unit="batch", disable=not self.progress,
                              leave=False):
                n = min(self.batch_size, self.num_samples - start)
                batches.append(G(sample_z(n, z_size, self.z_distribution, rng, dtype)))
        finally:
            G.train(was_training)
        return get_array_module(batches[0]).concatenate(batches)

    def score_images(self, images: Any) -> dict[str, float]:
        """FID and IS of a set of images ((N, C, S, S) in [-1, 1] or uint8) against the cached
        real statistics."""
        expected = (self.net.channels, self.net.image_size, self.net.image_size)
        if tuple(images.shape[1:]) != expected:
            raise ValueError(f"the feature network scores images of shape {expected} (C, H, W),"
                             f" got {tuple(images.shape[1:])}: was it trained on another "
                             f"dataset than the generator?")
        features, probabilities = self.on_shares(
            lambda share: (self.net.features(share, self.batch_size, progress=self.progress),
                           self.net.probabilities(share, self.batch_size)), images)
        mu, sigma = feature_statistics(features)
        fid = frechet_distance(mu, sigma, self.mu_real, self.sigma_real)
        splits = min(10, len(images))
        is_mean, is_std = inception_score(probabilities, splits=splits)
        return {"fid": float(fid), "inception_score": float(is_mean),
                "inception_score_std": float(is_std)}

    def share_with(self, world: Any) -> None:
        """Score on every rank of ``world`` from now on (each its share of the images); only
        rank 0 shows progress bars. Every rank must then call this evaluator together."""
        self.world = world
        self.progress = self.progress and world.is_root

    def on_shares(self, compute: Callable[[Any], tuple], images: Any) -> tuple:
        """``compute(images)`` shared by the ranks of this evaluator's world (``on_shares``)."""
        return on_shares(self.world, compute, images)

    def __call__(self, G: Module) -> dict[str, float]:
        """Generate ``num_samples`` images with G and score them: fid, inception_score (mean
        over 10 splits) and inception_score_std."""
        return self.score_images(self.generate(G))

    def __repr__(self) -> str:
        return (f"GANEvaluator({str(self.features_path)!r}, num_samples={self.num_samples}, "
                f"batch_size={self.batch_size}, seed={self.seed})")
