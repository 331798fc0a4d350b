"""Inception-v3 as FID and IS use it, built from minigan's own layers.

Published FID and Inception Score numbers all come from one network: the Inception-v3 that
TensorFlow's FID code shipped in 2015, ported to PyTorch by the pytorch-fid package ("FID
Inception"). It is torchvision's Inception-v3 with four patches, reproduced here block for block:

* its average poolings inside the blocks do not count the zero padding
  (``count_include_pad=False``, as TensorFlow's), in the A, C and first E blocks;
* the last E block (``Mixed_7c``) pools its side branch with a *max* pooling, not an average;
* batch norm uses eps = 0.001, and the classifier has 1008 outputs (TensorFlow's 1000 ImageNet
  classes and 8 unused ones), not 1000;
* images are resized to 299 x 299 with bilinear interpolation (PyTorch's ``align_corners=False``)
  and fed in [-1, 1].

The data flow, with the output shapes for one 299 x 299 image::

    x (N, 3, H, W) in [-1, 1] -> ResizeBilinear(299)                (N, 3, 299, 299)
    Conv2d_1a_3x3 (stride 2), Conv2d_2a_3x3, Conv2d_2b_3x3          (N, 64, 147, 147)
    maxpool1 (3, stride 2), Conv2d_3b_1x1, Conv2d_4a_3x3            (N, 192, 71, 71)
    maxpool2 (3, stride 2)                                          (N, 192, 35, 35)
    Mixed_5b, 5c, 5d    (InceptionA: 1x1 | 5x5 | 3x3-3x3 | pool)    (N, 288, 35, 35)
    Mixed_6a            (InceptionB: a stride-2 reduction)          (N, 768, 17, 17)
    Mixed_6b .. 6e      (InceptionC: 7x7 factored as 1x7 and 7x1)   (N, 768, 17, 17)
    Mixed_7a            (InceptionD: a stride-2 reduction)          (N, 1280, 8, 8)
    Mixed_7b, 7c        (InceptionE: 1x3 and 3x1 side by side)      (N, 2048, 8, 8)
    GlobalAvgPool2d -> "pool3", FID's features                      (N, 2048)
    fc (Linear 2048 -> 1008) -> logits; softmax -> IS's p(y|x)      (N, 1008)

Every "BasicConv2d" is Conv2d (no bias) -> BatchNorm2d (eps 0.001, eval mode) -> ReLU. An
Inception block runs a few such chains ("branches") on the same input and concatenates their
outputs along the channels; its backward pass cuts the gradient back into the branches' slices,
runs each branch backward and adds the input gradients, because every branch read the same x.

The attribute names are torchvision's, so the state dict of pytorch-fid's weights file
(``Mixed_6b.branch7x7_2.conv.weight`` ...) loads as it is: see ``load_fid_weights``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from minigan import ops
from minigan.backend import get_array_module
from minigan.nn import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    GlobalAvgPool2d,
    Linear,
    MaxPool2d,
    Module,
    ReLU,
    ResizeBilinear,
)
from minigan.nn.conv import WEIGHT_MATRIX_ORDER
from minigan.ops.im2col import IntOrPair

__all__ = ["FID_INPUT_SIZE", "NUM_CLASSES", "POOL3_FEATURES", "BasicConv2d", "FIDInceptionV3",
           "InceptionBlock", "free_caches", "softmax"]

FID_INPUT_SIZE = 299      # Inception-v3's input: 299 x 299 pixels
NUM_CLASSES = 1008        # TensorFlow's classifier: 1000 ImageNet classes + 8 unused outputs
POOL3_FEATURES = 2048     # the width of the final average pooling, FID's feature vector
BN_EPS = 0.001            # TensorFlow's batch norm epsilon, kept by the port


class BasicConv2d(Module):
    """Conv2d without bias -> BatchNorm2d(eps=0.001) -> ReLU: every convolution of Inception-v3.

    x: (N, in_channels, H, W) -> y: (N, out_channels, H_out, W_out), the convolution's size rule.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair,
                 stride: IntOrPair = 1, padding: IntOrPair = 0):
        super().__init__()
        self.conv = Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = BatchNorm2d(out_channels, eps=BN_EPS)
        self.relu = ReLU()

    def forward(self, x: Any) -> Any:
        return self.relu(self.bn(self.conv(x)))

    def backward(self, dy: Any) -> Any:
        return self.conv.backward(self.bn.backward(self.relu.backward(dy)))


# A branch is a list of steps run one after the other. A step is the name of a layer of the
# block, or a tuple of names: those layers run side by side on the same input and their outputs
# are concatenated (the E blocks split a branch this way into a 1x3 and a 3x1 convolution).
Step = str | tuple[str, ...]


class InceptionBlockCache(NamedTuple):
    """What an InceptionBlock's backward needs besides its layers' own caches."""

    concat: Any                             # the cache of the concatenation of the branches
    splits: dict[tuple[str, ...], Any]      # the caches of the concatenations inside branches


class InceptionBlock(Module):
    """Branches run on the same input; their outputs concatenated along the channels.

    Subclasses create their layers as attributes (torchvision's names) and list the branches in
    ``self.branches``, e.g. ``[["branch1x1"], ["branch5x5_1", "branch5x5_2"], ...]``.
    x: (N, C, H, W) -> y: (N, sum of the branches' channels, H_out, W_out).
    """

    branches: list[list[Step]]

    def forward(self, x: Any) -> Any:
        # The block's one cache: the final concatenation's, and those of the concatenations
        # inside branches (the tuple steps), by step.
        split_caches: dict[tuple[str, ...], Any] = {}
        outputs = [self._run(x, branch, split_caches) for branch in self.branches]
        y, concat_cache = ops.concat_forward(outputs, axis=1)
        self._cache = InceptionBlockCache(concat_cache, split_caches)
        return y

    def _run(self, x: Any, branch: Sequence[Step], split_caches: dict) -> Any:
        for step in branch:
            if isinstance(step, str):
                x = getattr(self, step)(x)
            else:   # side by side, then concatenated
                x, split_caches[step] = ops.concat_forward(
                    [getattr(self, name)(x) for name in step], axis=1)
        return x

    def backward(self, dy: Any) -> Any:
        # Every branch read the same x, so dL/dx is the sum of what each branch sends back.
        cache = self._saved_cache(dy)
        pieces = ops.concat_backward(dy, cache.concat)
        dx = None
        for branch, piece in zip(self.branches, pieces):
            d = self._back(piece, branch, cache.splits)
            dx = d if dx is None else dx + d
        return dx

    def _back(self, dy: Any, branch: Sequence[Step], split_caches: dict) -> Any:
        for step in reversed(branch):
            if isinstance(step, str):
                dy = getattr(self, step).backward(dy)
            else:
                parts = ops.concat_backward(dy, split_caches[step])
                grads = [getattr(self, name).backward(p) for name, p in zip(step, parts)]
                dy = sum(grads[1:], grads[0])
        return dy


class FIDInceptionA(InceptionBlock):
    """Mixed_5b/5c/5d: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg pool (no padding counted) -> 1x1.

    (N, C, 35, 35) -> (N, 224 + pool_features, 35, 35).
    """

    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.pool = AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)
        self.branches = [["branch1x1"], ["branch5x5_1", "branch5x5_2"],
                         ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"],
                         ["pool", "branch_pool"]]


class InceptionB(InceptionBlock):
    """Mixed_6a, a grid reduction: 3x3 stride 2 | 1x1 -> 3x3 -> 3x3 stride 2 | max pool stride 2.

    (N, 288, 35, 35) -> (N, 768, 17, 17). (Not patched: pytorch-fid keeps torchvision's block.)
    """

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)
        self.pool = MaxPool2d(3, stride=2)
        self.branches = [["branch3x3"],
                         ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"], ["pool"]]


class FIDInceptionC(InceptionBlock):
    """Mixed_6b..6e: a 7x7 receptive field from 1x7 and 7x1 convolutions (fewer weights).

    1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 | avg pool (no padding counted)
    -> 1x1.  (N, 768, 17, 17) -> (N, 768, 17, 17).
    """

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
        self.pool = AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.branch_pool = BasicConv2d(in_channels, 192, 1)
        self.branches = [["branch1x1"], ["branch7x7_1", "branch7x7_2", "branch7x7_3"],
                         ["branch7x7dbl_1", "branch7x7dbl_2", "branch7x7dbl_3", "branch7x7dbl_4",
                          "branch7x7dbl_5"],
                         ["pool", "branch_pool"]]


class InceptionD(InceptionBlock):
    """Mixed_7a, a grid reduction: 1x1 -> 3x3 stride 2 | 1x1 -> 1x7 -> 7x1 -> 3x3 stride 2 |
    max pool stride 2.  (N, 768, 17, 17) -> (N, 1280, 8, 8). (Not patched.)"""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)
        self.pool = MaxPool2d(3, stride=2)
        self.branches = [["branch3x3_1", "branch3x3_2"],
                         ["branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4"],
                         ["pool"]]


class FIDInceptionE(InceptionBlock):
    """Mixed_7b (``max_pool=False``) and Mixed_7c (``max_pool=True``): 1x3 and 3x1 side by side.

    1x1 | 1x1 -> (1x3, 3x1) | 1x1 -> 3x3 -> (1x3, 3x1) | pool -> 1x1, where "(a, b)" runs a and
    b on the same input and concatenates them. The pool is an average (no padding counted) in
    Mixed_7b and, in the FID network only, a max pooling in Mixed_7c (pytorch-fid's
    FIDInceptionE_1 and FIDInceptionE_2).  (N, C, 8, 8) -> (N, 2048, 8, 8).
    """

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
        self.pool = (MaxPool2d(3, stride=1, padding=1) if max_pool
                     else AvgPool2d(3, stride=1, padding=1, count_include_pad=False))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)
        self.branches = [["branch1x1"], ["branch3x3_1", ("branch3x3_2a", "branch3x3_2b")],
                         ["branch3x3dbl_1", "branch3x3dbl_2",
                          ("branch3x3dbl_3a", "branch3x3dbl_3b")],
                         ["pool", "branch_pool"]]


class FIDInceptionV3(Module):
    """The FID Inception-v3 (pytorch-fid's ``fid_inception_v3``) in minigan's layers.

    x: (N, 3, H, W) images in [-1, 1] (a generator's tanh output; ``to_float_images`` turns
    uint8 pixels into that range). ``forward(x)`` -> logits (N, 1008);
    ``pool3_and_logits(x)`` -> (pool3 (N, 2048), logits (N, 1008)), both from one pass.

    Preprocessing, written out: the images are resized to 299 x 299 with bilinear interpolation
    (``resize_input=True``, PyTorch's ``align_corners=False``), and nothing else. pytorch-fid takes
    images in [0, 1], resizes them and then maps them to [-1, 1] with 2x - 1; resizing is a
    weighted average whose weights add up to one, so it commutes with 2x - 1, and images already
    in [-1, 1] can be resized directly.

    The network is always used in eval mode (batch norm with the stored statistics). pytorch-fid
    has a dropout before ``fc``, which does nothing in eval mode, so it is left out.
    """

    def __init__(self, resize_input: bool = True):
        super().__init__()
        self.resize_input = resize_input
        self.resize = ResizeBilinear(FID_INPUT_SIZE)
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool1 = MaxPool2d(3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.maxpool2 = MaxPool2d(3, stride=2)
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
        self.avgpool = GlobalAvgPool2d()
        self.fc = Linear(POOL3_FEATURES, NUM_CLASSES)
        self.eval()

    def body(self) -> list[Module]:
        """The layers from the (resized) image to pool3, in order."""
        return [self.Conv2d_1a_3x3, self.Conv2d_2a_3x3, self.Conv2d_2b_3x3, self.maxpool1,
                self.Conv2d_3b_1x1, self.Conv2d_4a_3x3, self.maxpool2, self.Mixed_5b,
                self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c,
                self.avgpool]

    def pool3(self, x: Any, keep_caches: bool = True) -> Any:
        """FID's features: x (N, 3, H, W) in [-1, 1] -> (N, 2048).

        ``keep_caches=False`` drops each layer's cache as soon as the next layer has run: no
        backward pass can follow, but scoring needs a fraction of the memory (the im2col matrices
        of a 299 x 299 image add up to hundreds of MB).
        """
        self.check_input(x, ("N", 3, "H", "W"), self.fc.weight.dtype)
        store_conv_weights_as_matrices(self)
        layers = ([self.resize] if self.resize_input else []) + self.body()
        for layer in layers:
            x = layer(x)
            if not keep_caches:
                layer.clear_cache()
        return x

    def pool3_and_logits(self, x: Any, keep_caches: bool = True) -> tuple[Any, Any]:
        """(pool3 (N, 2048), logits (N, 1008)) from one forward pass."""
        features = self.pool3(x, keep_caches)
        logits = self.fc(features)
        if not keep_caches:
            self.fc.clear_cache()
        return features, logits

    def forward(self, x: Any) -> Any:
        """The logits (N, 1008); softmax(logits) are IS's class probabilities."""
        return self.pool3_and_logits(x)[1]

    def backward(self, dy: Any) -> Any:
        """dL/dx at the input images from dL/dlogits (N, 1008) (weight gradients accumulate)."""
        dx = self.fc.backward(dy)
        for layer in reversed(self.body()):
            dx = layer.backward(dx)
        return self.resize.backward(dx) if self.resize_input else dx


def store_conv_weights_as_matrices(module: Module) -> None:
    """Keep every convolution's weight (F, C, KH, KW) in memory as (KH, KW, C, F), the layout of
    its weight matrix, so that ``weight_matrix`` is a view and not a copy of all 22 M weights in
    every forward pass (as ``FlatAdam`` stores a trained model's conv weights). The values and
    shapes stay; a weight already laid out so, the usual case after the first call, is left
    alone. Loading weights (``load_state_dict``) may bring C order back: the next pass fixes it."""
    for m in module.modules():
        w = getattr(m, "weight", None)
        if isinstance(m, Conv2d) and not w.data.transpose(WEIGHT_MATRIX_ORDER).flags.c_contiguous:
            xp = get_array_module(w.data)
            stored = xp.ascontiguousarray(w.data.transpose(WEIGHT_MATRIX_ORDER))
            w.data = stored.transpose(tuple(WEIGHT_MATRIX_ORDER.index(a) for a in range(4)))


def free_caches(module: Module) -> None:
    """Forget what ``module`` and the layers inside it saved for a backward pass
    (``Module.clear_cache``)."""
    module.clear_cache()


def softmax(logits: Any) -> Any:
    """p = exp(z - max z) / sum exp(z - max z), row by row: (N, K) -> (N, K), rows sum to 1."""
    xp = get_array_module(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)   # exp never overflows
    e = xp.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)
