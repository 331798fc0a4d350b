"""The training step on its own: the two losses, the step's calls, and PyTorch's numbers.

``minigan/gan/step.py`` is the file a learner reads beside the lesson, so these tests hold it to
what the lesson says: real_loss / fake_loss are the mean binary cross-entropy and its gradient;
train_step makes d_steps D updates and one G update through the late-bound names (which is how
the exercises swap in a learner's own functions); one step gives PyTorch's numbers, in float64,
from the same weights and the same latent vectors; and the file knows nothing of files, threads,
signals or other processes.
"""

import ast
from pathlib import Path

import numpy as np
import pytest

from minigan.backend import make_rng, set_default_dtype, to_device, to_numpy
from minigan.gan import losses, step
from minigan.gan import one_pass as gan_one_pass
from minigan.gan.dcgan import Discriminator, Generator, dcgan_init
from minigan.gan.one_pass import one_pass_step
from minigan.latent import sample_z
from minigan.optim import Adam


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize("target", [1.0, 0.9])
def test_real_loss_is_the_mean_bce_and_its_gradient(target):
    logits = np.array([[-3.0], [0.0], [0.5], [4.0]])
    loss, d_logits = losses.real_loss(logits, target)
    s = sigmoid(logits)
    expected = -np.mean(target * np.log(s) + (1 - target) * np.log(1 - s))
    assert loss.shape == () and np.isclose(loss, expected, rtol=1e-12)
    np.testing.assert_allclose(d_logits, (s - target) / len(logits), rtol=1e-12)


def test_fake_loss_targets_zero_and_stays_finite_for_huge_logits():
    logits = np.array([[-2.0], [1.0], [1000.0]])
    loss, d_logits = losses.fake_loss(logits)
    s = sigmoid(logits[:2])
    # log(1 - sigmoid(1000)) would be log(0); the kernel's form gives 1000 + log1p(e^-1000).
    expected = (-np.log(1 - s).sum() + 1000.0) / 3
    assert np.isclose(loss, expected, rtol=1e-12)
    np.testing.assert_allclose(d_logits, np.vstack([s, [[1.0]]]) / 3, rtol=1e-12)


def tiny_gan(dtype="float32"):
    rng = make_rng(0)
    G = dcgan_init(Generator(z_size=8, conv_dim=4, image_size=16), rng).to(dtype=dtype)
    D = dcgan_init(Discriminator(conv_dim=4, image_size=16), rng).to(dtype=dtype)
    return G, D


def test_train_step_calls_the_late_bound_losses_and_steps(monkeypatch):
    """d_steps D updates (a real and a fake loss each), then one G update (a real loss)."""
    calls = []
    for name in ("real_loss", "fake_loss", "d_step", "g_step"):
        original = getattr(step if name.endswith("step") else losses, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)
        monkeypatch.setattr(step if name.endswith("step") else losses, name, counted)
    G, D = tiny_gan()
    config = step.TrainConfig(z_size=8, d_steps=2)
    rng = make_rng(1)
    real = to_device(np.tanh(rng.standard_normal((4, 3, 16, 16))), np.float32)
    result = step.train_step(G, D, Adam(G.parameters()), Adam(D.parameters()), real,
                             lambda n: to_device(sample_z(n, 8, "uniform", rng)), config)
    assert calls == ["d_step", "real_loss", "fake_loss"] * 2 + ["g_step", "real_loss"]
    assert all(np.isfinite(float(v)) for v in vars(result).values())
    assert 0 < float(result.d_real) < 1 and 0 < float(result.d_fake) < 1


def test_the_step_file_imports_no_threads_files_signals_or_processes():
    source = Path(step.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert imported <= {"__future__", "math", "dataclasses", "typing", "minigan.backend",
                        "minigan.gan", "minigan.latent"}, imported
    assert "open(" not in source and len(source.splitlines()) <= 150


@pytest.mark.parametrize("one_pass", [False, True])
@pytest.mark.parametrize("real_label, d_steps", [(1.0, 1), (0.9, 2)])
def test_one_step_gives_pytorchs_numbers(real_label, d_steps, one_pass):
    """The same weights, real batch and z through PyTorch's DCGAN step: the same losses and
    weights afterwards, in float64, to 1e-10; with D's two batches in two passes (the lesson)
    or in one (what a GPU runs: minigan/gan/one_pass.py)."""
    torch = pytest.importorskip("torch")
    set_default_dtype(np.float64)
    try:
        G, D = tiny_gan("float64")
    finally:
        set_default_dtype(np.float32)
    tG, tD = torch_models(torch)
    tG.load_state_dict({k: torch.tensor(to_numpy(v)) for k, v in G.state_dict().items()})
    tD.load_state_dict({k: torch.tensor(to_numpy(v)) for k, v in D.state_dict().items()})
    rng = np.random.default_rng(3)
    real = np.tanh(rng.standard_normal((6, 3, 16, 16)))
    zs = [rng.uniform(-1, 1, (6, 8)) for _ in range(d_steps + 1)]
    queue = [to_device(z) for z in zs]     # on the active backend: a GPU's step is checked too

    config = step.TrainConfig(z_size=8, d_steps=d_steps, real_label=real_label)
    with one_pass_step(one_pass):
        assert gan_one_pass.pays(G, D, to_device(real), step.d_step, step.g_step) == one_pass
        result = step.train_step(G, D, Adam(G.parameters(), 2e-4, (0.5, 0.999)),
                                 Adam(D.parameters(), 2e-4, (0.5, 0.999)), to_device(real),
                                 lambda n: queue.pop(0), config)
    d_loss, g_loss = torch_step(torch, tG, tD, torch.tensor(real),
                                [torch.tensor(z) for z in zs], real_label, d_steps)

    assert np.isclose(float(result.d_loss), d_loss, rtol=1e-10)
    assert np.isclose(float(result.g_loss), g_loss, rtol=1e-10)
    for ours, theirs in ((G, tG), (D, tD)):
        for name, value in theirs.state_dict().items():
            np.testing.assert_allclose(to_numpy(ours.state_dict()[name]), value.numpy(),
                                       rtol=1e-10, atol=1e-12, err_msg=name)


def torch_models(torch):
    """The tiny G and D of ``tiny_gan`` in PyTorch, layer for layer (so the names match)."""
    nn = torch.nn
    G = nn.Sequential(nn.Linear(8, 8 * 16), nn.Unflatten(1, (8, 4, 4)),
                      nn.ConvTranspose2d(8, 4, 4, 2, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                      nn.ConvTranspose2d(4, 3, 4, 2, 1), nn.Tanh())
    D = nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1), nn.LeakyReLU(0.2),
                      nn.Conv2d(4, 8, 4, 2, 1, bias=False), nn.BatchNorm2d(8), nn.LeakyReLU(0.2),
                      nn.Flatten(), nn.Linear(8 * 16, 1))
    return G.double(), D.double()


def torch_step(torch, G, D, real, zs, real_label, d_steps):
    """PyTorch's DCGAN example step, with minigan's fresh z for G's update."""
    bce = torch.nn.BCEWithLogitsLoss()
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    n = len(real)
    for z in zs[:d_steps]:
        opt_d.zero_grad()
        d_loss = bce(D(real), torch.full((n, 1), real_label, dtype=torch.float64))
        d_loss = d_loss + bce(D(G(z).detach()), torch.zeros(n, 1, dtype=torch.float64))
        d_loss.backward()
        opt_d.step()
    opt_g.zero_grad()
    for p in D.parameters():
        p.requires_grad_(False)
    g_loss = bce(D(G(zs[-1])), torch.ones(n, 1, dtype=torch.float64))
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()
