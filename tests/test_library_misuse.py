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
from minigan.backend import to_device, to_numpy
from minigan.optim import SGD, Adam, FlatAdam


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


# ---------------------------------------------------------------- issue 22: numbers that cannot be

def float32_layer():
    from minigan.backend import manual_seed

    manual_seed(0)
    return nn.Linear(3, 2).to(dtype="float32")


@pytest.mark.parametrize("optimizer", [Adam, FlatAdam, SGD])
def test_a_gradient_of_another_dtype_is_refused_at_the_step(optimizer):
    layer = float32_layer()
    opt = optimizer(layer.parameters(), lr=0.1)
    before = to_numpy(layer.weight.data).copy()
    layer.weight.grad = layer.weight.grad.astype(np.float64) + 1   # float64 into float32
    with pytest.raises(ValueError, match="parameter 0 is float32 .* gradient is float64"):
        opt.step()
    np.testing.assert_array_equal(to_numpy(layer.weight.data), before)   # nothing moved


def test_a_gradient_of_another_dtype_or_shape_is_refused_where_it_is_added():
    layer = float32_layer()
    with pytest.raises(ValueError, match="gradient of dtype float64 .* dtype float32"):
        layer.weight.accumulate(np.ones((2, 3), dtype=np.float64))
    with pytest.raises(ValueError, match=r"shape \(3,\) cannot be added .* shape \(2, 3\)"):
        layer.weight.accumulate(np.ones(3, dtype=np.float32))   # would broadcast
    assert not np.any(to_numpy(layer.weight.grad))
    layer.weight.accumulate(to_device(np.ones((2, 3), dtype=np.float32)))   # the right one
    assert np.all(to_numpy(layer.weight.grad) == 1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ["weight", "bias"])
def test_nan_or_infinite_weights_are_refused_by_load_state_dict(name, bad):
    layer = float32_layer()
    before = layer.state_dict()
    state = layer.state_dict()
    state[name].reshape(-1)[0] = bad
    with pytest.raises(ValueError, match=f"{name}: 1 of its .* NaN or infinite"):
        layer.load_state_dict(state)
    for key, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, before[key])   # nothing was loaded


def test_a_refused_state_loads_nothing_not_even_the_entries_before_the_bad_one():
    layer = float32_layer()
    before = layer.state_dict()
    state = {"weight": before["weight"] + 1, "bias": before["bias"] + np.inf}
    with pytest.raises(ValueError, match="bias"):
        layer.load_state_dict(state)
    np.testing.assert_array_equal(to_numpy(layer.weight.data), before["weight"])


def test_nan_running_statistics_are_refused_too():
    bn = nn.BatchNorm2d(2)
    state = bn.state_dict()
    state["running_var"][1] = np.nan
    with pytest.raises(ValueError, match="running_var"):
        bn.load_state_dict(state)


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool", "complex64", np.uint8])
def test_module_to_a_dtype_that_is_not_floating_is_refused(dtype):
    layer = float32_layer()
    with pytest.raises(ValueError, match="module.to: parameters need a floating dtype"):
        layer.to(dtype=dtype)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32   # unchanged


def test_module_to_something_that_is_no_dtype_is_one_clear_error():
    with pytest.raises(ValueError, match="is not a dtype"):
        float32_layer().to(dtype=object())
