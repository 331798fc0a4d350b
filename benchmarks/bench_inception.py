"""Time the FID Inception-v3 on N images, extrapolate to 10,000, compare with PyTorch, and
(optionally) check FID against pytorch-fid on the same PNG files.

    python benchmarks/bench_inception.py                     # 16 images, batch 8, 2 threads
    python benchmarks/bench_inception.py --num-images 32 --threads 1
    python benchmarks/bench_inception.py --rounds 5          # more rounds against PyTorch
    python benchmarks/bench_inception.py --backend cupy      # on an NVIDIA GPU
    python benchmarks/bench_inception.py --crosscheck        # needs torch and pytorch-fid
    python benchmarks/bench_inception.py --processes 2       # as evaluate.py --processes 2

The network has random weights (the timing does not depend on them, and the published weights
may not be at hand). Images are 32x32 RGB, resized to 299x299 as in scoring, float32, in the
network's scoring mode (no caches kept). The time for 10,000 images is an extrapolation:
seconds per image times 10,000, stated as such.

If PyTorch is installed (it is never a dependency of minigan) and ``--no-torch`` is not given,
the same network and scoring in plain PyTorch (``torch_inception.py``, held to minigan's
outputs by ``tests/metrics/test_torch_inception.py``) are timed **alone, as users run it**, as
``bench_step.py`` does: ``--rounds`` alternating rounds of minigan's timing in this process
(before anything loads PyTorch here) and PyTorch's in a fresh process of its own, with the same
threads, images, batch size and seed (so the same images and weights). Each round and the median
of the rounds' own ratios minigan / PyTorch are printed: the two runs of a round are close in
time, so their ratio drifts less with the machine's load than the ratio of two medians.
PyTorch is timed on the CPU only (with ``--backend cupy`` it is skipped).

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
    p.add_argument("--rounds", type=int, default=3,
                   help="alternating rounds of minigan and PyTorch in a fresh process")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--processes", type=int, default=1,
                   help="score as N processes (python -m minigan.launch), each taking 1/N of "
                        "the images with --threads / N BLAS threads, as evaluate.py "
                        "--processes N does; PyTorch keeps --threads (CPU only)")
    p.add_argument("--crosscheck", action="store_true",
                   help="compare FID with pytorch-fid on PNG files (needs torch, pytorch-fid)")
    p.add_argument("--crosscheck-images", type=int, default=24,
                   help="images in each PNG folder for --crosscheck")
    p.add_argument("--out", default="runs/bench_inception", help="folder for --crosscheck")
    args = p.parse_args(argv)
    for value, what in ((args.threads, "--threads"), (args.num_images, "--num-images"),
                        (args.batch_size, "--batch-size"), (args.rounds, "--rounds"),
                        (args.processes, "--processes")):
        if value < 1:
            p.error(f"{what} must be at least 1, got {value}")   # one line, exit status 2
    if args.processes > 1 and (args.backend != "numpy" or args.crosscheck):
        p.error("--processes is for timing on the CPU, without --crosscheck")
    return args


ARGS = parse_args()
# One of the --processes ranks (started again under python -m minigan.launch)?
LAUNCHED = "MINIGAN_WORLD_SIZE" in os.environ
# Thread counts must be set before NumPy (and its BLAS) is imported: each rank gets its share.
BLAS_THREADS = max(1, ARGS.threads // ARGS.processes) if LAUNCHED else ARGS.threads
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(BLAS_THREADS)

import importlib.util  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy  # noqa: E402

from minigan.backend import to_device, use_backend  # noqa: E402
from minigan.distributed import SINGLE_PROCESS, join_world  # noqa: E402
from minigan.metrics.frechet import frechet_distance  # noqa: E402
from minigan.metrics.gan_eval import on_shares  # noqa: E402
from minigan.metrics.inception import FIDInceptionV3  # noqa: E402
from minigan.metrics.inception_eval import InceptionScorer, export_samples  # noqa: E402
from minigan.metrics.inception_weights import load_fid_weights, random_fid_weights  # noqa: E402
from minigan.metrics.statistics import feature_statistics  # noqa: E402


def random_weights(seed: int) -> dict[str, numpy.ndarray]:
    """He-scaled uniform weights and plausible batch norm statistics (see the parity tests)."""
    return random_fid_weights(seed)


def time_scoring(net: FIDInceptionV3) -> float:
    """Seconds per image over --num-images images (after one untimed warm-up batch)."""
    rng = numpy.random.default_rng(ARGS.seed)
    images = rng.uniform(-1, 1, (ARGS.num_images, 3, 32, 32)).astype(numpy.float32)
    x = to_device(images)
    scorer = InceptionScorer(net, ARGS.batch_size)
    scorer.pool3_and_probabilities(x[:ARGS.batch_size])             # warm-up
    WORLD.barrier()                     # with --processes: every rank starts together
    start = time.perf_counter()
    # Each rank scores its share and the features are put together on every rank, as
    # evaluate.py --processes does (one process: all the images here).
    on_shares(WORLD, lambda share: scorer.pool3_and_probabilities(share, WORLD.is_root), x)
    if ARGS.backend == "cupy":
        import cupy

        cupy.cuda.Device().synchronize()
    WORLD.barrier()                     # done when the slowest rank is
    return (time.perf_counter() - start) / ARGS.num_images


HERE = os.path.dirname(os.path.abspath(__file__))
WORLD = SINGLE_PROCESS   # the ranks of --processes, set in main()


def torch_alone_seconds() -> float:
    """PyTorch's seconds per image, timed by ``torch_inception.py`` in a fresh process of its
    own with the same threads, images, batch size and seed."""
    command = [sys.executable, os.path.join(HERE, "torch_inception.py"),
               "--threads", str(ARGS.threads), "--num-images", str(ARGS.num_images),
               "--batch-size", str(ARGS.batch_size), "--seed", str(ARGS.seed)]
    from machine import last_json_line, output_of  # beside this script (main puts it on the path)

    output = output_of(command, "PyTorch's Inception in its own process")
    return last_json_line(output)["seconds_per_image"]


def alone_rounds(net: FIDInceptionV3) -> tuple[list[float], list[float]]:
    """``--rounds`` rounds of (minigan's seconds per image in this process, PyTorch's in a
    fresh one). Run before anything imports PyTorch here (``--crosscheck`` does, later), so
    that minigan's process is as a user's."""
    ours, theirs = [], []
    for _ in range(ARGS.rounds):
        ours.append(time_scoring(net))
        if not WORLD.is_root:           # rank 0 alone starts PyTorch; the others wait for it
            theirs.append(1.0)          # at the next round's barrier
            continue
        theirs.append(torch_alone_seconds())
        print(f"  round {len(ours)}: minigan {ours[-1]:.3f} s per image, PyTorch in a fresh "
              f"process {theirs[-1]:.3f} s; minigan / PyTorch = {ours[-1] / theirs[-1]:.2f}x",
              flush=True)
    return ours, theirs


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
    global WORLD
    if ARGS.processes > 1 and not LAUNCHED:   # this script again, as the ranks
        from minigan.launch import launch

        return launch(ARGS.processes, os.path.abspath(__file__), sys.argv[1:])
    WORLD = join_world() if LAUNCHED else SINGLE_PROCESS
    if not WORLD.is_root:
        sys.stdout = open(os.devnull, "w")
    if ARGS.crosscheck:
        if not all(importlib.util.find_spec(m) for m in ("torch", "pytorch_fid")):
            print("error: --crosscheck needs torch and pytorch-fid (pip install pytorch-fid)",
                  file=sys.stderr)
            return 2
    sys.path.insert(0, HERE)   # machine.py, beside this script
    import machine

    use_backend(ARGS.backend)
    state = random_weights(ARGS.seed)
    net = load_fid_weights(FIDInceptionV3(), state).to(dtype=numpy.float32)
    with_torch = not ARGS.no_torch and ARGS.backend == "numpy" and machine.torch_installed()
    print("\n".join(machine.describe(with_torch)))
    if WORLD.size > 1:
        print(f"minigan: {WORLD.size} processes with {BLAS_THREADS} BLAS thread(s) each, each "
              f"scoring 1/{WORLD.size} of the images; PyTorch: {ARGS.threads} thread(s)")
    print(f"backend {ARGS.backend}, {ARGS.threads} thread(s); {ARGS.num_images} images "
          f"(32x32 -> 299x299, float32, batch {ARGS.batch_size}), seed {ARGS.seed}")
    if not ARGS.no_torch and not with_torch:
        print("no PyTorch times: " + ("PyTorch is compared on the CPU only" if
                                      ARGS.backend != "numpy" else
                                      "PyTorch is not installed (`pip install torch` to "
                                      "compare; it is never a dependency of minigan)"))
    if with_torch:
        where = (f"as {WORLD.size} processes" if WORLD.size > 1 else
                 "in this process before PyTorch was loaded")
        print(f"alone, as users run it ({ARGS.rounds} rounds): minigan {where}, PyTorch "
              f"(torch_inception.py) in a fresh process each round")
        ours, theirs = alone_rounds(net)
        ratios = [o / t for o, t in zip(ours, theirs)]
        print(f"  medians of the rounds: minigan {statistics.median(ours):.3f} s per image, "
              f"PyTorch {statistics.median(theirs):.3f} s; median of the rounds' ratios "
              f"minigan / PyTorch = {statistics.median(ratios):.2f}x")
        seconds = statistics.median(ours)
    else:
        seconds = time_scoring(net)
    print(f"minigan: {seconds:.3f} s per image"
          + (f" (median of {ARGS.rounds} rounds)" if with_torch else "")
          + f"; extrapolated to 10,000 images: {seconds * 10000 / 3600:.2f} h "
          f"({seconds * 10000 / 60:.0f} min)")
    if ARGS.crosscheck:
        crosscheck(net, state)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as error:   # PyTorch's process failed
        sys.exit(f"error: {error}")
