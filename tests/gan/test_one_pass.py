"""The training step with each network run once where the lesson runs it on several batches
(``minigan/gan/one_pass.py``) makes the lesson's step (``step.train_step``'s own lines): the
same losses, mean probabilities, gradients, weights and running statistics, up to rounding, for
one or two D updates per step. It runs where it is wanted and the networks and the step's parts
allow it, and nowhere else. (PyTorch's numbers, for both: tests/gan/test_step.py.)
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np
import pytest

from minigan.backend import (
    backend_name,
    make_rng,
    set_default_dtype,
    to_device,
    to_numpy,
)
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


def one_run(on, dtype, real_label, d_steps=1, n=3, steps=2):
    """``steps`` training steps by step.train_step, the lesson's or one pass's; what they
    return and leave behind."""
    G, D = tiny_gan(dtype)
    opt_g = Adam(G.parameters(), 2e-4, (0.5, 0.999))
    opt_d = Adam(D.parameters(), 2e-4, (0.5, 0.999))
    rng = np.random.default_rng(5)
    # on the active backend: with MINIGAN_BACKEND=cupy on a GPU, this checks the GPU's step
    real = to_device(np.tanh(rng.standard_normal((n, 3, 32, 32))), dtype)
    zs = make_rng(7)
    config = step.TrainConfig(z_size=8, real_label=real_label, d_steps=d_steps)
    noise = lambda k: to_device(sample_z(k, 8, "uniform", zs), dtype)  # noqa: E731
    numbers = []
    with one_pass.one_pass_step(on):
        for _ in range(steps):
            result = step.train_step(G, D, opt_g, opt_d, real, noise, config)
            numbers.append([float(v) for v in vars(result).values()])
    return numbers, G, D


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-9), (np.float32, 2e-4)])
@pytest.mark.parametrize("real_label, d_steps", [(1.0, 1), (0.9, 1), (1.0, 2)])
def test_one_pass_makes_the_lessons_step(dtype, rtol, real_label, d_steps):
    numbers, G, D = one_run(True, dtype, real_label, d_steps)
    numbers_ref, G_ref, D_ref = one_run(False, dtype, real_label, d_steps)
    np.testing.assert_allclose(numbers, numbers_ref, rtol=rtol)
    for model, ref in ((D, D_ref), (G, G_ref)):
        state, state_ref = model.state_dict(), ref.state_dict()
        for name in state_ref:      # weights after Adam, running statistics, batch counts
            np.testing.assert_allclose(to_numpy(state[name]), to_numpy(state_ref[name]),
                                       rtol=rtol, atol=rtol * 1e-3, err_msg=name)
        for p, q in zip(model.parameters(), ref.parameters()):
            np.testing.assert_allclose(to_numpy(p.grad), to_numpy(q.grad), rtol=rtol,
                                       atol=rtol * 1e-3)
    # per step: two batches per D update through D's batch norms, d_steps + 1 through G's
    assert int(D[3].num_batches_tracked) == 2 * (2 * d_steps + 1)
    assert int(G[3].num_batches_tracked) == 2 * (d_steps + 1)


def test_the_comparison_can_fail():
    """With one batch norm statistic over all the batches the step differs: the test above
    would see it."""
    numbers, _, _ = one_run(True, np.float64, 1.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(one_pass, "statistics_per_group",
                      lambda model, groups: contextlib.nullcontext())
        numbers_mixed, _, _ = one_run(True, np.float64, 1.0)
    assert not np.allclose(numbers, numbers_mixed, rtol=1e-6)


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
def real_batch():
    return to_device(np.zeros((2, 3, 32, 32)), np.float32)


def lesson_pays(G, D, real=None):
    return one_pass.pays(G, D, real_batch() if real is None else real, step.d_step, step.g_step)


def test_by_default_on_a_gpu_only_and_otherwise_when_asked():
    G, D = tiny_gan(np.float32)
    real = real_batch()
    on_gpu = backend_name() == "cupy"            # real is then a device array
    assert lesson_pays(G, D, real) == on_gpu     # on the CPU: the lesson's step is faster
    assert not lesson_pays(G, D, np.zeros((2, 3, 32, 32), np.float32))
    with one_pass.one_pass_step(True):
        assert lesson_pays(G, D, real)
        with one_pass.one_pass_step(False):
            assert not lesson_pays(G, D, real)
        assert lesson_pays(G, D, real)
    assert lesson_pays(G, D, real) == on_gpu


@pytest.mark.parametrize("owner, name", [(losses, "fake_loss"), (step, "d_step"),
                                         (step, "g_step")])
def test_not_with_a_learners_loss_or_step(monkeypatch, owner, name):
    """An exercise swaps in a learner's function by name: the step must run it."""
    own = getattr(owner, name)
    calls = []

    def learners(*args, **kwargs):
        calls.append(name)
        return own(*args, **kwargs)
    monkeypatch.setattr(owner, name, learners)
    G, D = tiny_gan(np.float32)
    with one_pass.one_pass_step(True):
        assert not lesson_pays(G, D)
        step.train_step(G, D, Adam(G.parameters()), Adam(D.parameters()), real_batch(),
                        lambda k: to_device(sample_z(k, 8, "uniform", make_rng(0)), np.float32),
                        step.TrainConfig(z_size=8))
    assert calls == [name]                               # the learner's function ran


def test_a_wrapper_around_the_lessons_function_is_still_the_lesson(monkeypatch):
    own = losses.fake_loss
    monkeypatch.setattr(losses, "fake_loss", functools.wraps(own)(lambda logits: own(logits)))
    G, D = tiny_gan(np.float32)
    with one_pass.one_pass_step(True):
        assert lesson_pays(G, D)


def test_not_when_a_network_cannot():
    G, D = tiny_gan(np.float32)
    D_dropout = dcgan_init(Discriminator(conv_dim=4, image_size=32, dropout=0.3))
    with one_pass.one_pass_step(True):
        assert not lesson_pays(G, D_dropout)
        assert not lesson_pays(G.eval(), D)


def test_one_pass_saves_array_operations():
    """The point of it: fewer array operations (kernel launches on a GPU) per step."""
    if backend_name() != "numpy":
        pytest.skip("counts array operations on the NumPy backend only")
    totals = []
    for on in (False, True):
        with count_array_ops() as counter:
            G, D = tiny_gan(np.float32)
            opt_g, opt_d = Adam(G.parameters()), Adam(D.parameters())
            real = counted(np.zeros((2, 3, 32, 32), np.float32))
            noise = lambda k: sample_z(k, 8, "uniform", make_rng(0))  # noqa: E731
            with one_pass.one_pass_step(on):
                for _ in range(2):
                    counter.reset()
                    step.train_step(G, D, opt_g, opt_d, real, noise, step.TrainConfig(z_size=8))
            totals.append(counter.total)
    two, one = totals
    assert one <= two - 80, totals
