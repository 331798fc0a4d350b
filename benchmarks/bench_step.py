"""Time one DCGAN training step (the SVHN model) and break it down by kind of op.

    python benchmarks/bench_step.py                       # NumPy, conv_dim 32 and 64, 2 threads
    python benchmarks/bench_step.py --backend cupy        # on an NVIDIA GPU
    python benchmarks/bench_step.py --conv-dim 32 --threads 1 --repeats 20

A step is exactly ``GANTrainer.train_step``: D on a real and a fake batch, one Adam step for D,
then G through D with flipped labels and one Adam step for G. For each model size it prints the
median milliseconds per step, the share of each kind of op, the achieved GFLOP/s of the matrix
work, and the peak memory. If PyTorch happens to be importable (it is never a dependency), the
same model and step are timed in PyTorch in the same run, in turns with minigan's (so both see
the same noise), and the ratio is printed. Both run in one process, so PyTorch also gets the
host-memory setting that minigan's NumPy backend turns on (``minigan.backend.cache_host_memory``).
Speed is measured here, never asserted in tests: shared machines are noisy.
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
    p.add_argument("--conv-dim", type=int, nargs="+", default=[32, 64])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--z-size", type=int, default=100)
    p.add_argument("--repeats", type=int, default=10, help="timed steps (the median is shown)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--plain-kernels", action="store_true",
                   help="time the plain textbook kernels (minigan.ops.fast_kernels(False))")
    return p.parse_args(argv)


ARGS = parse_args()
# Thread counts must be set before NumPy (and its BLAS) is imported.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections import defaultdict  # noqa: E402

import numpy  # noqa: E402

import minigan.ops  # noqa: E402
import minigan.ops.conv2d  # noqa: E402
import minigan.ops.conv_transpose2d  # noqa: E402
import minigan.ops.subpixel  # noqa: E402
from minigan.backend import array_module, manual_seed, to_device, use_backend  # noqa: E402
from minigan.gan.dcgan import Discriminator, Generator, dcgan_init  # noqa: E402
from minigan.gan.trainer import GANTrainer, TrainConfig  # noqa: E402
from minigan.optim import Adam  # noqa: E402

# ---------------------------------------------------------------- timing each kind of op
# Each entry: (kind, module whose global name the layers call, function name). The layers look
# their kernels up in ``minigan.ops`` at call time, so wrapping the name there times every call
# they make, without touching the kernels.
INSTRUMENTED = [
    ("conv", minigan.ops, "conv2d_forward"),
    ("conv", minigan.ops, "conv2d_backward"),
    ("transposed conv", minigan.ops, "conv_transpose2d_forward"),
    ("transposed conv", minigan.ops, "conv_transpose2d_backward"),
    ("batch norm", minigan.ops, "batch_norm_forward"),
    ("batch norm", minigan.ops, "batch_norm_backward"),
    ("batch norm", minigan.ops, "update_running_stats"),
    ("linear", minigan.ops, "linear_forward"),
    ("linear", minigan.ops, "linear_backward"),
    ("loss", minigan.ops, "bce_with_logits_forward"),
    ("loss", minigan.ops, "bce_with_logits_backward"),
] + [("activations", minigan.ops, f"{name}_{d}")
     for name in ("relu", "leaky_relu", "tanh") for d in ("forward", "backward")]
# Patch copies (im2col's windows, layout changes) happen inside the conv kernels: timed
# separately, reported as part of the conv times.
PATCH_COPIES = [(module, name)
                for module in (minigan.ops.conv2d, minigan.ops.conv_transpose2d,
                               minigan.ops.subpixel)
                for name in ("im2col", "col2im", "to_rows")
                if hasattr(module, name)]

times: dict[str, float] = defaultdict(float)


def synchronize() -> None:
    if ARGS.backend == "cupy":
        array_module().cuda.Stream.null.synchronize()


def wrap(kind: str, owner, name: str) -> None:
    """Replace ``owner.name`` by a version that adds its run time to ``times[kind]``."""
    original = getattr(owner, name)

    def timed(*args, **kwargs):
        synchronize()
        start = time.perf_counter()
        result = original(*args, **kwargs)
        synchronize()
        times[kind] += time.perf_counter() - start
        return result

    setattr(owner, name, timed)


def instrument() -> None:
    for kind, module, name in INSTRUMENTED:
        wrap(kind, module, name)
    for module, name in PATCH_COPIES:
        wrap("patch copies", module, name)
    wrap("Adam", Adam, "step")


# ---------------------------------------------------------------- counting the arithmetic
def forward_flops(net, x) -> float:
    """2 x multiply-adds of the matrix products in one forward pass of ``net`` on ``x``."""
    from minigan.nn import Conv2d, ConvTranspose2d, Linear

    total = 0.0
    for layer in net.layers:
        y = layer(x)
        if isinstance(layer, Conv2d):        # one (N*Ho*Wo, K*K*C) @ (K*K*C, F) product
            total += 2.0 * y.shape[0] * y.shape[2] * y.shape[3] * layer.weight.size
        elif isinstance(layer, ConvTranspose2d):   # (N*H*W, C_in) @ (C_in, K*K*C_out)
            total += 2.0 * x.shape[0] * x.shape[2] * x.shape[3] * layer.weight.size
        elif isinstance(layer, Linear):
            total += 2.0 * x.shape[0] * layer.weight.size
        x = y
    return total


def step_flops(G, D, batch: int, z_size: int) -> float:
    """A training step runs G forward 2x and backward once (dx and dw: 2 products per layer),
    and D forward 3x, backward with weights 2x, and backward for the input only once."""
    z = to_device(numpy.zeros((batch, z_size), dtype=numpy.float32))
    g = forward_flops(G, z)
    d = forward_flops(D, G(z))
    return 2 * g + 2 * g + 3 * d + 2 * 2 * d + 1 * d


# ---------------------------------------------------------------- the runs
def interleaved_median_ms(steps: dict, repeats: int, warmup: int) -> dict[str, float]:
    """Median milliseconds per call of each function in ``steps``, timed in turns (a, b, a, b,
    ...) so that both see the same noise from the rest of the machine. The per-op times of the
    minigan calls are left in ``times``."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times.clear()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            synchronize()
            start = time.perf_counter()
            step()
            synchronize()
            samples[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(s) for name, s in samples.items()}


def minigan_step(conv_dim: int):
    """The minigan training step of the SVHN DCGAN, and the trainer that runs it."""
    manual_seed(0)
    G = dcgan_init(Generator(ARGS.z_size, conv_dim))
    D = dcgan_init(Discriminator(conv_dim))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = GANTrainer(G, D, None, TrainConfig(z_size=ARGS.z_size), tmp)
    rng = numpy.random.default_rng(0)
    real = to_device(rng.uniform(-1, 1, (ARGS.batch_size, 3, 32, 32)).astype(numpy.float32))
    return (lambda: trainer.train_step(real)), G, D


def peak_memory_mb(step) -> float:
    """Peak memory of one more step: NumPy reports its allocations to tracemalloc; CuPy's memory
    pool holds what the step needed."""
    if ARGS.backend == "numpy":
        tracemalloc.start()
        step()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    else:
        peak = array_module().get_default_memory_pool().total_bytes()
    return peak / 2**20


def torch_step(conv_dim: int):
    """The same model and step in PyTorch eager mode, or None if PyTorch is not importable."""
    try:
        import torch
    except ImportError:
        return None
    from torch_dcgan import make_torch_step

    device = "cuda" if ARGS.backend == "cupy" else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        return None
    torch.set_num_threads(ARGS.threads)
    step = make_torch_step(conv_dim, ARGS.z_size, ARGS.batch_size, device)

    def timed_step():
        step()
        if device == "cuda":
            torch.cuda.synchronize()

    return timed_step


def bench(conv_dim: int) -> dict:
    step, G, D = minigan_step(conv_dim)
    steps = {"minigan": step}
    other = None if ARGS.no_torch else torch_step(conv_dim)
    if other is not None:
        steps["torch"] = other
    ms = interleaved_median_ms(steps, ARGS.repeats, ARGS.warmup)
    breakdown = {k: 1000 * v / ARGS.repeats for k, v in times.items()}
    return {"ms": ms["minigan"], "torch_ms": ms.get("torch"), "breakdown": breakdown,
            "gflop": step_flops(G, D, ARGS.batch_size, ARGS.z_size) / 1e9,
            "peak_mb": peak_memory_mb(step)}


def main() -> None:
    use_backend(ARGS.backend)
    minigan.ops.use_fast_kernels(not ARGS.plain_kernels)
    instrument()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"backend {ARGS.backend}, {ARGS.threads} threads; NumPy {numpy.__version__}; "
          f"{'plain' if ARGS.plain_kernels else 'fast'} kernels; "
          f"batch {ARGS.batch_size}, z {ARGS.z_size}; median of {ARGS.repeats} steps")
    kinds = ["conv", "patch copies", "transposed conv", "batch norm", "activations", "linear",
             "loss", "Adam"]
    for conv_dim in ARGS.conv_dim:
        result = bench(conv_dim)
        torch_ms = result["torch_ms"]
        print(f"\nconv_dim {conv_dim}: minigan {result['ms']:.1f} ms/step, "
              f"{result['gflop']:.2f} GFLOP/step -> {result['gflop'] / result['ms'] * 1e3:.0f} "
              f"GFLOP/s, peak memory {result['peak_mb']:.0f} MiB")
        if torch_ms is not None:
            print(f"  PyTorch eager: {torch_ms:.1f} ms/step; ratio minigan / PyTorch = "
                  f"{result['ms'] / torch_ms:.2f}x")
        total = sum(v for k, v in result["breakdown"].items() if k != "patch copies")
        print("  where the time goes (ms per step; patch copies are part of the conv times):")
        for kind in kinds:
            value = result["breakdown"].get(kind, 0.0)
            print(f"    {kind:<16} {value:7.1f}  {100 * value / max(total, 1e-9):5.1f}%")
        print(f"    {'sum':<16} {total:7.1f}  (mean of the timed steps; the rest of a step is "
              f"Python and bookkeeping)")


if __name__ == "__main__":
    main()
