"""Training the feature network of FID and IS: a plain supervised loop with minigan's pieces.

``minigan.metrics.features.FeatureNet`` is the network; this module teaches it. It lives apart
from ``minigan.metrics`` because training needs the optimizer and the data loader, and the
metrics (which only *use* a trained network) import neither.

    net = train_classifier(images, labels, epochs=5)   # (N, C, S, S) uint8, (N,) ints
    net.save("runs/features_svhn.npz", dataset="svhn")
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy

from minigan.backend import get_array_module, make_rng
from minigan.metrics.features import FeatureNet
from minigan.nn import CrossEntropyLoss
from minigan.optim import Adam

__all__ = ["chance_accuracy", "check_better_than_chance", "check_two_classes", "random_shift",
           "train_classifier"]


def chance_accuracy(labels: numpy.ndarray) -> float:
    """The accuracy of a classifier that learned nothing: always answering the most common
    label of ``labels`` (N,). 0.1 for ten balanced classes; 1.0 when there is only one."""
    labels = numpy.asarray(labels)
    if labels.size == 0:
        raise ValueError("chance accuracy of no labels is undefined")
    return float(numpy.bincount(labels.astype(numpy.int64) - labels.min()).max() / labels.size)


def check_two_classes(labels: numpy.ndarray, what: str = "") -> None:
    """Raise ValueError (one line) when all ``labels`` are the same: a classifier would be
    right every time without learning anything, and report an accuracy of 1.0."""
    labels = numpy.asarray(labels)
    if labels.size and numpy.unique(labels).size < 2:
        raise ValueError(f"{what}all {labels.size} images have the label {int(labels.flat[0])}: "
                         f"a classifier needs at least two classes to tell apart (a folder of "
                         f"pictures gives one class per subfolder)")


def check_better_than_chance(accuracy: float, labels: numpy.ndarray, what: str) -> None:
    """Raise RuntimeError (one line) when ``accuracy`` on the images of ``labels`` is no better
    than ``chance_accuracy(labels)``: training failed (a learning rate far too large, say), and
    such a network must not be saved and used to score anything."""
    chance = chance_accuracy(labels)
    if accuracy <= chance:
        raise RuntimeError(f"{what} reached a held-out accuracy of {accuracy:.4f}, no better "
                           f"than chance ({chance:.4f}, always answering the most common "
                           f"class): training failed (a smaller --lr?), so it was not saved")


def random_shift(x: Any, max_shift: int, rng: numpy.random.Generator) -> Any:
    """Move each image of x (N, C, H, W) by up to ``max_shift`` pixels up/down and left/right.

    Data augmentation: a digit one pixel to the left is the same digit, and seeing it in
    several places keeps a small training set from being learnt by heart. The image is padded
    by repeating its border pixels, then cropped back to H x W at a random offset.
    """
    if max_shift <= 0:
        return x
    xp = get_array_module(x)
    h, w, s = x.shape[2], x.shape[3], max_shift
    padded = xp.pad(x, ((0, 0), (0, 0), (s, s), (s, s)), mode="edge")
    offsets = rng.integers(0, 2 * s + 1, size=(len(x), 2))
    return xp.stack([padded[i, :, a:a + h, b:b + w] for i, (a, b) in enumerate(offsets)])


def train_classifier(images: numpy.ndarray, labels: numpy.ndarray, epochs: int = 5,
                     batch_size: int = 64, lr: float = 2e-3, seed: int = 0,
                     progress: bool = True, width: int = 16, feature_dim: int = 128,
                     num_classes: int = 10, shift: int = 1) -> FeatureNet:
    """Train a FeatureNet on (N, C, S, S) uint8 images and (N,) integer labels; return it in
    eval mode.

    Plain supervised learning with minigan's pieces: the DataLoader scales pixels to [-1, 1] and
    shuffles (seeded), each batch is shifted at random by up to ``shift`` pixels
    (``random_shift``), the loss is softmax cross-entropy, the optimizer Adam. The learning
    rate falls linearly to 0 over the last epoch, which settles the weights for a better test
    score. ``seed`` fixes the initial weights, the batch order and the shifts.
    """
    from minigan.data import DataLoader
    from minigan.progress import tqdm

    images, labels = _checked_training_data(images, labels, num_classes, epochs, batch_size,
                                            shift)
    loader = DataLoader(images, labels.astype(numpy.int64), batch_size=batch_size,
                        shuffle=True, drop_last=True, seed=seed)
    if len(loader) == 0:
        raise ValueError(f"batch size {batch_size} is larger than the {len(images)} images")
    net = FeatureNet(images.shape[1], num_classes, width, feature_dim, images.shape[2],
                     rng=make_rng([seed, 3]))
    criterion = CrossEntropyLoss()
    optimizer = Adam(net.parameters(), lr=lr)
    shift_rng = make_rng([seed, 4])
    steps_per_epoch = len(loader)
    decay_steps = steps_per_epoch if epochs > 1 else max(steps_per_epoch // 2, 1)
    total = epochs * steps_per_epoch
    net.train()
    step, started = 0, time.perf_counter()
    for epoch in range(epochs):
        bar = tqdm(loader.epoch(epoch), total=steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}",
                   disable=not progress, unit="batch", dynamic_ncols=True, leave=False)
        correct = seen = 0
        loss_sum = 0.0
        for x, y in bar:
            # Constant learning rate, then a linear ramp down to 0 over the last ``decay_steps``.
            optimizer.lr = lr * min(1.0, (total - step) / decay_steps)
            optimizer.zero_grad()
            logits = net(random_shift(x, shift, shift_rng))
            loss = criterion(logits, y)
            net.backward(criterion.backward())
            optimizer.step()
            step += 1
            correct += int((logits.argmax(axis=1) == y).sum())
            seen += len(y)
            loss_sum += loss * len(y)
            bar.set_postfix(loss=f"{loss:.3f}", acc=f"{correct / seen:.3f}")
        if not math.isfinite(loss_sum):
            raise RuntimeError(f"classifier training diverged in epoch {epoch + 1} "
                               f"(loss {loss}); try a lower learning rate")
        if progress:
            print(f"epoch {epoch + 1}/{epochs}: mean loss {loss_sum / seen:.4f}, training "
                  f"accuracy {correct / seen:.4f} ({time.perf_counter() - started:.0f} s)")
    return net.eval()


def _checked_training_data(images: Any, labels: Any, num_classes: int, epochs: int,
                           batch_size: int, shift: int) -> tuple[numpy.ndarray, numpy.ndarray]:
    """``train_classifier``'s inputs as host arrays, each refused in one line when it cannot
    train a classifier (wrong shapes or dtype, labels out of range, a single class...)."""
    images, labels = numpy.asarray(images), numpy.asarray(labels)
    if images.ndim != 4 or images.dtype != numpy.uint8:
        raise ValueError(f"expected (N, C, H, W) uint8 images, got {images.dtype} "
                         f"{images.shape}")
    if images.shape[2] != images.shape[3]:
        raise ValueError(f"expected square images, got {images.shape[2]}x{images.shape[3]}")
    if labels.shape != (len(images),):
        raise ValueError(f"expected ({len(images)},) labels, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got "
                         f"{labels.min()}..{labels.max()}")
    check_two_classes(labels)
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be at least 1, got {epochs}, {batch_size}")
    if shift < 0:
        raise ValueError(f"shift must be 0 or more pixels, got {shift}")
    return images, labels
