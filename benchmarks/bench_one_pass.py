"""The discriminator's update as the lesson's two passes against one pass on both batches.

    python benchmarks/bench_one_pass.py                        # NumPy, conv_dim 32, batch 128
    python benchmarks/bench_one_pass.py --repeats 30 --threads 1
    python benchmarks/bench_one_pass.py --backend cupy         # on an NVIDIA GPU

``step.d_step`` runs D on the real batch and then on the fake batch; ``one_pass.d_step``
(``minigan/gan/one_pass.py``) runs it once on both, with batch norm's statistics kept per
batch. A step takes the one pass on a GPU only. This prints, for the SVHN DCGAN at
``--conv-dim``, the array operations of each D update (kernel launches on a GPU, counted on
NumPy) and the milliseconds of each, timed in turns (one update each way, and again), so that
both see the same load: the median and the minimum over ``--repeats`` turns. Both ways start
from the same weights and update copies of them. Speed is measured here, never asserted in
tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
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
    make_rng,
    manual_seed,
    to_device,
    use_backend,
)
from minigan.gan import step  # noqa: E402
from minigan.gan.dcgan import Discriminator, Generator, dcgan_init  # noqa: E402
from minigan.gan.one_pass import discriminator_in_one_pass  # noqa: E402
from minigan.latent import sample_z  # noqa: E402
from minigan.opcount import count_array_ops  # noqa: E402
from minigan.optim import FlatAdam  # noqa: E402
from minigan.scripts import OneLineParser, int_argument  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    p.add_argument("--conv-dim", type=int_argument, default=32)
    p.add_argument("--batch-size", type=int_argument, default=128)
    p.add_argument("--repeats", type=int_argument, default=20, help="turns")
    p.add_argument("--threads", type=int_argument, default=2, help="BLAS threads")
    return p.parse_args(argv)


def make_update(conv_dim: int, batch: int, one_pass: bool):
    """A D update of the SVHN DCGAN, two passes or one, as a function of no arguments."""
    manual_seed(0)
    G = dcgan_init(Generator(z_size=100, conv_dim=conv_dim))
    D = dcgan_init(Discriminator(conv_dim=conv_dim))
    opt_d = FlatAdam(D.parameters(), 2e-4, (0.5, 0.999))
    real = to_device(numpy.random.default_rng(0).uniform(-1, 1, (batch, 3, 32, 32)), "float32")
    rng = make_rng(1)
    config = step.TrainConfig()

    def noise(n):
        return to_device(sample_z(n, 100, "uniform", rng), "float32")

    def update():
        with discriminator_in_one_pass(one_pass):
            step.d_step(G, D, opt_d, real, noise, config)
    return update


def synchronize() -> None:
    xp = array_module()
    if xp is not numpy:
        xp.cuda.Stream.null.synchronize()


def operations(conv_dim: int, one_pass: bool) -> int:
    """Array operations of one D update (after a first one), counted on NumPy."""
    with count_array_ops() as counter:
        update = make_update(conv_dim, 4, one_pass)   # the count does not depend on the batch
        update()
        counter.reset()
        update()
    return counter.total


def main(argv=None) -> int:
    args = parse_args(argv)
    for line in describe():
        print(line)
    counts = {way: operations(args.conv_dim, way == "one pass")
              for way in ("two passes", "one pass")}
    use_backend(args.backend)
    updates = {way: make_update(args.conv_dim, args.batch_size, way == "one pass")
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
    print(f"D update, SVHN DCGAN conv_dim {args.conv_dim}, batch {args.batch_size}, "
          f"{args.backend}, {args.threads} BLAS threads, {args.repeats} turns:")
    for way, ms in times.items():
        print(f"  {way:<11} {statistics.median(ms):8.2f} ms median, {min(ms):8.2f} ms min, "
              f"{counts[way]:4d} array operations")
    ratio = statistics.median(times["one pass"]) / statistics.median(times["two passes"])
    print(f"  one pass / two passes: {ratio:.2f}x (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
