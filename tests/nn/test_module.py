"""What a Module promises besides forward/backward: it finds its parameters and buffers, adds
gradients rather than overwriting them, switches between train and eval, saves and loads its
state, converts dtypes, and prints itself. These are the conveniences a training loop relies on.
"""

import numpy as np
import pytest

from minigan import nn
from minigan.backend import manual_seed, set_default_dtype, to_device, to_numpy
from tests.helpers import random_array


def small_net():
    manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4),
                         nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 2))


def test_named_parameters_and_buffers_follow_pytorch_names():
    net = small_net()
    assert [n for n, _ in net.named_parameters()] == [
        "0.weight", "1.weight", "1.bias", "4.weight", "4.bias"]
    assert [n for n, _ in net.named_buffers()] == [
        "1.running_mean", "1.running_var", "1.num_batches_tracked"]
    assert net[0].weight.shape == (4, 3, 3, 3)       # Conv2d: (out, in, k, k)
    assert net[4].weight.shape == (2, 100)           # Linear: (out, in)
    assert nn.ConvTranspose2d(3, 5, 4).weight.shape == (3, 5, 4, 4)  # (in, out, k, k)


def test_gradients_accumulate_until_zero_grad():
    set_default_dtype(np.float64)
    net = small_net()
    x = random_array(np.random.default_rng(0), (2, 3, 5, 5))
    dy = random_array(np.random.default_rng(1), (2, 2))
    net(x)
    net.backward(dy)
    once = to_numpy(net[0].weight.grad).copy()
    net(x)
    net.backward(dy)
    np.testing.assert_allclose(to_numpy(net[0].weight.grad), 2 * once, rtol=1e-12)
    net.zero_grad()
    assert all(float(abs(p.grad).max()) == 0 for p in net.parameters())


def test_requires_grad_off_skips_weight_gradients_but_not_the_input_gradient():
    set_default_dtype(np.float64)
    net = small_net()
    x = random_array(np.random.default_rng(0), (2, 3, 5, 5))
    dy = random_array(np.random.default_rng(1), (2, 2))
    net(x)
    dx_with = to_numpy(net.backward(dy))
    net.zero_grad()
    net.requires_grad_(False)
    net(x)
    dx_without = to_numpy(net.backward(dy))
    np.testing.assert_allclose(dx_without, dx_with, rtol=1e-12)
    assert all(float(abs(p.grad).max()) == 0 for p in net.parameters())


def test_train_and_eval_reach_every_layer():
    net = small_net()
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_state_dict_round_trip_includes_batchnorm_buffers():
    net = small_net()
    x = to_device(np.random.default_rng(0).standard_normal((4, 3, 5, 5)).astype(np.float32))
    net(x)  # one training-mode pass updates the running statistics
    state = net.state_dict()
    assert int(state["1.num_batches_tracked"]) == 1
    assert not np.allclose(state["1.running_mean"], 0)
    manual_seed(123)
    other = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4),
                          nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 2))
    other.load_state_dict(state)
    net.eval()
    other.eval()
    np.testing.assert_array_equal(to_numpy(net(x)), to_numpy(other(x)))
    assert int(other[1].num_batches_tracked) == 1        # loaded, then counted on from there
    other.train()(x)
    assert int(other.state_dict()["1.num_batches_tracked"]) == 2


def test_load_state_dict_names_what_does_not_match():
    net = small_net()
    state = net.state_dict()
    del state["4.bias"]
    with pytest.raises(KeyError, match="4.bias"):
        net.load_state_dict(state)
    state = net.state_dict()
    state["4.weight"] = np.zeros((3, 100), dtype=np.float32)
    with pytest.raises(nn.ShapeError, match="4.weight"):
        net.load_state_dict(state)


def test_to_dtype_converts_parameters_and_float_buffers():
    net = small_net().to(dtype="float64")
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in net.parameters())
    assert net[1].running_var.dtype == np.float64
    assert net[1].num_batches_tracked.dtype == np.int64  # a counter stays an integer


def test_print_shows_the_layer_tree():
    text = repr(small_net())
    assert "(0): Conv2d(3, 4, kernel_size=3, stride=1, padding=1, bias=False)" in text
    assert "(1): BatchNorm2d(4, eps=1e-05, momentum=0.1)" in text
    assert "(4): Linear(in_features=100, out_features=2, bias=True)" in text


def test_summary_lists_output_shapes_and_parameter_counts():
    lines = nn.summary(small_net(), (3, 5, 5), print_fn=None).splitlines()
    assert any("Conv2d" in ln and "(2, 4, 5, 5)" in ln and " 108" in ln for ln in lines)
    assert any("Linear" in ln and "(2, 2)" in ln and " 202" in ln for ln in lines)
    assert lines[-1] == "total parameters: 318"   # 108 + 8 + 202


def test_pytorch_default_initialisation_bounds():
    manual_seed(0)
    conv = nn.Conv2d(16, 32, 4)
    bound = 1 / np.sqrt(16 * 4 * 4)
    w = to_numpy(conv.weight.data)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound   # std of U(-b, b) is b/sqrt(3)
    convt = nn.ConvTranspose2d(16, 8, 4)   # PyTorch's fan_in uses weight.shape[1] = out
    assert np.abs(to_numpy(convt.weight.data)).max() <= 1 / np.sqrt(8 * 4 * 4)
    bn = nn.BatchNorm2d(5)
    assert np.all(to_numpy(bn.weight.data) == 1) and np.all(to_numpy(bn.bias.data) == 0)


def test_same_seed_same_weights():
    manual_seed(7)
    a = nn.Linear(4, 3)
    manual_seed(7)
    b = nn.Linear(4, 3)
    np.testing.assert_array_equal(to_numpy(a.weight.data), to_numpy(b.weight.data))


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"Linear.*backward\(\) was called before forward"):
        nn.Linear(2, 2).backward(to_device(np.zeros((1, 2), dtype=np.float32)))


def test_backward_twice_on_one_forward_is_refused():
    # Issue 13's case: a second backward used to add every parameter gradient a second time.
    set_default_dtype(np.float64)
    net = small_net()
    x = random_array(np.random.default_rng(0), (2, 3, 5, 5))
    dy = random_array(np.random.default_rng(1), (2, 2))
    net(x)
    net.backward(dy)
    once = to_numpy(net[4].weight.grad).copy()
    with pytest.raises(RuntimeError, match=r"Linear.*backward\(\) was called .*twice after one"):
        net.backward(dy)
    np.testing.assert_array_equal(to_numpy(net[4].weight.grad), once)   # nothing was added
    net(x)                                  # a new forward allows a new backward
    net.backward(dy)
    np.testing.assert_allclose(to_numpy(net[4].weight.grad), 2 * once, rtol=1e-12)


def test_load_state_dict_checks_buffer_shapes():
    # Issue 13's case: a running_mean of the wrong length broadcast silently in eval mode.
    net = small_net()
    state = net.state_dict()
    state["1.running_mean"] = np.zeros(7, dtype=np.float32)
    with pytest.raises(nn.ShapeError, match=r"1.running_mean: saved shape \(7,\)"):
        net.load_state_dict(state)
