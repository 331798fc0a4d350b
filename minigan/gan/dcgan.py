"""The DCGAN generator and discriminator, as the course builds them for 32x32 SVHN images.

The DCGAN paper's guidelines, and the line of this file that follows each:

1. no pooling: the discriminator downsamples with stride-2 convolutions (``_down``) and the
   generator upsamples with stride-2 transposed convolutions (``_up``);
2. batch norm in both networks, except on the discriminator's input layer and the generator's
   output layer (``batch_norm=False`` on those two);
3. no fully connected hidden layers: just one Linear at each end (z -> 4x4 feature map in G,
   4x4 feature map -> one logit in D);
4. ReLU in the generator with tanh on its output (images are scaled to [-1, 1]);
5. LeakyReLU with slope 0.2 in the discriminator.

Layers followed by batch norm have no bias: batch norm subtracts the per-channel mean, which
would cancel any bias, and adds its own learnable shift (beta).

Shapes for the defaults (conv_dim 32, z_size 100, image_size 32, channels 3):

    G: z (N, 100) -Linear-> (N, 2048) -Reshape-> (N, 128, 4, 4) -up-> (N, 64, 8, 8)
       -up-> (N, 32, 16, 16) -up, tanh-> (N, 3, 32, 32)
    D: x (N, 3, 32, 32) -down-> (N, 32, 16, 16) -down-> (N, 64, 8, 8) -down-> (N, 128, 4, 4)
       -Flatten-> (N, 2048) -Linear-> (N, 1) logit
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from minigan.backend import global_rng
from minigan.latent import check_distribution, sample_z
from minigan.nn import (
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Flatten,
    LeakyReLU,
    Linear,
    Module,
    ReLU,
    Reshape,
    Sequential,
    Tanh,
    init,
)


def num_stride2_layers(image_size: int) -> int:
    """How many stride-2 layers take a 4x4 map to image_size (32 -> 3, 64 -> 4)."""
    layers = round(math.log2(image_size / 4)) if image_size >= 8 else 0
    if layers < 1 or 4 * 2 ** layers != image_size:
        raise ValueError(f"image_size must be 4 * 2**k with k >= 1 (8, 16, 32, 64, ...), "
                         f"got {image_size}")
    return layers


def _down(in_channels: int, out_channels: int, batch_norm: bool, dropout: float) -> list[Module]:
    """Conv 4x4 stride 2 (halves H and W) [+ BatchNorm] + LeakyReLU(0.2) [+ Dropout]."""
    layers: list[Module] = [Conv2d(in_channels, out_channels, 4, stride=2, padding=1,
                                   bias=not batch_norm)]
    if batch_norm:
        layers.append(BatchNorm2d(out_channels))
    layers.append(LeakyReLU(0.2))
    if dropout > 0:
        layers.append(Dropout(dropout))
    return layers


def _up(in_channels: int, out_channels: int, batch_norm: bool) -> list[Module]:
    """Transposed conv 4x4 stride 2 (doubles H and W) [+ BatchNorm + ReLU]."""
    layers: list[Module] = [ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1,
                                            bias=not batch_norm)]
    if batch_norm:
        layers += [BatchNorm2d(out_channels), ReLU()]
    return layers


class Discriminator(Sequential):
    """Image (N, channels, S, S) -> one real/fake logit per image (N, 1).

    Channels double at each stride-2 conv: conv_dim, 2 conv_dim, 4 conv_dim, ... until the map
    is 4x4. ``dropout`` > 0 adds Dropout after each LeakyReLU (a regulariser for a D that wins
    too easily).
    """

    def __init__(self, conv_dim: int = 32, image_size: int = 32, channels: int = 3,
                 dropout: float = 0.0):
        n = num_stride2_layers(image_size)
        layers: list[Module] = []
        in_channels = channels
        for i in range(n):
            out_channels = conv_dim * 2 ** i
            layers += _down(in_channels, out_channels, batch_norm=i > 0, dropout=dropout)
            in_channels = out_channels
        layers += [Flatten(), Linear(in_channels * 4 * 4, 1)]
        super().__init__(*layers)
        self.conv_dim, self.image_size, self.channels = conv_dim, image_size, channels


class Generator(Sequential):
    """Latent vector (N, z_size) -> image (N, channels, S, S) with values in (-1, 1).

    ``z_distribution`` is the distribution its z are drawn from (``minigan.latent.sample_z``);
    it is part of the generator's settings because samples from another distribution would be
    garbage.
    """

    def __init__(self, z_size: int = 100, conv_dim: int = 32, image_size: int = 32,
                 channels: int = 3, z_distribution: str = "uniform"):
        check_distribution(z_distribution, "z_distribution")
        for name, value in (("z_size", z_size), ("conv_dim", conv_dim),
                            ("channels", channels)):
            if not isinstance(value, (int, numpy.integer)) or value < 1:
                raise ValueError(f"Generator: {name} must be a positive integer, got {value!r}")
        n = num_stride2_layers(image_size)
        top = conv_dim * 2 ** (n - 1)  # channels of the first 4x4 map (128 for the defaults)
        layers: list[Module] = [Linear(z_size, top * 4 * 4), Reshape(top, 4, 4)]
        in_channels = top
        for _ in range(n - 1):
            layers += _up(in_channels, in_channels // 2, batch_norm=True)
            in_channels //= 2
        layers += _up(in_channels, channels, batch_norm=False) + [Tanh()]
        super().__init__(*layers)
        self.z_size, self.conv_dim, self.image_size, self.channels = (
            z_size, conv_dim, image_size, channels)
        self.z_distribution = z_distribution

    def config(self) -> dict[str, Any]:
        """The settings that rebuild this generator: saved in every trainer checkpoint."""
        return {"z_size": self.z_size, "conv_dim": self.conv_dim, "image_size": self.image_size,
                "channels": self.channels, "z_distribution": self.z_distribution}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Generator:
        """``Generator(**config)`` for a dict written by ``config()``; unknown or missing keys
        are refused by name."""
        expected = {"z_size", "conv_dim", "image_size", "channels", "z_distribution"}
        missing, unknown = expected - set(config), set(config) - expected
        if missing or unknown:
            raise ValueError(f"generator settings: missing {sorted(missing)}, unknown "
                             f"{sorted(unknown)}")
        return cls(**config)

    def sample_z(self, n: int, rng: numpy.random.Generator | None = None) -> Any:
        """n latent vectors from this generator's distribution, in its dtype."""
        return sample_z(n, self.z_size, self.z_distribution, rng, self.parameters()[0].dtype)


def dcgan_init(model: Module, rng: numpy.random.Generator | None = None) -> Module:
    """The DCGAN paper's initialisation: weights ~ N(0, 0.02), biases 0, BN gamma ~ N(1, 0.02),
    BN beta 0. Returns the model."""
    rng = rng or global_rng()
    for m in model.modules():
        if isinstance(m, (Conv2d, ConvTranspose2d, Linear)):
            m.weight.data = init.normal(m.weight.shape, 0.0, 0.02, rng, m.weight.dtype)
            if m.bias is not None:
                m.bias.data = init.zeros(m.bias.shape, m.bias.dtype)
        elif isinstance(m, BatchNorm2d):
            m.weight.data = init.normal(m.weight.shape, 1.0, 0.02, rng, m.weight.dtype)
            m.bias.data = init.zeros(m.bias.shape, m.bias.dtype)
    return model
