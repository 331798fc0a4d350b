"""Train the feature network that scores GANs (FID and IS) on one dataset.

    python examples/train_classifier.py --dataset svhn
    python examples/train_classifier.py --dataset mnist --data-dir ../data/mnist --epochs 3
    python examples/evaluate.py --checkpoint runs/svhn/checkpoint.npz \\
        --features runs/features_svhn.npz

It trains a small classifier (``minigan.metrics.features.FeatureNet``) on the training split,
reports its accuracy on a held-out part, and saves two files:

* ``--out`` (default ``runs/features_<dataset>.npz``; ``runs/features_my_images.npz`` for
  ``--dataset my_images.npz``): the network;
* ``<out>_stats.npz``: the mean and covariance of its features over the real images, so that
  FID against the dataset never has to look at the real images again.

The FID and IS computed with this network are domain-specific versions of the published,
Inception-v3-based scores: compare them only with scores from the same network file.
MNIST's 28x28 digits are padded to 32x32, the size of the DCGAN's samples. When only MNIST's
test files are at hand (no network), the test split is used instead: training on part of it,
holding out the rest. An .npz file of your own (see ``minigan.data.npz``) needs ``labels``,
one per image, in 0..9.
"""

from __future__ import annotations

import minigan.startup  # noqa: F401  (first: Ctrl-C while NumPy loads is one line)

# isort: split
import argparse
import sys
import time
from pathlib import Path

import numpy

from minigan.backend import backend_name, use_backend
from minigan.classifier import check_better_than_chance, check_two_classes, train_classifier
from minigan.data import DataError, dataset_label, load_dataset, mnist_test_files_instead
from minigan.metrics.features import accuracy, pad_to
from minigan.metrics.gan_eval import save_real_statistics, statistics_path
from minigan.scripts import (
    DATASET_HELP,
    OneLineParser,
    add_backend_argument,
    add_mirror_argument,
    add_overwrite_argument,
    apply_mirror,
    check_no_earlier_results,
    check_writable_file,
    dataset_argument,
    finite_float,
    int_argument,
    run_script,
    seed_argument,
)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", type=dataset_argument, default="svhn",
                   metavar="NAME|FILE.npz", help=DATASET_HELP + " (here the labels are needed)")
    p.add_argument("--data-dir", default=None,
                   help="where datasets are cached (default: $MINIGAN_DATA or ~/.cache/minigan)")
    p.add_argument("--no-download", action="store_true",
                   help="use only files already on disk, never download")
    add_mirror_argument(p)
    p.add_argument("--epochs", type=int_argument, default=5, help="passes over the training images")
    p.add_argument("--batch-size", type=int_argument, default=64, help="images per training step")
    p.add_argument("--lr", type=finite_float, default=2e-3, help="Adam learning rate")
    p.add_argument("--seed", type=seed_argument, default=0,
                   help="fixes the initial weights, batch order, shifts and held-out images")
    add_backend_argument(p)
    p.add_argument("--out", default=None,
                   help="network file (default: runs/features_<dataset>.npz); the real-data "
                        "statistics go beside it as <name>_stats.npz")
    add_overwrite_argument(p)
    p.add_argument("--holdout", type=finite_float, default=0.1,
                   help="fraction of the images held out (randomly, by --seed) to measure "
                        "accuracy")
    p.add_argument("--num-train", type=int_argument, default=None,
                   help="use only the first N images of the split (quick trials)")
    p.add_argument("--shift", type=int_argument, default=1,
                   help="augmentation: move training images by up to this many pixels")
    p.add_argument("--width", type=int_argument, default=16,
                   help="channels of the first convolution")
    p.add_argument("--feature-dim", type=int_argument, default=128,
                   help="length of the feature vector")
    return p


def load_images(args: argparse.Namespace) -> tuple[numpy.ndarray, numpy.ndarray, str]:
    """The images and labels to train on, and the split they come from.

    MNIST offline with only the test files (t10k-*) at hand: use the test split.
    """
    try:
        images, labels = load_dataset(args.dataset, "train", data_dir=args.data_dir,
                                      download=not args.no_download)
        split = "train"
    except DataError as error:
        images, labels = mnist_test_files_instead(args.dataset, error, args.data_dir)
        split = "test"
        where = args.data_dir or "the data folder"
        how = "" if args.no_download else " and could not be downloaded"
        print(f"note: MNIST's training files are not in {where}{how}, so the {len(images)} "
              f"test images are used instead: {1 - args.holdout:.0%} to train, "
              f"{args.holdout:.0%} held out")
    if labels is None:
        raise DataError(f"{args.dataset} has no labels that match its images: a feature network "
                        f"learns from labels, so save them beside the images with "
                        f"numpy.savez(file, images=..., labels=...)")
    if args.num_train is not None and args.num_train < len(images):
        images, labels = images[:args.num_train], labels[:args.num_train]
        print(f"--num-train: only the first {len(images)} of them, "
              f"{1 - args.holdout:.0%} to train, {args.holdout:.0%} held out")
    check_two_classes(labels, f"{args.dataset}: ")   # before any training, not after it
    if images.shape[-1] == 28:  # MNIST: pad to 32x32, the size the DCGAN generates
        images = pad_to(images, 32)
    return images, labels, split


def run(args: argparse.Namespace) -> None:
    use_backend(args.backend)
    apply_mirror(args)
    label = dataset_label(args.dataset)
    out = Path(args.out or f"runs/features_{label}.npz")
    if out.suffix != ".npz":
        raise ValueError(f"--out must end in .npz, got {out}")
    # Both outputs are checked before minutes of training, not after. An existing network is
    # never replaced without --overwrite: the FID of every run scored with it depends on it.
    check_no_earlier_results([out, statistics_path(out)], args.overwrite)
    check_writable_file(out, "--out")
    check_writable_file(statistics_path(out), "--out")
    images, labels, split = load_images(args)

    order = numpy.random.default_rng([args.seed, 7]).permutation(len(images))
    n_held = int(round(args.holdout * len(images)))
    held, train = order[:n_held], numpy.sort(order[n_held:])
    if n_held < 1 or len(train) < args.batch_size:
        raise ValueError(f"--holdout {args.holdout} leaves {len(train)} training and {n_held} "
                         f"held-out images out of {len(images)}: need at least one batch "
                         f"({args.batch_size}) to train and one image to test")
    print(f"training a feature network on {len(train)} {args.dataset}/{split} images "
          f"{tuple(images.shape[1:])}, {n_held} held out; backend {backend_name()}")

    started = time.perf_counter()
    net = train_classifier(images[train], labels[train], epochs=args.epochs,
                           batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                           width=args.width, feature_dim=args.feature_dim, shift=args.shift)
    seconds = time.perf_counter() - started
    acc = accuracy(net, images[held], labels[held])
    print(f"held-out accuracy {acc:.4f} on {n_held} images (trained in {seconds:.0f} s)")
    # A network that learned nothing (--lr 1e6) would give every GAN meaningless scores.
    check_better_than_chance(acc, labels[held], "the feature network")

    net.save(out, dataset=args.dataset, split=split, accuracy=acc, held_out=n_held,
             epochs=args.epochs, seed=args.seed)
    # The reference statistics use every image of the split, held-out ones included: they
    # describe the dataset the GAN learns from, not the classifier's training set.
    print(f"computing the feature statistics of all {len(images)} real images")
    stats = save_real_statistics(net, images, statistics_path(out), progress=True,
                                 dataset=f"{args.dataset}/{split}")
    print(f"saved the feature network to {out}\nsaved the real-data statistics to {stats}")
    print(f"score a GAN with: python examples/evaluate.py --checkpoint runs/{label}/"
          f"checkpoint.npz --features {out}")


def check_and_run(args: argparse.Namespace) -> None:
    if args.shift < 0:
        raise ValueError("--shift must be 0 or more")
    for name in ("epochs", "batch_size", "width", "feature_dim"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    if not 0.0 < args.holdout < 1.0:
        raise ValueError(f"--holdout must be a fraction between 0 and 1, got {args.holdout}")
    if args.lr <= 0:
        raise ValueError(f"--lr must be positive, got {args.lr}")
    if args.num_train is not None and args.num_train < 2:
        raise ValueError("--num-train must be at least 2")
    run(args)


def main(argv: list[str] | None = None) -> int:
    # run_script: one-line warnings (e.g. labels that do not match), errors, Ctrl-C (exit 130)
    return run_script(check_and_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
