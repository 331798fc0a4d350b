"""The training loop on tiny data: finite losses, every output file, exact resume, clean stops.

These tests use a miniature DCGAN (16x16 images, 4 channels in D's first layer) on a few dozen
rendered digits, so a few training steps take well under a second.
"""

import csv
import os
import platform
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from minigan.backend import backend_name, manual_seed, to_numpy
from minigan.checkpoint import load_checkpoint
from minigan.data import DataLoader, make_synthetic_digits
from minigan.gan import split_step, step
from minigan.gan.dcgan import Discriminator, Generator, dcgan_init
from minigan.gan.one_pass import one_pass_step
from minigan.gan.split_step import split_across_threads
from minigan.gan.trainer import GANTrainer, TrainConfig, TrainingDiverged
from tests.helpers import REPO_ROOT, two_blas_threads


def tiny_images(n=48):
    images, _ = make_synthetic_digits(n, seed=0, size=16, channels=3)
    return images


def make_trainer(out_dir, dropout=0.0, **config):
    manual_seed(0)
    G = dcgan_init(Generator(z_size=8, conv_dim=4, image_size=16))
    D = dcgan_init(Discriminator(conv_dim=4, image_size=16, dropout=dropout))
    loader = DataLoader(tiny_images(), batch_size=8, seed=0)
    settings = dict(epochs=2, z_size=8, num_samples=16, seed=0)
    settings.update(config)
    return GANTrainer(G, D, loader, TrainConfig(**settings), out_dir)


def test_a_few_steps_give_finite_losses_and_every_output_file(tmp_path):
    trainer = make_trainer(tmp_path)
    history = trainer.fit(progress=False)
    assert len(history) == 2 * 6   # 2 epochs of 48 / 8 batches
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert np.all(np.isfinite(history.columns[key]))
    assert all(0 < p < 1 for p in history.columns["d_real"])
    for name in ("samples/epoch_001.png", "samples/epoch_002.png", "samples.gif",
                 "losses.csv", "losses.png", "checkpoint.npz", "config.json"):
        assert (tmp_path / name).is_file(), name
    with open(tmp_path / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and rows[-1]["step"] == "12" and rows[-1]["epoch"] == "2"


def test_training_changes_both_networks(tmp_path):
    trainer = make_trainer(tmp_path, epochs=1)
    g_before = to_numpy(trainer.G[0].weight.data).copy()
    d_before = to_numpy(trainer.D[0].weight.data).copy()
    trainer.fit(progress=False)
    assert not np.allclose(g_before, to_numpy(trainer.G[0].weight.data))
    assert not np.allclose(d_before, to_numpy(trainer.D[0].weight.data))


@pytest.mark.parametrize("options", [
    {},
    {"real_label": 0.9, "d_steps": 2, "lr_d": 4e-4, "z_distribution": "normal"},
])
def test_resume_continues_exactly(tmp_path, options, step_kind):
    """Stop after 5 steps (mid-epoch), resume, and get the same losses as an unbroken run."""
    dropout = 0.3 if options else 0.0
    unbroken = make_trainer(tmp_path / "a", dropout=dropout, **options)
    unbroken.fit(progress=False)

    first = make_trainer(tmp_path / "b", dropout=dropout, max_steps=5, **options)
    first.fit(progress=False)
    second = make_trainer(tmp_path / "b", dropout=dropout, **options)
    second.load_checkpoint()
    assert second.step == 5
    second.fit(progress=False)

    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        np.testing.assert_array_equal(second.history.columns[key], unbroken.history.columns[key])
    np.testing.assert_array_equal(to_numpy(second.G[0].weight.data),
                                  to_numpy(unbroken.G[0].weight.data))


def test_checkpoint_holds_everything_needed_without_pickles(tmp_path):
    trainer = make_trainer(tmp_path, epochs=1)
    trainer.fit(progress=False)
    sections = load_checkpoint(tmp_path / "checkpoint.npz")   # allow_pickle=False inside
    assert {"G", "D", "opt_g", "opt_d", "rng", "progress", "history", "config"} <= set(sections)
    assert "3.running_mean" in sections["G"]           # batch-norm buffers are saved
    assert int(sections["progress"]["epoch"]) == 1
    assert not list(tmp_path.glob("*.tmp"))            # atomic write left nothing behind


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path, epochs=2)
    trainer.config.max_steps = 6
    trainer.fit(progress=False)                        # a good checkpoint after epoch 1
    good = (tmp_path / "checkpoint.npz").read_bytes()
    trainer.config.max_steps = None
    trainer.D[0].weight.data[...] = np.nan
    with pytest.raises(TrainingDiverged, match="diverged at step 7.*checkpoint"):
        trainer.fit(progress=False)
    assert (tmp_path / "checkpoint.npz").read_bytes() == good


def ctrl_c_during_generator_step(monkeypatch, on_call, times=1):
    """Make ``step.g_step`` send this process a real SIGINT (what Ctrl-C does) in the middle of
    its ``on_call``-th call, after the discriminator has already been updated in that step.
    ``train_step`` looks ``g_step`` up at call time, so replacing the module's attribute is
    enough (the exercises swap a learner's step in the same way). The split step
    (``split_step.py``) calls ``g_step`` once per half of the batch, each in a thread of its
    own: then the ``on_call``-th step's second call sends it."""
    original, calls, lock = step.g_step, [], threading.Lock()

    def g_step(*args):
        halves = 1 if threading.current_thread() is threading.main_thread() else 2
        with lock:
            calls.append(halves)
            call = len(calls)
        if call == on_call * halves:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)
                if halves > 1:   # the main thread handles it; two at once would count once
                    time.sleep(0.2)
        return original(*args)

    monkeypatch.setattr(step, "g_step", g_step)
    return calls


@pytest.fixture(params=["one thread", "split"])
def step_kind(request, monkeypatch):
    """The test with the one-thread step, then with the split step (``split_step.py``: each half
    of the batch in a thread), made to run on these tiny models where BLAS can have two
    threads; ``request.param`` says which, and each g_step call records 1 or 2 halves."""
    if request.param == "one thread":
        with split_across_threads(False):
            yield request.param
        return
    if backend_name() != "numpy":
        pytest.skip("the split step runs on NumPy arrays only (a GPU runs one_pass.py)")
    monkeypatch.setattr(split_step, "SPLIT_FROM", 0)
    with two_blas_threads():
        yield request.param


def test_ctrl_c_finishes_the_step_then_saves_and_resume_is_exact(tmp_path, capsys,
                                                                monkeypatch, step_kind):
    """Ctrl-C half-way through step 3 (D updated, G not yet): step 3 still completes, the
    checkpoint holds 3 whole steps, and resuming from it gives the losses of an unbroken run.
    Every run takes the lesson's step: the Ctrl-C comes from inside its g_step, and on a GPU
    the unpatched runs would take the one-pass step, the same up to rounding, not bit for bit."""
    with one_pass_step(False):
        unbroken = make_trainer(tmp_path / "a")
        unbroken.fit(progress=False)

        first = make_trainer(tmp_path / "b")
        lessons_g_step = step.g_step
        calls = ctrl_c_during_generator_step(monkeypatch, on_call=3)
        first.fit(progress=False)
        assert set(calls) == {1 if step_kind == "one thread" else 2}
        monkeypatch.setattr(step, "g_step", lessons_g_step)
        assert int(load_checkpoint(tmp_path / "b" / "checkpoint.npz")["progress"]["step"]) == 3
        assert "--resume" in capsys.readouterr().out
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # put back

        second = make_trainer(tmp_path / "b")
        second.load_checkpoint()
        second.fit(progress=False)
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        np.testing.assert_array_equal(second.history.columns[key], unbroken.history.columns[key])


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tmp_path, capsys,
                                                                     monkeypatch, step_kind):
    """Two Ctrl-C in a row stop in the middle of the step; that half step is not saved."""
    trainer = make_trainer(tmp_path, epochs=2)
    calls = ctrl_c_during_generator_step(monkeypatch, on_call=8, times=2)   # step 8: epoch 2
    trainer.fit(progress=False)
    assert set(calls) == {1 if step_kind == "one thread" else 2}
    saved = load_checkpoint(tmp_path / "checkpoint.npz")
    assert int(saved["progress"]["step"]) == 6      # the end of epoch 1, not the half step 8
    assert "not saved" in capsys.readouterr().out


def test_the_same_sigterm_arriving_twice_counts_once(monkeypatch):
    """A SIGTERM to a process group reaches a rank of --processes N directly and through the
    launcher: the second, within a second, is the same request, not 'stop now'. A person's
    second Ctrl-C, and a SIGTERM that comes later, still stop at once."""
    from minigan.gan import trainer as trainer_module

    clock = [100.0]
    monkeypatch.setattr(trainer_module.time, "monotonic", lambda: clock[0])
    ctrl_c = trainer_module._FinishStepOnCtrlC()
    ctrl_c._handle(signal.SIGTERM, None)
    clock[0] += 0.1
    ctrl_c._handle(signal.SIGTERM, None)
    assert ctrl_c.requested
    clock[0] += 2.0
    with pytest.raises(KeyboardInterrupt):
        ctrl_c._handle(signal.SIGTERM, None)
    ctrl_c = trainer_module._FinishStepOnCtrlC()
    ctrl_c._handle(signal.SIGINT, None)
    with pytest.raises(KeyboardInterrupt):
        ctrl_c._handle(signal.SIGINT, None)


def test_generator_step_leaves_discriminator_gradients_alone(tmp_path):
    trainer = make_trainer(tmp_path)
    trainer.D.zero_grad()
    step.g_step(trainer.G, trainer.D, trainer.opt_g, 8, trainer.sample_z, trainer.config)
    assert all(float(abs(p.grad).max()) == 0 for p in trainer.D.parameters())
    assert any(float(abs(p.grad).max()) > 0 for p in trainer.G.parameters())
    assert all(p.requires_grad for p in trainer.D.parameters())   # switched back on


def test_snapshots_keep_the_last_k_epochs_and_a_real_grid_is_saved_first(tmp_path):
    # So that a late mode collapse can be undone: an earlier epoch's checkpoint is still there.
    trainer = make_trainer(tmp_path, epochs=3, keep_snapshots=2)
    trainer.fit(progress=False)
    assert sorted(p.name for p in tmp_path.glob("checkpoint_epoch_*.npz")) == [
        "checkpoint_epoch_002.npz", "checkpoint_epoch_003.npz"]
    snapshot = load_checkpoint(tmp_path / "checkpoint_epoch_002.npz")
    assert int(snapshot["progress"]["epoch"]) == 2 and int(snapshot["progress"]["step"]) == 12
    assert (tmp_path / "real_samples.png").is_file()


def test_save_every_writes_the_checkpoint_between_epochs(tmp_path):
    trainer = make_trainer(tmp_path, epochs=1, save_every=4)
    saved_at = []
    save = trainer.save_checkpoint
    trainer.save_checkpoint = lambda: saved_at.append(trainer.step) or save()
    trainer.fit(progress=False)
    assert saved_at == [4, 6]       # step 4 by save_every, step 6 at the end of the epoch


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="the allocator setting is glibc's")
@pytest.mark.parametrize("then", ["", ".fit(progress=False)"], ids=["built", "trained"])
def test_a_trainer_on_the_cpu_keeps_freed_host_memory_even_without_use_backend(tmp_path, then):
    # A trainer built in Python without use_backend("numpy"): its step made some 16,000 page
    # faults, 15-20% of its time (minigan/hostmem.py). Built is enough (a script or a notebook
    # may call train_step itself, never fit). A fresh process, as a user's script.
    script = (f"from tests.gan.test_trainer import make_trainer\n"
              f"from minigan import hostmem\n"
              f"assert not hostmem._host_memory_cached\n"
              f"make_trainer({str(tmp_path)!r}, max_steps=1){then}\n"
              f"print(hostmem._host_memory_cached)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, cwd=REPO_ROOT,
                            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "True"

