"""The command line behind ``examples/train_svhn.py`` and ``examples/train_cifar10.py``.

Read ``train`` from top to bottom: it is the whole recipe of a run (pick the backend, load the
data, build G and D, hand them to the trainer, report where the results are). Everything else
here is argument parsing and turning errors into one readable line.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy

from minigan.backend import backend_name, manual_seed, use_backend
from minigan.data import dataset_label
from minigan.gan.dcgan import Discriminator, Generator, dcgan_init
from minigan.gan.trainer import GANTrainer, TrainConfig
from minigan.scripts import (
    DATASET_HELP,
    USER_ERRORS,
    OneLineParser,
    add_backend_argument,
    dataset_argument,
    one_line_warnings,
    print_error,
)


def build_parser(dataset: str, description: str) -> argparse.ArgumentParser:
    p = OneLineParser(description=description)
    add_backend_argument(p)
    p.add_argument("--dataset", type=dataset_argument, default=dataset,
                   metavar="NAME|FILE.npz", help=DATASET_HELP)
    p.add_argument("--data-dir", default=None,
                   help="where datasets are cached (default: $MINIGAN_DATA or ~/.cache/minigan)")
    p.add_argument("--out", default=None,
                   help="run folder (default: runs/<dataset>; for my_images.npz, runs/my_images)")
    p.add_argument("--epochs", type=int, default=10, help="passes over the training set")
    p.add_argument("--batch-size", type=int, default=128, help="images per training step")
    p.add_argument("--max-steps", type=int, default=None,
                   help="stop after this many training steps in total (quick trials)")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds weights, shuffling, latent vectors and dropout")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in the run folder")
    p.add_argument("--kernels", default=None, metavar="FOLDER",
                   help="train on your own kernels: a folder made by `python -m "
                        "minigan.exercises init` (unfinished ones stay minigan's)")
    g = p.add_argument_group("model")
    g.add_argument("--conv-dim", type=int, default=32, help="channels of D's first conv")
    g.add_argument("--z-size", type=int, default=100, help="length of the latent vector z")
    g.add_argument("--z-distribution", choices=("uniform", "normal"), default="uniform",
                   help="uniform in [-1, 1] as in the course, or standard normal")
    g.add_argument("--dropout", type=float, default=0.0,
                   help="dropout probability after each LeakyReLU of D (0 = none)")
    t = p.add_argument_group("training tricks")
    t.add_argument("--lr-d", type=float, default=2e-4, help="discriminator learning rate")
    t.add_argument("--lr-g", type=float, default=2e-4, help="generator learning rate")
    t.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (DCGAN uses 0.5)")
    t.add_argument("--d-steps", type=int, default=1,
                   help="discriminator updates per generator update (TTUR)")
    t.add_argument("--label-smoothing", type=float, default=1.0, metavar="REAL_LABEL",
                   help="target for real images: 1.0 = none, 0.9 = one-sided smoothing")
    t.add_argument("--num-train", type=int, default=None,
                   help="use only the first N training images (quick trials)")
    m = p.add_argument_group("scores during training")
    m.add_argument("--features", default=None, metavar="PATH",
                   help="a feature network from examples/train_classifier.py: compute FID and IS "
                        "with it every --metrics-every epochs")
    m.add_argument("--metrics-every", type=int, default=1, help="epochs between scores")
    m.add_argument("--metrics-samples", type=int, default=10000,
                   help="generated images per score (below 2048 FID is biased)")
    t.add_argument("--split", choices=("train", "test", "extra"), default="train",
                   help="which split to train on (test: e.g. when only MNIST's test files are "
                        "at hand; extra: SVHN's 531,131 extra images; an .npz file has only "
                        "train)")
    return p


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse values that would train nothing or train nonsense, with a one-line reason."""
    for name in ("epochs", "batch_size", "conv_dim", "z_size", "d_steps", "metrics_every",
                 "metrics_samples", "max_steps", "num_train"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.lr_d <= 0 or args.lr_g <= 0:
        raise ValueError(f"learning rates must be positive, got --lr-d {args.lr_d} "
                         f"--lr-g {args.lr_g}")
    if not 0 <= args.beta1 < 1:
        raise ValueError(f"--beta1 must be in [0, 1), got {args.beta1}")
    if not 0 <= args.dropout < 1:
        raise ValueError(f"--dropout must be in [0, 1), got {args.dropout}")
    if args.kernels is not None and not Path(args.kernels).is_dir():
        raise FileNotFoundError(f"--kernels: no folder {args.kernels} (make one with "
                                f"`python -m minigan.exercises init {args.kernels}`)")


def load_training_images(args: argparse.Namespace) -> numpy.ndarray:
    """(N, C, 32, 32) uint8 images of the chosen dataset (28x28 ones, like MNIST's, are padded
    to 32x32; other sizes are refused)."""
    from minigan.data import load_dataset

    extra = {}
    if args.dataset == "synthetic" and args.num_train is not None:
        extra["n"] = args.num_train        # render only the images that will be used
    images, _ = load_dataset(args.dataset, args.split, data_dir=args.data_dir, **extra)
    if args.num_train is not None:
        images = images[:args.num_train]
    if images.shape[-2:] == (28, 28):  # MNIST: pad 2 black pixels each side; G and D need 4 * 2**k
        images = numpy.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)))
    if images.shape[-2:] != (32, 32):
        height, width = images.shape[-2:]
        raise ValueError(f"{args.dataset} images are {height}x{width}, but the DCGAN here makes "
                         f"32x32 images: resize them to 32x32 (28x28 ones are padded)")
    return images


def train(args: argparse.Namespace) -> GANTrainer:
    from minigan.data import DataLoader

    use_backend(args.backend)
    manual_seed(args.seed)
    out = Path(args.out or f"runs/{dataset_label(args.dataset)}")
    if args.resume and not (out / "checkpoint.npz").is_file():
        raise FileNotFoundError(f"--resume: no checkpoint in {out}; start without --resume")

    images = load_training_images(args)
    loader = DataLoader(images, batch_size=args.batch_size, shuffle=True, drop_last=True,
                        seed=args.seed)
    if len(loader) == 0:
        raise ValueError(f"--batch-size {args.batch_size} is larger than the dataset "
                         f"({len(images)} images)")
    channels = images.shape[1]
    G = dcgan_init(Generator(args.z_size, args.conv_dim, image_size=32, channels=channels))
    D = dcgan_init(Discriminator(args.conv_dim, image_size=32, channels=channels,
                                 dropout=args.dropout))
    config = TrainConfig(epochs=args.epochs, lr_d=args.lr_d, lr_g=args.lr_g, beta1=args.beta1,
                         d_steps=args.d_steps, real_label=args.label_smoothing,
                         z_size=args.z_size, z_distribution=args.z_distribution,
                         seed=args.seed, max_steps=args.max_steps,
                         metrics_every=args.metrics_every if args.features else 0)
    evaluate = None
    if args.features:
        from minigan.metrics import GANEvaluator
        evaluate = GANEvaluator(args.features, num_samples=args.metrics_samples,
                                z_distribution=args.z_distribution)
        scored = (evaluate.net.channels, evaluate.net.image_size)
        if scored != (channels, 32):   # say so now, not after the first epoch
            raise ValueError(f"--features {args.features} scores {scored[0]}-channel "
                             f"{scored[1]}x{scored[1]} images, but {args.dataset} images are "
                             f"{channels}-channel 32x32: train a feature network on "
                             f"{args.dataset} with examples/train_classifier.py")
    trainer = GANTrainer(G, D, loader, config, out, evaluate=evaluate)
    if args.resume:
        trainer.load_checkpoint()
        print(f"resumed from {trainer.checkpoint_path} at epoch {trainer.epoch + 1}, "
              f"step {trainer.step}")
    print(f"training a DCGAN on {len(images)} {args.dataset} images, {len(loader)} batches of "
          f"{args.batch_size} per epoch, backend {backend_name()}; run folder {out}")
    started = time.perf_counter()
    steps_before = trainer.step
    with kernels_in_use(args.kernels):
        trainer.fit()
    seconds = time.perf_counter() - started
    steps = trainer.step - steps_before
    if steps:
        print(f"{steps} steps in {seconds:.1f} s ({1000 * seconds / steps:.0f} ms/step)")
    report(trainer)
    return trainer


@contextmanager
def kernels_in_use(folder: str | None) -> Iterator[None]:
    """With ``--kernels``, run the layers on the learner's kernels (``minigan.exercises``)."""
    if folder is None:
        yield
        return
    from minigan.exercises import use_kernels

    with use_kernels(folder) as in_use:
        yours = [name for name, used in in_use.items() if used]
        print(f"your kernels from {folder}: {', '.join(yours) or 'none started yet'}; "
              f"minigan's: {', '.join(n for n, used in in_use.items() if not used) or 'none'}")
        yield


def report(trainer: GANTrainer) -> None:
    out = trainer.out_dir
    print("results:")
    for name, what in (("samples", "sample grids, one per epoch"),
                       ("samples.gif", "the grids animated"),
                       ("losses.png", "loss curves and D's outputs"),
                       ("losses.csv", "per-step losses"),
                       ("metrics.csv", "FID and IS per evaluation"),
                       ("checkpoint.npz", "G, D, optimizers, RNG state (for --resume)")):
        if (out / name).exists():
            print(f"  {out / name}  ({what})")


def main(argv: list[str] | None = None, dataset: str = "svhn",
         description: str = "Train a DCGAN.") -> int:

    args = build_parser(dataset, description).parse_args(argv)
    one_line_warnings()
    try:
        check_arguments(args)
        train(args)
    except USER_ERRORS as error:   # DataError, BackendError, TrainingDiverged, ShapeError...
        return print_error(error)
    return 0
