"""Time each layer of the course DCGAN, forward + backward, in minigan and in PyTorch.

    python benchmarks/bench_layers.py                     # conv_dim 32, batch 128, 2 threads
    python benchmarks/bench_layers.py --rounds 5 --repeats 20
    python benchmarks/bench_layers.py --side minigan      # one side, one process, no table

The layers are those of ``minigan.gan.dcgan`` at conv_dim 32 (the three strided convolutions of
D, the three transposed convolutions of G, a BatchNorm2d on 64-channel 16x16 maps, and a batch
norm with the activation after it as G and D have them, 64 channels at 8x8; NCHW inputs),
without bias, on float32 batches. One call is a forward pass and a
backward pass from a fixed output gradient (minigan: ``layer(x)`` then ``layer.backward(dy)``;
PyTorch: ``module(x).backward(dy)`` with the input's gradient asked for, as in a network).

Each side runs in a fresh process of its own, as a user runs it: the script starts itself with
``--side minigan`` and ``--side torch``, alternating which goes first, for ``--rounds`` rounds.
Each process prints the median of ``--repeats`` calls per layer; the table shows the median of
the rounds and their range. Thread variables are set before NumPy or PyTorch is imported;
``OPENBLAS_CORETYPE``, if set, is passed on unchanged (it chooses OpenBLAS's kernels, e.g.
``Haswell`` for the AVX2 ones on an AVX-512 CPU). Without PyTorch, minigan's column alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--conv-dim", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2, help="BLAS / PyTorch threads")
    p.add_argument("--repeats", type=int, default=15, help="timed calls per layer and process")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls first")
    p.add_argument("--rounds", type=int, default=3, help="fresh processes per side")
    p.add_argument("--seed", type=int, default=0, help="seed of the inputs and gradients")
    p.add_argument("--plain-kernels", action="store_true",
                   help="minigan's plain textbook kernels instead of the fast ones")
    p.add_argument("--side", choices=("minigan", "torch"),
                   help="time one side in this process and print JSON (what the rounds run)")
    return p.parse_args(argv)


def layers(conv_dim: int) -> list[tuple[str, str, int, int, int]]:
    """(name, kind, in channels, out channels, input height = width) of the timed layers."""
    c = conv_dim
    return [(f"D conv {3}->{c} at 32x32", "conv", 3, c, 32),
            (f"D conv {c}->{2 * c} at 16x16", "conv", c, 2 * c, 16),
            (f"D conv {2 * c}->{4 * c} at 8x8", "conv", 2 * c, 4 * c, 8),
            (f"G convT {4 * c}->{2 * c} at 4x4", "convT", 4 * c, 2 * c, 4),
            (f"G convT {2 * c}->{c} at 8x8", "convT", 2 * c, c, 8),
            (f"G convT {c}->3 at 16x16", "convT", c, 3, 16),
            (f"BatchNorm2d {2 * c} ch at 16x16", "bn", 2 * c, 2 * c, 16),
            (f"G BatchNorm2d + ReLU {2 * c} ch at 8x8", "bn-relu", 2 * c, 2 * c, 8),
            (f"D BatchNorm2d + LeakyReLU {2 * c} ch at 8x8", "bn-leaky", 2 * c, 2 * c, 8)]


def output_size(kind: str, size: int) -> int:
    return size // 2 if kind == "conv" else size * 2 if kind == "convT" else size


def median_ms(call, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def minigan_call(kind: str, c_in: int, c_out: int, x, dy, plain: bool):
    """forward + backward of one minigan layer, as a function of nothing."""
    import minigan.ops
    from minigan import nn
    from minigan.backend import use_backend

    use_backend("numpy")
    minigan.ops.use_fast_kernels(not plain)
    layer = (nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False) if kind == "conv" else
             nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False)
             if kind == "convT" else nn.BatchNorm2d(c_in) if kind == "bn" else
             nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU() if kind == "bn-relu"
                           else nn.LeakyReLU(0.2)))   # fast kernels: one pair (forward_with)

    def call():
        layer.zero_grad()
        layer(x)
        layer.backward(dy)
    return call


def torch_call(kind: str, c_in: int, c_out: int, x, dy, threads: int):
    import torch

    torch.set_num_threads(threads)
    T = torch.nn
    module = (T.Conv2d(c_in, c_out, 4, 2, 1, bias=False) if kind == "conv" else
              T.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False) if kind == "convT"
              else T.BatchNorm2d(c_in) if kind == "bn" else
              # in place, as PyTorch's DCGAN example writes them
              T.Sequential(T.BatchNorm2d(c_in), T.ReLU(True) if kind == "bn-relu"
                           else T.LeakyReLU(0.2, inplace=True)))
    xt = torch.from_numpy(x).requires_grad_(True)
    dyt = torch.from_numpy(dy)

    def call():
        module.zero_grad()
        xt.grad = None
        module(xt).backward(dyt)
    return call


def time_side(args: argparse.Namespace) -> dict[str, float]:
    """Median ms per layer on one side, in this process."""
    import numpy

    rng = numpy.random.default_rng(args.seed)
    result = {}
    for name, kind, c_in, c_out, size in layers(args.conv_dim):
        x = rng.standard_normal((args.batch_size, c_in, size, size)).astype(numpy.float32)
        out = output_size(kind, size)
        dy = rng.standard_normal((args.batch_size, c_out, out, out)).astype(numpy.float32)
        call = (minigan_call(kind, c_in, c_out, x, dy, args.plain_kernels)
                if args.side == "minigan" else torch_call(kind, c_in, c_out, x, dy, args.threads))
        result[name] = median_ms(call, args.repeats, args.warmup)
    return result


def run_side(side: str, argv: list[str]) -> dict[str, float]:
    from machine import last_json_line, output_of  # beside this script (main puts it on the path)

    try:
        output = output_of([sys.executable, os.path.abspath(__file__), *argv, "--side", side],
                           f"the {side} process")
    except RuntimeError as error:
        raise SystemExit(f"error: {error}") from None
    return last_json_line(output)


def spread(values: list[float]) -> str:
    low, high = min(values), max(values)
    return f"{statistics.median(values):7.2f} ({low:.2f}-{high:.2f})"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    for value, what in ((args.repeats, "--repeats"), (args.rounds, "--rounds"),
                        (args.threads, "--threads"), (args.conv_dim, "--conv-dim"),
                        (args.batch_size, "--batch-size")):
        if value < 1:
            print(f"error: {what} must be at least 1, got {value}", file=sys.stderr)
            return 2
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)   # before NumPy or PyTorch is imported
    if args.side:
        print(json.dumps(time_side(args)))
        return 0
    sys.path.insert(0, HERE)
    import machine

    sides = ["minigan"] + (["torch"] if machine.torch_installed() else [])
    print("\n".join(machine.describe(with_torch=len(sides) == 2)))
    print(f"forward + backward per layer, batch {args.batch_size}, conv_dim {args.conv_dim}, "
          f"float32, {args.threads} threads, {'plain' if args.plain_kernels else 'fast'} "
          f"kernels; each side in a fresh process, {args.rounds} rounds of {args.repeats} calls")
    if len(sides) == 1:
        print("PyTorch is not installed: minigan's times only (`pip install torch` to compare)")
    from tqdm import tqdm

    samples: dict[str, dict[str, list[float]]] = {side: {} for side in sides}
    with tqdm(total=args.rounds * len(sides), unit="process", leave=False) as bar:
        for round_number in range(args.rounds):
            order = sides if round_number % 2 == 0 else sides[::-1]   # neither always first
            for side in order:
                for name, ms in run_side(side, argv).items():
                    samples[side].setdefault(name, []).append(ms)
                bar.update()
    header = "| layer | minigan ms | PyTorch ms | ratio |" if len(sides) == 2 else \
        "| layer | minigan ms |"
    print("\nms: median of the rounds (range); ratio: median of the rounds' ratios\n" + header)
    print("|" + " --- |" * header.count(" | ") + " --- |")
    for name, *_ in layers(args.conv_dim):
        ours = samples["minigan"][name]
        row = f"| {name} | {spread(ours)} |"
        if "torch" in samples:
            theirs = samples["torch"][name]
            # Each round's ratio first: the two processes of a round ran back to back, so the
            # machine's drift between rounds cancels out of it.
            ratio = statistics.median([o / t for o, t in zip(ours, theirs)])
            row += f" {spread(theirs)} | {ratio:.2f}x |"
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
