"""Adversarial examples with the fast gradient sign method (Goodfellow et al., 2015): a change
too small to notice that makes a trained classifier wrong.

    python examples/adversarial.py --data-dir ../shared/data/mnist --no-download
    python examples/adversarial.py --dataset ../shared/data/cifar10-sample/cifar10_sample.npz \\
        --epsilons 0 0.004 0.008 0.016 0.031

Every backward pass of a classifier ends with the gradient of the loss with respect to the
*input image*, dL/dx, which training throws away. It says which way each pixel should move to
make the classifier more wrong. FGSM takes one step of size epsilon in that direction, pixel by
pixel, using only the sign:

    x_adv = clip(x + epsilon * sign(dL/dx), lowest pixel, highest pixel)

Each pixel changes by at most epsilon (here a fraction of the pixel range 0..255, so 0.1 is
25.5 grey levels), yet the changes all push the same way, and in a network that is close to
linear their effects add up over the thousands of pixels.

The script trains a small classifier (``minigan.metrics.features.FeatureNet``) on part of the
data, or loads one saved by ``examples/train_classifier.py`` (``--classifier``), attacks held-out
images at each epsilon, and writes to the run folder ``accuracy.csv``, ``fgsm_accuracy.png``
(accuracy against epsilon), ``fgsm_examples.png`` (originals, perturbations and adversarial
images with the predicted classes), the classifier and ``summary.txt``.
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
from PIL import Image

from minigan.backend import backend_name, get_array_module, to_device, to_numpy, use_backend
from minigan.classifier import train_classifier
from minigan.data import dataset_label, is_npz_path, load_train_test, scale_images
from minigan.data.cifar10 import CLASSES as CIFAR10_CLASSES
from minigan.metrics.features import FeatureNet, accuracy
from minigan.nn import CrossEntropyLoss, Module
from minigan.scripts import (
    DATASET_HELP,
    OneLineParser,
    add_backend_argument,
    add_data_dir_arguments,
    add_overwrite_argument,
    check_at_least_one,
    dataset_argument,
    prepare_results_folder,
    run_script,
)

RESULTS = ("accuracy.csv", "fgsm_accuracy.png", "fgsm_examples.png", "summary.txt")


def build_parser() -> OneLineParser:
    p = OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", type=dataset_argument, default="mnist", metavar="NAME|FILE.npz",
                   help=DATASET_HELP + " (labels needed)")
    add_data_dir_arguments(p)
    p.add_argument("--epsilons", type=float, nargs="+",
                   default=[0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3],
                   help="perturbation sizes, as fractions of the pixel range (0.1 = 25.5 of 255)")
    p.add_argument("--show-epsilon", type=float, default=None,
                   help="the epsilon of the example grid (default: the middle of --epsilons)")
    p.add_argument("--classifier", default=None,
                   help="a classifier file written by examples/train_classifier.py (default: "
                        "train one here)")
    p.add_argument("--epochs", type=int, default=3, help="training epochs of the classifier")
    p.add_argument("--attack-size", type=int, default=1000,
                   help="held-out images to attack (at most)")
    p.add_argument("--limit", type=int, default=None,
                   help="train on only the first N training images (quick trials)")
    p.add_argument("--seed", type=int, default=0,
                   help="fixes the classifier's training and the images shown")
    p.add_argument("--out", default=None, help="run folder (default: runs/adversarial_<dataset>)")
    add_overwrite_argument(p)
    add_backend_argument(p)
    return p


# ------------------------------------------------------------------------------------ the attack

def input_gradient(net: Module, x: Any, labels: Any) -> tuple[Any, Any]:
    """The logits and dL/dx of the mean cross-entropy L at the images ``x``.

    x: (N, C, H, W) in [-1, 1]; labels: (N,)  ->  logits (N, K), dL/dx (N, C, H, W).
    The backward pass is the one training uses; here only its last output is kept. (It would
    also add the weight gradients into ``.grad``: ``net.requires_grad_(False)`` skips them.)
    """
    criterion = CrossEntropyLoss()
    logits = net(x)
    criterion(logits, labels)
    return logits, net.backward(criterion.backward())


def fgsm(net: Module, x: Any, labels: Any, epsilon: float) -> Any:
    """The fast gradient sign method: x + epsilon * sign(dL/dx), clipped to the pixel range.

    x: (N, C, H, W) images scaled to [-1, 1]; epsilon: a fraction of the pixel range [0, 1].
    The [-1, 1] scale is twice as wide as [0, 1], so each pixel moves by 2 * epsilon on it.
    """
    xp = get_array_module(x)
    _, grad = input_gradient(net, x, labels)
    x_adv = x + (2 * epsilon) * xp.sign(grad)
    return xp.clip(x_adv, -1.0, 1.0)


def accuracy_under_attack(net: Module, images: numpy.ndarray, labels: numpy.ndarray,
                          epsilon: float, batch_size: int = 250) -> float:
    """Fraction of (N, C, H, W) uint8 ``images`` still classified correctly after FGSM."""
    correct = 0
    for start in range(0, len(images), batch_size):
        x = scale_images(to_device(images[start:start + batch_size]))
        y = to_device(labels[start:start + batch_size])
        x_adv = fgsm(net, x, y, epsilon)
        correct += int((net(x_adv).argmax(axis=1) == y).sum())
    return correct / len(images)


# ------------------------------------------------------------------------------------ the data

def load_data(args: argparse.Namespace) -> tuple[tuple[numpy.ndarray, ...], str]:
    """(train_images, train_labels, attack_images, attack_labels) and what they are.

    The training split trains the classifier and the test split is attacked; with only MNIST's
    test files (or one .npz file) at hand, one set is split in two. 28x28 images are padded to
    32x32, the size the classifier (the FID feature network) takes.
    """
    train, test, note = load_train_test(
        args.dataset, args.data_dir, download=not args.no_download, limit=args.limit,
        test_size=args.attack_size, why_labels="accuracy needs them",
        both_note="{name}: the classifier trains on the training split, the test split is "
                  "attacked",
        split_note=": the classifier trains on the first {cut} images, the rest are attacked",
        limit_note=" (--limit: only the first {n} training images)",
        test_size_note=" (--attack-size: the first {n} of them)")
    pad = ((0, 0), (0, 0), (2, 2), (2, 2))
    if train[0].shape[-1] == 28:
        train, test = (numpy.pad(train[0], pad), train[1]), (numpy.pad(test[0], pad), test[1])
    return (*train, *test), note


def class_names(images: numpy.ndarray) -> tuple[str, ...]:
    """Digits for grey images, CIFAR-10's names for colour photos with labels 0..9."""
    return tuple(str(k) for k in range(10)) if images.shape[1] == 1 else CIFAR10_CLASSES


# ------------------------------------------------------------------------------------ pictures

def plot_accuracy(epsilons: list[float], accuracies: list[float], title: str,
                  path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    ax.plot(epsilons, accuracies, marker="o", color="tab:red")
    for eps, acc in zip(epsilons, accuracies):
        ax.annotate(f"{acc:.2f}", (eps, acc), textcoords="offset points", xytext=(4, 5),
                    fontsize=8)
    ax.set(xlabel="epsilon (fraction of the pixel range)", ylabel="accuracy under FGSM",
           ylim=(0, 1.05), title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_examples(net: FeatureNet, images: numpy.ndarray, labels: numpy.ndarray,
                  epsilon: float, names: tuple[str, ...], path: Path, count: int = 6) -> Path:
    """Three rows: originals, perturbations (grey = 0, scaled to be visible), adversarial
    images; each titled with the predicted class and its probability."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = scale_images(to_device(images[:count]))
    y = to_device(labels[:count])
    x_adv = fgsm(net, x, y, epsilon)
    rows = [("original", x), ("perturbation", x_adv - x), (f"epsilon {epsilon:g}", x_adv)]
    fig, axes = plt.subplots(3, count, figsize=(1.45 * count, 5.0))
    for r, (what, batch) in enumerate(rows):
        if r != 1:
            probs = to_numpy(net.probabilities(batch))
        for i in range(count):
            ax = axes[r, i]
            picture = to_numpy(batch[i]).transpose(1, 2, 0)
            if r == 1:   # the perturbation is +-2 epsilon at most: stretch it to the full range
                scale = max(float(numpy.abs(picture).max()), 1e-12)
                picture = picture / scale
            picture = numpy.clip((picture + 1) / 2, 0, 1)
            ax.imshow(picture[..., 0] if picture.shape[-1] == 1 else picture,
                      cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r != 1:
                k = int(probs[i].argmax())
                ok = k == int(labels[i])
                ax.set_title(f"{names[k]} {probs[i, k]:.0%}", fontsize=8,
                             color="black" if ok else "tab:red")
            if i == 0:
                ax.set_ylabel(what, fontsize=8)
    fig.suptitle("FGSM: prediction and confidence before (top) and after (bottom); red = wrong",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    # The perturbation row is noise, which PNG compresses badly: 256 colours keep it small.
    Image.open(path).convert("RGB").quantize(256).save(path)
    return path


# ------------------------------------------------------------------------------------ the run

def get_classifier(args: argparse.Namespace, data: tuple[numpy.ndarray, ...],
                   out: Path) -> FeatureNet:
    train_x, train_y = data[0], data[1]
    if args.classifier:
        net = FeatureNet.load(args.classifier)
        if net.channels != train_x.shape[1] or net.image_size != train_x.shape[-1]:
            raise ValueError(f"{args.classifier} takes ({net.channels}, {net.image_size}, "
                             f"{net.image_size}) images, the data are {train_x.shape[1:]}")
        print(f"classifier: {args.classifier}")
        warn_if_it_saw_the_attacked_images(args)
        return net
    print(f"training a classifier on {len(train_x)} images for {args.epochs} epoch(s), "
          f"backend {backend_name()}")
    net = train_classifier(train_x, train_y, epochs=args.epochs, seed=args.seed)
    net.save(out / "classifier.npz", dataset=args.dataset, epochs=args.epochs, seed=args.seed)
    return net


def warn_if_it_saw_the_attacked_images(args: argparse.Namespace) -> None:
    """A classifier of train_classifier.py trained on 90% of the images it was given: given the
    same test split (MNIST's test files, when they are all there is) or the same .npz file that
    this script attacks, it has seen most of the "held-out" images, and its clean accuracy
    reads high."""
    info = FeatureNet.load_info(args.classifier)
    if "held_out" not in info:   # not train_classifier.py's: this script's own, say
        return
    same_data = dataset_label(str(info.get("dataset", ""))) == dataset_label(args.dataset)
    if same_data and (info.get("split") == "test" or is_npz_path(args.dataset)):
        print(f"warning: {args.classifier} was trained on {info['dataset']}'s "
              f"{info.get('split', 'train')} images, which this script attacks too: it has "
              f"seen most of them, so its accuracy on them (epsilon 0 and after) reads high; "
              f"for a held-out measure, let this script train its own classifier (leave out "
              f"--classifier)", file=sys.stderr)


def run(args: argparse.Namespace) -> None:
    use_backend(args.backend)
    # Before any work: the folder is writable and holds no earlier results (--overwrite
    # replaces them), the classifier trained here included.
    out = Path(args.out or f"runs/adversarial_{dataset_label(args.dataset)}")
    trained_here = () if args.classifier else ("classifier.npz",)
    out = prepare_results_folder(out, RESULTS + trained_here, args.overwrite)
    data, note = load_data(args)
    print(note)
    started = time.perf_counter()
    net = get_classifier(args, data, out).eval()
    net.requires_grad_(False)   # the attack needs dL/dx only, never the weight gradients
    attack_x, attack_y = data[2], data[3]
    epsilons = sorted(set(args.epsilons))
    accuracies = []
    for eps in epsilons:
        accuracies.append(accuracy_under_attack(net, attack_x, attack_y, eps))
        print(f"epsilon {eps:<7g} accuracy {accuracies[-1]:.4f}")
    clean = accuracy(net, attack_x, attack_y)
    with open(out / "accuracy.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epsilon", "accuracy"])
        writer.writerows((f"{e:g}", f"{a:.4f}") for e, a in zip(epsilons, accuracies))
    label = dataset_label(args.dataset)
    plot_accuracy(epsilons, accuracies, f"FGSM on {len(attack_x)} held-out {label} images",
                  out / "fgsm_accuracy.png")
    show = args.show_epsilon if args.show_epsilon is not None else \
        epsilons[len(epsilons) // 2]
    plot_examples(net, attack_x, attack_y, show, class_names(attack_x),
                  out / "fgsm_examples.png")
    seconds = time.perf_counter() - started
    lines = [note, f"accuracy on the {len(attack_x)} unperturbed held-out images: {clean:.4f}",
             f"{'epsilon':<10}{'accuracy':>10}"]
    lines += [f"{e:<10g}{a:>10.4f}" for e, a in zip(epsilons, accuracies)]
    lines.append(f"done in {seconds:.0f} s")
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[1:]))
    print(f"plots: {out / 'fgsm_accuracy.png'}, {out / 'fgsm_examples.png'}; numbers: "
          f"{out / 'accuracy.csv'}, {out / 'summary.txt'}"
          + ("" if args.classifier else f"; the classifier: {out / 'classifier.npz'}"))


def check_and_run(args: argparse.Namespace) -> None:
    """Refuse values that make no sense, in one line each, then run."""
    check_at_least_one(args, "epochs", "attack_size")
    if any(not 0 <= e <= 1 for e in args.epsilons):
        raise ValueError(f"--epsilons must lie in [0, 1] (fractions of the pixel range), "
                         f"got {args.epsilons}")
    if args.show_epsilon is not None and not 0 <= args.show_epsilon <= 1:
        raise ValueError(f"--show-epsilon must lie in [0, 1] (a fraction of the pixel range), "
                         f"got {args.show_epsilon}")
    if args.limit is not None and args.limit < 64:
        raise ValueError(f"--limit must be at least 64 (one training batch), got "
                         f"{args.limit}")
    run(args)


def main(argv: list[str] | None = None) -> int:
    # run_script: one-line warnings and errors, Ctrl-C (exit 130), out of memory (exit 2)
    return run_script(check_and_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
