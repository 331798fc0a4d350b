"""The fast kernels compute the same numbers as the plain ones: a whole DCGAN training step,
through both.

Every kernel's body in ``minigan.ops`` is its textbook version; the faster variants (im2col and
col2im through window views, the input gradient as S*S small convolutions plus a pixel shuffle
in ``subpixel.py``, batch norm with column sums as matrix products and its backward in one
collapsed line) sit behind one switch, ``minigan.ops.fast_kernels``. Each kernel has its own
tests; this one checks that together they still train the same network.

Two copies of a tiny DCGAN, with the same weights and the same latent vectors, each take three
training steps in float64: one with ``fast_kernels(True)``, one with ``fast_kernels(False)``.
The losses, every parameter and the running statistics must agree to rounding error (1e-10).
"""

from __future__ import annotations

import numpy as np

from minigan.backend import manual_seed, to_device, to_numpy
from minigan.gan.dcgan import Discriminator, Generator, dcgan_init
from minigan.gan.trainer import GANTrainer, TrainConfig
from minigan.ops import fast_kernels, fast_kernels_enabled

STEPS = 3


def make_trainer(out_dir):
    """A tiny DCGAN (16x16 RGB images, conv_dim 4), the same weights every time it is built."""
    manual_seed(0)
    G = dcgan_init(Generator(z_size=8, conv_dim=4, image_size=16, channels=3)).to(dtype="float64")
    D = dcgan_init(Discriminator(conv_dim=4, image_size=16, channels=3)).to(dtype="float64")
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


def test_a_dcgan_trains_the_same_through_fast_and_plain_kernels(tmp_path, float64_default):
    real = to_device(np.random.default_rng(1).uniform(-1, 1, (4, 3, 16, 16)))   # float64
    fast, plain = make_trainer(tmp_path / "fast"), make_trainer(tmp_path / "plain")
    for net in ("G", "D"):
        before_fast = getattr(fast, net).state_dict()
        before_plain = getattr(plain, net).state_dict()
        for name, value in before_fast.items():
            assert value.dtype in (np.float64, np.int64), name
            np.testing.assert_array_equal(value, before_plain[name], err_msg=name)
    g_start = fast.G.state_dict()

    fast_results = train(fast, real, fast=True)
    plain_results = train(plain, real, fast=False)

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
