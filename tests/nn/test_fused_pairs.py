"""A batch norm and the ReLU / LeakyReLU after it, run by ``Sequential`` as one pair of kernels
(``BatchNorm.forward_with``, reached from ``forward_pairing`` in ``minigan/nn/module.py``), give
what the two layers give one at a time: the output, the input gradient, gamma's and beta's
gradients, the running statistics and the batch count. And the pair steps aside where it must:
eval mode, a subclass of batch norm that does not say it pairs, a learner's kernels. (Across
processes: tests/distributed/test_world.py.)
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from minigan import nn, ops
from minigan.backend import backend_name, to_device, to_numpy
from minigan.nn.sync_batchnorm import SyncBatchNorm2d
from minigan.opcount import count_array_ops, counted
from minigan.ops.activations import ReluCache

RNG = np.random.default_rng(0)


def pair(kind: str, dtype=np.float64) -> nn.Sequential:
    if kind == "2d-leaky":
        model = nn.Sequential(nn.BatchNorm2d(3), nn.LeakyReLU(0.2))
    elif kind == "2d-relu":
        model = nn.Sequential(nn.BatchNorm2d(3), nn.ReLU())
    else:
        model = nn.Sequential(nn.BatchNorm1d(5), nn.ReLU())
    model = model.to(dtype=dtype)
    bn = model[0]
    bn.weight.data[...] = to_device(RNG.uniform(0.5, 1.5, bn.weight.shape))
    bn.bias.data[...] = to_device(RNG.uniform(-0.5, 0.5, bn.bias.shape))
    return model


# Inputs are made on the active backend (a GPU with MINIGAN_BACKEND=cupy) in the memory layout
# each test names: moved there first, then viewed, since a copy to the device keeps no layout.
def channels_last(shape, shift=0.0):
    """A random (N, C, H, W) array laid out channels-last, as convolutions give them."""
    N, C, H, W = shape
    return to_device(RNG.standard_normal((N, H, W, C)) + shift).transpose(0, 3, 1, 2)


def layer_by_layer(model, x, dy):
    """The two layers' own forward and backward, one after the other."""
    for layer in model.layers:
        x = layer(x)
    for layer in reversed(model.layers):
        dy = layer.backward(dy)
    return x, dy


def state(model):
    bn = model[0]
    return [to_numpy(a).copy() for a in (bn.weight.grad, bn.bias.grad, bn.running_mean,
                                         bn.running_var)] + [int(bn.num_batches_tracked)]


def image_batch(memory, shift=0.0):
    """(4, 3, 5, 6) values laid out as a convolution leaves them (channels-last), as a
    transposed convolution does (a crop of a bigger channels-last image), or channels-first
    (after a Reshape)."""
    if memory == "channels_last":
        return channels_last((4, 3, 5, 6), shift)
    if memory == "cropped":
        return channels_last((4, 3, 7, 8), shift)[:, :, 1:6, 1:7]
    return to_device(RNG.standard_normal((4, 3, 5, 6)) + shift)


def features(memory, shift=0.0):
    """(8, 5) values for BatchNorm1d, contiguous or the transpose of a (5, 8) array."""
    if memory == "contiguous":
        return to_device(RNG.standard_normal((8, 5)) + shift)
    return to_device(RNG.standard_normal((5, 8)) + shift).T


def like(x):
    """A random array of x's shape on the active backend: a gradient for it."""
    return to_device(RNG.standard_normal(x.shape))


def assert_close(a, b, **tolerances):
    np.testing.assert_allclose(to_numpy(a), to_numpy(b), **tolerances)


@pytest.mark.parametrize("kind, memory", [
    ("2d-leaky", "channels_last"), ("2d-leaky", "cropped"), ("2d-relu", "channels_first"),
    ("2d-relu", "cropped"), ("1d-relu", "contiguous"), ("1d-relu", "transposed")])
def test_a_pair_computes_what_its_two_layers_compute(kind, memory):
    model = pair(kind)
    other = copy.deepcopy(model)
    # some values on both sides of 0 after the shift
    x = image_batch(memory, 0.3) if kind.startswith("2d") else features(memory, 0.3)
    dy = like(x)
    for _ in range(2):   # the second step: running statistics and gradients add up
        y = model(x)
        if kind.endswith("relu"):   # the pair keeps the slope (ReLU's own fast forward keeps y)
            assert isinstance(model[1].cache, ReluCache)
        dx = model.backward(dy)
        y_ref, dx_ref = layer_by_layer(other, x, dy)
        assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
        assert_close(dx, dx_ref, rtol=1e-10, atol=1e-12)
        for a, b in zip(state(model), state(other)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert int(model[0].num_batches_tracked) == 2
    assert (y >= 0).all() if kind.endswith("relu") else (y < 0).any()


@pytest.mark.parametrize("memory, saved", [("channels_last", 3), ("cropped", 4)])
def test_a_pair_saves_one_operation_each_way_and_the_copy_of_a_crop(memory, saved):
    """One array operation fewer forward, one fewer backward, one fewer for gamma's and beta's
    gradient adds (one kernel for both); and batch norm reads a transposed convolution's
    output (a crop) without copying it to rows first."""
    if backend_name() != "numpy":
        pytest.skip("counts array operations on the NumPy backend only")
    x, dy = to_numpy(image_batch(memory)), to_numpy(image_batch(memory))
    counts = []
    for paired in (True, False):
        with count_array_ops() as counter:
            model = pair("2d-leaky")
            x_c, dy_c = counted(x), counted(dy)
            counter.reset()
            if paired:
                model(x_c)
                model.backward(dy_c)
            else:
                layer_by_layer(model, x_c, dy_c)
            counts.append(counter.total)
    assert counts[0] == counts[1] - saved, counts


@pytest.mark.parametrize("memory", ["channels_first", "cropped"])
def test_the_output_and_input_gradient_come_out_channels_last_whatever_the_input(memory):
    """After a Flatten's backward dy is channels-first; after a convolution's input gradient
    it may be a crop of a bigger image; x is one too after a transposed convolution. y and dx
    are laid out for the convolution after and before to read as rows, without a copy."""
    model = pair("2d-leaky")
    other = copy.deepcopy(model)
    x, dy = image_batch(memory), image_batch(memory)
    y = model(x)
    dx = model.backward(dy)
    assert y.transpose(0, 2, 3, 1).flags.c_contiguous
    assert dx.transpose(0, 2, 3, 1).flags.c_contiguous
    _, dx_ref = layer_by_layer(other, x, dy)
    assert_close(dx, dx_ref, rtol=1e-10, atol=1e-12)


def test_each_layer_can_take_its_own_backward_after_a_paired_forward():
    model = pair("2d-relu")
    other = copy.deepcopy(model)
    x = channels_last((4, 3, 5, 6))
    dy = like(x)
    model(x)                                              # paired
    dx = model[0].backward(model[1].backward(dy))         # one layer at a time
    _, dx_ref = layer_by_layer(other, x, dy)
    assert_close(dx, dx_ref, rtol=1e-10, atol=1e-12)
    with pytest.raises(RuntimeError, match="before forward"):
        model.backward(dy)                                # the caches were handed over


def test_no_pair_in_eval_mode_for_a_subclass_with_a_learners_kernel_or_plain_kernels(
        monkeypatch):
    paired = []
    original = nn.BatchNorm2d.forward_with

    def spy(self, *args):
        paired.append(type(self).__name__)
        return original(self, *args)

    monkeypatch.setattr(nn.BatchNorm2d, "forward_with", spy)
    x = channels_last((4, 3, 5, 6))
    pair("2d-leaky")(x)
    assert paired == ["BatchNorm2d"]                      # the spy sees a pair

    model = pair("2d-leaky")
    model.eval()
    other = copy.deepcopy(model)
    assert_close(model(x), layer_by_layer(other, x, x)[0])
    class OwnBatchNorm(nn.BatchNorm2d):                   # may do more in its forward
        pass

    nn.Sequential(OwnBatchNorm(3), nn.ReLU()).to(dtype=np.float64)(x)
    with ops.fast_kernels(False):
        pair("2d-relu")(x)
    assert paired == ["BatchNorm2d"]                      # none of those three
    nn.Sequential(SyncBatchNorm2d(3), nn.ReLU()).to(dtype=np.float64)(x)
    assert paired == ["BatchNorm2d", "SyncBatchNorm2d"]   # it says it pairs

    called = []
    leaky = ops.leaky_relu_forward

    def learners_kernel(*args, **kwargs):                 # not functools.wraps: a learner's
        called.append(True)
        return leaky(*args, **kwargs)

    monkeypatch.setattr(ops, "leaky_relu_forward", learners_kernel)
    pair("2d-leaky")(x)
    assert called == [True] and paired == ["BatchNorm2d", "SyncBatchNorm2d"]
