"""Time this checkout's minigan against an earlier commit's, in turns, in one process.

    python benchmarks/bench_turns.py --before main                  # step, layers, Inception
    python benchmarks/bench_turns.py --before HEAD~3 --what step --repeats 30
    python benchmarks/bench_turns.py --before main --what layers --threads 2

On a shared machine two runs a minute apart can differ by a factor of two, so a change is timed
against the code before it *in turns*: one call of the old code, one of the new, and so on, in
the same process, so that both see the same load. The earlier commit's ``minigan`` package is
taken out of git (``git archive``) into a temporary folder and imported under another name
(``minigan_before``: every ``minigan`` in its source is renamed), beside this checkout's.
Both get the same inputs and, where they have weights, the same weights.

What is timed (float32, NumPy, fast kernels, the SVHN DCGAN's shapes at ``--conv-dim``):
``step``: one ``GANTrainer.train_step`` on a batch of 128; ``layers``: forward + backward of
each convolution, transposed convolution, a batch norm alone (channels-last inputs, as a
network makes them) and a batch norm with the activation after it (G's on a cropped input, D's
with a cropped gradient, as the network gives them); ``inception``: FID Inception-v3's
``pool3`` on ``--images`` 32x32 images (resized to 299x299), seconds per image; with
``--torch``, each layer in PyTorch's eager mode too, in turns of its own right after minigan's
(interleaved, PyTorch's spinning OpenMP threads slowed the call after it). Each line gives the
median and the minimum over ``--repeats`` turns (the minimum, because load only ever adds
time). Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# BLAS reads its thread count when NumPy is first imported (minigan imports it): set it first.
_threads = argparse.ArgumentParser(add_help=False)
_threads.add_argument("--threads", default="1")
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = str(_threads.parse_known_args()[0].threads)

from minigan.scripts import OneLineParser, int_argument, print_error, seed_argument  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", default="main",
                   help="git revision whose minigan is the 'before' side")
    p.add_argument("--what", choices=("step", "layers", "inception", "all"), default="all")
    p.add_argument("--conv-dim", type=int_argument, default=32)
    p.add_argument("--repeats", type=int_argument, default=20, help="turns per comparison")
    p.add_argument("--threads", type=int_argument, default=1, help="BLAS threads")
    p.add_argument("--images", type=int_argument, default=4, help="images for inception")
    p.add_argument("--seed", type=seed_argument, default=0, help="seed of inputs and weights")
    p.add_argument("--torch", action="store_true",
                   help="with --what layers: time each layer in PyTorch too, in turns of its own")
    return p.parse_args(argv)


def export_before(revision: str, folder: Path) -> None:
    """``git archive <revision> minigan`` into folder/minigan_before, with every ``minigan`` in
    its Python source renamed, so that both versions import side by side."""
    import re
    import subprocess
    import tarfile

    archive = folder / "before.tar"
    with open(archive, "wb") as out:
        done = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "minigan"],
                              stdout=out, stderr=subprocess.PIPE, check=False)
    if done.returncode != 0:
        raise ValueError(f"--before {revision}: git archive failed: "
                         f"{done.stderr.decode().strip()}")
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "tree", filter="data")
    (folder / "tree" / "minigan").rename(folder / "minigan_before")
    for path in (folder / "minigan_before").rglob("*.py"):
        path.write_text(re.sub(r"\bminigan\b", "minigan_before", path.read_text()))
    sys.path.insert(0, str(folder))


def turns(calls: dict, repeats: int, label: str, warmup: int = 2) -> dict[str, tuple]:
    """{name: (median ms, min ms)} over ``repeats`` rounds of one call each, in turns."""
    import statistics
    import time

    for call in calls.values():
        for _ in range(warmup):
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(1000 * (time.perf_counter() - start))
        print(f"\r{label}: turn {i + 1}/{repeats}", end="", file=sys.stderr, flush=True)
    print("\r" + " " * 60 + "\r", end="", file=sys.stderr, flush=True)
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


def show(label: str, result: dict[str, tuple], unit: str = "ms", scale: float = 1.0) -> None:
    parts = [f"{name} {median * scale:.3f} (min {low * scale:.3f})"
             for name, (median, low) in result.items()]
    print(f"{label:34s} {unit}: " + "   ".join(parts), flush=True)


def time_step(args, packages) -> None:
    import importlib
    import tempfile

    import numpy

    calls = {}
    for name, pkg in packages.items():
        backend = importlib.import_module(f"{pkg}.backend")
        dcgan = importlib.import_module(f"{pkg}.gan.dcgan")
        trainer_module = importlib.import_module(f"{pkg}.gan.trainer")
        backend.use_backend("numpy")
        backend.manual_seed(args.seed)
        G = dcgan.dcgan_init(dcgan.Generator(100, args.conv_dim))
        D = dcgan.dcgan_init(dcgan.Discriminator(args.conv_dim))
        trainer = trainer_module.GANTrainer(G, D, None, trainer_module.TrainConfig(z_size=100),
                                            tempfile.mkdtemp())
        real = backend.to_device(numpy.random.default_rng(args.seed).uniform(
            -1, 1, (128, 3, 32, 32)).astype(numpy.float32))
        calls[name] = (lambda t, r: lambda: t.train_step(r))(trainer, real)
    show(f"train_step, conv_dim {args.conv_dim}", turns(calls, args.repeats, "step"))


def time_layers(args, packages) -> None:
    import importlib

    import numpy

    rng = numpy.random.default_rng(args.seed)
    d = args.conv_dim

    def channels_last(shape):
        n, c, h, w = shape
        return rng.standard_normal((n, h, w, c)).astype(numpy.float32).transpose(0, 3, 1, 2)

    def cropped(shape):   # the inside of a bigger channels-last image, as the sub-pixel kernels
        n, c, h, w = shape   # leave a transposed convolution's output and an input gradient
        return channels_last((n, c, h + 2, w + 2))[:, :, 1:-1, 1:-1]

    layers = [(f"D conv 3->{d} 32x32", "conv", 3, d, 32),
              (f"D conv {d}->{2 * d} 16x16", "conv", d, 2 * d, 16),
              (f"D conv {2 * d}->{4 * d} 8x8", "conv", 2 * d, 4 * d, 8),
              (f"G convT {4 * d}->{2 * d} 4x4", "convT", 4 * d, 2 * d, 4),
              (f"G convT {2 * d}->{d} 8x8", "convT", 2 * d, d, 8),
              (f"G convT {d}->3 16x16", "convT", d, 3, 16),
              (f"BatchNorm2d {2 * d} ch 16x16", "bn", 2 * d, 2 * d, 16),
              # with the activation after it, on the layouts the network gives them: G's input
              # is a transposed convolution's output, D's gradient a convolution's input gradient
              (f"G BatchNorm2d + ReLU {2 * d} ch 8x8", "bn-relu", 2 * d, 2 * d, 8),
              (f"D BatchNorm2d + LeakyReLU {2 * d} ch 8x8", "bn-leaky", 2 * d, 2 * d, 8)]
    for label, kind, c_in, c_out, size in layers:
        out = size // 2 if kind == "conv" else 2 * size if kind == "convT" else size
        x = (cropped if kind == "bn-relu" else channels_last)((128, c_in, size, size))
        dy = (cropped if kind == "bn-leaky" else channels_last)((128, c_out, out, out))
        calls = {}
        for name, pkg in packages.items():
            nn = importlib.import_module(f"{pkg}.nn")
            layer = (nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False) if kind == "conv"
                     else nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False)
                     if kind == "convT" else nn.BatchNorm2d(c_in) if kind == "bn" else
                     nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU() if kind == "bn-relu"
                                   else nn.LeakyReLU(0.2)))

            def call(layer=layer, x=x, dy=dy):
                layer.zero_grad()
                layer(x)
                layer.backward(dy)
            calls[name] = call
        result = turns(calls, args.repeats, label)
        if args.torch:
            # In turns of its own, after minigan's: PyTorch's OpenMP threads keep spinning for a
            # while after each call, and at 2 threads slowed whatever ran next by up to half.
            result.update(turns({"PyTorch": torch_layer(kind, c_in, c_out, x, dy)},
                                args.repeats, label))
        show(label, result)


def torch_layer(kind: str, c_in: int, c_out: int, x, dy):
    """The same layer in PyTorch (eager, autograd), forward + backward, as a call."""
    import torch

    T = torch.nn
    layer = (T.Conv2d(c_in, c_out, 4, 2, 1, bias=False) if kind == "conv"
             else T.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False) if kind == "convT"
             else T.BatchNorm2d(c_in) if kind == "bn"
             else T.Sequential(T.BatchNorm2d(c_in), T.ReLU(True) if kind == "bn-relu"
                               else T.LeakyReLU(0.2, inplace=True)))
    x_t = torch.from_numpy(x.copy()).requires_grad_(True)   # NCHW, as PyTorch users pass it
    dy_t = torch.from_numpy(dy.copy())

    def call():
        layer.zero_grad()
        x_t.grad = None
        layer(x_t).backward(dy_t)
    return call


def time_inception(args, packages) -> None:
    import importlib

    import numpy

    nets = {name: importlib.import_module(f"{pkg}.metrics.inception").FIDInceptionV3()
            for name, pkg in packages.items()}
    first = next(iter(nets.values()))
    for net in nets.values():
        net.load_state_dict(first.state_dict())
    x = numpy.random.default_rng(args.seed).uniform(
        -1, 1, (args.images, 3, 32, 32)).astype(numpy.float32)
    calls = {name: (lambda n: lambda: n.pool3(x, keep_caches=False))(net)
             for name, net in nets.items()}
    show(f"Inception pool3, {args.images} images", turns(calls, args.repeats, "inception", 1),
         unit="s per image", scale=1 / (1000 * args.images))


def main(args: argparse.Namespace) -> int:
    import tempfile

    if min(args.repeats, args.conv_dim, args.images, args.threads) < 1:
        raise ValueError("--repeats, --conv-dim, --images and --threads must be at least 1")

    with tempfile.TemporaryDirectory() as folder:
        export_before(args.before, Path(folder))
        import minigan_before  # noqa: I001  (importable only now, from the temporary folder)
        import numpy

        import minigan
        for pkg in (minigan, minigan_before):
            importlib.import_module(f"{pkg.__name__}.backend").use_backend("numpy")
        if args.torch:
            import torch
            torch.set_num_threads(args.threads)
        print(f"before: minigan at {args.before}; after: this checkout; NumPy "
              f"{numpy.__version__}, {args.threads} BLAS thread(s), {os.cpu_count()} cores, "
              f"float32, fast kernels; median (min) of {args.repeats} turns")
        packages = {"before": "minigan_before", "after": "minigan"}
        for what, run in (("step", time_step), ("layers", time_layers),
                          ("inception", time_inception)):
            if args.what in (what, "all"):
                run(args, packages)
    return 0


if __name__ == "__main__":
    ARGS = parse_args()
    try:
        sys.exit(main(ARGS))
    except KeyboardInterrupt:
        print_error("interrupted (Ctrl-C)")
        sys.exit(130)
    except (ValueError, OSError) as error:
        sys.exit(print_error(error))
