"""Batch norm's classic experiment: the same MLP on MNIST, trained with and without BatchNorm1d.

    python examples/batch_norm_mnist.py                          # full MNIST (downloads it)
    python examples/batch_norm_mnist.py --data-dir ../data/mnist # a folder with the .gz files

Two networks, 784-512-256-10 with ReLU, start from the same weights and see the same batches in
the same order. The only difference: the second has a BatchNorm1d after each hidden Linear,
before the ReLU (and those Linears have no bias, since batch norm's beta takes its place). Both
are trained with plain SGD at the same learning rate, and the script plots their training loss
and held-out accuracy into one PNG. With batch norm the loss falls much faster.

At the end the batch-norm network's held-out accuracy is measured twice: in eval mode (each
layer normalises with its running statistics) and in train mode (each batch is normalised with
its own statistics, the way it was during training), and printed as a small table.

If the folder holds only MNIST's test files (t10k-*), the first 8000 test images are used for
training and the last 2000 held out, and the script says so.
"""

from __future__ import annotations

import minigan.startup  # noqa: F401  (first: Ctrl-C while NumPy loads is one line)

# isort: split
import argparse
import csv
import sys
import time
from pathlib import Path
from typing import Any

import numpy

from minigan.backend import backend_name, make_rng, use_backend
from minigan.data import DataError, DataLoader, load_mnist
from minigan.data.download import resolve_data_dir
from minigan.data.mnist import FILES
from minigan.nn import BatchNorm1d, CrossEntropyLoss, Flatten, Linear, Module, ReLU, Sequential
from minigan.optim import SGD, Adam
from minigan.scripts import (
    OneLineParser,
    add_backend_argument,
    add_mirror_argument,
    add_overwrite_argument,
    apply_mirror,
    finite_float,
    int_argument,
    prepare_results_folder,
    run_script,
    seed_argument,
)

TEST_ONLY_SPLIT = 8000  # test-files-only mode: train on the first 8000, hold out the rest
RESULTS = ("batch_norm_mnist.png", "losses.csv", "heldout_accuracy.csv", "summary.txt")


def build_parser() -> OneLineParser:
    p = OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=None,
                   help="folder with the MNIST .gz files, or where to download them "
                        "(default: $MINIGAN_DATA or ~/.cache/minigan)")
    p.add_argument("--no-download", action="store_true",
                   help="use only files already on disk, never download")
    add_mirror_argument(p)
    p.add_argument("--epochs", type=int_argument, default=10,
                   help="passes over the training images")
    p.add_argument("--batch-size", type=int_argument, default=64, help="images per SGD step")
    p.add_argument("--lr", type=finite_float, default=0.01, help="learning rate of both networks")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                   help="plain SGD shows batch norm's head start most clearly")
    p.add_argument("--eval-every", type=int_argument, default=25,
                   help="measure held-out accuracy every this many steps")
    p.add_argument("--limit", type=int_argument, default=None,
                   help="train on only the first N training images (quick trials)")
    p.add_argument("--seed", type=seed_argument, default=0,
                   help="fixes the initial weights (shared by both nets) and the batch order "
                        "(default: 0)")
    p.add_argument("--out", default="runs/batch_norm_mnist",
                   help="run folder: the plot, the curves as CSV, the summary")
    add_overwrite_argument(p)
    add_backend_argument(p)
    return p


# ------------------------------------------------------------------------------------ the data

def load_data(args: argparse.Namespace) -> tuple[tuple[numpy.ndarray, ...], str]:
    """(train_images, train_labels, held_images, held_labels) and a sentence saying what they are.

    Full MNIST when its training files are there (or can be downloaded): train on the 60,000
    training images, hold out the 10,000 test images. Only the test files at hand: split them.
    """
    root = resolve_data_dir(args.data_dir)

    def on_disk(name: str) -> bool:
        return (root / name).is_file() or (root / "mnist" / name).is_file()

    have_train = all(on_disk(n) for n in FILES if n.startswith("train"))
    have_test = all(on_disk(n) for n in FILES if n.startswith("t10k"))
    if have_test and not have_train:
        images, labels = load_mnist("test", root, download=False)
        if len(images) <= TEST_ONLY_SPLIT:
            raise DataError(f"expected MNIST's 10,000 test images in {root}, found {len(images)}")
        data = (images[:TEST_ONLY_SPLIT], labels[:TEST_ONLY_SPLIT],
                images[TEST_ONLY_SPLIT:], labels[TEST_ONLY_SPLIT:])
        note = (f"only MNIST's test files are in {root}: training on the first "
                f"{TEST_ONLY_SPLIT} test images, holding out the last "
                f"{len(images) - TEST_ONLY_SPLIT}")
    else:
        download = not args.no_download
        train = load_mnist("train", args.data_dir, download=download)
        test = load_mnist("test", args.data_dir, download=download)
        data = (*train, *test)
        note = f"MNIST: training on the {len(train[0])} training images, holding out the " \
               f"{len(test[0])} test images"
    if args.limit is not None:
        data = (data[0][:args.limit], data[1][:args.limit], data[2], data[3])
        note += f" (--limit: only the first {len(data[0])} training images)"
    return data, note


# ------------------------------------------------------------------------------------ the nets

def make_mlp(batch_norm: bool, seed: int) -> Sequential:
    """784-512-256-10 with ReLU; with ``batch_norm``, Linear -> BatchNorm1d -> ReLU.

    Each Linear gets its own generator seeded by (seed, layer), and draws its weight before its
    bias, so both networks start from *identical* weight matrices.
    """
    layers: list[Module] = [Flatten()]
    sizes = [784, 512, 256]
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        # Batch norm subtracts the batch mean, which would cancel a bias: leave it out.
        layers.append(Linear(d_in, d_out, bias=not batch_norm, rng=make_rng([seed, i])))
        if batch_norm:
            layers.append(BatchNorm1d(d_out))
        layers.append(ReLU())
    layers.append(Linear(sizes[-1], 10, rng=make_rng([seed, len(sizes)])))
    return Sequential(*layers)


def accuracy(net: Module, images: numpy.ndarray, labels: numpy.ndarray,
             batch_size: int = 1000) -> float:
    """Fraction of ``images`` classified correctly, in whatever mode ``net`` is in."""
    loader = DataLoader(images, labels, batch_size=batch_size, shuffle=False, drop_last=False)
    correct = 0
    for x, y in loader.epoch(0):
        correct += int((net(x).argmax(axis=1) == y).sum())
    return correct / len(images)


def train_mode_accuracy(net: Module, images: numpy.ndarray, labels: numpy.ndarray,
                        batch_size: int) -> float:
    """Accuracy with batch norm normalising each held-out batch by its own statistics.

    Train mode also updates the running statistics, so they are saved first and put back.
    """
    saved = net.state_dict()
    net.train()
    try:
        return accuracy(net, images, labels, batch_size)
    finally:
        net.load_state_dict(saved)
        net.eval()


# ------------------------------------------------------------------------------------ training

def train(args: argparse.Namespace, data: tuple[numpy.ndarray, ...]) -> dict[str, Any]:
    from minigan.progress import tqdm

    train_x, train_y, held_x, held_y = data
    loader = DataLoader(train_x, train_y, batch_size=args.batch_size, shuffle=True,
                        drop_last=True, seed=args.seed)
    if len(loader) == 0:
        raise ValueError(f"--batch-size {args.batch_size} is larger than the {len(train_x)} "
                         f"training images")
    nets = {"plain": make_mlp(False, args.seed), "batch norm": make_mlp(True, args.seed)}
    optimizer_cls = SGD if args.optimizer == "sgd" else Adam
    optimizers = {name: optimizer_cls(net.parameters(), lr=args.lr) for name, net in nets.items()}
    criterion = CrossEntropyLoss()
    losses: dict[str, list[float]] = {name: [] for name in nets}
    curve: dict[str, list[float]] = {"step": [], **{name: [] for name in nets}}

    def measure(step: int) -> None:
        curve["step"].append(step)
        for name, net in nets.items():
            net.eval()  # running statistics: one image's answer does not depend on its batch
            curve[name].append(accuracy(net, held_x, held_y))
            net.train()

    measure(0)
    total = args.epochs * len(loader)
    bar = tqdm(total=total, unit="step", desc="training both nets", dynamic_ncols=True)
    step = 0
    for epoch in range(args.epochs):
        for x, y in loader.epoch(epoch):  # the same batches, in the same order, for both nets
            step += 1
            for name, net in nets.items():
                optimizers[name].zero_grad()
                loss = criterion(net(x), y)
                net.backward(criterion.backward())
                optimizers[name].step()
                if not numpy.isfinite(loss):
                    raise RuntimeError(f"the {name} network diverged at step {step} (loss "
                                       f"{loss}): try a smaller --lr")
                losses[name].append(loss)
            if step % args.eval_every == 0 or step == total:
                measure(step)
            bar.update(1)
            bar.set_postfix(loss_plain=f"{losses['plain'][-1]:.3f}",
                            loss_bn=f"{losses['batch norm'][-1]:.3f}")
    bar.close()
    for net in nets.values():
        net.eval()
    return {"nets": nets, "losses": losses, "curve": curve, "steps_per_epoch": len(loader)}


# ------------------------------------------------------------------------------------ reporting

def smooth(values: list[float], window: int) -> numpy.ndarray:
    """Moving average over ``window`` steps (shorter at the start), to make the trend visible."""
    v = numpy.asarray(values, dtype=numpy.float64)
    csum = numpy.cumsum(numpy.insert(v, 0, 0.0))
    idx = numpy.arange(1, len(v) + 1)
    lo = numpy.maximum(idx - window, 0)
    return (csum[idx] - csum[lo]) / (idx - lo)


def plot(result: dict[str, Any], args: argparse.Namespace, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses, curve = result["losses"], result["curve"]
    colors = {"plain": "tab:blue", "batch norm": "tab:orange"}
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    window = max(1, min(25, len(losses["plain"]) // 10))
    for name, values in losses.items():
        steps = numpy.arange(1, len(values) + 1)
        ax_loss.plot(steps, values, color=colors[name], alpha=0.2, linewidth=0.8)
        ax_loss.plot(steps, smooth(values, window), color=colors[name], label=name)
        ax_acc.plot(curve["step"], curve[name], color=colors[name], marker=".", label=name)
    ax_loss.set(xlabel="training step", ylabel="cross-entropy",
                title=f"training loss (faint: per batch; solid: mean of {window})")
    ax_acc.set(xlabel="training step", ylabel="accuracy", ylim=(0, 1),
               title="held-out accuracy (eval mode)")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"784-512-256-10 MLP on MNIST, {args.optimizer.upper()} lr {args.lr:g}, "
                 f"batch {args.batch_size}, {args.epochs} epoch(s), seed {args.seed}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def first_step_reaching(curve: dict[str, list[float]], name: str, level: float) -> str:
    for step, acc in zip(curve["step"], curve[name]):
        if acc >= level:
            return str(step)
    return "never"


def report(result: dict[str, Any], args: argparse.Namespace,
           data: tuple[numpy.ndarray, ...]) -> str:
    """The summary: both nets side by side, then the BN net in eval vs train mode."""
    losses, curve, nets = result["losses"], result["curve"], result["nets"]
    held_x, held_y = data[2], data[3]
    last = result["steps_per_epoch"]  # the last epoch's steps
    lines = ["", f"{'':<28}{'plain':>10}{'batch norm':>12}"]
    lines.append(f"{'mean loss, last epoch':<28}"
                 + "".join(f"{numpy.mean(losses[n][-last:]):>{w}.4f}"
                           for n, w in (("plain", 10), ("batch norm", 12))))
    lines.append(f"{'final held-out accuracy':<28}"
                 + "".join(f"{curve[n][-1]:>{w}.4f}"
                           for n, w in (("plain", 10), ("batch norm", 12))))
    lines.append(f"{'first step with acc >= 0.9':<28}"
                 + "".join(f"{first_step_reaching(curve, n, 0.9):>{w}}"
                           for n, w in (("plain", 10), ("batch norm", 12))))

    bn_net = nets["batch norm"]
    bn_net.eval()
    rows = [("eval mode", "running statistics", accuracy(bn_net, held_x, held_y))]
    for size in sorted({args.batch_size, 8}, reverse=True):
        rows.append(("train mode", f"each batch of {size}",
                     train_mode_accuracy(bn_net, held_x, held_y, size)))
    lines += ["", f"batch-norm net on the {len(held_x)} held-out images:",
              f"  {'mode':<12}{'normalised with':<24}{'accuracy':>8}"]
    lines += [f"  {mode:<12}{stats:<24}{acc:>8.4f}" for mode, stats, acc in rows]
    return "\n".join(lines)


def write_csv(result: dict[str, Any], out: Path) -> None:
    with open(out / "losses.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "loss_plain", "loss_batch_norm"])
        for i, (a, b) in enumerate(zip(result["losses"]["plain"],
                                       result["losses"]["batch norm"])):
            writer.writerow([i + 1, f"{a:.6f}", f"{b:.6f}"])
    curve = result["curve"]
    with open(out / "heldout_accuracy.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "acc_plain", "acc_batch_norm"])
        writer.writerows(zip(curve["step"], curve["plain"], curve["batch norm"]))


def run(args: argparse.Namespace) -> None:
    use_backend(args.backend)
    apply_mirror(args)
    # Before the training, not after it: writable, and no earlier results (unless --overwrite).
    out = prepare_results_folder(args.out, RESULTS, args.overwrite)
    data, note = load_data(args)
    print(note)
    print(f"{args.epochs} epoch(s), batch {args.batch_size}, {args.optimizer} lr {args.lr:g}, "
          f"seed {args.seed}, backend {backend_name()}")
    started = time.perf_counter()
    result = train(args, data)
    seconds = time.perf_counter() - started
    png = plot(result, args, out / "batch_norm_mnist.png")
    write_csv(result, out)
    summary = report(result, args, data)
    print(summary)
    (out / "summary.txt").write_text(note + "\n" + summary.lstrip("\n") + "\n")
    print(f"\ntrained in {seconds:.0f} s; plot: {png}; curves: {out / 'losses.csv'}, "
          f"{out / 'heldout_accuracy.csv'}")


def check_and_run(args: argparse.Namespace) -> None:
    for name in ("epochs", "batch_size", "eval_every"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got "
                             f"{getattr(args, name)}")
    if not args.lr > 0:
        raise ValueError(f"--lr must be positive, got {args.lr}")
    if args.limit is not None and args.limit < 2:
        raise ValueError(f"--limit must be at least 2, got {args.limit}")
    run(args)


def main(argv: list[str] | None = None) -> int:
    return run_script(check_and_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
