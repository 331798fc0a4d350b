"""The discriminator's update with the real and the fake batch as one batch
(``minigan/gan/one_pass.py``) makes the lesson's update (``step.d_step``): the same losses, mean
probabilities, gradients, weights and running statistics, up to rounding. It runs where it is
wanted and D allows it, and nowhere else. (PyTorch's numbers, for both: tests/gan/test_step.py.)
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from minigan.backend import make_rng, set_default_dtype
from minigan.gan import losses, one_pass, step
from minigan.gan.dcgan import Discriminator, Generator, dcgan_init
from minigan.latent import sample_z
from minigan.opcount import count_array_ops, counted
from minigan.optim import Adam


def tiny_gan(dtype):
    set_default_dtype(dtype)
    try:
        rng = make_rng(0)
        G = dcgan_init(Generator(z_size=8, conv_dim=4, image_size=32), rng)
        D = dcgan_init(Discriminator(conv_dim=4, image_size=32), rng)   # two batch norms
    finally:
        set_default_dtype(np.float32)
    return G, D


def one_update(on, dtype, real_label, n=3, steps=2):
    """``steps`` D updates by step.d_step, one pass or two; everything they leave behind."""
    G, D = tiny_gan(dtype)
    opt_d = Adam(D.parameters(), 2e-4, (0.5, 0.999))
    rng = np.random.default_rng(5)
    real = np.tanh(rng.standard_normal((n, 3, 32, 32))).astype(dtype)
    zs = make_rng(7)
    config = step.TrainConfig(z_size=8, real_label=real_label)
    numbers = []
    with one_pass.discriminator_in_one_pass(on):
        for _ in range(steps):
            noise = lambda k: sample_z(k, 8, "uniform", zs).astype(dtype)  # noqa: E731
            result = step.d_step(G, D, opt_d, real, noise, config)
            numbers.append([float(v) for v in result])
    return numbers, G, D


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-9), (np.float32, 2e-4)])
@pytest.mark.parametrize("real_label", [1.0, 0.9])
def test_one_pass_makes_the_lessons_update(dtype, rtol, real_label):
    numbers, G, D = one_update(True, dtype, real_label)
    numbers_ref, G_ref, D_ref = one_update(False, dtype, real_label)
    np.testing.assert_allclose(numbers, numbers_ref, rtol=rtol)
    for model, ref in ((D, D_ref), (G, G_ref)):
        state, state_ref = model.state_dict(), ref.state_dict()
        for name in state_ref:      # weights after Adam, running statistics, batch counts
            np.testing.assert_allclose(state[name], state_ref[name], rtol=rtol, atol=rtol * 1e-3,
                                       err_msg=name)
    for p, q in zip(D.parameters(), D_ref.parameters()):
        np.testing.assert_allclose(p.grad, q.grad, rtol=rtol, atol=rtol * 1e-3)
    assert int(D[3].num_batches_tracked) == 4          # two batches per update, as apart
    assert all(p.grad is None or not p.grad.any() for p in G.parameters())  # G "detached"


def test_the_comparison_can_fail():
    """With one batch norm statistic over both batches the update differs: the test above
    would see it."""
    numbers, _, _ = one_update(True, np.float64, 1.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(one_pass, "statistics_per_group", lambda model, groups: _no_groups())
        numbers_mixed, _, _ = one_update(True, np.float64, 1.0)
    assert not np.allclose(numbers, numbers_mixed, rtol=1e-6)


def _no_groups():
    import contextlib
    return contextlib.nullcontext()


def test_real_and_fake_loss_is_the_sum_of_the_two_losses():
    logits = np.array([[-3.0], [0.5], [4.0], [-1.0], [2.0], [0.0]])
    loss, d_logits = one_pass.real_and_fake_loss(logits, 0.9)
    real, d_real = losses.real_loss(logits[:3], 0.9)
    fake, d_fake = losses.fake_loss(logits[3:])
    assert np.isclose(loss, real + fake, rtol=1e-14)
    np.testing.assert_allclose(d_logits, np.concatenate([d_real, d_fake]), rtol=1e-14)


def test_mean_probabilities_are_each_halfs_mean_probability():
    logits = np.random.default_rng(0).standard_normal((8, 1))
    both = one_pass.mean_probabilities(logits, 2)
    np.testing.assert_allclose(both, [step.mean_probability(logits[:4]),
                                      step.mean_probability(logits[4:])], rtol=1e-14)


# ----------------------------------------------------------------------- where it runs
def test_on_numpy_it_runs_only_when_asked():
    _, D = tiny_gan(np.float32)
    real = np.zeros((2, 3, 32, 32), np.float32)
    assert not one_pass.pays(D, real)                  # on the CPU: two passes are faster
    with one_pass.discriminator_in_one_pass(True):
        assert one_pass.pays(D, real)
        with one_pass.discriminator_in_one_pass(False):
            assert not one_pass.pays(D, real)
        assert one_pass.pays(D, real)
    assert not one_pass.pays(D, real)


def test_not_with_a_learners_losses(monkeypatch):
    _, D = tiny_gan(np.float32)
    real = np.zeros((2, 3, 32, 32), np.float32)
    own = losses.fake_loss
    monkeypatch.setattr(losses, "fake_loss", lambda logits: own(logits))
    with one_pass.discriminator_in_one_pass(True):
        assert not one_pass.pays(D, real)
    calls = []

    def learners(logits):
        calls.append(len(logits))
        return own(logits)
    monkeypatch.setattr(losses, "fake_loss", learners)
    G, D = tiny_gan(np.float32)
    with one_pass.discriminator_in_one_pass(True):
        step.d_step(G, D, Adam(D.parameters()), real,
                    lambda k: sample_z(k, 8, "uniform", make_rng(0)), step.TrainConfig(z_size=8))
    assert calls == [2]                                  # the learner's loss ran


def test_one_pass_saves_array_operations():
    """The point of it: fewer array operations (kernel launches on a GPU) per D update."""
    totals = []
    for on in (False, True):
        with count_array_ops() as counter:
            G, D = tiny_gan(np.float32)
            opt_d = Adam(D.parameters())
            real = counted(np.zeros((2, 3, 32, 32), np.float32))
            noise = lambda k: sample_z(k, 8, "uniform", make_rng(0))  # noqa: E731
            with one_pass.discriminator_in_one_pass(on):
                step.d_step(G, D, opt_d, real, noise, step.TrainConfig(z_size=8))
                counter.reset()
                step.d_step(G, D, opt_d, real, noise, step.TrainConfig(z_size=8))
            totals.append(counter.total)
    two, one = totals
    assert one <= two - 50, totals


def test_a_copy_of_d_runs_one_pass_too():
    _, D = tiny_gan(np.float32)
    assert one_pass.runs_as_one_batch(copy.deepcopy(D), np.zeros((2, 3, 32, 32), np.float32))
