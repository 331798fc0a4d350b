"""Time the FID Inception-v3 on N images, extrapolate to 10,000, and (optionally) check FID
against pytorch-fid on the same PNG files.

    python benchmarks/bench_inception.py                     # 16 images, batch 8, 2 threads
    python benchmarks/bench_inception.py --num-images 32 --threads 1
    python benchmarks/bench_inception.py --backend cupy      # on an NVIDIA GPU
    python benchmarks/bench_inception.py --crosscheck        # needs torch and pytorch-fid

The network has random weights (the timing does not depend on them, and the published weights
may not be at hand). Images are 32x32 RGB, resized to 299x299 as in scoring, float32, in the
network's scoring mode (no caches kept). The time for 10,000 images is an extrapolation:
seconds per image times 10,000, stated as such.

``--crosscheck`` writes two folders of PNG files into ``--out`` (``real/`` and ``fake/``),
loads the *same* random weights into pytorch-fid's network (through ``torch.save`` and
pytorch-fid's own loader), and prints the FID that pytorch-fid computes from the two folders
beside the one minigan computes from the same 8-bit images: the check that
``evaluate.py --export-samples`` exists for, with random weights in place of the real ones.
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    p.add_argument("--threads", type=int, default=2, help="BLAS / PyTorch threads (CPU only)")
    p.add_argument("--num-images", type=int, default=16, help="images timed")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0, help="seed of the images and weights")
    p.add_argument("--crosscheck", action="store_true",
                   help="compare FID with pytorch-fid on PNG files (needs torch, pytorch-fid)")
    p.add_argument("--crosscheck-images", type=int, default=24,
                   help="images in each PNG folder for --crosscheck")
    p.add_argument("--out", default="runs/bench_inception", help="folder for --crosscheck")
    return p.parse_args(argv)


ARGS = parse_args()
# Thread counts must be set before NumPy (and its BLAS) is imported.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy  # noqa: E402

from minigan.backend import to_device, use_backend  # noqa: E402
from minigan.metrics.frechet import frechet_distance  # noqa: E402
from minigan.metrics.inception import FIDInceptionV3  # noqa: E402
from minigan.metrics.inception_eval import InceptionScorer, export_samples  # noqa: E402
from minigan.metrics.inception_weights import load_fid_weights  # noqa: E402
from minigan.metrics.statistics import feature_statistics  # noqa: E402


def random_weights(seed: int) -> dict[str, numpy.ndarray]:
    """He-scaled uniform weights and plausible batch norm statistics (see the parity tests)."""
    rng = numpy.random.default_rng(seed)
    state = {}
    for name, value in FIDInceptionV3().state_dict().items():
        if name.endswith("num_batches_tracked"):
            state[name] = numpy.zeros((), dtype=numpy.int64)
        elif name.endswith("running_var") or name.endswith("bn.weight"):
            state[name] = rng.uniform(0.5, 1.5, value.shape)
        elif name.endswith("running_mean") or name.endswith("bias"):
            state[name] = rng.uniform(-0.1, 0.1, value.shape)
        else:
            bound = numpy.sqrt(6.0 / numpy.prod(value.shape[1:]))
            state[name] = rng.uniform(-bound, bound, value.shape)
    return state


def time_scoring(net: FIDInceptionV3) -> float:
    """Seconds per image over --num-images images (after one untimed warm-up batch)."""
    rng = numpy.random.default_rng(ARGS.seed)
    images = rng.uniform(-1, 1, (ARGS.num_images, 3, 32, 32)).astype(numpy.float32)
    x = to_device(images)
    scorer = InceptionScorer(net, ARGS.batch_size)
    scorer.pool3_and_probabilities(x[:ARGS.batch_size])             # warm-up
    start = time.perf_counter()
    scorer.pool3_and_probabilities(x, progress=True)
    if ARGS.backend == "cupy":
        import cupy

        cupy.cuda.Device().synchronize()
    return (time.perf_counter() - start) / ARGS.num_images


def crosscheck(net: FIDInceptionV3, state: dict[str, numpy.ndarray]) -> None:
    import torch
    from pytorch_fid import fid_score
    from pytorch_fid import inception as pf

    out = Path(ARGS.out)
    rng = numpy.random.default_rng(ARGS.seed + 1)
    n = ARGS.crosscheck_images
    real = rng.integers(0, 256, (n, 3, 32, 32), dtype=numpy.uint8)
    # "Generated" images: the real ones, blurred and shifted in colour, so FID is clearly > 0.
    fake = numpy.clip(real.astype(numpy.int16) // 2 + 60, 0, 255).astype(numpy.uint8)
    export_samples(real, out / "real")
    export_samples(fake, out / "fake")

    scorer = InceptionScorer(net, ARGS.batch_size)
    mu_r, sigma_r = feature_statistics(scorer.pool3_and_probabilities(real, True)[0])
    mu_f, sigma_f = feature_statistics(scorer.pool3_and_probabilities(fake, True)[0])
    ours = frechet_distance(mu_f, sigma_f, mu_r, sigma_r)

    weights_file = out / "random_weights.pth"
    torch.save({k: torch.from_numpy(numpy.array(v, order="C")) for k, v in state.items()},
               weights_file)
    pf.load_state_dict_from_url = lambda *args, **kwargs: torch.load(weights_file)
    theirs = fid_score.calculate_fid_given_paths([str(out / "fake"), str(out / "real")],
                                                 batch_size=ARGS.batch_size, device="cpu",
                                                 dims=2048, num_workers=0)
    print(f"crosscheck on {n} + {n} PNG files in {out}: FID minigan {ours:.6f}, pytorch-fid "
          f"{theirs:.6f}, difference {abs(ours - theirs):.2e} "
          f"({abs(ours - theirs) / abs(theirs):.2e} relative)")


def main() -> int:
    if ARGS.num_images < 1 or ARGS.batch_size < 1:
        print("error: --num-images and --batch-size must be at least 1", file=sys.stderr)
        return 2
    if ARGS.crosscheck:
        import importlib.util

        if not all(importlib.util.find_spec(m) for m in ("torch", "pytorch_fid")):
            print("error: --crosscheck needs torch and pytorch-fid (pip install pytorch-fid)",
                  file=sys.stderr)
            return 2
    use_backend(ARGS.backend)
    state = random_weights(ARGS.seed)
    net = load_fid_weights(FIDInceptionV3(), state).to(dtype=numpy.float32)
    print(f"{platform.processor() or platform.machine()}, backend {ARGS.backend}, "
          f"{ARGS.threads} thread(s), NumPy {numpy.__version__}")
    seconds = time_scoring(net)
    print(f"{ARGS.num_images} images (32x32 -> 299x299, float32, batch {ARGS.batch_size}): "
          f"{seconds:.3f} s per image; extrapolated to 10,000 images: "
          f"{seconds * 10000 / 3600:.2f} h ({seconds * 10000 / 60:.0f} min)")
    if ARGS.crosscheck:
        crosscheck(net, state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
