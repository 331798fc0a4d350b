"""The DCGAN networks have the shapes, layers and initialisation the course and paper describe."""

import numpy as np
import pytest

from minigan import nn
from minigan.backend import make_rng, manual_seed, to_device, to_numpy
from minigan.checkpoint import save_checkpoint, text_array
from minigan.gan.dcgan import Discriminator, Generator, dcgan_init
from minigan.gan.run_folder import load_generator
from minigan.latent import LATENT_DISTRIBUTIONS, sample_z


def layer_types(net):
    return [type(m).__name__ for m in net.layers]


def test_discriminator_follows_the_course_architecture():
    D = Discriminator(conv_dim=32)
    assert layer_types(D) == ["Conv2d", "LeakyReLU",
                              "Conv2d", "BatchNorm2d", "LeakyReLU",
                              "Conv2d", "BatchNorm2d", "LeakyReLU",
                              "Flatten", "Linear"]
    convs = [m for m in D.layers if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (3, 32, 4, 2), (32, 64, 4, 2), (64, 128, 4, 2)]
    # Bias only where no batch norm follows.
    assert [c.bias is not None for c in convs] == [True, False, False]
    assert all(m.negative_slope == 0.2 for m in D.layers if isinstance(m, nn.LeakyReLU))
    x = to_device(np.zeros((5, 3, 32, 32), dtype=np.float32))
    assert D(x).shape == (5, 1)


def test_generator_follows_the_course_architecture():
    G = Generator(z_size=100, conv_dim=32)
    assert layer_types(G) == ["Linear", "Reshape",
                              "ConvTranspose2d", "BatchNorm2d", "ReLU",
                              "ConvTranspose2d", "BatchNorm2d", "ReLU",
                              "ConvTranspose2d", "Tanh"]
    assert G[0].out_features == 4 * 4 * 128
    z = to_device(np.random.default_rng(0).uniform(-1, 1, (5, 100)).astype(np.float32))
    images = to_numpy(G(z))
    assert images.shape == (5, 3, 32, 32) and images.dtype == np.float32
    assert np.abs(images).max() < 1  # tanh output


@pytest.mark.parametrize("image_size, channels, convs", [(16, 1, 2), (64, 3, 4)])
def test_other_image_sizes(image_size, channels, convs):
    D = Discriminator(conv_dim=8, image_size=image_size, channels=channels, dropout=0.3)
    G = Generator(z_size=10, conv_dim=8, image_size=image_size, channels=channels)
    assert sum(isinstance(m, nn.Conv2d) for m in D.layers) == convs
    assert sum(isinstance(m, nn.Dropout) for m in D.layers) == convs
    z = to_device(np.zeros((2, 10), dtype=np.float32))
    assert D(G(z)).shape == (2, 1)


def test_image_size_must_be_four_times_a_power_of_two():
    with pytest.raises(ValueError, match="image_size"):
        Generator(image_size=28)


def test_dcgan_initialisation():
    manual_seed(0)
    G = dcgan_init(Generator(conv_dim=64))
    weights = np.concatenate([to_numpy(m.weight.data).ravel() for m in G.modules()
                              if isinstance(m, (nn.Linear, nn.ConvTranspose2d))])
    assert abs(weights.mean()) < 1e-3 and abs(weights.std() - 0.02) < 1e-3
    gammas = np.concatenate([to_numpy(m.weight.data) for m in G.modules()
                             if isinstance(m, nn.BatchNorm2d)])
    assert abs(gammas.mean() - 1) < 0.01 and 0.01 < gammas.std() < 0.03
    assert all(np.all(to_numpy(m.bias.data) == 0) for m in G.modules()
               if isinstance(m, nn.BatchNorm2d))


def test_generator_settings_round_trip_and_unknown_ones_are_refused():
    G = Generator(z_size=8, conv_dim=4, image_size=16, channels=1, z_distribution="normal")
    assert Generator.from_config(G.config()).config() == G.config()
    with pytest.raises(ValueError, match=r"unknown \['width'\]"):
        Generator.from_config({**G.config(), "width": 3})
    with pytest.raises(ValueError, match="z_distribution must be 'uniform' or 'normal'"):
        Generator(z_distribution="gaussian")


def test_one_sample_z_draws_both_distributions():
    assert LATENT_DISTRIBUTIONS == ("uniform", "normal")
    with pytest.raises(ValueError, match="must be 'uniform' or 'normal', not 'gaussian'"):
        sample_z(2, 4, "gaussian")
    uniform = to_numpy(sample_z(2000, 4, "uniform", make_rng(0)))
    normal = to_numpy(sample_z(2000, 4, "normal", make_rng(0)))
    assert uniform.shape == normal.shape == (2000, 4)
    assert uniform.min() >= -1 and uniform.max() <= 1 and abs(uniform.std() - 3 ** -0.5) < 0.02
    assert abs(normal.std() - 1) < 0.05 and normal.max() > 2.5


def test_a_checkpoint_without_generator_settings_is_read_off_its_weights(tmp_path):
    # Checkpoints written before the settings were saved: sizes from the weights, z from config.
    G = dcgan_init(Generator(z_size=8, conv_dim=4, image_size=16, channels=1))
    run_config = text_array({"z_size": 8, "z_distribution": "normal"})
    save_checkpoint(tmp_path / "old.npz", {"G": G.state_dict(), "config": {"json": run_config}})
    loaded = load_generator(tmp_path / "old.npz")
    assert loaded.config() == {**G.config(), "z_distribution": "normal"} and not loaded.training
