"""Exercise: the DCGAN discriminator and generator, built from minigan's layers.

The DCGAN paper's guidelines, as the course applies them to 32x32 images:

1. no pooling: D downsamples with stride-2 convolutions, G upsamples with stride-2 transposed
   convolutions (kernel 4, stride 2, padding 1: each halves or doubles H and W);
2. batch norm in both networks, except on D's input layer and G's output layer;
3. no fully connected hidden layers: one Linear at each end (z -> a 4x4 map in G, the 4x4 map
   -> one logit in D);
4. ReLU in G, with tanh on its output (images live in [-1, 1]);
5. LeakyReLU with slope 0.2 in D.

A layer followed by batch norm needs no bias: batch norm subtracts each channel's mean, which
would cancel it. Shapes for conv_dim 32, z_size 100, 32x32 RGB images:

    D: x (N, 3, 32, 32) -> (N, 32, 16, 16) -> (N, 64, 8, 8) -> (N, 128, 4, 4) -> (N, 1) logit
    G: z (N, 100) -> (N, 128 * 4 * 4) -> (N, 128, 4, 4) -> (N, 64, 8, 8) -> (N, 32, 16, 16)
       -> (N, 3, 32, 32) in (-1, 1)

Other image sizes (8, 16, 64, ...) take as many stride-2 layers as it needs to go from 4x4 to
the image's size. The layers: ``minigan.nn`` (Conv2d, ConvTranspose2d, BatchNorm2d, LeakyReLU,
ReLU, Tanh, Linear, Flatten, Reshape; Sequential runs a list of them in order).

The grader builds yours beside minigan's (``minigan/gan/dcgan.py``) for several conv_dim,
z_size, image sizes and channel counts, and compares the layers in order (type and weight
shapes), the parameter count, the output shape and, after copying minigan's weights into
yours, the outputs themselves, in training and in evaluation mode.
"""

from __future__ import annotations

from typing import Any

from minigan.gan.dcgan import num_stride2_layers  # noqa: F401  (given: 32 -> 3, 64 -> 4)
from minigan.nn import (  # noqa: F401  (the layers you need)
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Flatten,
    LeakyReLU,
    Linear,
    Module,
    ReLU,
    Reshape,
    Sequential,
    Tanh,
)


class Discriminator(Sequential):
    """Image (N, channels, S, S) -> one real/fake logit per image (N, 1).

    Channels double at each stride-2 conv: conv_dim, 2 conv_dim, 4 conv_dim, ... until the map
    is 4x4. ``dropout`` > 0 adds Dropout after each LeakyReLU (the grader uses 0).
    """

    def __init__(self, conv_dim: int = 32, image_size: int = 32, channels: int = 3,
                 dropout: float = 0.0):
        layers: list[Module] = []
        # Hint: one block per stride-2 layer (conv, then batch norm except in the first block,
        # then the activation), channels doubling each time; then flatten and one Linear.
        raise NotImplementedError("Discriminator: write me")
        super().__init__(*layers)
        self.conv_dim, self.image_size, self.channels = conv_dim, image_size, channels


class Generator(Sequential):
    """Latent vector (N, z_size) -> image (N, channels, S, S) with values in (-1, 1)."""

    def __init__(self, z_size: int = 100, conv_dim: int = 32, image_size: int = 32,
                 channels: int = 3, z_distribution: str = "uniform"):
        layers: list[Module] = []
        # Hint: the Discriminator run backwards: a Linear to a deep 4x4 map, reshape, then
        # stride-2 transposed convolutions that double the size and halve the channels.
        raise NotImplementedError("Generator: write me")
        super().__init__(*layers)
        self.z_size, self.conv_dim, self.image_size, self.channels = (
            z_size, conv_dim, image_size, channels)
        self.z_distribution = z_distribution

    def config(self) -> dict[str, Any]:
        """The settings that rebuild this generator: saved in every checkpoint. (Given.)"""
        return {"z_size": self.z_size, "conv_dim": self.conv_dim, "image_size": self.image_size,
                "channels": self.channels, "z_distribution": self.z_distribution}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Generator:
        """``Generator(**config)`` for a dict written by ``config()``. (Given.)"""
        return cls(**config)
