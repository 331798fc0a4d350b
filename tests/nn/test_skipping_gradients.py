"""Skipping gradients no one needs: one rule for every layer (written in minigan/nn/module.py).

* a frozen Parameter (``requires_grad = False``) receives nothing in ``.grad``, in every kind of
  layer, batch norm included; its neighbours in the same layer still do;
* a layer whose parameters are all frozen asks its kernel not to compute them at all
  (``needs_param_grads()``), and the input gradient stays exactly the same;
* ``backward_params`` adds the same parameter gradients as ``backward`` and returns nothing;
* a layer's cache is public and read-only (``layer.cache``);
* layers look their kernels up in ``minigan.ops`` at call time, so setting an attribute there
  swaps the kernel for every layer (what the exercises rely on).
"""

import numpy as np
import pytest

from minigan import nn, ops
from minigan.backend import set_default_dtype, to_numpy
from tests.helpers import random_array


@pytest.fixture(autouse=True)
def float64_layers():
    set_default_dtype(np.float64)   # restored by conftest after each test


def layers():
    rng = np.random.default_rng(0)
    return {
        "conv": (nn.Conv2d(2, 3, 3, padding=1, rng=rng), (2, 2, 4, 4)),
        "conv_transpose": (nn.ConvTranspose2d(2, 3, 4, 2, 1, rng=rng), (2, 2, 3, 3)),
        "linear": (nn.Linear(4, 3, rng=rng), (5, 4)),
        "batch_norm": (nn.BatchNorm2d(2), (3, 2, 2, 2)),
    }


def run_backward(layer, shape):
    layer.zero_grad()
    x = random_array(np.random.default_rng(1), shape)
    y = layer(x)
    return to_numpy(layer.backward(random_array(np.random.default_rng(2), y.shape)))


@pytest.mark.parametrize("name", list(layers()))
def test_a_frozen_weight_gets_no_gradient_and_the_bias_still_does(name):
    layer, shape = layers()[name]
    dx_all = run_backward(layer, shape)
    grad_bias = to_numpy(layer.bias.grad).copy()
    layer.weight.requires_grad = False
    dx_frozen = run_backward(layer, shape)
    assert float(np.abs(to_numpy(layer.weight.grad)).max()) == 0.0
    np.testing.assert_array_equal(to_numpy(layer.bias.grad), grad_bias)
    np.testing.assert_array_equal(dx_frozen, dx_all)


KERNEL_BACKWARD = {"conv": "conv2d_backward", "conv_transpose": "conv_transpose2d_backward",
                   "linear": "linear_backward"}


@pytest.mark.parametrize("name", list(KERNEL_BACKWARD))
def test_a_fully_frozen_layer_asks_its_kernel_for_no_parameter_gradients(name, monkeypatch):
    layer, shape = layers()[name]
    asked = []
    original = getattr(ops, KERNEL_BACKWARD[name])

    def recording_backward(dy, cache, need_weight_grad=True, *args):
        asked.append(need_weight_grad)
        return original(dy, cache, need_weight_grad, *args)

    monkeypatch.setattr(ops, KERNEL_BACKWARD[name], recording_backward)
    assert layer.needs_param_grads()
    dx_all = run_backward(layer, shape)
    layer.requires_grad_(False)
    assert not layer.needs_param_grads()
    dx_frozen = run_backward(layer, shape)
    assert asked == [True, False]
    np.testing.assert_array_equal(dx_frozen, dx_all)
    assert all(float(np.abs(to_numpy(p.grad)).max()) == 0.0 for p in layer.parameters())


def test_backward_params_adds_the_same_gradients_and_returns_nothing():
    net = nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1, rng=np.random.default_rng(0)),
                        nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 4 * 4, 1))
    x = random_array(np.random.default_rng(1), (2, 3, 8, 8))
    dy = random_array(np.random.default_rng(2), (2, 1))
    net(x)
    net.backward(dy)
    full = [to_numpy(p.grad).copy() for p in net.parameters()]
    net.zero_grad()
    net(x)
    assert net.backward_params(dy) is None
    for p, expected in zip(net.parameters(), full):
        np.testing.assert_allclose(to_numpy(p.grad), expected, rtol=1e-12, atol=1e-15)


def test_the_cache_is_public_and_read_only():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    assert conv.cache is None
    x = random_array(np.random.default_rng(0), (2, 3, 5, 5))
    conv(x)
    assert conv.cache.cols.shape == (2 * 5 * 5, 3 * 3 * 3)   # the im2col matrix
    with pytest.raises(AttributeError):
        conv.cache = None


def test_layers_look_their_kernels_up_in_minigan_ops_at_call_time(monkeypatch):
    calls = []
    original = ops.conv2d_forward

    def my_conv2d_forward(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(ops, "conv2d_forward", my_conv2d_forward)
    conv = nn.Conv2d(3, 4, 3)
    conv(random_array(np.random.default_rng(0), (1, 3, 5, 5)))
    assert calls == [(1, 3, 5, 5)]
