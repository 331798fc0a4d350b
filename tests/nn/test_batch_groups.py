"""Several batches through a network as one (``minigan.nn.batch_groups``): a batch norm + activation
pair with statistics per group gives what the pair gives on each batch in turn, and
``runs_as_one_batch`` says no wherever that would not hold. (The discriminator's step built on
it: tests/gan/test_one_pass.py. Across processes: tests/distributed/test_world.py.)
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest

from minigan import nn, ops
from minigan.backend import array_module, to_device
from minigan.gan.dcgan import Discriminator, dcgan_init
from minigan.nn.batch_groups import runs_as_one_batch, statistics_per_group
from tests.nn.test_fused_pairs import assert_close, features, image_batch, like, pair, state

RNG = np.random.default_rng(1)


def batch_of(kind, memory, groups, shift=0.0):
    """``groups`` batches one after the other along the batch axis, on the active backend, in
    the given memory layout (image_batch's, of 4 images each; for BatchNorm1d, features'
    8 rows of 5 each)."""
    xp = array_module()
    if kind.startswith("1d"):
        return xp.concatenate([features(memory, shift) for _ in range(groups)])
    parts = [image_batch(memory, shift) for _ in range(groups)]
    if memory == "channels_first":
        return xp.concatenate(parts)
    # the same layout for the whole batch: one channels-last array, cropped or not
    whole = xp.concatenate([p.transpose(0, 2, 3, 1) for p in parts])
    return whole.transpose(0, 3, 1, 2)


@pytest.mark.parametrize("kind, memory", [
    ("2d-leaky", "channels_last"), ("2d-leaky", "cropped"), ("2d-relu", "channels_first"),
    ("1d-relu", "contiguous"), ("1d-relu", "transposed")])
@pytest.mark.parametrize("groups", [2, 3])
def test_groups_in_one_pass_give_what_each_group_gives_in_turn(kind, memory, groups):
    model = pair(kind)
    apart = copy.deepcopy(model)
    x = batch_of(kind, memory, groups, 0.3)
    dy = like(x)
    n = len(x) // groups
    for _ in range(2):   # the second step: running statistics and gradients add up
        with statistics_per_group(model, groups):
            y = model(x)
        dx = model.backward(dy)          # after the block: the cache knows its groups
        ys, dxs = [], []
        for g in range(groups):
            part = slice(g * n, (g + 1) * n)
            ys.append(apart(x[part]))
            dxs.append(apart.backward(dy[part]))
        xp = array_module()
        assert_close(y, xp.concatenate(ys), rtol=1e-12, atol=1e-12)
        assert_close(dx, xp.concatenate(dxs), rtol=1e-10, atol=1e-12)
        for a, b in zip(state(model), state(apart)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert int(model[0].num_batches_tracked) == 2 * groups
    assert model[0].statistics_groups == 1      # the block put it back


def test_groups_differ_from_one_batch():
    """The check above can fail: one batch norm over the whole batch normalises otherwise."""
    model = pair("2d-leaky")
    whole = copy.deepcopy(model)
    x = batch_of("2d-leaky", "channels_last", 2)
    x[:4] += 2.0                              # the two groups have different means
    with statistics_per_group(model, 2):
        y = model(x)
    assert float(abs(y - whole(x)).max()) > 0.1


def test_a_batch_norm_alone_refuses_groups_and_a_grouped_cache():
    bn = nn.BatchNorm2d(3).to(dtype=np.float64)
    x = batch_of("2d-relu", "channels_first", 2)
    with statistics_per_group(bn, 2), pytest.raises(RuntimeError, match="per group"):
        bn(x)
    model = pair("2d-relu")
    with statistics_per_group(model, 2):
        model(x)
    with pytest.raises(RuntimeError, match="per group"):
        model[0].backward(like(x))                        # its own backward, not the pair's


def test_a_batch_that_does_not_split_evenly_is_refused():
    model = pair("2d-relu")
    with statistics_per_group(model, 3), pytest.raises(ValueError, match="3 groups"):
        model(batch_of("2d-relu", "channels_first", 2))     # 8 images


# ----------------------------------------------------------------------- runs_as_one_batch
def discriminator(**kwargs):
    return dcgan_init(Discriminator(conv_dim=4, image_size=16, **kwargs))


X = to_device(RNG.uniform(-1, 1, (4, 3, 16, 16)), np.float32)


def test_the_dcgan_discriminator_runs_as_one_batch():
    assert runs_as_one_batch(discriminator(), X)


def test_not_with_the_plain_kernels():
    with ops.fast_kernels(False):
        assert not runs_as_one_batch(discriminator(), X)


def test_not_with_dropout_nor_in_eval_mode():
    assert not runs_as_one_batch(discriminator(dropout=0.3), X)   # one mask for all the groups
    assert not runs_as_one_batch(discriminator().eval(), X)


def test_not_with_a_learners_batch_norm_kernel(monkeypatch):
    own = ops.batch_norm_backward
    monkeypatch.setattr(ops, "batch_norm_backward", lambda *a, **k: own(*a, **k))
    assert not runs_as_one_batch(discriminator(), X)
    monkeypatch.setattr(ops, "batch_norm_backward", functools.wraps(own)(lambda *a: own(*a)))
    assert runs_as_one_batch(discriminator(), X)   # a wrapper (a timer) is still minigan's


def test_not_with_a_batch_norm_on_its_own_or_a_layer_it_does_not_know():
    alone = nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1), nn.BatchNorm2d(4), nn.Flatten(),
                          nn.Linear(4 * 8 * 8, 1))
    assert not runs_as_one_batch(alone, X)
    pooled = nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1), nn.MaxPool2d(2), nn.Flatten(),
                           nn.Linear(4 * 4 * 4, 1))
    assert not runs_as_one_batch(pooled, X)


def test_not_for_a_model_that_runs_its_layers_its_own_way():
    class Custom(nn.Sequential):
        def forward(self, x):
            return super().forward(x)

    layers = discriminator().layers
    assert runs_as_one_batch(nn.Sequential(*copy.deepcopy(layers)), X)
    assert not runs_as_one_batch(Custom(*copy.deepcopy(layers)), X)
