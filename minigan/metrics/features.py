"""A small digit/object classifier whose inner activations serve as the "features" of FID and IS.

FID and IS need a fixed network that turns an image into (a) a feature vector and (b) a
probability for each class. The published numbers use Inception-v3 trained on ImageNet: FID takes
its 2048 pool features, IS its 1000 class probabilities. minigan has no Inception-v3, so it trains
its own network, ``FeatureNet``, on the dataset the GAN learns (SVHN, CIFAR-10, MNIST), with
minigan's own layers:

    x (N, C, S, S) in [-1, 1]
      -> [Conv2d 3x3 stride 2 -> BatchNorm2d -> ReLU] x 3     channels width, 2 width, 4 width
      -> Flatten -> Linear -> ReLU                            the features, (N, feature_dim)
      -> Linear                                               the logits, (N, num_classes)

``features(x)`` returns the penultimate activations (FID's input) and ``probabilities(x)`` the
softmax of the logits (IS's input).

What the numbers mean -- please read before quoting one:

* These are the *domain-specific* variants of FID and IS, computed with a feature network that
  minigan trained. They are **not** the published Inception-v3 FID and IS and cannot be put
  next to numbers from papers.
* A score is comparable only with scores computed by the *same* feature network file (same
  weights, same real-data statistics). Retrain the classifier and every number changes.
* Within one feature network they are useful: a lower FID means the generated images' features
  sit closer to the real images' features (mean and covariance); a higher IS means the samples
  are individually recognisable as one class (confident p(y|x)) *and* spread over all classes
  (a broad p(y)). For 10 classes IS lies between 1 and 10.

The file format is an ``.npz`` written by ``minigan.checkpoint.save_checkpoint``: the weights,
the constructor arguments as JSON text, and a few facts about training (dataset, accuracy). No
pickles.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy

from minigan.backend import get_array_module, to_numpy
from minigan.checkpoint import (
    DamagedFileError,
    load_checkpoint,
    load_module_state,
    read_json,
    require,
    save_checkpoint,
    text_array,
)
from minigan.nn import BatchNorm2d, Conv2d, Flatten, Linear, Module, ReLU, Sequential

__all__ = ["FeatureNet", "accuracy", "pad_to", "to_float_images"]

FORMAT = "minigan.FeatureNet/1"  # written into every file, checked when loading


def to_float_images(images: Any, dtype: Any = numpy.float32) -> Any:
    """uint8 pixels 0..255 -> floats in [-1, 1] (the scale of real batches and of G's tanh).

    Float input is returned unchanged (apart from the dtype): it is taken to be in [-1, 1].
    The formula is the DataLoader's (``minigan.data.scale_images``; a test holds the two to the
    same numbers), written out here because metrics do not import the data package.
    """
    if images.dtype.kind == "u":
        xp = get_array_module(images)
        return (images.astype(xp.float32) / 255 * 2 - 1).astype(dtype, copy=False)
    return images.astype(dtype, copy=False)


def pad_to(images: numpy.ndarray, size: int) -> numpy.ndarray:
    """Zero-pad (N, C, H, W) images equally on each side to (N, C, size, size).

    MNIST's 28x28 digits become 32x32 this way (2 black pixels each side), the size the DCGAN
    generator produces, so one feature network scores both the real digits and G's samples.
    """
    h, w = images.shape[-2:]
    if h == size and w == size:
        return images
    if h > size or w > size or (size - h) % 2 or (size - w) % 2:
        raise ValueError(f"cannot pad {h}x{w} images evenly to {size}x{size}")
    ph, pw = (size - h) // 2, (size - w) // 2
    return numpy.pad(images, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


class FeatureNet(Sequential):
    """A small convolutional classifier: (N, channels, S, S) images -> (N, num_classes) logits.

    Args:
        channels: image channels (1 for MNIST, 3 for SVHN and CIFAR-10).
        num_classes: number of classes (10 for all three datasets).
        width: channels of the first convolution; the next two have 2x and 4x as many.
        feature_dim: length of the feature vector (the penultimate layer).
        image_size: S, the height and width of the input (32; 28 also works).
        rng: generator for the initial weights (``minigan.backend.global_rng()`` if None).

    Each 3x3 stride-2 convolution maps S to (S - 1) // 2 + 1 (32 -> 16 -> 8 -> 4). The convs have
    no bias because batch norm right after them subtracts the mean anyway.
    """

    def __init__(self, channels: int, num_classes: int = 10, width: int = 16,
                 feature_dim: int = 128, image_size: int = 32,
                 rng: numpy.random.Generator | None = None):
        for name, value in (("channels", channels), ("num_classes", num_classes),
                            ("width", width), ("feature_dim", feature_dim)):
            if int(value) < 1:
                raise ValueError(f"FeatureNet: {name} must be at least 1, got {value}")
        if num_classes < 2:
            raise ValueError(f"FeatureNet: num_classes must be at least 2, got {num_classes}")
        if image_size < 8:
            raise ValueError(f"FeatureNet: image_size must be at least 8, got {image_size}")
        layers: list[Module] = []
        in_channels, size = channels, image_size
        for i in range(3):
            out_channels = width * 2 ** i
            layers += [Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False,
                              rng=rng),
                       BatchNorm2d(out_channels), ReLU()]
            in_channels, size = out_channels, (size - 1) // 2 + 1
        layers += [Flatten(), Linear(in_channels * size * size, feature_dim, rng=rng), ReLU(),
                   Linear(feature_dim, num_classes, rng=rng)]
        super().__init__(*layers)
        self.channels, self.num_classes, self.width = channels, num_classes, width
        self.feature_dim, self.image_size = feature_dim, image_size

    def config(self) -> dict[str, int]:
        """The constructor arguments: enough to rebuild the network before loading weights."""
        return {"channels": self.channels, "num_classes": self.num_classes, "width": self.width,
                "feature_dim": self.feature_dim, "image_size": self.image_size}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config().items())

    def forward(self, x: Any) -> Any:
        self.check_input(x, ("N", self.channels, self.image_size, self.image_size))
        return super().forward(x)

    # ------------------------------------------------------------------ scoring images
    def _run(self, images: Any, batch_size: int, upto: int, progress: bool = False) -> Any:
        """Run the first ``upto`` layers on ``images`` in eval mode, ``batch_size`` at a time.

        ``images``: (N, C, S, S) uint8 pixels or floats in [-1, 1], on either backend. Each batch
        is moved to the network's device; the result is one array there. The network's
        train/eval mode is restored afterwards. ``progress`` shows a progress bar.
        """
        from minigan.progress import tqdm

        self.check_input(images, ("N", self.channels, self.image_size, self.image_size))
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        weight = self.layers[-1].weight.data
        xp = get_array_module(weight)
        layers = self.layers[:upto]
        was_training = self.training
        self.eval()  # batch norm uses its running statistics: one image's output is its own
        try:
            outputs = []
            starts = range(0, len(images), batch_size)
            for start in tqdm(starts, disable=not progress, unit="batch", leave=False,
                              desc="features", dynamic_ncols=True):
                batch = images[start:start + batch_size]
                batch = xp.asarray(to_numpy(batch) if xp is numpy else batch)
                y = to_float_images(batch, weight.dtype)
                for layer in layers:
                    y = layer(y)
                    layer.clear_cache()  # no backward will follow: free the memory now
                outputs.append(y)
        finally:
            self.train(was_training)
        if not outputs:
            width = self.num_classes if upto == len(self) else self.feature_dim
            return xp.zeros((0, width), dtype=weight.dtype)
        return xp.concatenate(outputs)

    def features(self, images: Any, batch_size: int = 500, progress: bool = False) -> Any:
        """Penultimate activations (after the ReLU): (N, feature_dim), FID's feature vectors."""
        return self._run(images, batch_size, len(self) - 1, progress)

    def logits(self, images: Any, batch_size: int = 500, progress: bool = False) -> Any:
        """Class scores before the softmax: (N, num_classes)."""
        return self._run(images, batch_size, len(self), progress)

    def probabilities(self, images: Any, batch_size: int = 500) -> Any:
        """p(y|x) for each image: (N, num_classes), each row sums to 1 (IS's input).

        softmax(z)_k = exp(z_k - max z) / sum_j exp(z_j - max z): subtracting the row's largest
        logit changes nothing mathematically but keeps exp() from overflowing.
        """
        z = self.logits(images, batch_size)
        xp = get_array_module(z)
        e = xp.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, images: Any, batch_size: int = 500) -> numpy.ndarray:
        """The most likely class of each image: (N,) int64 NumPy array."""
        return to_numpy(self.logits(images, batch_size).argmax(axis=1)).astype(numpy.int64)

    # ------------------------------------------------------------------ files
    def fingerprint(self) -> str:
        """A short hash of the weights and running statistics.

        The cached real-data statistics record it, so FID is never computed by mixing one
        network's features with statistics computed by another. Floating-point values are
        hashed as float32, the dtype they are saved in: the same file loaded as float64 (with
        ``set_default_dtype("float64")``) is the same network, and has the same fingerprint.
        """
        digest = hashlib.sha256()
        for name, value in sorted(self.state_dict().items()):
            if numpy.issubdtype(value.dtype, numpy.floating):
                value = value.astype(numpy.float32)
            digest.update(name.encode())
            digest.update(numpy.ascontiguousarray(value).tobytes())
        return digest.hexdigest()[:16]

    def save(self, path: str | Path, **info: Any) -> Path:
        """Write the weights and constructor arguments to the .npz file ``path``.

        ``info`` holds JSON-compatible facts worth keeping with the weights, e.g.
        ``dataset="mnist", accuracy=0.99``; ``FeatureNet.load_info`` reads them back.
        """
        sections = {
            "model": self.state_dict(),
            "config": {"format": text_array(FORMAT), "json": text_array(self.config()),
                       "info": text_array(info)},
        }
        return save_checkpoint(path, sections)

    @staticmethod
    def _read(path: str | Path) -> dict[str, dict[str, numpy.ndarray]]:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no feature network at {path} (make one with "
                                    f"examples/train_classifier.py)")
        sections = load_checkpoint(path, ["model", "config"], what="feature network file")
        require(sections["config"], path, ["format", "json", "info"], what="config entry")
        if read_json(sections["config"]["format"], path, "the format", kind=str) != FORMAT:
            raise DamagedFileError(path, "not a feature network file (make one with "
                                         "examples/train_classifier.py)")
        return sections

    @classmethod
    def load(cls, path: str | Path) -> FeatureNet:
        """Rebuild a network saved by ``save`` (on the active backend), in eval mode.

        A damaged file, settings that make no network, or weights that do not fit raise one
        ``DamagedFileError`` naming the file.
        """
        sections = cls._read(path)
        config = read_json(sections["config"]["json"], path, "the network's settings")
        try:
            net = cls(**config)
        except (TypeError, ValueError) as error:
            raise DamagedFileError(path, f"the network's settings are not usable ({error})") \
                from None
        load_module_state(net, sections["model"], path, "weights")
        return net.eval()

    @classmethod
    def load_info(cls, path: str | Path) -> dict[str, Any]:
        """The ``info`` facts saved with the network (dataset, accuracy, ...)."""
        return read_json(cls._read(path)["config"]["info"], path, "the network's info")


def accuracy(net: FeatureNet, images: Any, labels: Any, batch_size: int = 500) -> float:
    """The fraction of ``images`` whose most likely class is their label."""
    labels = to_numpy(labels).astype(numpy.int64)
    if len(labels) == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float((net.predict(images, batch_size) == labels).mean())
