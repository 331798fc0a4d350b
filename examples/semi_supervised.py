"""A semi-supervised GAN: a classifier that learns from a few labels and many unlabelled images by
also playing the discriminator of a GAN (Salimans et al., 2016, "Improved Techniques for
Training GANs").

    python examples/semi_supervised.py --data-dir ../shared/data/mnist --no-download
    python examples/semi_supervised.py --dataset svhn --labels-per-class 100 --arch conv

The discriminator is an ordinary K-class classifier. Its K logits l_k give the class as usual,
and, with an implicit "fake" logit fixed at 0, the probability that the image is real:

    p(real | x) = Z / (Z + 1) = sigmoid(log Z),    Z = sum_k exp(l_k)

so ``logsumexp(l)`` is the real/fake logit (``minigan/ops/logsumexp.py``). It is trained on
three batches each step: labelled images (softmax cross-entropy on their class), unlabelled real
images (binary cross-entropy: "real") and generated images ("fake"). The generator is trained by
*feature matching*: the mean of the discriminator's last hidden features over a generated batch
should equal their mean over a real batch (``minigan/ops/feature_matching.py``).

Why the unlabelled images help: to tell real digits from the generator's near-misses, the
classifier must learn what every digit looks like, from all the images; the few labels then only
have to name the clusters it has found.

A baseline, the same network from the same initial weights, is trained on the labelled images
alone for the same number of steps. Both are scored on held-out test images after every epoch.
With MNIST's test files only (no network), the first 8,000 test images are the training pool
(a few labelled, all used unlabelled) and the last 2,000 are held out. The run folder gets
``accuracy.csv``, ``semi_supervised.png`` (both accuracies over the epochs), ``samples.png``
(the generator's images) and ``summary.txt``.
"""

from __future__ import annotations

import minigan.startup  # noqa: F401  (first: Ctrl-C while NumPy loads is one line)

# isort: split
import argparse
import csv
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy

from minigan.backend import backend_name, make_rng, manual_seed, randn, uniform, use_backend
from minigan.data import DataLoader, dataset_label, load_train_test
from minigan.gan.dcgan import Generator
from minigan.nn import (
    BatchNorm1d,
    BCEWithLogitsLoss,
    Conv2d,
    CrossEntropyLoss,
    FeatureMatchingLoss,
    Flatten,
    LeakyReLU,
    Linear,
    LogSumExp,
    Module,
    ReLU,
    Reshape,
    Sequential,
    Tanh,
    init,
)
from minigan.optim import Adam
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

RESULTS = ("semi_supervised.png", "accuracy.csv", "samples.png", "summary.txt")


def build_parser() -> OneLineParser:
    p = OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", type=dataset_argument, default="mnist", metavar="NAME|FILE.npz",
                   help=DATASET_HELP + " (labels needed)")
    add_data_dir_arguments(p)
    p.add_argument("--labels-per-class", type=int, default=10,
                   help="labelled training images per class; every pool image is also used "
                        "unlabelled")
    p.add_argument("--epochs", type=int, default=20,
                   help="passes over the unlabelled pool")
    p.add_argument("--batch-size", type=int, default=100,
                   help="images in each of the three batches of a step")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (both networks)")
    p.add_argument("--unsupervised-weight", type=float, default=1.0,
                   help="weight of the real/fake loss beside the labelled loss")
    p.add_argument("--arch", choices=("auto", "mlp", "conv"), default="auto",
                   help="mlp: the paper's fully connected MNIST networks; conv: DCGAN-like "
                        "networks for 32x32 images; auto: mlp for grey 28x28, else conv")
    p.add_argument("--pool", type=int, default=None,
                   help="use only the first N training images (quick trials)")
    p.add_argument("--test-size", type=int, default=2000,
                   help="held-out images scored after each epoch (at most)")
    p.add_argument("--seed", type=int, default=0,
                   help="fixes the labelled images, the initial weights (the same for both "
                        "networks), the batches and the noise")
    p.add_argument("--out", default=None,
                   help="run folder (default: runs/semi_supervised_<dataset>)")
    add_overwrite_argument(p)
    add_backend_argument(p)
    return p


# ------------------------------------------------------------------------------------ the data

def load_data(args: argparse.Namespace) -> tuple[tuple[numpy.ndarray, ...], str]:
    """(pool_images, pool_labels, test_images, test_labels) and a sentence saying what they are.

    The training split is the pool, the test split is held out; with only MNIST's test files
    (or a single .npz file) at hand, one set is split in two.
    """
    pool, test, note = load_train_test(
        args.dataset, args.data_dir, download=not args.no_download, limit=args.pool,
        test_size=args.test_size,
        why_labels="the labelled part of semi-supervised learning needs some",
        both_note="{name}: the training split is the pool, the test split is held out",
        split_note=": the first {cut} images are the pool, the last {rest} are held out",
        limit_note=" (--pool: only the first {n} pool images)",
        test_size_note=" (--test-size: only the first {n} held-out images)")
    return (*pool, *test), note


def choose_labelled(labels: numpy.ndarray, per_class: int, seed: int) -> numpy.ndarray:
    """Indices of ``per_class`` images of each class, drawn at random (by ``seed``)."""
    rng = numpy.random.default_rng([seed, 1])
    chosen = []
    for k in numpy.unique(labels):
        members = numpy.flatnonzero(labels == k)
        if len(members) < per_class:
            raise ValueError(f"class {k} has only {len(members)} images in the pool, fewer than "
                             f"--labels-per-class {per_class}")
        chosen.append(rng.choice(members, per_class, replace=False))
    return numpy.sort(numpy.concatenate(chosen))


def forever(loader: DataLoader) -> Iterator[tuple[Any, Any]]:
    """The loader's batches, epoch after epoch (the few labelled images are seen many times)."""
    epoch = 0
    while True:
        yield from loader.epoch(epoch)
        epoch += 1


# ------------------------------------------------------------------------------------ the nets

class GaussianNoise(Module):
    """Adds N(0, std^2) noise in training mode (identity in eval mode).

    The paper's MNIST discriminator has one before each layer: with 100 labels, a network this
    size would otherwise learn the labelled images by heart. Adding noise does not change the
    derivative, so backward passes dy through unchanged.
    """

    def __init__(self, std: float, rng: numpy.random.Generator):
        super().__init__()
        self.std, self.rng = std, rng

    def forward(self, x: Any) -> Any:
        self._cache = True
        if not self.training or self.std == 0:
            return x
        return x + self.std * randn(self.rng, tuple(x.shape), x.dtype)

    def backward(self, dy: Any) -> Any:
        self._saved_cache(dy)
        return dy

    def extra_repr(self) -> str:
        return f"std={self.std}"


class Classifier(Module):
    """body: image (N, C, H, W) -> features (N, F);  head: Linear F -> K class logits.

    ``forward`` gives the logits; ``features`` the body's output, which feature matching uses.
    """

    def __init__(self, body: Sequential, head: Linear):
        super().__init__()
        self.body, self.head = body, head

    def forward(self, x: Any) -> Any:
        return self.head(self.body(x))

    def backward(self, dlogits: Any) -> Any:
        return self.body.backward(self.head.backward(dlogits))

    def features(self, x: Any) -> Any:
        return self.body(x)


def make_classifier(arch: str, shape: tuple[int, int, int], seed: int) -> Classifier:
    """The discriminator-classifier for images of ``shape`` (C, H, W) and 10 classes.

    mlp: the paper's MNIST network, smaller: Gaussian noise, then three hidden ReLU layers
         (500, 250, 250 units); the last hidden layer is the feature vector.
    conv: three 4x4 stride-2 convolutions (32, 64, 128 channels) with LeakyReLU, as DCGAN's
         discriminator but without batch norm (three different batches pass through it each
         step, and their statistics would differ); the flattened last map is the feature vector.
    """
    rng = make_rng([seed, 2])   # the same seed gives the baseline the very same initial weights
    noise_rng = make_rng([seed, 3])
    c, h, w = shape
    layers: list[Module] = []
    if arch == "mlp":
        sizes = [c * h * w, 500, 250, 250]
        layers += [Flatten(), GaussianNoise(0.3, noise_rng)]
        for d_in, d_out in zip(sizes[:-1], sizes[1:]):
            linear = Linear(d_in, d_out, rng=rng)
            # He initialisation keeps each layer's activations about as large as its input's,
            # so that the added noise (0.5) stays a fixed fraction of the signal at every depth.
            linear.weight.data = init.normal(linear.weight.shape, 0.0, (2 / d_in) ** 0.5, rng,
                                             linear.weight.dtype)
            linear.bias.data = init.zeros(linear.bias.shape, linear.bias.dtype)
            layers += [linear, ReLU(), GaussianNoise(0.5, noise_rng)]
        width = sizes[-1]
    else:
        channels = [c, 32, 64, 128]
        layers.append(GaussianNoise(0.1, noise_rng))
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [Conv2d(c_in, c_out, 4, stride=2, padding=1, rng=rng), LeakyReLU(0.2)]
        layers.append(Flatten())
        width = channels[-1] * (h // 8) * (w // 8)
    return Classifier(Sequential(*layers), Linear(width, 10, rng=rng))


def make_generator(arch: str, shape: tuple[int, int, int], z_size: int, seed: int) -> Module:
    """z (N, z_size) -> images (N, C, H, W) in (-1, 1).

    mlp: z -> 500 -> 500 (each Linear, BatchNorm1d, ReLU) -> C*H*W -> tanh, as the paper's
    MNIST generator; conv: minigan's DCGAN generator (``minigan/gan/dcgan.py``).
    """
    c, h, w = shape
    if arch == "conv":
        manual_seed(seed + 5)   # the DCGAN generator draws its weights from the global generator
        return Generator(z_size=z_size, conv_dim=32, image_size=h, channels=c)
    rng = make_rng([seed, 4])
    return Sequential(
        Linear(z_size, 500, bias=False, rng=rng), BatchNorm1d(500), ReLU(),
        Linear(500, 500, bias=False, rng=rng), BatchNorm1d(500), ReLU(),
        Linear(500, c * h * w, rng=rng), Tanh(), Reshape(c, h, w))


def accuracy(net: Classifier, images: numpy.ndarray, labels: numpy.ndarray) -> float:
    """Fraction of ``images`` classified correctly, in eval mode (no noise)."""
    net.eval()
    correct = 0
    loader = DataLoader(images, labels, batch_size=500, shuffle=False, drop_last=False)
    for x, y in loader.epoch(0):
        correct += int((net(x).argmax(axis=1) == y).sum())
    net.train()
    return correct / len(images)


# ------------------------------------------------------------------------------------ training

def train(args: argparse.Namespace, data: tuple[numpy.ndarray, ...],
          labelled: numpy.ndarray, semi_supervised: bool) -> dict[str, Any]:
    """Train one classifier: with the GAN game (``semi_supervised``) or on the labels alone.

    Either way an epoch has ``len(pool) // batch_size`` steps and each step sees one batch of
    labelled images, so the two runs differ only in the unlabelled and generated batches.
    """
    from minigan.progress import tqdm

    pool_x, pool_y, test_x, test_y = data
    shape = tuple(pool_x.shape[1:])
    arch = args.arch
    D = make_classifier(arch, shape, args.seed)
    opt_D = Adam(D.parameters(), lr=args.lr, betas=(0.5, 0.999))
    unlabelled = DataLoader(pool_x, None, batch_size=args.batch_size, seed=args.seed)
    labelled_batches = forever(DataLoader(
        pool_x[labelled], pool_y[labelled], batch_size=min(args.batch_size, len(labelled)),
        seed=args.seed + 1))
    cross_entropy, bce, lse = CrossEntropyLoss(), BCEWithLogitsLoss(), LogSumExp()
    if semi_supervised:
        z_size = 100
        G = make_generator(arch, shape, z_size, args.seed)
        opt_G = Adam(G.parameters(), lr=args.lr, betas=(0.5, 0.999))
        feature_matching = FeatureMatchingLoss()
        z_rng = make_rng([args.seed, 6])
    half = 0.5 * args.unsupervised_weight  # the paper averages the real and the fake term
    history: dict[str, list[float]] = {"epoch": [], "accuracy": [], "loss_labelled": [],
                                       "loss_unlabelled": [], "loss_feature_matching": []}
    name = "semi-supervised GAN" if semi_supervised else "baseline (labels only)"
    total = args.epochs * len(unlabelled)
    bar = tqdm(total=total, unit="step", desc=name, dynamic_ncols=True)
    step = 0
    for epoch in range(args.epochs):
        sums = numpy.zeros(3)
        for x_unlabelled, _ in unlabelled.epoch(epoch):
            x_labelled, y_labelled = next(labelled_batches)
            # As in the paper's code: a constant learning rate for two thirds of the run, then
            # a linear fall to 0, which settles the weights of both players.
            lr = args.lr * min(1.0, 3 * (1 - step / total))
            opt_D.lr = lr
            if semi_supervised:
                opt_G.lr = lr
            step += 1
            D.zero_grad()
            # 1. labelled images: the usual classification loss.
            loss_l = cross_entropy(D(x_labelled), y_labelled)
            D.backward(cross_entropy.backward())
            loss_u = loss_fm = 0.0
            if semi_supervised:
                # 2. unlabelled real images: p(real) = sigmoid(logsumexp(logits)) should be 1 ...
                loss_u = bce(lse(D(x_unlabelled)), 1.0)
                D.backward(lse.backward(bce.backward(half)))
                # 3. ... and generated images should get p(real) = 0. G's images are data here:
                # the gradient stops at D's input.
                z = uniform(z_rng, (args.batch_size, z_size), -1.0, 1.0)
                fake = G(z)
                loss_u += bce(lse(D(fake)), 0.0)
                D.backward(lse.backward(bce.backward(half)))
            opt_D.step()
            if semi_supervised:
                # 4. the generator: match the mean features of a real batch. D's weights are
                # not trained in this step, so their gradients are not computed.
                D.requires_grad_(False)
                G.zero_grad()
                real_features = D.features(x_unlabelled)
                loss_fm = feature_matching(real_features, D.features(fake))
                G.backward(D.body.backward(feature_matching.backward()))
                opt_G.step()
                D.requires_grad_(True)
            if not numpy.isfinite(loss_l + loss_u + loss_fm):
                raise RuntimeError(f"the {name} diverged in epoch {epoch + 1}: try a smaller --lr")
            sums += (loss_l, loss_u, loss_fm)
            bar.update(1)
            bar.set_postfix(labelled=f"{loss_l:.3f}", unlabelled=f"{loss_u:.3f}")
        acc = accuracy(D, test_x, test_y)
        history["epoch"].append(epoch + 1)
        history["accuracy"].append(acc)
        for key, loss_sum in zip(("loss_labelled", "loss_unlabelled",
                                  "loss_feature_matching"), sums):
            history[key].append(loss_sum / len(unlabelled))
        bar.write(f"{name}: epoch {epoch + 1}/{args.epochs}, held-out accuracy {acc:.4f}")
    bar.close()
    result: dict[str, Any] = {"D": D, "history": history}
    if semi_supervised:
        G.eval()
        result["samples"] = G(uniform(make_rng([args.seed, 7]), (100, z_size), -1.0, 1.0))
    return result


# ------------------------------------------------------------------------------------ reporting

def plot(baseline: dict[str, list[float]], semi: dict[str, list[float]], title: str,
         path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(semi["epoch"], semi["accuracy"], marker=".", color="tab:orange",
            label="semi-supervised GAN (labelled + unlabelled)")
    ax.plot(baseline["epoch"], baseline["accuracy"], marker=".", color="tab:blue",
            label="baseline (labelled images only)")
    ax.set(xlabel="epoch (one pass over the unlabelled pool)", ylabel="held-out accuracy",
           ylim=(0, 1), title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def write_csv(baseline: dict[str, list[float]], semi: dict[str, list[float]],
              path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "acc_semi_supervised", "acc_baseline", "loss_labelled_semi",
                         "loss_unlabelled_semi", "loss_feature_matching", "loss_labelled_base"])
        for i, epoch in enumerate(semi["epoch"]):
            writer.writerow([epoch, f"{semi['accuracy'][i]:.4f}",
                             f"{baseline['accuracy'][i]:.4f}",
                             f"{semi['loss_labelled'][i]:.5f}",
                             f"{semi['loss_unlabelled'][i]:.5f}",
                             f"{semi['loss_feature_matching'][i]:.5f}",
                             f"{baseline['loss_labelled'][i]:.5f}"])


def run(args: argparse.Namespace) -> None:
    from minigan.viz import save_image_grid

    use_backend(args.backend)
    # Before any work: writable, and no earlier results unless --overwrite.
    out = prepare_results_folder(args.out or f"runs/semi_supervised_"
                                             f"{dataset_label(args.dataset)}",
                                 RESULTS, args.overwrite)
    data, note = load_data(args)
    pool_x, pool_y, test_x, test_y = data
    if args.arch == "auto":
        args.arch = "mlp" if pool_x.shape[1:] == (1, 28, 28) else "conv"
    if args.arch == "conv" and pool_x.shape[-1] == 28:  # MNIST: pad to 32x32 for the convs
        pad = ((0, 0), (0, 0), (2, 2), (2, 2))
        pool_x, test_x = numpy.pad(pool_x, pad), numpy.pad(test_x, pad)
        data = (pool_x, pool_y, test_x, test_y)
    if args.arch == "conv" and pool_x.shape[-1] % 8:
        raise ValueError(f"--arch conv needs images whose size is a multiple of 8, got "
                         f"{pool_x.shape[-1]}x{pool_x.shape[-2]}")
    if len(pool_x) < args.batch_size:
        raise ValueError(f"--batch-size {args.batch_size} is larger than the pool of "
                         f"{len(pool_x)} images")
    labelled = choose_labelled(pool_y, args.labels_per_class, args.seed)
    print(note)
    print(f"{len(labelled)} labelled images ({args.labels_per_class} per class), "
          f"{len(pool_x)} unlabelled, {len(test_x)} held out; {args.arch} networks, "
          f"{args.epochs} epoch{'s' * (args.epochs != 1)} of {len(pool_x) // args.batch_size} "
          f"steps, backend "
          f"{backend_name()}")

    started = time.perf_counter()
    baseline = train(args, data, labelled, semi_supervised=False)["history"]
    semi_result = train(args, data, labelled, semi_supervised=True)
    semi = semi_result["history"]
    seconds = time.perf_counter() - started

    title = (f"{dataset_label(args.dataset)}, {len(labelled)} labels, "
             f"{len(pool_x)} unlabelled images")
    png = plot(baseline, semi, title, out / "semi_supervised.png")
    write_csv(baseline, semi, out / "accuracy.csv")
    save_image_grid(semi_result["samples"], out / "samples.png", nrow=10)
    summary = "\n".join([
        note,
        f"{len(labelled)} labels, {len(pool_x)} unlabelled images, {args.arch} networks, "
        f"{args.epochs} epoch{'s' * (args.epochs != 1)}, seed {args.seed}",
        f"{'':<34}{'final':>8}{'best':>8}",
        f"{'semi-supervised GAN accuracy':<34}{semi['accuracy'][-1]:>8.4f}"
        f"{max(semi['accuracy']):>8.4f}",
        f"{'baseline (labels only) accuracy':<34}{baseline['accuracy'][-1]:>8.4f}"
        f"{max(baseline['accuracy']):>8.4f}",
        f"held out: {len(test_x)} images; trained in {seconds:.0f} s",
    ])
    (out / "summary.txt").write_text(summary + "\n")
    print(summary)
    print(f"plot: {png}; samples: {out / 'samples.png'}; per-epoch numbers: "
          f"{out / 'accuracy.csv'}; this summary: {out / 'summary.txt'}")


def check_and_run(args: argparse.Namespace) -> None:
    """Refuse values that make no sense, in one line each, then run."""
    check_at_least_one(args, "labels_per_class", "epochs", "batch_size", "test_size")
    if not args.lr > 0:
        raise ValueError(f"--lr must be positive, got {args.lr}")
    if not args.unsupervised_weight >= 0:
        raise ValueError(f"--unsupervised-weight must be 0 or more, got "
                         f"{args.unsupervised_weight}")
    if args.pool is not None and args.pool < 2:
        raise ValueError(f"--pool must be at least 2, got {args.pool}")
    run(args)


def main(argv: list[str] | None = None) -> int:
    # run_script: one-line warnings and errors, Ctrl-C (exit 130), out of memory (exit 2)
    return run_script(check_and_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
