"""Domain-adversarial training (Ganin & Lempitsky, 2015): features that a classifier trained on
one kind of image can use on another, learnt by fighting a domain discriminator.

    python examples/domain_adversarial.py --data-dir ../shared/data/mnist --no-download
    python examples/domain_adversarial.py --source synthetic --target mnist \\
        --data-dir ../shared/data/mnist --no-download

Two domains of digit images: the *source* has labels (MNIST's handwritten digits), the *target*
has none (minigan's synthetic house numbers: printed digits on shaded backgrounds, dark on light
as often as light on dark). A classifier trained on the source alone does poorly on the target:
what it learnt to look for ("bright strokes on black") is not there.

Three networks share the work:

    image -> feature extractor F -> label classifier C      -> digit (source images only)
                                 -> GradientReversal -> domain classifier D -> source or target?

One backward pass trains D to tell the domains apart from the features, and, through the
gradient-reversal layer (``minigan/nn/gradient_reversal.py``), trains F to make that impossible,
while C keeps the features useful for the digits. Features from which the domain cannot be told
carry what both domains share, so C, trained on source labels, works on the target too.

The script trains the same F and C from the same initial weights twice, without and with the
domain classifier, and reports both networks' accuracy on held-out images of each domain after
every epoch. Images are grey and 32x32 in both domains (MNIST padded, house numbers drawn in
grey). The run folder gets ``accuracy.csv``, ``domain_adversarial.png`` (accuracies over the
epochs), ``features.png`` (the two domains' features, projected on two principal axes, for
both networks) and ``summary.txt``.
"""

from __future__ import annotations

import minigan.startup  # noqa: F401  (first: Ctrl-C while NumPy loads is one line)

# isort: split
import argparse
import csv
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy

from minigan.backend import backend_name, get_array_module, make_rng, to_numpy, use_backend
from minigan.data import TEST_ONLY_SPLIT, DataLoader, load_dataset, load_train_test
from minigan.nn import (
    BCEWithLogitsLoss,
    Conv2d,
    CrossEntropyLoss,
    Flatten,
    GradientReversal,
    Linear,
    Module,
    ReLU,
    Sequential,
)
from minigan.optim import SGD, Adam
from minigan.scripts import (
    OneLineParser,
    add_backend_argument,
    add_data_dir_arguments,
    add_overwrite_argument,
    check_at_least_one,
    prepare_results_folder,
    run_script,
)

DOMAINS = ("mnist", "synthetic", "svhn")
FEATURES = 128  # length of the feature vector that both classifiers read
RESULTS = ("domain_adversarial.png", "features.png", "accuracy.csv", "summary.txt")


def build_parser() -> OneLineParser:
    p = OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", choices=DOMAINS, default="mnist",
                   help="the labelled domain")
    p.add_argument("--target", choices=DOMAINS, default="synthetic",
                   help="the unlabelled domain, on which accuracy is reported")
    add_data_dir_arguments(p, "the datasets'")
    p.add_argument("--epochs", type=int, default=10, help="passes over the source images")
    p.add_argument("--batch-size", type=int, default=64,
                   help="source images per step (and as many target images)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                   help="sgd is the paper's choice (momentum 0.9); here it trained the "
                        "synthetic digits too slowly")
    p.add_argument("--lr", type=float, default=None,
                   help="initial learning rate (default: 0.001 for adam, 0.01 for sgd); it "
                        "falls as lr / (1 + 10 p)**0.75 over training, as in the paper")
    p.add_argument("--max-lambda", type=float, default=0.3,
                   help="the gradient-reversal scale lambda reached at the end of training "
                        "(it rises from 0 along the paper's schedule; the paper's 1 made the "
                        "fight wreck the features here)")
    p.add_argument("--limit", type=int, default=None,
                   help="use only the first N training images of each domain (quick trials)")
    p.add_argument("--test-size", type=int, default=2000,
                   help="held-out images of each domain scored after each epoch (at most)")
    p.add_argument("--seed", type=int, default=0,
                   help="fixes the initial weights (the same for both runs), the batches and "
                        "the synthetic images")
    p.add_argument("--out", default=None,
                   help="run folder (default: runs/domain_adversarial_<source>_to_<target>)")
    add_overwrite_argument(p)
    add_backend_argument(p)
    return p


# ------------------------------------------------------------------------------------ the data

def to_grey_32(images: numpy.ndarray) -> numpy.ndarray:
    """(N, C, H, W) uint8 -> (N, 1, 32, 32) uint8: luminance, and 28x28 padded with black."""
    if images.shape[1] == 3:   # ITU-R BT.601 luminance, as the synthetic digits' grey version
        weights = numpy.array([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)
        images = numpy.rint((images * weights).sum(axis=1, keepdims=True)).astype(numpy.uint8)
    if images.shape[-1] == 28:
        images = numpy.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)))
    return images


def load_domain(name: str, args: argparse.Namespace) -> tuple[tuple[numpy.ndarray, ...], str]:
    """(train_images, train_labels, test_images, test_labels) of one domain, and what they are."""
    limit = args.limit
    if name == "synthetic":
        n_train = limit or TEST_ONLY_SPLIT
        train = load_dataset("synthetic", "train", n=n_train, seed=args.seed, channels=1)
        test = load_dataset("synthetic", "test", n=args.test_size, seed=args.seed, channels=1)
        note = f"synthetic house numbers drawn in grey: {n_train} to train, " \
               f"{args.test_size} held out"
    else:
        train, test, note = load_train_test(
            name, args.data_dir, download=not args.no_download, limit=limit,
            fallback_note="only MNIST's test files",
            split_note=": the first {cut} train, the rest are held out",
            limit_note=" (--limit: {n} training images)")
    test = (test[0][:args.test_size], test[1][:args.test_size])
    data = (to_grey_32(train[0]), train[1], to_grey_32(test[0]), test[1])
    return data, note


def forever(loader: DataLoader) -> Iterator[tuple[Any, Any]]:
    """The loader's batches, epoch after epoch."""
    epoch = 0
    while True:
        yield from loader.epoch(epoch)
        epoch += 1


# ------------------------------------------------------------------------------------ the nets

def make_networks(seed: int) -> dict[str, Module]:
    """Feature extractor F, label classifier C and domain classifier D (after the reversal).

    F: (N, 1, 32, 32) -> conv 4x4/2, 32 ch, ReLU -> conv 4x4/2, 48 ch, ReLU -> Flatten (3072)
       -> Linear -> ReLU -> (N, 128) features
    C: 128 -> 100 -> ReLU -> 10 class logits
    D: GradientReversal -> 128 -> 100 -> ReLU -> 1 logit ("this came from the target")
    F ends in a fully connected layer so that it can *mix* what its convolutions found: making
    the two domains' features alike takes more than switching single filters off.
    The same seed gives the same initial weights, with or without the domain classifier.
    """
    rng = make_rng([seed, 2])
    F = Sequential(Conv2d(1, 32, 4, stride=2, padding=1, rng=rng), ReLU(),
                   Conv2d(32, 48, 4, stride=2, padding=1, rng=rng), ReLU(), Flatten(),
                   Linear(48 * 8 * 8, FEATURES, rng=rng), ReLU())
    C = Sequential(Linear(FEATURES, 100, rng=rng), ReLU(), Linear(100, 10, rng=rng))
    D = Sequential(GradientReversal(0.0), Linear(FEATURES, 100, rng=rng), ReLU(),
                   Linear(100, 1, rng=rng))
    return {"F": F, "C": C, "D": D}


def dann_schedule(progress: float, max_lambda: float = 1.0) -> float:
    """The paper's lambda: 2 / (1 + exp(-10 p)) - 1, from 0 at p = 0 to about 1 at p = 1.

    The domain classifier is useless at first; reversing its gradient at full strength then
    would only push the features around at random, so its weight rises smoothly.
    """
    return max_lambda * (2 / (1 + math.exp(-10 * progress)) - 1)


def accuracy(F: Module, C: Module, images: numpy.ndarray, labels: numpy.ndarray) -> float:
    correct = 0
    for x, y in DataLoader(images, labels, batch_size=500, shuffle=False,
                           drop_last=False).epoch(0):
        correct += int((C(F(x)).argmax(axis=1) == y).sum())
    return correct / len(images)


def features(F: Module, images: numpy.ndarray) -> numpy.ndarray:
    out = [to_numpy(F(x)) for x, _ in DataLoader(images, None, batch_size=500, shuffle=False,
                                                 drop_last=False).epoch(0)]
    return numpy.concatenate(out)


# ------------------------------------------------------------------------------------ training

def train(args: argparse.Namespace, source: tuple[numpy.ndarray, ...],
          target: tuple[numpy.ndarray, ...], adversarial: bool) -> dict[str, Any]:
    """Train F and C on the labelled source; with ``adversarial``, also D through the reversal.

    Each step pushes one batch of source and one of target images through F *together*, so
    that one forward and one backward pass of F serve both losses:

        f = F([x_source; x_target])
        label loss  = CE(C(f[:n]), y_source)          -> gradient into f[:n]
        domain loss = BCE(D(GRL(f)), [0...0; 1...1])  -> gradient into all of f, reversed
    """
    from minigan.progress import tqdm

    nets = make_networks(args.seed)
    F, C, D = nets["F"], nets["C"], nets["D"]
    reversal = D[0]
    params = F.parameters() + C.parameters() + (D.parameters() if adversarial else [])
    optimizer = Adam(params) if args.optimizer == "adam" else SGD(params, momentum=0.9)
    cross_entropy, bce = CrossEntropyLoss(), BCEWithLogitsLoss()
    source_batches = DataLoader(source[0], source[1], batch_size=args.batch_size,
                                seed=args.seed)
    target_batches = forever(DataLoader(target[0], None, batch_size=args.batch_size,
                                        seed=args.seed + 1))
    n = args.batch_size
    total = args.epochs * len(source_batches)
    history: dict[str, list[float]] = {"epoch": [], "source": [], "target": [],
                                       "domain_accuracy": [], "lambda": []}
    name = "with domain classifier" if adversarial else "source only"
    bar = tqdm(total=total, unit="step", desc=name, dynamic_ncols=True)
    step = 0
    for epoch in range(args.epochs):
        domain_right = domain_seen = 0
        for x_source, y_source in source_batches.epoch(epoch):
            optimizer.zero_grad()
            optimizer.lr = args.lr / (1 + 10 * step / total) ** 0.75   # the paper's annealing
            if adversarial:
                x_target, _ = next(target_batches)
                xp = get_array_module(x_source)
                f = F(xp.concatenate([x_source, x_target]))
            else:
                f = F(x_source)
            label_loss = cross_entropy(C(f[:n]), y_source)
            df = f * 0
            df[:n] = C.backward(cross_entropy.backward())
            domain_loss = 0.0
            if adversarial:
                reversal.scale = dann_schedule(step / total, args.max_lambda)
                is_target = xp.concatenate([xp.zeros((n, 1)), xp.ones((n, 1))]).astype(f.dtype)
                domain_logits = D(f)
                domain_loss = bce(domain_logits, is_target)
                df += D.backward(bce.backward())   # D's own gradient as usual; F's reversed
                domain_right += int(((domain_logits > 0) == (is_target > 0.5)).sum())
                domain_seen += 2 * n
            F.backward_params(df)   # the images are data: no gradient at F's input
            optimizer.step()
            step += 1
            if not numpy.isfinite(label_loss + domain_loss):
                raise RuntimeError(f"training {name} diverged at step {step}: try a smaller --lr")
            bar.update(1)
            bar.set_postfix(label=f"{label_loss:.3f}", domain=f"{domain_loss:.3f}",
                            lam=f"{reversal.scale:.2f}")
        history["epoch"].append(epoch + 1)
        history["source"].append(accuracy(F, C, source[2], source[3]))
        history["target"].append(accuracy(F, C, target[2], target[3]))
        history["domain_accuracy"].append(domain_right / domain_seen if domain_seen else
                                          float("nan"))
        history["lambda"].append(reversal.scale)
        bar.write(f"{name}: epoch {epoch + 1}/{args.epochs}, held-out accuracy: source "
                  f"{history['source'][-1]:.4f}, target {history['target'][-1]:.4f}")
    bar.close()
    return {"F": F, "C": C, "history": history}


# ------------------------------------------------------------------------------------ reporting

def plot_accuracy(runs: dict[str, dict[str, list[float]]], title: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"source only": "tab:blue", "with domain classifier": "tab:orange"}
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, h in runs.items():
        ax.plot(h["epoch"], h["target"], marker=".", color=colors[name],
                label=f"{name}: target")
        ax.plot(h["epoch"], h["source"], linestyle="--", color=colors[name], alpha=0.7,
                label=f"{name}: source")
    ax.set(xlabel="epoch", ylabel="held-out accuracy", ylim=(0, 1), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_features(results: dict[str, dict[str, Any]], source: numpy.ndarray,
                  target: numpy.ndarray, path: Path, count: int = 500) -> Path:
    """Each network's features of held-out source and target images, projected on the two
    principal axes of the two sets together: two clouds apart mean the domain shows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.0 * len(results), 4.0))
    for ax, (name, result) in zip(numpy.atleast_1d(axes), results.items()):
        f_s, f_t = features(result["F"], source[:count]), features(result["F"], target[:count])
        both = numpy.concatenate([f_s, f_t]).astype(numpy.float64)
        centred = both - both.mean(axis=0)
        _, _, vt = numpy.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[:2].T
        ax.scatter(*xy[:len(f_s)].T, s=4, alpha=0.5, label="source", color="tab:green")
        ax.scatter(*xy[len(f_s):].T, s=4, alpha=0.5, label="target", color="tab:purple")
        ax.set(title=f"features, {name}", xticks=[], yticks=[])
        ax.legend(fontsize=8, markerscale=3)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path


def write_csv(runs: dict[str, dict[str, list[float]]], path: Path) -> None:
    plain, dann = runs["source only"], runs["with domain classifier"]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "target_source_only", "target_with_domain_classifier",
                         "source_source_only", "source_with_domain_classifier",
                         "domain_classifier_train_accuracy", "lambda"])
        for i, epoch in enumerate(plain["epoch"]):
            writer.writerow([epoch, f"{plain['target'][i]:.4f}", f"{dann['target'][i]:.4f}",
                             f"{plain['source'][i]:.4f}", f"{dann['source'][i]:.4f}",
                             f"{dann['domain_accuracy'][i]:.4f}", f"{dann['lambda'][i]:.4f}"])


def run(args: argparse.Namespace) -> None:
    use_backend(args.backend)
    # Before any work: writable, and no earlier results unless --overwrite.
    out = prepare_results_folder(args.out or f"runs/domain_adversarial_{args.source}_to_"
                                             f"{args.target}", RESULTS, args.overwrite)
    source, source_note = load_domain(args.source, args)
    target, target_note = load_domain(args.target, args)
    print(f"source (labelled): {source_note}\ntarget (unlabelled): {target_note}")
    if min(len(source[0]), len(target[0])) < args.batch_size:
        raise ValueError(f"--batch-size {args.batch_size} is larger than a domain's training "
                         f"images ({len(source[0])} and {len(target[0])})")
    print(f"{args.epochs} epochs of {len(source[0]) // args.batch_size} steps, backend "
          f"{backend_name()}")

    started = time.perf_counter()
    results = {"source only": train(args, source, target, adversarial=False),
               "with domain classifier": train(args, source, target, adversarial=True)}
    seconds = time.perf_counter() - started
    runs = {name: r["history"] for name, r in results.items()}
    title = f"{args.source} (labelled) -> {args.target} (unlabelled)"
    png = plot_accuracy(runs, title, out / "domain_adversarial.png")
    plot_features(results, source[2], target[2], out / "features.png")
    write_csv(runs, out / "accuracy.csv")
    lines = [f"source (labelled): {source_note}", f"target (unlabelled): {target_note}",
             f"{args.epochs} epochs, batch {args.batch_size}, {args.optimizer} lr {args.lr:g}, "
             f"max lambda "
             f"{args.max_lambda:g}, seed {args.seed}",
             f"{'held-out accuracy after training':<36}{'source':>8}{'target':>8}"]
    for name, h in runs.items():
        lines.append(f"{name:<36}{h['source'][-1]:>8.4f}{h['target'][-1]:>8.4f}")
    dann = runs["with domain classifier"]
    lines.append(f"the domain classifier told the domains apart in "
                 f"{dann['domain_accuracy'][-1]:.1%} of the last epoch's training images "
                 f"(50% = not at all)")
    lines.append(f"trained in {seconds:.0f} s")
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[3:]))
    print(f"plots: {png}, {out / 'features.png'}; per-epoch numbers: {out / 'accuracy.csv'}")


def check_and_run(args: argparse.Namespace) -> None:
    """Refuse values that make no sense, in one line each, then run."""
    check_at_least_one(args, "epochs", "batch_size", "test_size")
    if args.source == args.target:
        raise ValueError(f"--source and --target are both {args.source}: domain "
                         f"adaptation needs two different domains")
    if args.lr is None:
        args.lr = 1e-3 if args.optimizer == "adam" else 1e-2
    if not args.lr > 0:
        raise ValueError(f"--lr must be positive, got {args.lr}")
    if not args.max_lambda >= 0:
        raise ValueError(f"--max-lambda must be 0 or more, got {args.max_lambda}")
    if args.limit is not None and args.limit < 2:
        raise ValueError(f"--limit must be at least 2, got {args.limit}")
    run(args)


def main(argv: list[str] | None = None) -> int:
    # run_script: one-line warnings and errors, Ctrl-C (exit 130), out of memory (exit 2)
    return run_script(check_and_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
