"""Library misuse is loud: values no training could use are refused where they are given.

PyTorch's optimizers check their hyperparameters at construction (``Invalid learning rate``)
and warn about a parameter listed twice; its layers refuse a stride or kernel size of 0. minigan
does the same, so that a mistake shows up at the line that made it, not as NaN weights or a
division by zero many steps later.
"""

import math
import warnings

import numpy as np
import pytest

from minigan import nn
from minigan.optim import SGD, Adam


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": math.nan}, "invalid lr nan"),      # issue 13: --lr-g nan trained to NaN weights
    ({"lr": -1e-3}, "invalid lr"),
    ({"lr": math.inf}, "invalid lr inf"),
    ({"eps": -1.0}, "invalid eps"),
    ({"betas": (1.0, 0.999)}, "invalid betas"),
    ({"betas": (0.5, -0.1)}, "invalid betas"),
    ({"weight_decay": -0.1}, "invalid weight_decay"),
])
def test_adam_validates_its_hyperparameters_as_pytorch_does(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Adam(nn.Linear(2, 2).parameters(), **kwargs)


@pytest.mark.parametrize("kwargs", [{"lr": math.nan}, {"lr": -1.0}, {"momentum": -0.5}])
def test_sgd_validates_its_hyperparameters(kwargs):
    with pytest.raises(ValueError, match="SGD: invalid"):
        SGD(nn.Linear(2, 2).parameters(), **kwargs)


def test_a_parameter_given_twice_is_warned_about():
    layer = nn.Linear(2, 2)
    with pytest.warns(UserWarning, match="more than once"):
        Adam(layer.parameters() + layer.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # the usual case stays silent
        Adam(layer.parameters())


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Conv2d(3, 4, 0), "Conv2d: kernel_size must be at least 1, got 0"),
    (lambda: nn.Conv2d(3, 4, 3, stride=0), "Conv2d: stride must be at least 1, got 0"),
    (lambda: nn.Conv2d(3, 4, 3, padding=-1), "Conv2d: padding must be 0 or more"),
    (lambda: nn.Conv2d(0, 4, 3), "Conv2d: in_channels must be at least 1"),
    (lambda: nn.ConvTranspose2d(3, 4, 4, stride=0), "ConvTranspose2d: stride must be at least 1"),
    (lambda: nn.ConvTranspose2d(3, 4, 0), "ConvTranspose2d: kernel_size must be at least 1"),
])
def test_conv_layers_refuse_sizes_no_input_could_fit(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_valid_sizes_still_build():
    assert nn.Conv2d(3, 4, 3, stride=2, padding=1).weight.shape == (4, 3, 3, 3)
    assert nn.ConvTranspose2d(3, 4, np.int64(4)).weight.shape == (3, 4, 4, 4)
