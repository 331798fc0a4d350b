"""``benchmarks/torch_inception.py``, the FID Inception in plain PyTorch that the Inception
benchmark times minigan against, is the same network as minigan's, so that the timing compares
the same work:

* its state dict has minigan's names and shapes, and the benchmark's seeded random weights are
  drawn the same on both sides;
* with the same random weights, in float64, its pool3 features and IS probabilities on two
  32x32 images (resized to 299x299 by each) are minigan's ``InceptionScorer``'s, and its pool3
  and logits are those recorded once from pytorch-fid itself, to 1e-10 of the largest entry
  (float64 leaves only rounding: a wrong block, pooling or resize differs at order one).

Skipped without torch (never a dependency of minigan).
"""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

from minigan.metrics.inception import FIDInceptionV3
from minigan.metrics.inception_eval import InceptionScorer
from minigan.metrics.inception_weights import load_fid_weights
from tests.helpers import REPO_ROOT
from tests.metrics.inception_parity import FIXTURE, random_fid_weights, random_images

torch = pytest.importorskip("torch")

BENCHMARKS = REPO_ROOT / "benchmarks"


def load_benchmark(name: str):
    """A script of benchmarks/ as a module (its work runs only under __main__)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ti():
    return load_benchmark("torch_inception")


def close_relative_to_largest(actual, expected, tolerance):
    """max |actual - expected| <= tolerance * max |expected|."""
    error = np.max(np.abs(actual - expected)) / np.max(np.abs(expected))
    assert error <= tolerance, f"relative error {error:.3g} > {tolerance}"


def test_the_state_dicts_have_the_same_names_and_shapes(ti):
    ours = FIDInceptionV3().state_dict()
    net = ti.FIDInceptionV3()
    theirs = net.state_dict()
    assert sorted(theirs) == sorted(ours)
    assert all(tuple(theirs[k].shape) == tuple(np.shape(ours[k])) for k in ours)
    # The order random_weights draws in: minigan's state dict lists parameters, then buffers.
    assert [k for k, _ in [*net.named_parameters(), *net.named_buffers()]] == list(ours)


def test_the_benchmarks_draw_the_same_random_weights(ti, monkeypatch):
    # bench_inception parses sys.argv and sets the thread variables when imported:
    # give it no options, and let monkeypatch put the variables back afterwards.
    monkeypatch.setattr(sys, "argv", ["bench_inception.py"])
    for var in ti.THREAD_VARIABLES:
        monkeypatch.setenv(var, os.environ.get(var, ""))
    bench = load_benchmark("bench_inception")
    ours = bench.random_weights(3)
    theirs = ti.random_weights(ti.FIDInceptionV3(), 3)
    assert list(theirs) == list(ours)
    assert all(np.array_equal(theirs[k], ours[k]) for k in ours)


def test_float64_pool3_and_probabilities_are_minigans_and_pytorch_fids(ti):
    weights, images = random_fid_weights(), random_images()    # float64, (2, 3, 32, 32)
    drawn = ti.random_weights(ti.FIDInceptionV3(), 2015)    # the parity fixture's seed
    assert all(np.array_equal(drawn[k], v) for k, v in weights.items())

    minigan_net = load_fid_weights(FIDInceptionV3().to(dtype=np.float64), weights)
    pool3, probs = InceptionScorer(minigan_net, 2).pool3_and_probabilities(images)

    torch_net = ti.load_weights(ti.FIDInceptionV3().to(torch.float64), weights)
    torch_pool3, torch_probs = ti.pool3_and_probabilities(torch_net, images, batch_size=2)
    assert torch_pool3.shape == (2, 2048) and torch_probs.shape == (2, 1008)
    close_relative_to_largest(torch_pool3, pool3, 1e-10)
    close_relative_to_largest(torch_probs, probs, 1e-10)

    recorded = np.load(FIXTURE, allow_pickle=False)   # pytorch-fid's own outputs
    with torch.inference_mode():    # fc with its bias, on the pool3 features just checked
        logits = torch_net.fc(torch.from_numpy(torch_pool3)).numpy()
    close_relative_to_largest(torch_pool3, recorded["pool3"], 1e-10)
    close_relative_to_largest(logits, recorded["logits"], 1e-10)
