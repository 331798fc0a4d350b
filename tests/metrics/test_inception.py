"""The FID Inception-v3, built from minigan's layers, gives pytorch-fid's numbers.

* with the same random weights, minigan's network and pytorch-fid's give the same pool3
  features and logits on two 32x32 images (resized to 299x299 by each): to 1e-10 in float64 and
  1e-4 in float32, relative to the largest entry. With torch and pytorch-fid installed the
  weights go through ``torch.save`` and both loaders; without them, the outputs recorded once
  from pytorch-fid (``fixtures/fid_inception_random.npz``, made by ``inception_parity.py``)
  stand in, so the check runs everywhere;
* the state dict has torchvision's names and shapes, so the published weights file loads;
* an Inception block's backward pass (branches, concatenation, a split branch) agrees with
  finite differences, on a small block built for the test.
"""

from __future__ import annotations

import numpy as np
import pytest

from minigan.backend import set_default_dtype, to_device, to_numpy
from minigan.gradcheck import check_module
from minigan.metrics.inception import (
    NUM_CLASSES,
    POOL3_FEATURES,
    BasicConv2d,
    FIDInceptionV3,
    InceptionBlock,
)
from minigan.metrics.inception_weights import load_fid_weights
from minigan.nn import AvgPool2d, MaxPool2d
from minigan.pth import read_state_dict
from tests.metrics.inception_parity import (
    FIXTURE,
    pytorch_fid_outputs,
    random_fid_weights,
    random_images,
)


def close_relative_to_largest(actual, expected, tolerance):
    """max |actual - expected| <= tolerance * max |expected|."""
    scale = np.max(np.abs(expected))
    error = np.max(np.abs(actual - expected)) / scale
    assert error <= tolerance, f"relative error {error:.3g} > {tolerance}"


@pytest.fixture(scope="module")
def weights():
    return random_fid_weights()


@pytest.fixture(scope="module")
def minigan_float64(weights):
    """(pool3, logits) of minigan's network in float64 on the two images (one forward pass)."""
    net = load_fid_weights(FIDInceptionV3().to(dtype=np.float64), weights)
    pool3, logits = net.pool3_and_logits(to_device(random_images()), keep_caches=False)
    return to_numpy(pool3), to_numpy(logits)


@pytest.mark.slow
def test_float64_matches_the_recorded_pytorch_fid_outputs(weights, minigan_float64):
    recorded = np.load(FIXTURE, allow_pickle=False)
    weight_sum = sum(float(v.sum()) for v in weights.values())
    assert weight_sum == pytest.approx(float(recorded["weight_sum"]), rel=1e-12), \
        "the random weights differ from those the fixture was recorded with (NumPy changed?)"
    pool3, logits = minigan_float64
    assert pool3.shape == (2, POOL3_FEATURES) and logits.shape == (2, NUM_CLASSES)
    close_relative_to_largest(pool3, recorded["pool3"], 1e-10)
    close_relative_to_largest(logits, recorded["logits"], 1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("dtype,tolerance", [("float64", 1e-10), ("float32", 1e-4)])
def test_same_weights_through_torch_save_give_pytorch_fids_numbers(weights, minigan_float64,
                                                                   tmp_path, dtype, tolerance):
    pytest.importorskip("torch")
    pytest.importorskip("pytorch_fid.inception")
    expected_pool3, expected_logits = pytorch_fid_outputs(weights, random_images(), dtype,
                                                          tmp_path / "random.pth")
    if dtype == "float64":
        # minigan reads the same .pth file that torch wrote, with its own unpickler.
        loaded = read_state_dict(tmp_path / "random.pth")
        assert all(np.array_equal(loaded[k], weights[k]) for k in weights)
        pool3, logits = minigan_float64
    else:
        net = load_fid_weights(FIDInceptionV3().to(dtype=np.float32),
                               read_state_dict(tmp_path / "random.pth"))
        pool3, logits = (to_numpy(a) for a in net.pool3_and_logits(
            to_device(random_images().astype(np.float32)), keep_caches=False))
        assert pool3.dtype == np.float32
    close_relative_to_largest(pool3, expected_pool3, tolerance)
    close_relative_to_largest(logits, expected_logits, tolerance)


def test_state_dict_has_torchvisions_names_and_shapes():
    state = FIDInceptionV3().state_dict()
    assert state["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert state["Mixed_6b.branch7x7_2.conv.weight"].shape == (128, 128, 1, 7)
    assert state["Mixed_7c.branch3x3dbl_3b.conv.weight"].shape == (384, 384, 3, 1)
    assert state["Mixed_7c.branch_pool.bn.running_var"].shape == (192,)
    assert state["fc.weight"].shape == (NUM_CLASSES, POOL3_FEATURES)
    assert not any("bias" in k and ".conv." in k for k in state)   # convolutions have no bias
    assert sum(v.size for k, v in state.items() if "num_batches" not in k) == 23_885_392


def test_the_torchvision_state_dict_matches_key_for_key():
    torchvision = pytest.importorskip("torchvision")
    from pytorch_fid import inception as pf

    theirs = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None,
                                             init_weights=False)
    for name, block in [("Mixed_5b", pf.FIDInceptionA(192, 32)),
                        ("Mixed_7b", pf.FIDInceptionE_1(1280)),
                        ("Mixed_7c", pf.FIDInceptionE_2(2048))]:
        setattr(theirs, name, block)
    expected = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    ours = {k: v.shape for k, v in FIDInceptionV3().state_dict().items()}
    assert ours == expected


def test_missing_or_foreign_weights_are_refused():
    net = FIDInceptionV3()
    state = net.state_dict()
    del state["fc.bias"]
    with pytest.raises(KeyError, match="missing.*fc.bias"):
        load_fid_weights(net, state)
    state = {k: v for k, v in net.state_dict().items() if "num_batches" not in k}
    load_fid_weights(net, state)   # older files lack num_batches_tracked: that is fine


class SmallBlock(InceptionBlock):
    """An Inception block in miniature: 1x1 | 1x1 -> (1x3, 3x1) | avg pool -> 1x1 | max pool."""

    def __init__(self, c: int):
        super().__init__()
        self.a = BasicConv2d(c, 2, 1)
        self.b_1 = BasicConv2d(c, 2, 1)
        self.b_2a = BasicConv2d(2, 2, (1, 3), padding=(0, 1))
        self.b_2b = BasicConv2d(2, 1, (3, 1), padding=(1, 0))
        self.avg = AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.c = BasicConv2d(c, 1, 1)
        self.max = MaxPool2d(3, stride=1, padding=1)
        self.branches = [["a"], ["b_1", ("b_2a", "b_2b")], ["avg", "c"], ["max"]]


def test_an_inception_blocks_backward_matches_finite_differences():
    set_default_dtype(np.float64)
    block = SmallBlock(2).eval()
    rng = np.random.default_rng(0)
    for m in block.modules():   # batch norm statistics other than 0 and 1
        if hasattr(m, "running_var"):
            m.running_mean = to_device(rng.uniform(-0.1, 0.1, m.running_mean.shape))
            m.running_var = to_device(rng.uniform(0.5, 1.5, m.running_var.shape))
    # Distinct values (no ties in the max pooling) kept away from ReLU's kink by the 0.1 step.
    x = to_device((rng.permutation(2 * 2 * 4 * 4) * 0.1 - 1.55).reshape(2, 2, 4, 4))
    y = block(x)
    assert y.shape == (2, 2 + 3 + 1 + 2, 4, 4)
    assert check_module(block, x) < 1e-6
