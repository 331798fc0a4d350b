"""The split step: ``step.train_step`` with each half of the batch in a thread of its own.

Where NumPy's BLAS has two threads, ``GANTrainer.train_step`` runs the step as two halves at
once (``minigan/gan/split_step.py``): a replica of G and D per thread, batch norm's sums taken
over both halves, the mean gradient written into the trainer's parameters before each optimizer
step, z drawn once for the whole batch. The numbers must be the one-thread step's up to
rounding; these tests hold them to 1e-10 in float64, and check when the split runs, that an
error in either half reaches the caller, and that the replicas follow the trainer's networks.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from minigan.backend import backend_name, manual_seed
from minigan.gan import split_step, step
from minigan.gan.dcgan import Discriminator, Generator, dcgan_init
from minigan.gan.split_step import split_across_threads
from minigan.gan.trainer import GANTrainer, TrainConfig
from minigan.nn import Dropout
from minigan.ops import fast_kernels
from minigan.ops.im2col import im2col, im2col_fast
from tests.helpers import two_blas_threads

STEPS = 3


@pytest.fixture(autouse=True)
def _numpy_backend():
    if backend_name() != "numpy":
        pytest.skip("the split step runs on NumPy arrays only (a GPU runs one_pass.py)")


def make_trainer(out_dir, dropout: float = 0.0):
    """A tiny DCGAN (16x16 RGB, conv_dim 4, two batch norms in each network), the same weights
    every time it is built."""
    manual_seed(0)
    G = dcgan_init(Generator(z_size=8, conv_dim=4, image_size=16, channels=3))
    D = dcgan_init(Discriminator(conv_dim=4, image_size=16, channels=3, dropout=dropout))
    return GANTrainer(G, D, loader=None, config=TrainConfig(z_size=8, seed=0, num_samples=4),
                      out_dir=out_dir)


def split(trainer, real):
    """One split step of ``trainer``, whatever the machine's BLAS threads."""
    return trainer.split_step.train_step(trainer.G, trainer.D, trainer.opt_g, trainer.opt_d,
                                         real, trainer.training_z, trainer.config)


def one_thread(trainer, real):
    with split_across_threads(False):
        return trainer.train_step(real)


def numbers(result) -> list[float]:
    return [float(v) for v in (result.d_loss, result.g_loss, result.d_real, result.d_fake)]


def assert_same_state(a, b, tolerance=1e-10):
    """Every parameter, gradient, buffer and Adam moment of two trainers, to ``tolerance``."""
    for net_a, net_b in ((a.G, b.G), (a.D, b.D)):
        for (name, p), (_, q) in zip(net_a.named_parameters(), net_b.named_parameters()):
            np.testing.assert_allclose(p.data, q.data, rtol=0, atol=tolerance, err_msg=name)
            np.testing.assert_allclose(p.grad, q.grad, rtol=0, atol=tolerance, err_msg=name)
        for (name, x), (_, y) in zip(net_a.named_buffers(), net_b.named_buffers()):
            np.testing.assert_allclose(x, y, rtol=0, atol=tolerance, err_msg=name)
    for opt_a, opt_b in ((a.opt_g, b.opt_g), (a.opt_d, b.opt_d)):
        for name, flat in opt_a.flat_state.items():
            np.testing.assert_allclose(flat, opt_b.flat_state[name], rtol=0, atol=tolerance)


def test_the_split_step_trains_as_the_one_thread_step(tmp_path, float64_default):
    real = np.random.default_rng(1).uniform(-1, 1, (8, 3, 16, 16))
    halves, whole = make_trainer(tmp_path / "split"), make_trainer(tmp_path / "one")
    for _ in range(STEPS):
        np.testing.assert_allclose(numbers(split(halves, real)),
                                   numbers(one_thread(whole, real)), rtol=0, atol=1e-10)
    assert_same_state(halves, whole)
    # Batch norm's running statistics were blended once per forward pass, not once per half.
    bn = halves.G.layers[3]
    assert bn.num_batches_tracked == whole.G.layers[3].num_batches_tracked == 2 * STEPS
    # And the step really moved the weights (not two copies that both stood still).
    assert not np.allclose(halves.G.layers[0].weight.data,
                           make_trainer(tmp_path / "fresh").G.layers[0].weight.data)


def test_the_split_step_is_the_same_every_time(tmp_path):
    """The halves' sums are added in one order: two runs give the same bits (float32)."""
    real = np.random.default_rng(2).uniform(-1, 1, (8, 3, 16, 16)).astype(np.float32)
    first, second = make_trainer(tmp_path / "a"), make_trainer(tmp_path / "b")
    for _ in range(2):
        assert numbers(split(first, real)) == numbers(split(second, real))
    for p, q in zip(first.G.parameters(), second.G.parameters()):
        assert np.array_equal(p.data, q.data)


def test_the_replicas_follow_weights_loaded_between_steps(tmp_path, float64_default):
    """load_state_dict gives the networks new arrays: the next split step must read those."""
    real = np.random.default_rng(3).uniform(-1, 1, (8, 3, 16, 16))
    halves, whole = make_trainer(tmp_path / "split"), make_trainer(tmp_path / "one")
    split(halves, real)
    one_thread(whole, real)
    other = make_trainer(tmp_path / "other")
    for _ in range(2):
        one_thread(other, real)
    for trainer in (halves, whole):
        trainer.G.load_state_dict(other.G.state_dict())
        trainer.D.load_state_dict(other.D.state_dict())
    np.testing.assert_allclose(numbers(split(halves, real)), numbers(one_thread(whole, real)),
                               rtol=0, atol=1e-10)
    assert_same_state(halves, whole)


def test_the_replicas_follow_the_modes_and_frozen_parameters(tmp_path, float64_default):
    real = np.random.default_rng(4).uniform(-1, 1, (8, 3, 16, 16))
    halves, whole = make_trainer(tmp_path / "split"), make_trainer(tmp_path / "one")
    split(halves, real)
    one_thread(whole, real)
    for trainer in (halves, whole):
        trainer.G.layers[0].weight.requires_grad = False     # frozen from now on
        trainer.D.layers[3].eval()                           # D's batch norm: running statistics
    trained = halves.G.layers[2].weight.data.copy()
    running_mean = halves.D.layers[3].running_mean.copy()
    split(halves, real)
    one_thread(whole, real)
    np.testing.assert_array_equal(halves.G.layers[0].weight.grad, 0)
    np.testing.assert_array_equal(halves.D.layers[3].running_mean, running_mean)  # not updated
    assert_same_state(halves, whole)
    assert not np.array_equal(trained, halves.G.layers[2].weight.data)   # the rest trained


def test_a_step_is_split_only_where_it_has_the_work_for_two_threads(tmp_path):
    trainer = make_trainer(tmp_path)
    # D's outputs for one 16x16 image: conv 4x8x8, LeakyReLU, conv 8x4x4, batch norm,
    # LeakyReLU, Flatten (128 each from the conv on), Linear 1: 1025 numbers in 7 layers.
    real = np.zeros((8, 3, 16, 16), np.float32)
    replica = trainer.split_step._replicas_of(trainer.D)[0]
    assert replica.mean_output_size(real) == pytest.approx(1025 / 7)
    assert trainer.D.training and trainer.D.layers[3].cache is None   # the original untouched
    assert replica.mean_output_size(real[:, :2]) == 0                 # not D's input
    with two_blas_threads():
        assert not trainer.split_step.pays(trainer.G, trainer.D, real)   # 8 x 146 numbers
        manual_seed(0)
        svhn = make_trainer(tmp_path / "svhn")
        svhn.G, svhn.D = Generator(z_size=100, conv_dim=32), Discriminator(conv_dim=32)
        assert svhn.split_step.pays(svhn.G, svhn.D, np.zeros((128, 3, 32, 32), np.float32))


def test_when_the_step_is_split(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path)
    real = np.zeros((8, 3, 16, 16), np.float32)
    G, D = trainer.G, trainer.D
    monkeypatch.setattr(split_step, "SPLIT_FROM", 0)   # as if this tiny model had the work
    with two_blas_threads():
        assert trainer.split_step.pays(G, D, real)
        assert not trainer.split_step.pays(G, D, real[:7])          # odd batch
        assert not trainer.split_step.pays(G, D, real[:2])          # one image per half
        with fast_kernels(False):                                   # the plain step, to read
            assert not trainer.split_step.pays(G, D, real)
        with split_across_threads(False):
            assert not trainer.split_step.pays(G, D, real)
        with_dropout = make_trainer(tmp_path / "dropout", dropout=0.3)
        assert any(isinstance(m, Dropout) for m in with_dropout.D.modules())
        assert not with_dropout.split_step.pays(with_dropout.G, with_dropout.D, real)
    with threadpool_limits(1, user_api="blas"):                     # OMP_NUM_THREADS=1
        assert not trainer.split_step.pays(G, D, real)
    with threadpool_limits(2, user_api="blas"):                     # pinned to one core
        monkeypatch.setattr(split_step, "usable_cores", lambda: 1)
        assert not trainer.split_step.pays(G, D, real)
        monkeypatch.undo()
        monkeypatch.setattr(split_step, "SPLIT_FROM", 0)
    with threadpool_limits(2, user_api="blas"):   # and the trainer takes it, where it pays
        calls = []
        original = trainer.split_step.train_step
        trainer.split_step.train_step = lambda *a: calls.append(1) or original(*a)
        trainer.train_step(real)
        assert calls == [1]


def test_an_error_in_either_half_reaches_the_caller(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path)
    real = np.random.default_rng(5).uniform(-1, 1, (8, 3, 16, 16)).astype(np.float32)
    second_half = real[4:]
    d_step = step.d_step

    def failing_in_the_second_half(G, D, opt_d, half, noise, config):
        if np.array_equal(half, second_half):
            raise ZeroDivisionError("in the second half only")
        return d_step(G, D, opt_d, half, noise, config)

    monkeypatch.setattr(step, "d_step", failing_in_the_second_half)
    # The first half waits for the second at its first batch norm; it must not wait forever,
    # and the error raised is the second half's, not the first half's broken barrier.
    with pytest.raises(ZeroDivisionError, match="second half only"):
        split(trainer, real)
    monkeypatch.setattr(step, "d_step", d_step)

    def failing_noise(n):
        raise KeyboardInterrupt   # drawn by the first half alone
    with pytest.raises(KeyboardInterrupt):
        trainer.split_step.train_step(trainer.G, trainer.D, trainer.opt_g, trainer.opt_d, real,
                                      failing_noise, trainer.config)
    before = [p.data.copy() for p in trainer.G.parameters()]
    split(trainer, real)                     # and the next step runs
    assert any(not np.array_equal(a, p.data) for a, p in zip(before, trainer.G.parameters()))


def test_im2col_in_two_threads_at_once_keeps_each_threads_image(tmp_path):
    """im2col_fast reuses a zero-bordered buffer per shape: one per thread, or two halves of a
    split step would copy each other's images."""
    rng = np.random.default_rng(6)
    images = [rng.standard_normal((16, 8, 16, 16)).astype(np.float32) for _ in range(2)]
    with fast_kernels(False):                # the plain slice loop
        expected = [im2col(x, 4, 2, 1) for x in images]
    wrong = []

    def run(x, want):
        for _ in range(200):
            if not np.array_equal(im2col_fast(x, 4, 2, 1), want):
                wrong.append(1)

    threads = [threading.Thread(target=run, args=pair) for pair in zip(images, expected)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_forked_process_trains_with_threads_of_its_own(tmp_path):
    """The halves run on a pool of threads made once per process; a child forked after a split
    step has none of them and must make its own, not wait for threads that do not exist."""
    trainer = make_trainer(tmp_path)
    real = np.random.default_rng(7).uniform(-1, 1, (8, 3, 16, 16)).astype(np.float32)
    split(trainer, real)
    pid = os.fork()
    if pid == 0:   # the child: one more split step, then exit 0 (or 1 if it raised)
        code = 1
        try:
            split(trainer, real)
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked process's split step never finished")
