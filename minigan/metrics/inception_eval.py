"""FID and IS as papers report them: the FID Inception-v3 (``inception.py``) on images.

    net = load_fid_inception()                       # weights from pytorch-fid's release
    scorer = InceptionScorer(net, batch_size=50)
    pool3, probs = scorer.pool3_and_probabilities(images)     # (N, 2048), (N, 1008)
    save_statistics("runs/inception_svhn_stats.npz", *feature_statistics(pool3), ...)

    evaluate = InceptionEvaluator("runs/inception_svhn_stats.npz", num_samples=10000)
    scores = evaluate(G)            # {"fid": ..., "inception_score": ..., "inception_score_std"}

The settings that make the numbers comparable with published ones:

* FID: the 2048 pool3 features of the FID Inception (pytorch-fid's weights), 10,000 or 50,000
  generated images against the statistics of the real images (the training set, as in the TTUR
  paper, or a test set: say which);
* IS: p(y|x) = softmax over the 1008 outputs of the last layer *without its bias*
  (pool3 @ fc.weight.T), because that is what the original Inception Score code computed
  (it read the matrix of the softmax layer and multiplied pool3 by it); torch-fidelity does
  the same. Mean and standard deviation over 10 splits of 50,000 images in the papers.

Images: uint8 pixels, or floats in [-1, 1] (a generator's output); grey images are repeated
into three channels (as converting a PNG to RGB does); any size, resized to 299 x 299.
A statistics file made by pytorch-fid (``python -m pytorch_fid --save-stats``; keys mu, sigma)
can be used as the reference statistics as it is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy

from minigan.backend import get_array_module, to_numpy
from minigan.distributed import SINGLE_PROCESS, World
from minigan.latent import check_distribution
from minigan.metrics.features import to_float_images
from minigan.metrics.frechet import frechet_distance
from minigan.metrics.gan_eval import (
    MIN_RELIABLE_SAMPLES,
    GANEvaluator,
    SmallSampleWarning,
    on_shares,
)
from minigan.metrics.inception import POOL3_FEATURES, FIDInceptionV3, free_caches, softmax
from minigan.metrics.inception_score import inception_score
from minigan.metrics.statistics import (
    feature_statistics,
    load_statistics,
    load_statistics_meta,
    save_statistics,
)

__all__ = ["FEATURES_NAME", "InceptionEvaluator", "InceptionScorer", "export_samples",
           "inception_evaluator", "save_inception_statistics"]

FEATURES_NAME = "fid-inception-v3 (pytorch-fid pt_inception-2015-12-05)"  # in statistics files


class InceptionScorer:
    """Runs the FID Inception over many images, ``batch_size`` at a time.

    images: (N, C, H, W), C = 1 or 3, uint8 or floats in [-1, 1], on either backend.
    """

    def __init__(self, net: FIDInceptionV3, batch_size: int = 50):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.net, self.batch_size = net.eval(), batch_size

    def pool3_and_probabilities(self, images: Any, progress: bool = False
                                ) -> tuple[numpy.ndarray, numpy.ndarray]:
        """(pool3 features (N, 2048), IS probabilities (N, 1008)), float64 on the host.

        ``progress``: a tqdm bar on stderr, in images, with the elapsed and the estimated
        remaining time (``FID Inception:  40%|####  | 400/1000 [02:10<03:15, 3.07image/s]``).
        """
        from minigan.progress import tqdm

        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected images (N, 1 or 3, H, W), got {tuple(images.shape)}")
        weight = self.net.fc.weight.data
        xp = get_array_module(weight)
        features, probs = [], []
        # Counted in images, so that the bar's rate reads images/s and its estimate of the time
        # left holds for the last, shorter batch too: 10,000 images take hours on a CPU.
        bar = tqdm(total=len(images), disable=not progress, unit="image", desc="FID Inception",
                   dynamic_ncols=True)
        for start in range(0, len(images), self.batch_size):
            batch = images[start:start + self.batch_size]
            batch = xp.asarray(to_numpy(batch) if xp is numpy else batch)
            x = to_float_images(batch, weight.dtype)
            if x.shape[1] == 1:
                x = xp.repeat(x, 3, axis=1)        # grey -> RGB, as PIL's convert("RGB")
            pool3 = self.net.pool3(x, keep_caches=False)
            unbiased_logits = pool3 @ weight.T     # the original IS code's logits: no bias
            features.append(to_numpy(pool3).astype(numpy.float64))
            probs.append(to_numpy(softmax(unbiased_logits)).astype(numpy.float64))
            bar.update(len(batch))
        bar.close()
        free_caches(self.net)
        if not features:
            return numpy.zeros((0, POOL3_FEATURES)), numpy.zeros((0, weight.shape[0]))
        return numpy.concatenate(features), numpy.concatenate(probs)


def save_inception_statistics(scorer: InceptionScorer, images: Any, path: str | Path,
                              progress: bool = False, world: World | None = None,
                              **meta: Any) -> Path:
    """mu (2048,) and sigma (2048, 2048) of the real images' pool3 features, saved to ``path``
    (tagged ``features=FEATURES_NAME`` and with the image count).

    ``world``: the processes of a data-parallel run (``minigan.distributed``), each called with
    the same images: each computes the features of its share (``on_shares``), rank 0 writes the
    file, and every rank returns once it is there."""
    pool3, = on_shares(world, lambda share: scorer.pool3_and_probabilities(share, progress)[:1],
                       images)
    if world is None or world.is_root:
        mu, sigma = feature_statistics(pool3)
        save_statistics(path, mu, sigma, count=len(images), features=FEATURES_NAME, **meta)
    if world is not None:
        world.barrier()
    return Path(path)


class InceptionEvaluator(GANEvaluator):
    """``GANEvaluator`` with the FID Inception in place of minigan's own feature network.

    Args:
        stats_path: the real images' pool3 statistics (``save_inception_statistics``, or a
            pytorch-fid ``--save-stats`` file).
        net: the FID Inception with its weights (``load_fid_inception()``).
        num_samples, batch_size, seed, z_distribution, progress: as for ``GANEvaluator``
            (``batch_size`` images are generated and run through Inception at a time).
    """

    def __init__(self, stats_path: str | Path, net: FIDInceptionV3, num_samples: int = 10000,
                 batch_size: int = 50, seed: int = 0, z_distribution: str = "uniform",
                 progress: bool = False):
        import warnings

        check_distribution(z_distribution, "z_distribution")
        if num_samples < 10:
            raise ValueError(f"num_samples must be at least 10 (IS uses 10 splits), got "
                             f"{num_samples}")
        self.progress, self.z_distribution = progress, z_distribution
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.stats_path = self.features_path = Path(stats_path)
        self.scorer = InceptionScorer(net, batch_size)
        self.mu_real, self.sigma_real = load_statistics(self.stats_path)
        made_by = load_statistics_meta(self.stats_path).get("features")
        if made_by is not None and made_by != FEATURES_NAME:
            raise ValueError(f"{self.stats_path} holds statistics of {made_by!r} features, not "
                             f"of the FID Inception: compute them with --features inception")
        if self.mu_real.shape != (POOL3_FEATURES,):
            raise ValueError(f"{self.stats_path} holds {self.mu_real.shape[0]}-d statistics, "
                             f"but Inception's pool3 has {POOL3_FEATURES} features")
        if num_samples < MIN_RELIABLE_SAMPLES:
            warnings.warn(
                f"FID from {num_samples} samples (< {MIN_RELIABLE_SAMPLES}) is biased upwards "
                f"and not comparable with published numbers (10,000 or 50,000 samples)",
                SmallSampleWarning, stacklevel=2)

    def score_images(self, images: Any) -> dict[str, float]:
        """FID and IS of (N, C, H, W) images (uint8, or floats in [-1, 1])."""
        pool3, probs = self.on_shares(
            lambda share: self.scorer.pool3_and_probabilities(share, self.progress), images)
        mu, sigma = feature_statistics(pool3)
        fid = frechet_distance(mu, sigma, self.mu_real, self.sigma_real)
        is_mean, is_std = inception_score(probs, splits=min(10, len(images)))
        return {"fid": float(fid), "inception_score": float(is_mean),
                "inception_score_std": float(is_std)}

    def __repr__(self) -> str:
        return (f"InceptionEvaluator({str(self.stats_path)!r}, num_samples={self.num_samples}, "
                f"batch_size={self.batch_size}, seed={self.seed})")


def inception_evaluator(real_images: Any, dataset: str, num_samples: int = 10000,
                        z_distribution: str = "uniform", reference_count: int = 10000,
                        stats_path: str | Path | None = None,
                        data_dir: str | os.PathLike | None = None,
                        batch_size: int = 50, progress: bool = True,
                        world: World | None = None,
                        download_missing: bool = True) -> InceptionEvaluator:
    """An InceptionEvaluator for a GAN trained on ``real_images`` (uint8, (N, C, H, W)).

    The reference statistics are read from ``stats_path`` (default
    ``runs/inception_stats_<dataset>.npz``) or, the first time, computed from the first
    ``reference_count`` real images and saved there. The weights come from
    ``load_fid_inception(data_dir)`` (downloaded once; with ``download_missing`` False, a
    missing file is an error instead, as ``--no-download`` asks). ``progress``: tqdm bars on
    stderr with the estimated time left, for the reference statistics and for every scoring
    (on a CPU a 10,000-image FID takes hours). ``world``: the processes of a data-parallel
    run, every one calling this: rank 0 downloads the weights, and each computes its share of
    the reference statistics (``save_inception_statistics``).
    """
    from minigan.data import dataset_label
    from minigan.metrics.inception_weights import load_fid_inception

    world = world or SINGLE_PROCESS
    net = world.root_first(lambda: load_fid_inception(data_dir,
                                                      download_missing=download_missing))
    stats = Path(stats_path or f"runs/inception_stats_{dataset_label(dataset)}.npz")
    if not stats.is_file():
        images = real_images[:reference_count]
        print(f"reference statistics: Inception pool3 of {len(images)} {dataset} images -> "
              f"{stats} (once; slow on a CPU)")
        save_inception_statistics(InceptionScorer(net, batch_size), images, stats,
                                  progress=True, world=world, dataset=str(dataset))
    return InceptionEvaluator(stats, net, num_samples=num_samples, batch_size=batch_size,
                              z_distribution=z_distribution, progress=progress)


def export_samples(images: Any, folder: str | Path) -> list[Path]:
    """Write images as PNG files ``000000.png``, ``000001.png``, ... in ``folder``.

    images: (N, C, H, W) uint8, or floats in [-1, 1] (rounded to the nearest of 256 levels, as
    the data loader's ``unscale_images`` does). Grey images (C = 1) are written as grey PNGs.
    pytorch-fid (``python -m pytorch_fid <folder> <stats.npz>``) and clean-fid read such a
    folder, so the scores can be checked with them. Each file is written under a temporary name
    and renamed into place: an interrupted export leaves no half-written PNG.
    """
    from PIL import Image

    from minigan.data.loader import unscale_images

    pixels = to_numpy(images)
    if pixels.dtype != numpy.uint8:
        pixels = unscale_images(pixels)
    if pixels.ndim != 4 or pixels.shape[1] not in (1, 3):
        raise ValueError(f"expected images (N, 1 or 3, H, W), got {tuple(pixels.shape)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(pixels.transpose(0, 2, 3, 1)):
        path = folder / f"{i:06d}.png"
        tmp = folder / f".{i:06d}.png.tmp"
        Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(tmp, format="PNG")
        os.replace(tmp, path)
        paths.append(path)
    return paths
