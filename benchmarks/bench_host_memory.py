"""The training step with and without freed host memory kept for reuse (minigan/hostmem.py).

    python benchmarks/bench_host_memory.py                 # 3 rounds of 20 steps, 2 threads
    python benchmarks/bench_host_memory.py --rounds 5 --steps 30

By default the C allocator hands each large freed block back to the operating system, and the
next array of that size gets fresh pages that the kernel maps and zeroes one by one (a "minor
page fault" each). ``cache_host_memory`` keeps them instead; ``use_backend("numpy")`` and
``GANTrainer.fit`` call it. The allocator setting is for the whole process and cannot be undone,
so each side runs in a fresh process of its own, the two alternating round by round: for each,
the milliseconds per step (``--steps`` steps after three untimed ones) and the page faults per
step that the operating system counted. SVHN DCGAN, conv_dim 32, batch 128, NumPy. Speed is
measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from minigan.scripts import OneLineParser, int_argument

    p = OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int_argument, default=3, help="processes per side")
    p.add_argument("--steps", type=int_argument, default=20, help="timed steps per process")
    p.add_argument("--threads", type=int_argument, default=2, help="BLAS threads")
    p.add_argument("--child", choices=("kept", "returned"), default=None,
                   help=argparse.SUPPRESS)   # one side's process, started by this script
    return p.parse_args(argv)


def one_side(kept: bool, steps: int) -> dict[str, float]:
    """In this (fresh) process: ms per step and page faults per step, memory kept or not."""
    import resource

    import numpy

    from minigan import hostmem
    from minigan.backend import manual_seed
    from minigan.gan.dcgan import Discriminator, Generator, dcgan_init
    from minigan.gan.trainer import GANTrainer, TrainConfig

    if kept:
        hostmem.cache_host_memory()
    manual_seed(0)
    G, D = dcgan_init(Generator(100, 32)), dcgan_init(Discriminator(32))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = GANTrainer(G, D, None, TrainConfig(), tmp)   # no fit: train_step alone
    real = numpy.random.default_rng(0).uniform(-1, 1, (128, 3, 32, 32)).astype(numpy.float32)
    for _ in range(3):
        trainer.train_step(real)
    before, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    for _ in range(steps):
        trainer.train_step(real)
    seconds = time.perf_counter() - start
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return {"ms": 1000 * seconds / steps, "faults": faults / steps}


def main() -> None:
    args = parse_args()
    if args.child is not None:
        print(json.dumps(one_side(args.child == "kept", args.steps)))
        return
    from machine import describe

    print("\n".join(describe()))
    env = dict(os.environ, PYTHONPATH=str(ROOT),
               **{v: str(args.threads) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                 "MKL_NUM_THREADS")})
    results: dict[str, list[dict[str, float]]] = {"kept": [], "returned": []}
    for _ in range(args.rounds):
        for side in results:   # alternating, so that both sides see the same load
            out = subprocess.run([sys.executable, __file__, "--child", side, "--steps",
                                  str(args.steps)], capture_output=True, text=True, env=env,
                                 check=True).stdout
            results[side].append(json.loads(out.splitlines()[-1]))
    print(f"SVHN DCGAN step, conv_dim 32, batch 128, {args.threads} BLAS threads, "
          f"{args.steps} steps per process, {args.rounds} processes per side:")
    for side, rows in results.items():
        ms = [r["ms"] for r in rows]
        faults = [r["faults"] for r in rows]
        print(f"  freed memory {side:8s}: {', '.join(f'{m:.1f}' for m in ms)} ms/step "
              f"(median {statistics.median(ms):.1f}); page faults per step "
              f"{statistics.median(faults):,.0f}")


if __name__ == "__main__":
    main()
