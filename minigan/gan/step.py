"""One DCGAN training step, written like the lesson (and like PyTorch's DCGAN example).

With real_loss / fake_loss the mean binary cross-entropy on D's raw logits (``losses.py``):

    D step (repeated d_steps times):
        real batch x:     loss_real = real_loss(D(x))     target real_label: 1, or 0.9 smoothed
        fake batch G(z):  loss_fake = fake_loss(D(G(z)))  target 0; G is not updated ("detached")
        d_loss = loss_real + loss_fake;  both gradients add up in D's .grad;  step D's Adam
    G step:
        g_loss = real_loss(D(G(z)))     "flipped labels": G wants D to call its images real
        D.backward gives d g_loss / d image;  G.backward carries it to G's weights;  step G's Adam

Why "detached" needs no special code: gradients only flow where ``backward`` is called. The D
step calls ``D.backward_params`` but never ``G.backward``, so G is left alone. In the G step,
D's own weight gradients would be thrown away, so they are switched off
(``D.requires_grad_(False)``) and D is only asked for the gradient at its input.

``noise(n)`` gives n latent vectors (n, z_size). Nothing here knows about files, threads or
other processes: the trainer (``trainer.py``) runs the loop, and several processes reach this
step from outside, as PyTorch's DistributedDataParallel does, through their optimizers (which
average the gradients over the processes before stepping), their loader and their noise (each
takes its share of the step's batch); see ``minigan/distributed.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from minigan.backend import get_array_module
from minigan.gan import losses, one_pass
from minigan.latent import check_distribution

Array = Any


@dataclass
class TrainConfig:
    """Every choice of a training run. Defaults are the course's DCGAN settings."""

    epochs: int = 10
    lr_d: float = 2e-4            # Adam learning rates; TTUR: give D a larger one (e.g. 4e-4)
    lr_g: float = 2e-4
    beta1: float = 0.5            # DCGAN's Adam beta1 (PyTorch's default is 0.9)
    beta2: float = 0.999
    d_steps: int = 1              # TTUR-style: discriminator updates per generator update
    real_label: float = 1.0       # 0.9 = one-sided label smoothing of 0.1 (fakes stay 0)
    z_size: int = 100
    z_distribution: str = "uniform"  # "uniform" in [-1, 1] (the course) or "normal"
    num_samples: int = 64         # images in the fixed-z sample grid
    seed: int = 0
    max_steps: int | None = None  # stop after this many steps in total (for quick trials)
    metrics_every: int = 0        # compute FID/IS every K epochs (0 = never)
    save_every: int = 0           # also save the checkpoint every N steps (0 = only per epoch)
    keep_snapshots: int | None = 0  # checkpoint_epoch_NNN.npz copies: 0 none, K the last K,
                                    # None every epoch (to go back before a late mode collapse)

    def __post_init__(self) -> None:
        check_distribution(self.z_distribution, "z_distribution")
        if self.d_steps < 1:
            raise ValueError(f"d_steps must be at least 1, got {self.d_steps}")
        if self.save_every < 0 or (self.keep_snapshots is not None and self.keep_snapshots < 0):
            raise ValueError(f"save_every and keep_snapshots must be 0 or more, got "
                             f"{self.save_every} and {self.keep_snapshots}")
        # The fake target is 0: a real target at or below 0.5 would teach D to call fakes
        # more real than real images, which silently inverts training.
        if not 0.5 < self.real_label <= 1.0:
            raise ValueError(f"real_label must be in (0.5, 1] (1 - label smoothing), got "
                             f"{self.real_label}")
        for name in ("lr_d", "lr_g"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value}")


@dataclass
class StepResult:
    """A step's numbers, as 0-d arrays where they were computed (on the GPU with CuPy): reading
    them (``float(result.d_loss)``) makes the host wait for the GPU, so the loop only does it
    when it logs."""

    d_loss: Any
    g_loss: Any
    d_real: Any   # mean D(x): D's probability that real images are real
    d_fake: Any   # mean D(G(z)) during the D step: its probability that fakes are real


def d_step(G: Any, D: Any, opt_d: Any, real: Array, noise: Any,
           config: TrainConfig) -> tuple[Array, Array, Array]:
    """One discriminator update on a real batch (N, C, H, W) and a fake batch of N.
    Returns (d_loss, mean D(x), mean D(G(z))) as 0-d arrays."""
    opt_d.zero_grad()
    logits_real = D(real)
    loss_real, d_logits = losses.real_loss(logits_real, config.real_label)
    D.backward_params(d_logits)              # no gradient at the data is needed

    fake = G(noise(len(real)))               # no G.backward below: G is "detached"
    logits_fake = D(fake)
    loss_fake, d_logits = losses.fake_loss(logits_fake)
    D.backward_params(d_logits)              # adds to the real batch's gradients
    opt_d.step()
    return loss_real + loss_fake, mean_probability(logits_real), mean_probability(logits_fake)


def g_step(G: Any, D: Any, opt_g: Any, batch_size: int, noise: Any,
           config: TrainConfig) -> Array:
    """One generator update on a fresh fake batch: make D call G's images real. Returns
    g_loss as a 0-d array."""
    opt_g.zero_grad()
    fake = G(noise(batch_size))
    g_loss, d_logits = losses.real_loss(D(fake))   # flipped label: 1, never smoothed
    D.requires_grad_(False)                        # only d loss / d image is needed from D
    try:
        d_image = D.backward(d_logits)
    finally:
        D.requires_grad_(True)
    G.backward(d_image)
    opt_g.step()
    return g_loss


def train_step(G: Any, D: Any, opt_g: Any, opt_d: Any, real: Array, noise: Any,
               config: TrainConfig) -> StepResult:
    """``config.d_steps`` discriminator updates on the real batch, then one generator update.
    The numbers are those of the last D update."""
    if one_pass.pays(G, D, real, d_step, g_step):  # on a GPU: the same step, fewer launches
        return StepResult(*one_pass.train_step(G, D, opt_g, opt_d, real, noise, config))
    for _ in range(config.d_steps):
        d_loss, d_real, d_fake = d_step(G, D, opt_d, real, noise, config)
    g_loss = g_step(G, D, opt_g, len(real), noise, config)
    return StepResult(d_loss, g_loss, d_real, d_fake)


def mean_probability(logits: Array) -> Array:
    """mean(sigmoid(x)) as a 0-d array on the logits' device. sigmoid(x) = (1 + tanh(x/2)) / 2
    never overflows, and takes one tanh where the exp form takes several passes."""
    xp = get_array_module(logits)
    half = logits.dtype.type(0.5)
    return (xp.tanh(logits * half).mean() + 1) * half
