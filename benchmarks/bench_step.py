"""Time one DCGAN training step (the SVHN model) and break it down by kind of op.

    python benchmarks/bench_step.py                       # NumPy, conv_dim 32 and 64, 2 threads
    python benchmarks/bench_step.py --backend cupy        # on an NVIDIA GPU
    python benchmarks/bench_step.py --conv-dim 32 --threads 1 --repeats 20
    python benchmarks/bench_step.py --conv-dim 32 --processes 2   # minigan as 2 processes

A step is exactly ``GANTrainer.train_step``: D on a real and a fake batch, one Adam step for D,
then G through D with flipped labels and one Adam step for G. With NumPy and two BLAS threads
(``--threads 2``, the default) that is the split step, each half of the batch in a thread of its
own (``minigan/gan/split_step.py``); the rounds below also time the one-thread step it replaces.
For each model size it prints, in this order and from separate passes, so that measuring one
thing does not slow another:

1. the median milliseconds per step, with nothing instrumented, the achieved GFLOP/s of the
   matrix work, and the peak memory;
2. the array operations per step (each one a kernel launch on a GPU), counted on NumPy by
   ``minigan.opcount``, and the host reads (each one a wait for the GPU): of the step a GPU
   runs (``minigan/gan/one_pass.py``), and of the lesson's, which the CPU runs;
3. where the time and the operations go, by kind of op, from a pass with every layer's kernel
   calls wrapped in a timer (which synchronises the GPU around each call), and the time of every
   matrix product in the step together, with the rate it makes the step's GFLOP at: what is
   left is copies, element-wise passes and Python. This pass runs the one-thread step: timers
   cannot share out the time of two threads running at once.

If PyTorch is installed (it is never a dependency), the same model and step
(``torch_dcgan.py``) are timed in PyTorch too, two ways, and the ratio to each is printed:

* **alone, as users run it**: PyTorch in a fresh process of its own (``torch_dcgan.py`` run as a
  script) and minigan in this process before PyTorch is loaded, in ``--rounds`` alternating
  rounds (the median of the rounds' medians). This is the comparison to quote;
* **in turns in this process**: a few minigan steps, a few PyTorch steps, and so on, so that
  both see the same noise from the rest of the machine (the first step of each turn untimed:
  the other library's threads are still spinning then; one step each in turns made PyTorch's
  step about twice as slow, which was most of the "PyTorch runs 30% slower in minigan's
  process" of issue 23; ``--steps-per-turn 1`` times it that way). PyTorch then also gets
  the host-memory setting that minigan's NumPy backend turns on (``cache_host_memory``): a
  steadier ratio on a busy machine, but not the one users see.

With ``--processes N`` (N > 1), the first comparison times minigan's step as users run
``examples/train_svhn.py --processes N``: N processes of one data-parallel run on this machine
(``python -m minigan.launch -n N benchmarks/bench_distributed.py``, each with ``--threads / N``
BLAS threads, at least 1), against PyTorch alone with ``--threads`` threads; everything else is
timed in this one process, as without it.

On a GPU, only the second is measured, with PyTorch's TF32 matrix products switched off so that
both sides multiply in float32. The first lines printed say what the machine is: the CPU model,
its vector instructions (AVX2 or AVX-512), the BLAS kernels NumPy's OpenBLAS chose, and the
thread and kernel variables set (``OPENBLAS_CORETYPE`` among them: it overrides OpenBLAS's
choice of kernels).
Speed is measured here, never asserted in tests: shared machines are noisy.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--backend", choices=("numpy", "cupy"), default="numpy",
                   help="where minigan runs")
    p.add_argument("--threads", type=int, default=2, help="BLAS / PyTorch threads (CPU only)")
    p.add_argument("--conv-dim", type=int, nargs="+", default=[32, 64],
                   help="model sizes to time, one after the other")
    p.add_argument("--batch-size", type=int, default=128, help="images per step")
    p.add_argument("--z-size", type=int, default=100, help="latent vector length")
    p.add_argument("--repeats", type=int, default=10, help="timed steps (the median is shown)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--rounds", type=int, default=3,
                   help="alternating rounds of minigan alone and PyTorch in a fresh process")
    p.add_argument("--processes", type=int, default=1,
                   help="time minigan's step alone as N data-parallel processes "
                        "(python -m minigan.launch; CPU only)")
    p.add_argument("--steps-per-turn", type=int, default=5,
                   help="in-process turns: timed steps of one side in a row, after one untimed "
                        "(1: a, b, a, b, ... with no untimed step, as before issue 23's fourth "
                        "round)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--plain-kernels", action="store_true",
                   help="time the plain textbook kernels (minigan.ops.fast_kernels(False))")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and the batches")
    args = p.parse_args(argv)
    for value, what in ((args.repeats, "--repeats"), (args.rounds, "--rounds"),
                        (args.threads, "--threads"), (args.batch_size, "--batch-size"),
                        (args.processes, "--processes"), (args.steps_per_turn, "--steps-per-turn"),
                        (args.z_size, "--z-size"), (min(args.conv_dim), "--conv-dim")):
        if value < 1:
            p.error(f"{what} must be at least 1, got {value}")   # one line, exit status 2
    if args.processes > 1 and args.backend != "numpy":
        p.error("--processes shares a CPU's cores out: with --backend cupy leave it at 1")
    if args.batch_size % args.processes:
        p.error(f"--batch-size {args.batch_size} must be a multiple of --processes "
                f"{args.processes}")
    if args.warmup < 0:
        p.error(f"--warmup must be 0 or more, got {args.warmup}")
    return args


ARGS = parse_args()
# Thread counts must be set before NumPy (and its BLAS) is imported.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import re  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections import defaultdict  # noqa: E402

import numpy  # noqa: E402

import minigan.nn.batchnorm  # noqa: E402
import minigan.ops  # noqa: E402
import minigan.ops.conv2d  # noqa: E402
import minigan.ops.conv_transpose2d  # noqa: E402
import minigan.ops.subpixel  # noqa: E402
from minigan.backend import (  # noqa: E402
    BackendError,
    array_module,
    backend_name,
    manual_seed,
    to_device,
    use_backend,
)
from minigan.gan.dcgan import Discriminator, Generator, dcgan_init  # noqa: E402
from minigan.gan.one_pass import one_pass_step  # noqa: E402
from minigan.gan.split_step import SplitStep, split_across_threads  # noqa: E402
from minigan.gan.trainer import GANTrainer, TrainConfig  # noqa: E402
from minigan.opcount import OpCounter, count_array_ops  # noqa: E402
from minigan.optim import FlatAdam  # noqa: E402

# ---------------------------------------------------------------- timing each kind of op
# Each entry: (kind, function name in ``minigan.ops``). The layers look the kernels up there at
# call time, so wrapping the name in that namespace times every call the layers make, without
# touching the kernels.
INSTRUMENTED = [
    ("conv", "conv2d_forward"), ("conv", "conv2d_backward"),
    ("transposed conv", "conv_transpose2d_forward"),
    ("transposed conv", "conv_transpose2d_backward"),
    ("batch norm", "batch_norm_train_forward"), ("batch norm", "batch_norm_forward"),
    ("batch norm", "batch_norm_backward"), ("batch norm", "update_running_stats"),
    ("linear", "linear_forward"), ("linear", "linear_backward"),
    ("loss", "bce_with_logits_forward"), ("loss", "bce_with_logits_backward"),
] + [("activations", f"{name}_{d}")
     for name in ("relu", "leaky_relu", "tanh") for d in ("forward", "backward")]
# A batch norm and the activation after it run as one pair (``BatchNorm.forward_with`` and
# ``input_grad_with``), whose kernels the layer finds in its own module: timed as batch norm,
# the activation's share included.
PAIR_KERNELS = [(minigan.nn.batchnorm, f"batch_norm_{name}")
                for name in ("activation_train_forward_fast", "backward_through_slope_fast",
                             "activation_train_forward_by_groups",
                             "backward_through_slope_by_groups")]
# Patch copies (im2col's windows, layout changes) happen inside the conv kernels: timed
# separately, reported as part of the conv times.
PATCH_COPIES = [(module, name)
                for module in (minigan.ops.conv2d, minigan.ops.conv_transpose2d,
                               minigan.ops.subpixel)
                for name in ("im2col", "col2im", "to_rows")
                if hasattr(module, name)]

times: dict[str, float] = defaultdict(float)
ops: dict[str, int] = defaultdict(int)      # array operations by kind, while counting
counting: list[OpCounter] = []              # the active counter, if any
originals: list[tuple] = []                 # (owner, name, function) to restore
active: set[str] = set()                    # kinds whose timed call is running now


def synchronize() -> None:
    if ARGS.backend == "cupy":
        array_module().cuda.Stream.null.synchronize()


def wrap(kind: str, owner, name: str) -> None:
    """Replace ``owner.name`` by a version that adds its run time to ``times[kind]`` and, while
    operations are counted, their number to ``ops[kind]``."""
    original = getattr(owner, name)
    originals.append((owner, name, original))

    # functools.wraps: the fast batch-norm forward checks (inspect.unwrap) that the library's
    # own kernels are in place, and a timer around them must not send it down another path.
    @functools.wraps(original)
    def timed(*args, **kwargs):
        if kind in active:   # inside a call of the same kind (batch_norm_train_forward's parts)
            return original(*args, **kwargs)
        active.add(kind)
        try:
            return _timed_call(kind, original, args, kwargs)
        finally:
            active.discard(kind)

    setattr(owner, name, timed)


def _timed_call(kind: str, original, args: tuple, kwargs: dict):
    """``original(*args, **kwargs)``, its time added to ``times[kind]`` and, while operations
    are counted, their number to ``ops[kind]``."""
    synchronize()
    before = counting[0].total if counting else 0
    start = time.perf_counter()
    result = original(*args, **kwargs)
    synchronize()
    times[kind] += time.perf_counter() - start
    if counting:
        ops[kind] += counting[0].total - before
    return result


def instrument() -> None:
    for kind, name in INSTRUMENTED:
        wrap(kind, minigan.ops, name)
    for module, name in PAIR_KERNELS:
        wrap("batch norm", module, name)
    for module, name in PATCH_COPIES:
        wrap("patch copies", module, name)
    # Every matrix product, wherever it is called (the kernels look xp.matmul up at each call):
    # the convolutions', the linear layers' and batch norm's column sums.
    wrap("matrix products", array_module(), "matmul")
    wrap("optimizer", FlatAdam, "step")   # the trainer's optimizer
    wrap("optimizer", FlatAdam, "zero_grad")


def uninstrument() -> None:
    while originals:
        owner, name, original = originals.pop()
        setattr(owner, name, original)


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
    and D forward 3x, backward with weights 2x, and backward for the input only once. (The
    lesson's arithmetic: the one-pass step a GPU runs does 2 G forward passes' worth more, its
    G backward pass running over the zero gradient of the D update's fake batch too.)"""
    z = to_device(numpy.zeros((batch, z_size), dtype=numpy.float32))
    g = forward_flops(G, z)
    d = forward_flops(D, G(z))
    return 2 * g + 2 * g + 3 * d + 2 * 2 * d + 1 * d


# ---------------------------------------------------------------- the runs
def interleaved_median_ms(steps: dict, repeats: int, warmup: int) -> dict[str, float]:
    """Median milliseconds per call of each function in ``steps``, timed in turns of
    ``--steps-per-turn`` calls each (a a a a a, b b b b b, a ...), so that both see the same
    noise from the rest of the machine. The first call of each turn is not timed: after its
    last call a side's worker threads go on spinning (OpenBLAS's for up to about 0.1 s, the
    OpenMP team's less), and the other side's next call would share the cores with them.
    (``--steps-per-turn 1``: a, b, a, b, ..., every call timed.)"""
    block = ARGS.steps_per_turn
    for step in steps.values():
        for _ in range(warmup):
            step()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    while min(len(s) for s in samples.values()) < repeats:
        for name, step in steps.items():
            if block > 1:
                step()                               # untimed: the other side's threads settle
            for _ in range(min(block, repeats - len(samples[name]))):
                synchronize()
                start = time.perf_counter()
                step()
                synchronize()
                samples[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(s) for name, s in samples.items()}


def minigan_step(conv_dim: int):
    """The minigan training step of the SVHN DCGAN, and the trainer that runs it."""
    manual_seed(ARGS.seed)
    G = dcgan_init(Generator(ARGS.z_size, conv_dim))
    D = dcgan_init(Discriminator(conv_dim))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = GANTrainer(G, D, None, TrainConfig(z_size=ARGS.z_size), tmp)
    rng = numpy.random.default_rng(ARGS.seed)
    real = to_device(rng.uniform(-1, 1, (ARGS.batch_size, 3, 32, 32)).astype(numpy.float32))
    return (lambda: trainer.train_step(real)), G, D


def instrumented_breakdown(step, repeats: int) -> dict[str, float]:
    """Milliseconds per step by kind of op, from ``repeats`` one-thread steps with every kernel
    call timed on its own (on a GPU each timer synchronises, so these steps run slower than
    untimed ones)."""
    instrument()
    try:
        times.clear()
        with split_across_threads(False):
            for _ in range(repeats):
                step()
    finally:
        uninstrument()
    return {kind: 1000 * seconds / repeats for kind, seconds in times.items()}


def count_operations(conv_dim: int, one_pass: bool) -> tuple[OpCounter, dict[str, int]]:
    """Array operations in one training step (after a first one), counted on NumPy whatever the
    backend: the count models a GPU's kernel launches and does not depend on the device.
    ``one_pass``: each network run once where the lesson runs it several times, as a GPU runs
    the step (minigan/gan/one_pass.py), or the lesson's step, as the CPU runs it."""
    active = backend_name()
    use_backend("numpy")
    try:
        with count_array_ops() as counter, one_pass_step(one_pass):
            step, _, _ = minigan_step(conv_dim)   # built inside: every array is counted
            step()
            counter.reset()
            instrument()
            counting.append(counter)
            try:
                ops.clear()
                step()
            finally:
                counting.clear()
                uninstrument()
    finally:
        use_backend(active)
    return counter, dict(ops)


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


HERE = os.path.dirname(os.path.abspath(__file__))


def torch_alone_ms(conv_dim: int) -> float:
    """PyTorch's median ms per CPU step, timed by ``torch_dcgan.py`` in a fresh process of its
    own, with the same thread variables (set above) as this one."""
    command = [sys.executable, os.path.join(HERE, "torch_dcgan.py"), "--conv-dim", str(conv_dim),
               "--z-size", str(ARGS.z_size), "--batch-size", str(ARGS.batch_size),
               "--threads", str(ARGS.threads), "--repeats", str(ARGS.repeats),
               "--warmup", str(ARGS.warmup), "--seed", str(ARGS.seed)]
    from machine import last_json_line, output_of  # beside this script (main puts it on the path)

    return last_json_line(output_of(command, "PyTorch's step in its own process"))["ms"]


def processes_ms(conv_dim: int) -> float:
    """minigan's median ms per step as ``--processes`` ranks of one run on this machine, timed
    by ``bench_distributed.py`` under ``python -m minigan.launch`` (fresh processes)."""
    threads = max(1, ARGS.threads // ARGS.processes)
    command = [sys.executable, "-m", "minigan.launch", "-n", str(ARGS.processes),
               os.path.join(HERE, "bench_distributed.py"), "--conv-dim", str(conv_dim),
               "--z-size", str(ARGS.z_size), "--batch-size", str(ARGS.batch_size),
               "--threads", str(threads), "--repeats", str(ARGS.repeats),
               "--warmup", str(ARGS.warmup), "--seed", str(ARGS.seed)]
    env = dict(os.environ, **{var: str(threads) for var in
                              ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    from machine import output_of

    what = f"minigan's step in {ARGS.processes} processes"
    found = re.search(r"^step: ([0-9.]+) ms", output_of(command, what, env), re.MULTILINE)
    if found is None:
        raise RuntimeError(f"{what} printed no step time")
    return float(found.group(1))


def alone_rounds(conv_dim: int, with_torch: bool) -> tuple[list[float], list[float],
                                                             list[float]]:
    """``--rounds`` rounds of (minigan's median ms in this process, PyTorch's in a fresh one,
    and, where the step is split across two threads, minigan's one-thread step's median ms).
    Run before anything imports PyTorch here, so that minigan's process is as a user's."""
    from tqdm import tqdm

    step, G, D = minigan_step(conv_dim)
    real = to_device(numpy.zeros((ARGS.batch_size, 3, 32, 32), numpy.float32))
    split = ARGS.processes == 1 and SplitStep().pays(G, D, real)
    ours, theirs, one_thread = [], [], []
    for _ in tqdm(range(ARGS.rounds), desc=f"conv_dim {conv_dim}, alone", unit="round",
                  leave=False):
        if ARGS.processes > 1:
            ours.append(processes_ms(conv_dim))
        else:
            ours.append(interleaved_median_ms({"minigan": step}, ARGS.repeats,
                                              ARGS.warmup)["minigan"])
        if with_torch:
            theirs.append(torch_alone_ms(conv_dim))
        if split:
            with split_across_threads(False):
                one_thread.append(interleaved_median_ms({"minigan": step}, ARGS.repeats,
                                                        ARGS.warmup)["minigan"])
    return ours, theirs, one_thread


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
    if device == "cuda":   # TF32 would multiply in 10-bit precision: not the work minigan does
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(ARGS.threads)
    step = make_torch_step(conv_dim, ARGS.z_size, ARGS.batch_size, device)

    def timed_step():
        step()
        if device == "cuda":
            torch.cuda.synchronize()

    return timed_step


def back_to_back_ms(step, repeats: int) -> float:
    """Milliseconds per step over ``repeats`` steps in a row with one synchronisation at the
    end: the rate a training run goes at. On a GPU it is below the per-step median, which
    waits for each step's last kernel (the host queues the next step's launches while the GPU
    still runs the last ones, and a step makes no host reads that would stop it)."""
    step()
    synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    synchronize()
    return 1000 * (time.perf_counter() - start) / repeats


def bench(conv_dim: int, with_torch: bool) -> dict:
    step, G, D = minigan_step(conv_dim)
    steps = {"minigan": step}
    other = torch_step(conv_dim) if with_torch else None
    if other is not None:
        steps["torch"] = other
    ms = interleaved_median_ms(steps, ARGS.repeats, ARGS.warmup)   # nothing instrumented
    counter, ops_by_kind = count_operations(conv_dim, one_pass=True)
    counter_cpu, _ = count_operations(conv_dim, one_pass=False)
    return {"ms": ms["minigan"], "torch_ms": ms.get("torch"),
            "back_to_back_ms": back_to_back_ms(step, ARGS.repeats),
            "breakdown": instrumented_breakdown(step, ARGS.repeats),
            "gflop": step_flops(G, D, ARGS.batch_size, ARGS.z_size) / 1e9,
            "peak_mb": peak_memory_mb(step), "counter": counter, "ops": ops_by_kind,
            "counter_cpu": counter_cpu}


def print_ratio(label: str, ours: float, theirs: float | None) -> None:
    if theirs is not None:
        print(f"  {label}: minigan {ours:.1f} ms, PyTorch eager {theirs:.1f} ms; "
              f"ratio minigan / PyTorch = {ours / theirs:.2f}x")


def rounds_text(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def main() -> None:
    sys.path.insert(0, HERE)   # machine.py and torch_dcgan.py, beside this script
    import machine

    use_backend(ARGS.backend)
    minigan.ops.use_fast_kernels(not ARGS.plain_kernels)
    with_torch = not ARGS.no_torch and machine.torch_installed()
    print("\n".join(machine.describe(with_torch)))
    print(f"backend {ARGS.backend}, {ARGS.threads} threads; "
          f"{'plain' if ARGS.plain_kernels else 'fast'} kernels; batch {ARGS.batch_size}, "
          f"z {ARGS.z_size}; medians of {ARGS.repeats} steps")
    if not ARGS.no_torch and not with_torch:
        print("PyTorch is not installed: no PyTorch times (`pip install torch` to compare; "
              "it is never a dependency of minigan)")
    if ARGS.backend == "cupy" and with_torch:
        print("PyTorch on CUDA: TF32 switched off (allow_tf32 = False), float32 like minigan")
    alone = {}
    if ARGS.processes > 1:
        print(f"minigan alone: {ARGS.processes} processes with "
              f"{max(1, ARGS.threads // ARGS.processes)} BLAS thread(s) each")
    if ARGS.backend == "numpy":   # before anything loads PyTorch into this process
        for conv_dim in ARGS.conv_dim:
            alone[conv_dim] = alone_rounds(conv_dim, with_torch)
    kinds = ["conv", "patch copies", "transposed conv", "batch norm", "activations", "linear",
             "loss", "optimizer"]
    parts = ("patch copies", "matrix products")   # timed inside the rows of the kinds above
    for conv_dim in ARGS.conv_dim:
        result = bench(conv_dim, with_torch)
        torch_ms = result["torch_ms"]
        print(f"\nconv_dim {conv_dim}: minigan {result['ms']:.1f} ms/step, "
              f"{result['gflop']:.2f} GFLOP/step -> {result['gflop'] / result['ms'] * 1e3:.0f} "
              f"GFLOP/s, peak memory {result['peak_mb']:.0f} MiB")
        if conv_dim in alone:
            ours, theirs, one_thread = alone[conv_dim]
            where = (f"as {ARGS.processes} processes (python -m minigan.launch)"
                     if ARGS.processes > 1 else "in this process"
                     + (" before PyTorch was loaded" if theirs else ""))
            print(f"  alone, as users run it ({ARGS.rounds} rounds): minigan {where}"
                  + f": {rounds_text(ours)} ms"
                  + (f"; PyTorch in a fresh process: {rounds_text(theirs)} ms" if theirs
                     else ""))
            print_ratio("alone, medians of the rounds", statistics.median(ours),
                        statistics.median(theirs) if theirs else None)
            if theirs:   # each round's two runs are a minute apart at most: less drift
                ratios = [o / t for o, t in zip(ours, theirs)]
                print(f"  alone, each round's ratio: "
                      f"{', '.join(f'{r:.2f}x' for r in ratios)}; their median "
                      f"{statistics.median(ratios):.2f}x")
            if one_thread:
                gains = [o / s for o, s in zip(one_thread, ours)]
                print(f"  the step above is split across two threads (split_step.py); the "
                      f"one-thread step in the same rounds: {rounds_text(one_thread)} ms, "
                      f"{statistics.median(gains):.2f}x slower (median of the rounds' ratios: "
                      f"{', '.join(f'{g:.2f}x' for g in gains)})")
        print_ratio("in turns in this process", result["ms"], torch_ms)
        print(f"  back to back ({ARGS.repeats} steps, one synchronisation at the end, the rate "
              f"a training run goes at): minigan {result['back_to_back_ms']:.1f} ms/step")
        counter = result["counter"]
        common = ", ".join(f"{name} {n}" for name, n in counter.by_name.most_common(6))
        print(f"  array operations per step: {counter.total} (kernel launches on a GPU; counted "
              f"on NumPy), host reads per step: {counter.host_reads}; most frequent: {common}")
        print(f"  (the CPU runs the lesson's step, without one_pass.py: "
              f"{result['counter_cpu'].total} operations as a GPU would launch them; the CPU "
              f"takes a few more, where its fastest input gradient is not the one with the "
              f"fewest operations: minigan/ops/input_grad_fast.py)")
        total = sum(v for k, v in result["breakdown"].items() if k not in parts)
        print("  where the time and the operations go, from a separate pass with each kernel "
              "call timed\n  (ms per step, of the one-thread step; operations as a GPU "
              "runs it; patch copies are part of the conv rows;\n  batch norm includes the "
              "activations it runs with it):")
        for kind in kinds:
            value = result["breakdown"].get(kind, 0.0)
            print(f"    {kind:<16} {value:7.1f} ms {100 * value / max(total, 1e-9):5.1f}%  "
                  f"{result['ops'].get(kind, 0):4d} ops")
        print(f"    {'sum':<16} {total:7.1f} ms         "
              f"{sum(v for k, v in result['ops'].items() if k not in parts):4d} ops  "
              f"(the rest of a step is Python, bookkeeping and the trainer's own operations)")
        products = result["breakdown"].get("matrix products", 0.0)
        print(f"    of which every matrix product (xp.matmul, wherever called): {products:.1f} ms, "
              f"{result['ops'].get('matrix products', 0)} ops, "
              f"{result['gflop'] / max(products, 1e-9) * 1e3:.0f} GFLOP/s")


if __name__ == "__main__":
    try:
        main()
    except (BackendError, RuntimeError) as error:   # no GPU, PyTorch's process failed...
        sys.exit(f"error: {error}")
    except KeyboardInterrupt:
        sys.exit(130)
