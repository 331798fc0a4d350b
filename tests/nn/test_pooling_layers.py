"""MaxPool2d, AvgPool2d, GlobalAvgPool2d and ResizeBilinear as layers.

* each layer's backward pass agrees with finite differences (float64, hypothesis-drawn sizes);
* with torch installed, each agrees with its torch.nn counterpart, forward and backward;
* the layers call their kernels through ``minigan.ops`` at call time, so a kernel swapped into
  that namespace (a learner's own, say) is the one that runs.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan import nn, ops
from minigan.backend import set_default_dtype, to_device, to_numpy
from minigan.gradcheck import check_module


@pytest.fixture(autouse=True)
def float64_layers():
    set_default_dtype(np.float64)


def distinct(shape, seed):
    """Entries 0.1 apart in a random order: max pooling never sees a tie."""
    size = int(np.prod(shape))
    values = np.random.default_rng(seed).permutation(size) * 0.1 - size * 0.05
    return to_device(values.reshape(shape))


@given(k=st.integers(1, 3), stride=st.integers(1, 2), size=st.integers(3, 6),
       seed=st.integers(0, 2**16))
def test_pooling_layers_backward(k, stride, size, seed):
    x = distinct((2, 2, size, size), seed)
    padding = k // 2
    for layer in [nn.MaxPool2d(k, stride, padding), nn.AvgPool2d(k, stride, padding),
                  nn.AvgPool2d(k, stride, padding, count_include_pad=False),
                  nn.GlobalAvgPool2d()]:
        assert check_module(layer, x) < 1e-6, layer


@given(size_in=st.integers(1, 6), size_out=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_resize_layer_backward(size_in, size_out, seed):
    x = to_device(np.random.default_rng(seed).standard_normal((1, 2, size_in, size_in + 1)))
    assert check_module(nn.ResizeBilinear((size_out, size_out + 2)), x) < 1e-6


@pytest.mark.parametrize("ours,theirs", [
    (lambda: nn.MaxPool2d(3, 2), "MaxPool2d(3, 2)"),
    (lambda: nn.MaxPool2d(3, 1, 1), "MaxPool2d(3, 1, 1)"),
    (lambda: nn.AvgPool2d(3, 1, 1, count_include_pad=False),
     "AvgPool2d(3, 1, 1, count_include_pad=False)"),
    (lambda: nn.AvgPool2d(2), "AvgPool2d(2)"),
    (lambda: nn.ResizeBilinear(13), "Upsample(size=13, mode='bilinear', align_corners=False)"),
])
def test_layers_match_torch(ours, theirs):
    torch = pytest.importorskip("torch")
    layer, reference = ours(), eval(f"torch.nn.{theirs}")
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 8))
    dy_shape = layer(to_device(x)).shape
    dy = np.random.default_rng(1).standard_normal(dy_shape)
    xt = torch.from_numpy(x).requires_grad_()
    yt = reference(xt)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(to_numpy(layer(to_device(x))), yt.detach().numpy(), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(to_numpy(layer.backward(to_device(dy))), xt.grad.numpy(),
                               rtol=1e-12, atol=1e-12)


def test_global_avg_pool_matches_torch_adaptive_avg_pool():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 5, 4, 3))
    expected = torch.nn.AdaptiveAvgPool2d(1)(torch.from_numpy(x)).flatten(1).numpy()
    np.testing.assert_allclose(to_numpy(nn.GlobalAvgPool2d()(to_device(x))), expected,
                               rtol=1e-12)


def test_kernels_are_looked_up_at_call_time(monkeypatch):
    calls = []
    original = ops.max_pool2d_forward

    def spy(*args, **kwargs):
        calls.append(args[1:])
        return original(*args, **kwargs)

    monkeypatch.setattr(ops, "max_pool2d_forward", spy)
    nn.MaxPool2d(2)(to_device(np.zeros((1, 1, 4, 4))))
    assert calls == [(2, 2, 0)]


def test_repr_shows_the_settings():
    assert repr(nn.AvgPool2d(3, 1, 1, count_include_pad=False)) == \
        "AvgPool2d(kernel_size=3, stride=1, padding=1, count_include_pad=False)"
    assert repr(nn.ResizeBilinear(299)) == "ResizeBilinear(size=(299, 299))"
