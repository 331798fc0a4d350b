"""Counting array operations (``minigan.opcount``) watches a step; it must not change it.

The counted arrays are NumPy arrays, and no kernel looks at whether it is being counted: a
training step counted and the same step uncounted call the same minigan functions in the same
order (recorded as a debugger would see them) and end with the same numbers, bit for bit. The
one thing counting replaces is ``minigan.backend.HostArrays`` (how host arrays are made), so the
functions of ``backend.py`` and ``opcount.py`` themselves are left out of the comparison.

One choice asks that seam a question, ``backend.launches_dominate``, and the counter answers it
as a GPU would: the fast input gradient of a convolution (``minigan/ops/input_grad_fast.py``),
which on a CPU takes a faster way with more operations for layers of at least 32 channels. This
small model has none, so both sides take the same way here; the DCGAN's layers, which do, are
in ``tests/ops/test_input_grad_fast.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import minigan
from minigan import backend
from minigan.backend import manual_seed, to_device, to_numpy
from minigan.gan.dcgan import Discriminator, Generator, dcgan_init
from minigan.gan.split_step import split_across_threads
from minigan.gan.trainer import GANTrainer, TrainConfig
from minigan.opcount import count_array_ops

PACKAGE = Path(minigan.__file__).parent
SEAM = {str(PACKAGE / "backend.py"), str(PACKAGE / "opcount.py")}


@pytest.fixture(autouse=True)
def _numpy_backend():
    if backend.backend_name() != "numpy":
        pytest.skip("counts array operations on the NumPy backend only")


def minigan_functions_called_by(call) -> list[str]:
    """file:function of every minigan function that runs during call(), in order."""
    names = []

    def profile(frame, event, arg):
        filename = frame.f_code.co_filename
        if event == "call" and filename.startswith(str(PACKAGE)) and filename not in SEAM:
            names.append(f"{Path(filename).name}:{frame.f_code.co_name}")

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return names


def one_recorded_step(tmp_path):
    """A DCGAN (SVHN's layer structure, small) and a second training step, recorded."""
    manual_seed(0)
    G = dcgan_init(Generator(z_size=8, conv_dim=4))
    D = dcgan_init(Discriminator(conv_dim=4))
    trainer = GANTrainer(G, D, None, TrainConfig(z_size=8), tmp_path)
    real = to_device(np.random.default_rng(0).uniform(-1, 1, (4, 3, 32, 32)), np.float32)
    trainer.train_step(real)     # a first step makes the buffers that later steps reuse
    results = []
    called = minigan_functions_called_by(lambda: results.append(trainer.train_step(real)))
    step = results[0]
    numbers = [to_numpy(v).copy() for v in (step.d_loss, step.g_loss, step.d_real, step.d_fake)]
    numbers += [to_numpy(p.data).copy() for p in G.parameters() + D.parameters()]
    return called, numbers


def test_a_counted_step_runs_the_same_functions_and_gives_the_same_numbers(tmp_path):
    # Both on one thread: a profile sees one thread only, and the counter counts the step as a
    # GPU runs it, never split across threads (split_step.py takes plain NumPy arrays only).
    with split_across_threads(False):
        called_plain, numbers_plain = one_recorded_step(tmp_path / "plain")
    with count_array_ops() as counter:
        called_counted, numbers_counted = one_recorded_step(tmp_path / "counted")
    assert counter.total > 0
    assert len(called_plain) > 100
    assert called_counted == called_plain
    assert len(numbers_counted) == len(numbers_plain)
    for counted, plain in zip(numbers_counted, numbers_plain):
        np.testing.assert_array_equal(counted, plain)
