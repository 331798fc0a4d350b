"""Images per second of data-parallel DCGAN training on 1, 2, ... processes, and what the
gradient allreduce costs.

    python benchmarks/bench_distributed.py                         # 1 process, all cores
    python -m minigan.launch -n 2 benchmarks/bench_distributed.py  # 2 processes, shared memory
    mpiexec -n 2 python benchmarks/bench_distributed.py            # 2 processes over MPI
    mpiexec -n 2 python benchmarks/bench_distributed.py --no-sync-batch-norm
    python benchmarks/bench_distributed.py --help                  # every option and its default

A step is ``GANTrainer.train_step`` on the SVHN model with a batch of ``--batch-size`` images
for all processes together (each takes batch-size / N), exactly as
``examples/train_svhn.py --distributed`` runs it. The script prints, on rank 0:

* the median milliseconds per step and the images per second of all processes together;
* the CPU time all processes together spent per step (``time.process_time``, BLAS threads and
  MPI's busy waiting included): on a machine shared with other work, wall time says mostly how
  much of the CPU the run was given, and CPU time per image how efficiently it used it;
* the time of ``World.average_gradients`` alone for G and for D (the one allreduce per
  optimizer step) and its size in MB;
* the latency (a 1-number allreduce) and bandwidth (a 64 MB allreduce) that the processes'
  link achieves here (MPI, or the shared memory of ``python -m minigan.launch``), the two
  numbers of the cost model in docs/distributed.md.

Threads: each process gets (cores it may use) / (processes) BLAS threads unless ``--threads``
says otherwise; more threads than cores makes the processes fight over them.
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS threads per process (default: usable cores / processes)")
    p.add_argument("--conv-dim", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=128,
                   help="images per step, all processes together")
    p.add_argument("--z-size", type=int, default=100)
    p.add_argument("--repeats", type=int, default=10, help="timed steps (the median is shown)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--sync-batch-norm", action=argparse.BooleanOptionalAction, default=True,
                   help="batch-norm statistics over all processes' images")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


ARGS = parse_args()
LOAD_BEFORE = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
# The number of processes must be known before NumPy starts its BLAS threads: from the launcher's
# environment, or from MPI (mpi4py does not import NumPy).
LAUNCHED = "MINIGAN_WORLD_SIZE" in os.environ
MPI = None
if LAUNCHED:
    RANKS = int(os.environ["MINIGAN_WORLD_SIZE"])
else:
    try:
        from mpi4py import MPI
        RANKS = MPI.COMM_WORLD.Get_size()
    except ImportError:
        RANKS = 1
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
THREADS = ARGS.threads or max(1, CORES // RANKS)
# Thread counts must be set before NumPy (and its BLAS) is imported.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(THREADS)

import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy  # noqa: E402

from minigan.backend import make_rng, manual_seed, to_device, use_backend  # noqa: E402
from minigan.distributed import SINGLE_PROCESS, World, join_world  # noqa: E402
from minigan.gan.dcgan import Discriminator, Generator, dcgan_init  # noqa: E402
from minigan.gan.trainer import GANTrainer, TrainConfig  # noqa: E402
from minigan.nn.sync_batchnorm import convert_sync_batch_norm  # noqa: E402
from minigan.progress import tqdm  # noqa: E402


def median_ms(world: World, work, repeats: int, warmup: int, desc: str = "",
              cpu: list | None = None) -> float:
    """Median wall time of ``work()`` in ms, every rank starting together (a barrier first).
    ``cpu`` (optional) receives the median CPU ms per call of all ranks together."""
    times, cpu_times = [], []
    for i in tqdm(range(warmup + repeats), desc=desc, disable=not (desc and world.is_root),
                  leave=False):
        world.barrier()
        started, cpu_started = time.perf_counter(), time.process_time()
        work()
        world.barrier()          # a step is over when the slowest rank is done
        if i >= warmup:
            times.append(1000 * (time.perf_counter() - started))
            cpu_times.append(1000 * (time.process_time() - cpu_started))
    if cpu is not None:
        cpu.append(statistics.median(world.mean(cpu_times)) * world.size)   # all ranks' sum
    return statistics.median(times)


def mpi_latency_and_bandwidth(world: World) -> tuple[float, float]:
    """(microseconds for a 1-number allreduce, GB/s of algorithm bandwidth for 64 MB)."""
    one = numpy.zeros(1)
    big = numpy.zeros(16 * 2**20, dtype=numpy.float32)    # 64 MB
    latency = median_ms(world, lambda: world.allreduce_sum(one), 200, 20) * 1000
    seconds = median_ms(world, lambda: world.allreduce_sum(big), 5, 1) / 1000
    return latency, big.nbytes / seconds / 1e9


def main() -> None:
    use_backend("numpy")
    world = join_world() if RANKS > 1 else SINGLE_PROCESS
    if ARGS.batch_size % world.size:
        sys.exit(f"error: --batch-size {ARGS.batch_size} must be a multiple of {world.size}")
    manual_seed(ARGS.seed)
    G = dcgan_init(Generator(ARGS.z_size, ARGS.conv_dim))
    D = dcgan_init(Discriminator(ARGS.conv_dim))
    if ARGS.sync_batch_norm:
        G, D = convert_sync_batch_norm(G, world), convert_sync_batch_norm(D, world)
    with tempfile.TemporaryDirectory() as out:
        trainer = GANTrainer(G, D, loader=None, out_dir=out, world=world,
                             config=TrainConfig(z_size=ARGS.z_size, seed=ARGS.seed))
        share = ARGS.batch_size // world.size
        pixels = make_rng([ARGS.seed, world.rank]).uniform(-1, 1, (share, 3, 32, 32))
        real = to_device(pixels.astype(numpy.float32))
        cpu_ms: list[float] = []
        step_ms = median_ms(world, lambda: trainer.train_step(real), ARGS.repeats, ARGS.warmup,
                            desc=f"{world.size} process(es), {THREADS} thread(s) each",
                            cpu=cpu_ms)
    allreduce_ms = {name: median_ms(world, lambda net=net: world.average_gradients(
        net.parameters()), 20, 3) for name, net in (("G", G), ("D", D))}
    sizes = {name: sum(p.size for p in net.parameters()) for name, net in (("G", G), ("D", D))}
    latency, bandwidth = mpi_latency_and_bandwidth(world) if world.size > 1 else (0.0, 0.0)
    if not world.is_root:
        return
    mpi = ("none: shared memory (python -m minigan.launch)" if LAUNCHED else
           MPI.Get_library_version().splitlines()[0].strip() if MPI else "none")
    print(f"{platform.processor() or platform.machine()}, {CORES} usable cores; NumPy "
          f"{numpy.__version__}; MPI: {' '.join(mpi.split())}")
    print(f"processes {world.size}, threads each {THREADS}, batch {ARGS.batch_size} "
          f"({share} per process), conv_dim {ARGS.conv_dim}, sync batch norm "
          f"{'on' if ARGS.sync_batch_norm else 'off'}")
    print(f"step: {step_ms:.1f} ms median of {ARGS.repeats} -> "
          f"{ARGS.batch_size / step_ms * 1000:.0f} images/s; CPU {cpu_ms[0]:.0f} ms per step, "
          f"{cpu_ms[0] / ARGS.batch_size:.2f} ms per image (all processes)")
    print(f"load average before this run: {LOAD_BEFORE}")
    for name in ("G", "D") if world.size > 1 else ():
        print(f"gradient allreduce of {name}: {sizes[name] / 1e6:.2f} M parameters, "
              f"{sizes[name] * 4 / 2**20:.2f} MiB float32, {allreduce_ms[name]:.2f} ms")
    if world.size > 1:
        print(f"allreduce here: latency {latency:.1f} us (1 number), bandwidth "
              f"{bandwidth:.2f} GB/s (64 MB)")


if __name__ == "__main__":
    main()
