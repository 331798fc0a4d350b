"""The optimised kernels compute the same numbers as the plain definitions: a whole DCGAN
training step, through both.

The convolution and batch-norm kernels in ``minigan.ops`` use tricks for speed: channels-last
views instead of copies, the input gradient as S*S small convolutions plus a pixel shuffle
(``subpixel.py``), batch norm on rows with column sums as matrix products, and no gradient at
the discriminator's data input. Each kernel has its own tests; this one checks that together
they still train the same network.

Two copies of a tiny DCGAN, with the same weights and the same latent vectors, each take three
training steps in float64: one with the library's kernels, one with the plain versions below
(the loop definitions of ``minigan.ops.reference`` forward; the textbook matrix formulas, with
im2col and col2im, backward; batch norm straight from its formulas on (N, C, H, W) arrays).
pytest's ``monkeypatch`` swaps them into ``minigan.nn.conv`` and ``minigan.nn.batchnorm``, the
namespaces where the layers look their kernels up. The losses, every parameter and the running
statistics must agree to rounding error.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import minigan.nn.batchnorm
import minigan.nn.conv
from minigan.backend import default_dtype, manual_seed, set_default_dtype, to_device, to_numpy
from minigan.gan.dcgan import Discriminator, Generator, dcgan_init
from minigan.gan.trainer import GANTrainer, TrainConfig
from minigan.ops.batchnorm import BatchNormCache
from minigan.ops.im2col import col2im, im2col
from minigan.ops.reference import conv2d_reference, conv_transpose2d_reference

STEPS = 3
calls: Counter = Counter()   # how often each plain kernel ran: proof that the swap took effect


# ---------------------------------------------------------------- the plain kernels
# Same contract as the fast ones: forward -> (y, cache); backward(dy, cache, need_weight_grad,
# need_input_grad) -> (dx, dw, db), with None for what was not asked for.

def rows(a):
    """(N, C, H, W) -> (N*H*W, C): one row per pixel, channels last (the layout of im2col)."""
    return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])


def plain_conv2d_forward(x, w, b=None, stride=1, padding=0):
    calls["conv2d_forward"] += 1
    return conv2d_reference(x, w, b, stride, padding), (x, w, stride, padding, b is not None)


def plain_conv2d_backward(dy, cache, need_weight_grad=True, need_input_grad=True):
    """dx = col2im(dy_rows @ w_mat.T), dw = im2col(x).T @ dy_rows, db = sum of dy."""
    calls["conv2d_backward"] += 1
    x, w, S, P, has_bias = cache
    F, C, K, _ = w.shape
    w_mat = w.transpose(2, 3, 1, 0).reshape(K * K * C, F)      # rows in im2col's (i, j, c) order
    dx = col2im(rows(dy) @ w_mat.T, x.shape, K, S, P) if need_input_grad else None
    if not need_weight_grad:
        return dx, None, None
    dw = (im2col(x, K, S, P).T @ rows(dy)).reshape(K, K, C, F).transpose(3, 2, 0, 1)
    db = dy.sum(axis=(0, 2, 3)) if has_bias else None
    return dx, dw, db


def plain_conv_transpose2d_forward(x, w, b=None, stride=1, padding=0, output_padding=0):
    calls["conv_transpose2d_forward"] += 1
    y = conv_transpose2d_reference(x, w, b, stride, padding, output_padding)
    return y, (x, w, stride, padding, b is not None)


def plain_conv_transpose2d_backward(dy, cache, need_weight_grad=True, need_input_grad=True):
    """dx = conv2d(dy, w) (the adjoint), dw = im2col(dy).T @ x_rows, db = sum of dy."""
    calls["conv_transpose2d_backward"] += 1
    x, w, S, P, has_bias = cache
    C_in, C_out, K, _ = w.shape
    dx = conv2d_reference(dy, w, None, S, P) if need_input_grad else None
    if not need_weight_grad:
        return dx, None, None
    dw = (im2col(dy, K, S, P).T @ rows(x)).reshape(K, K, C_out, C_in).transpose(3, 2, 0, 1)
    db = dy.sum(axis=(0, 2, 3)) if has_bias else None
    return dx, dw, db


def per_channel(v):
    """(C,) -> (1, C, 1, 1), to broadcast over an (N, C, H, W) array."""
    return v.reshape(1, -1, 1, 1)


def plain_batch_norm_forward(x, gamma, beta, eps=1e-5):
    """Training mode on (N, C, H, W): y = gamma * (x - mean) / sqrt(var + eps) + beta."""
    calls["batch_norm_forward"] += 1
    assert x.ndim == 4, "the DCGAN only has BatchNorm2d"
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))   # biased variance
    inv_std = (var + eps) ** -0.5
    x_hat = (x - per_channel(mean)) * per_channel(inv_std)
    y = per_channel(gamma) * x_hat + per_channel(beta)
    # update_running_stats reads mean, var, m and training; x_hat stays (N, C, H, W) here.
    m = x.size // x.shape[1]
    return y, BatchNormCache(x_hat=x_hat, gamma=gamma, inv_std=inv_std, mean=mean, var=var,
                             m=m, training=True)


def plain_batch_norm_backward(dy, cache):
    """The chain rule along all three paths from x to the loss: direct, via mean, via var."""
    calls["batch_norm_backward"] += 1
    assert cache.training
    axes, m = (0, 2, 3), cache.m
    s = per_channel(cache.inv_std)
    centered = cache.x_hat / s                                  # x - mean
    dx_hat = dy * per_channel(cache.gamma)
    dvar = (dx_hat * centered).sum(axis=axes, keepdims=True) * -0.5 * s**3
    dmean = -(dx_hat * s).sum(axis=axes, keepdims=True) + dvar * (-2 * centered).mean(
        axis=axes, keepdims=True)
    dx = dx_hat * s + dvar * 2 * centered / m + dmean / m
    return dx, (dy * cache.x_hat).sum(axis=axes), dy.sum(axis=axes)


PLAIN_KERNELS = {
    minigan.nn.conv: dict(conv2d_forward=plain_conv2d_forward,
                          conv2d_backward=plain_conv2d_backward,
                          conv_transpose2d_forward=plain_conv_transpose2d_forward,
                          conv_transpose2d_backward=plain_conv_transpose2d_backward),
    minigan.nn.batchnorm: dict(batch_norm_forward=plain_batch_norm_forward,
                               batch_norm_backward=plain_batch_norm_backward),
}


# ---------------------------------------------------------------- the two runs

@pytest.fixture
def float64_default():
    """New parameters and latent vectors in float64 during the test, as before afterwards."""
    before = default_dtype()
    set_default_dtype("float64")
    yield
    set_default_dtype(before)


def make_trainer(out_dir):
    """A tiny DCGAN (16x16 RGB images, conv_dim 4), the same weights every time it is built."""
    manual_seed(0)
    G = dcgan_init(Generator(z_size=8, conv_dim=4, image_size=16, channels=3)).to(dtype="float64")
    D = dcgan_init(Discriminator(conv_dim=4, image_size=16, channels=3)).to(dtype="float64")
    config = TrainConfig(z_size=8, seed=0, num_samples=4)
    return GANTrainer(G, D, loader=None, config=config, out_dir=out_dir)


def train(trainer, real):
    """STEPS training steps on the same batch; the four numbers each step reports."""
    results = []
    for _ in range(STEPS):
        r = trainer.train_step(real)
        results.append([float(to_numpy(v)) for v in (r.d_loss, r.g_loss, r.d_real, r.d_fake)])
    return np.array(results)


def test_a_dcgan_trains_the_same_through_fast_and_plain_kernels(tmp_path, monkeypatch,
                                                                 float64_default):
    real = to_device(np.random.default_rng(1).uniform(-1, 1, (4, 3, 16, 16)))   # float64
    fast, plain = make_trainer(tmp_path / "fast"), make_trainer(tmp_path / "plain")
    for net in ("G", "D"):
        before_fast = getattr(fast, net).state_dict()
        before_plain = getattr(plain, net).state_dict()
        for name, value in before_fast.items():
            assert value.dtype in (np.float64, np.int64), name
            np.testing.assert_array_equal(value, before_plain[name], err_msg=name)
    g_start = fast.G.state_dict()

    fast_results = train(fast, real)
    calls.clear()
    with monkeypatch.context() as patch:
        for module, kernels in PLAIN_KERNELS.items():
            for name, kernel in kernels.items():
                patch.setattr(module, name, kernel)
        plain_results = train(plain, real)
    # Every plain kernel ran: otherwise the fast kernels would only be compared with themselves.
    assert set(calls) == {name for kernels in PLAIN_KERNELS.values() for name in kernels}
    assert all(count > 0 for count in calls.values()), calls

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
    assert not np.allclose(g_start["0.weight"], to_numpy(fast.G[0].weight.data))  # it trained
    assert int(fast.D.state_dict()["3.num_batches_tracked"]) == 3 * STEPS   # 3 D passes a step
