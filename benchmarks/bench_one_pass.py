"""The training step as the lesson writes it against the one-pass step a GPU runs.

    python benchmarks/bench_one_pass.py                        # NumPy, conv_dim 32, batch 128
    python benchmarks/bench_one_pass.py --repeats 30 --threads 1
    python benchmarks/bench_one_pass.py --backend cupy         # on an NVIDIA GPU

``step.train_step`` runs G on each fake batch and D on the real and the fake batch of each
update in separate calls; ``one_pass.train_step`` (``minigan/gan/one_pass.py``) runs G once for
all the fake batches and D once per update, with batch norm's statistics kept per batch. A step
takes the one pass on a GPU only. This prints, for the SVHN DCGAN at ``--conv-dim``, the array
operations of each way's step (kernel launches on a GPU, counted on NumPy) and its
milliseconds, timed in turns (one step each way, and again), so that both see the same load: the
median and the minimum over ``--repeats`` turns. Both ways start from the same weights. Speed is
measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
# BLAS reads its thread count when NumPy is first imported (minigan imports it): set it first.
_threads = argparse.ArgumentParser(add_help=False)
_threads.add_argument("--threads", default="2")
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = str(_threads.parse_known_args()[0].threads)

import numpy  # noqa: E402
from machine import describe  # noqa: E402

from minigan.backend import (  # noqa: E402
    array_module,
    manual_seed,
    to_device,
    use_backend,
)
from minigan.gan import step  # noqa: E402
from minigan.gan.dcgan import Discriminator, Generator, dcgan_init  # noqa: E402
from minigan.gan.one_pass import one_pass_step  # noqa: E402
from minigan.gan.trainer import GANTrainer  # noqa: E402
from minigan.opcount import count_array_ops  # noqa: E402
from minigan.scripts import OneLineParser, int_argument  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    p.add_argument("--conv-dim", type=int_argument, default=32)
    p.add_argument("--batch-size", type=int_argument, default=128)
    p.add_argument("--repeats", type=int_argument, default=20, help="turns")
    p.add_argument("--threads", type=int_argument, default=2, help="BLAS threads")
    return p.parse_args(argv)


def make_step(conv_dim: int, batch: int, one_pass: bool, folder: str):
    """``GANTrainer.train_step`` of the SVHN DCGAN, the lesson's way or in one pass, as a
    function of no arguments."""
    manual_seed(0)
    G = dcgan_init(Generator(z_size=100, conv_dim=conv_dim))
    D = dcgan_init(Discriminator(conv_dim=conv_dim))
    trainer = GANTrainer(G, D, None, step.TrainConfig(), folder)
    real = to_device(numpy.random.default_rng(0).uniform(-1, 1, (batch, 3, 32, 32)), "float32")

    def one_step():
        with one_pass_step(one_pass):
            trainer.train_step(real)
    return one_step


def synchronize() -> None:
    xp = array_module()
    if xp is not numpy:
        xp.cuda.Stream.null.synchronize()


def operations(conv_dim: int, one_pass: bool, folder: str) -> int:
    """Array operations of one step (after a first one), counted on NumPy."""
    with count_array_ops() as counter:
        one_step = make_step(conv_dim, 4, one_pass, folder)   # not depending on the batch
        one_step()
        counter.reset()
        one_step()
    return counter.total


def main(argv=None) -> int:
    args = parse_args(argv)
    for line in describe():
        print(line)
    folder = tempfile.mkdtemp()      # the trainers' run folder: nothing is written there
    counts = {way: operations(args.conv_dim, way == "one pass", folder)
              for way in ("lesson's", "one pass")}
    use_backend(args.backend)
    updates = {way: make_step(args.conv_dim, args.batch_size, way == "one pass", folder)
               for way in counts}
    times: dict[str, list[float]] = {way: [] for way in updates}
    for update in updates.values():       # first calls: buffers, compiled kernels
        update()
    synchronize()
    for _ in range(args.repeats):
        for way, update in updates.items():
            start = time.perf_counter()
            update()
            synchronize()
            times[way].append(1000 * (time.perf_counter() - start))
    print(f"training step, SVHN DCGAN conv_dim {args.conv_dim}, batch {args.batch_size}, "
          f"{args.backend}, {args.threads} BLAS threads, {args.repeats} turns:")
    for way, ms in times.items():
        print(f"  {way:<11} {statistics.median(ms):8.2f} ms median, {min(ms):8.2f} ms min, "
              f"{counts[way]:4d} array operations")
    ratio = statistics.median(times["one pass"]) / statistics.median(times["lesson's"])
    print(f"  one pass / the lesson's: {ratio:.2f}x (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
