"""The FID Inception-v3 of ``minigan.metrics.inception`` and the scoring of ``InceptionScorer``,
in plain PyTorch.

Why this file exists: the network FID and IS use is pytorch-fid's "FID Inception", which is
built on torchvision's Inception-v3. To time minigan's scoring against PyTorch's, PyTorch needs
that network, but torchvision (and so pytorch-fid) cannot always be installed beside a given
torch: its compiled operators must match torch's build exactly. This file writes the same network
with ``torch.nn`` alone, block for block and name for name, so that only torch is needed.

It mirrors minigan's ``FIDInceptionV3``, which mirrors pytorch-fid's ``fid_inception_v3``:

* every convolution is Conv2d (no bias) -> BatchNorm2d (eps 0.001, eval mode) -> ReLU;
* the average poolings inside the A, C and first E blocks do not count the zero padding
  (``count_include_pad=False``), and the last E block (``Mixed_7c``) pools its side branch with
  a *max* pooling (pytorch-fid's FIDInceptionE_2);
* images in [-1, 1] are resized to 299 x 299, bilinear with ``align_corners=False``, and fed
  as they are (pytorch-fid resizes images in [0, 1] and then maps them with 2x - 1: the same
  numbers, because a resize averages with weights that add up to one);
* scoring gives the 2048 "pool3" features (FID) and p(y|x) = softmax(pool3 @ fc.weight.T)
  over 1008 classes (IS, the original code's logits *without* the bias), as
  ``InceptionScorer.pool3_and_probabilities`` does.

The parameter names are pytorch-fid's (``Mixed_6b.branch7x7_2.conv.weight`` ...), which are
also minigan's, so one state dict loads into both. How it is checked:
``tests/metrics/test_torch_inception.py`` loads the same random weights into this network and
into minigan's and holds their pool3 features and probabilities on two images to the same
numbers in float64, and to the outputs recorded once from pytorch-fid itself. Only then is
timing one against the other a comparison of the same work.

Run as a script, it times PyTorch's scoring alone, in a fresh process of its own, as users run
PyTorch (``bench_inception.py`` starts it so, once per round):

    python benchmarks/torch_inception.py --threads 1 --num-images 16 --batch-size 8 --seed 0

and prints one JSON line, ``{"seconds_per_image": ..., ...}``. The inputs and the weights are
drawn from ``--seed`` exactly as ``bench_inception.py`` draws minigan's, so both sides score the
same images with the same weights.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Time PyTorch's FID Inception scoring on the CPU.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--num-images", type=int, default=16, help="images timed")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0, help="seed of the images and weights")
    args = p.parse_args(argv)
    for value, what in ((args.threads, "--threads"), (args.num_images, "--num-images"),
                        (args.batch_size, "--batch-size")):
        if value < 1:
            p.error(f"{what} must be at least 1, got {value}")
    return args


# Run as a script: PyTorch sizes its thread pools (and NumPy its BLAS) when imported, so the
# thread variables are set first. Imported (by the test), it leaves the environment alone.
ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    for var in THREAD_VARIABLES:
        os.environ[var] = str(ARGS.threads)

import numpy  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

FID_INPUT_SIZE = 299    # Inception-v3's input: 299 x 299 pixels
NUM_CLASSES = 1008      # TensorFlow's classifier: 1000 ImageNet classes + 8 unused outputs
POOL3_FEATURES = 2048   # FID's feature vector


class BasicConv2d(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d(eps=0.001) -> ReLU: every convolution of Inception-v3."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def avg_pool_3x3(x: torch.Tensor) -> torch.Tensor:
    """The FID blocks' side-branch pooling: the zero padding is not counted (TensorFlow's)."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """Mixed_5b/5c/5d: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg pool -> 1x1."""

    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(avg_pool_3x3(x))
        return torch.cat([self.branch1x1(x), branch5x5, branch3x3dbl, branch_pool], 1)


class InceptionB(nn.Module):
    """Mixed_6a, a grid reduction: 3x3 stride 2 | 1x1 -> 3x3 -> 3x3 stride 2 | max pool."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), branch3x3dbl, F.max_pool2d(x, 3, stride=2)], 1)


class FIDInceptionC(nn.Module):
    """Mixed_6b..6e: 1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 | avg pool -> 1x1."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = x
        for i in range(1, 6):
            branch7x7dbl = getattr(self, f"branch7x7dbl_{i}")(branch7x7dbl)
        branch_pool = self.branch_pool(avg_pool_3x3(x))
        return torch.cat([self.branch1x1(x), branch7x7, branch7x7dbl, branch_pool], 1)


class InceptionD(nn.Module):
    """Mixed_7a, a grid reduction: 1x1 -> 3x3 stride 2 | 1x1 -> 1x7 -> 7x1 -> 3x3 stride 2 |
    max pool."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch7x7x3 = x
        for i in range(1, 5):
            branch7x7x3 = getattr(self, f"branch7x7x3_{i}")(branch7x7x3)
        return torch.cat([branch3x3, branch7x7x3, F.max_pool2d(x, 3, stride=2)], 1)


class FIDInceptionE(nn.Module):
    """Mixed_7b (``max_pool=False``, pytorch-fid's FIDInceptionE_1) and Mixed_7c
    (``max_pool=True``, FIDInceptionE_2): 1x1 | 1x1 -> (1x3, 3x1) | 1x1 -> 3x3 -> (1x3, 3x1) |
    pool -> 1x1, where (a, b) runs a and b on the same input and concatenates them."""

    def __init__(self, in_channels: int, max_pool: bool = False):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(b), self.branch3x3_2b(b)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else avg_pool_3x3(x)
        return torch.cat([self.branch1x1(x), branch3x3, branch3x3dbl,
                          self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """x: (N, 3, H, W) images in [-1, 1] -> ``pool3(x)`` (N, 2048); ``fc`` gives 1008 logits.

    The attributes are declared in minigan's order, so the state dicts list the same names with
    the same shapes; there is no dropout (pytorch-fid's does nothing in eval mode).
    """

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, max_pool=False)
        self.Mixed_7c = FIDInceptionE(2048, max_pool=True)
        self.fc = nn.Linear(POOL3_FEATURES, NUM_CLASSES)
        self.eval()

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """FID's features: (N, 3, H, W) in [-1, 1] -> (N, 2048)."""
        x = F.interpolate(x, size=(FID_INPUT_SIZE, FID_INPUT_SIZE), mode="bilinear",
                          align_corners=False)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits (N, 1008)."""
        return self.fc(self.pool3(x))


def random_weights(net: nn.Module, seed: int) -> dict[str, numpy.ndarray]:
    """``bench_inception.random_weights(seed)``, drawn over this network's names: the same
    uniform draws in the same order (the parameters, then the buffers, as minigan's state dict
    lists them; minigan's ``draw_random_weights``), so both networks get the same weights from
    the same seed without sharing a file. The test holds the two to equality."""
    from minigan.metrics.inception_weights import draw_random_weights

    return draw_random_weights(((name, value.shape) for name, value in
                                [*net.named_parameters(), *net.named_buffers()]), seed)


def load_weights(net: FIDInceptionV3, state: dict[str, numpy.ndarray]) -> FIDInceptionV3:
    """Copy a state dict of NumPy arrays into ``net`` (converted to each tensor's dtype)."""
    net.load_state_dict({k: torch.from_numpy(numpy.array(v)) for k, v in state.items()})
    return net


def pool3_and_probabilities(net: FIDInceptionV3, images: numpy.ndarray, batch_size: int
                            ) -> tuple[numpy.ndarray, numpy.ndarray]:
    """``InceptionScorer.pool3_and_probabilities`` for float images in [-1, 1]: (pool3 (N, 2048),
    p(y|x) (N, 1008)), float64 NumPy arrays, ``batch_size`` images at a time."""
    dtype = net.fc.weight.dtype
    features, probs = [], []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(images[start:start + batch_size]).to(dtype)
            pool3 = net.pool3(x)
            unbiased_logits = pool3 @ net.fc.weight.T   # the original IS code's: no bias
            features.append(pool3.double().numpy())
            probs.append(torch.softmax(unbiased_logits, dim=1).double().numpy())
    return numpy.concatenate(features), numpy.concatenate(probs)


def time_scoring(threads: int, num_images: int, batch_size: int, seed: int) -> float:
    """Seconds per image over ``num_images`` images, as ``bench_inception.time_scoring`` times
    minigan: the same 32x32 images from ``seed``, float32, one untimed warm-up batch."""
    torch.set_num_threads(threads)
    net = FIDInceptionV3()    # float32 parameters: the float64 draws are rounded into them
    load_weights(net, random_weights(net, seed))
    rng = numpy.random.default_rng(seed)
    images = rng.uniform(-1, 1, (num_images, 3, 32, 32)).astype(numpy.float32)
    pool3_and_probabilities(net, images[:batch_size], batch_size)    # warm-up
    start = time.perf_counter()
    pool3_and_probabilities(net, images, batch_size)
    return (time.perf_counter() - start) / num_images


def main() -> int:
    seconds = time_scoring(ARGS.threads, ARGS.num_images, ARGS.batch_size, ARGS.seed)
    print(json.dumps({"seconds_per_image": seconds, "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "num_images": ARGS.num_images,
                      "batch_size": ARGS.batch_size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
