"""The fast kernels compute the same numbers as the plain ones: a whole DCGAN training step,
through both.

Every kernel's body in ``minigan.ops`` is its textbook version; the faster variants (im2col and
col2im through window views, the input gradient as S*S small convolutions plus a pixel shuffle
in ``subpixel.py``, batch norm with column sums as matrix products and its backward in one
collapsed line) sit behind one switch, ``minigan.ops.fast_kernels``. Each kernel has its own
tests; this one checks that together they still train the same network.

Two copies of a DCGAN, with the same weights and the same latent vectors, each take three
training steps in float64: one with ``fast_kernels(True)``, one with ``fast_kernels(False)``.
The losses, every parameter and the running statistics must agree to rounding error (1e-10).
Two sizes: a tiny one, and the course's SVHN DCGAN at its full width on a batch of two, whose
4 x 4 -> 8 x 8 and RGB layers take the other fast input gradient (col2im's adds in blocks,
``minigan/ops/input_grad_fast.py``), which layers with fewer than 32 channels never take.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import minigan.ops.input_grad_fast
from minigan.backend import is_cupy_array, manual_seed, to_device, to_numpy
from minigan.gan.dcgan import Discriminator, Generator, dcgan_init
from minigan.gan.trainer import GANTrainer, TrainConfig
from minigan.ops import fast_kernels, fast_kernels_enabled

STEPS = 3


# (conv_dim, image size, batch): the tiny DCGAN, and SVHN's at its full width.
SIZES = {"tiny": (4, 16, 4), "svhn": (32, 32, 2)}


def make_trainer(out_dir, size="tiny"):
    """A DCGAN of RGB images (``SIZES``), the same weights every time it is built."""
    conv_dim, image_size, _ = SIZES[size]
    manual_seed(0)
    G = dcgan_init(Generator(z_size=8, conv_dim=conv_dim, image_size=image_size, channels=3))
    D = dcgan_init(Discriminator(conv_dim=conv_dim, image_size=image_size, channels=3))
    G, D = G.to(dtype="float64"), D.to(dtype="float64")
    config = TrainConfig(z_size=8, seed=0, num_samples=4)
    return GANTrainer(G, D, loader=None, config=config, out_dir=out_dir)


def train(trainer, real, fast: bool):
    """STEPS training steps on the same batch with the chosen kernels; the four numbers each
    step reports."""
    results = []
    with fast_kernels(fast):
        assert fast_kernels_enabled() is fast
        for _ in range(STEPS):
            r = trainer.train_step(real)
            results.append([float(to_numpy(v)) for v in (r.d_loss, r.g_loss, r.d_real, r.d_fake)])
    return np.array(results)


@pytest.mark.parametrize("size", SIZES)
def test_a_dcgan_trains_the_same_through_fast_and_plain_kernels(tmp_path, float64_default, size,
                                                                monkeypatch):
    _, image_size, batch = SIZES[size]
    real = to_device(np.random.default_rng(1).uniform(-1, 1, (batch, 3, image_size, image_size)))
    fast, plain = make_trainer(tmp_path / "fast", size), make_trainer(tmp_path / "plain", size)
    blocked_calls = []
    original = minigan.ops.input_grad_fast.conv2d_input_grad_blocked
    monkeypatch.setattr(minigan.ops.input_grad_fast, "conv2d_input_grad_blocked",
                        lambda *args: blocked_calls.append(1) or original(*args))
    for net in ("G", "D"):
        before_fast = getattr(fast, net).state_dict()
        before_plain = getattr(plain, net).state_dict()
        for name, value in before_fast.items():
            assert value.dtype in (np.float64, np.int64), name
            np.testing.assert_array_equal(value, before_plain[name], err_msg=name)
    g_start = fast.G.state_dict()

    # BLAS at one thread, as in each half of a split step: the RGB layers take the blocked way
    # too (at two threads they keep the sub-pixel way).
    with threadpool_limits(1, user_api="blas"):
        fast_results = train(fast, real, fast=True)
        plain_results = train(plain, real, fast=False)
    # Per step, SVHN's: G's 4 x 4 and RGB layers twice, D's last layer's input gradient three
    # times and its RGB layer's once (the G update). On a GPU the sub-pixel way always.
    per_step = 0 if is_cupy_array(real) else {"tiny": 0, "svhn": 8}[size]
    assert len(blocked_calls) == per_step * STEPS

    # d_loss, g_loss, mean D(x), mean D(G(z)) of every step.
    np.testing.assert_allclose(fast_results, plain_results, rtol=1e-10, atol=0)
    # The networks themselves: parameters (they moved, three Adam steps) and BN's running
    # statistics. Biases start at 0, hence a tiny absolute tolerance next to the relative one.
    for net in ("G", "D"):
        fast_net, plain_net = getattr(fast, net), getattr(plain, net)
        plain_params = dict(plain_net.named_parameters())
        for name, p in fast_net.named_parameters():
            np.testing.assert_allclose(to_numpy(p.data), to_numpy(plain_params[name].data),
                                       rtol=1e-10, atol=1e-14, err_msg=f"{net}.{name}")
        plain_state = plain_net.state_dict()
        for name, value in fast_net.state_dict().items():
            np.testing.assert_allclose(value, plain_state[name], rtol=1e-10, atol=1e-14,
                                       err_msg=f"{net}.{name}")
    # Different code ran: sums are taken in other orders, so the last bits of the parameters
    # differ. (Were they all bit-identical, the switch would not have switched anything. The
    # four numbers above can happen to agree to the last bit on this tiny batch.)
    assert any(not np.array_equal(to_numpy(p.data), to_numpy(dict(
        getattr(plain, net).named_parameters())[name].data))
        for net in ("G", "D") for name, p in getattr(fast, net).named_parameters())
    assert not np.allclose(g_start["0.weight"], to_numpy(fast.G[0].weight.data))  # it trained
    assert int(fast.D.state_dict()["3.num_batches_tracked"]) == 3 * STEPS   # 3 D passes a step
