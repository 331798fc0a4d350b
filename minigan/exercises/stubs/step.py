"""Exercise: one DCGAN training step, as the lesson writes it.

    D step (repeated config.d_steps times):
        real batch x:     loss_real = real_loss(D(x), real_label)   1, or 0.9 with smoothing
        fake batch G(z):  loss_fake = fake_loss(D(G(z)))            G is not updated here
        d_loss = loss_real + loss_fake;  both gradients add up in D's .grad;  step D's Adam
    G step:
        g_loss = real_loss(D(G(z)))      "flipped labels": G wants D to call its images real
        D.backward gives d g_loss / d image;  G.backward carries it into G;  step G's Adam

minigan's modules: ``y = D(x)`` runs the forward pass and keeps what backward needs;
``D.backward_params(dy)`` adds the parameter gradients (no gradient at the input);
``D.backward(dy)`` does that and returns the gradient at the input; ``D.requires_grad_(False)``
switches the parameter gradients off; ``opt.zero_grad()`` clears and ``opt.step()`` steps the
optimizer's parameters. ``noise(n)`` gives n latent vectors (n, z_size).

The losses are called through the module (``losses.real_loss``), so that with ``--kernels``
your own losses run. The grader runs a tiny DCGAN for a few steps from fixed seeds with your
functions beside minigan's (``minigan/gan/step.py``), and compares the losses, D's outputs and
every weight of both models after each step.
"""

from __future__ import annotations

from typing import Any

from minigan.gan import losses  # noqa: F401  (losses.real_loss, losses.fake_loss)
from minigan.gan.step import StepResult, TrainConfig, mean_probability  # noqa: F401  (given)

Array = Any


def d_step(G: Any, D: Any, opt_d: Any, real: Array, noise: Any,
           config: TrainConfig) -> tuple[Array, Array, Array]:
    """One discriminator update on a real batch (N, C, H, W) and a fake batch of N.
    Returns (d_loss, mean D(x), mean D(G(z))) as 0-d arrays."""
    # Hint: clear, real batch, fake batch, step: in that order. Which of the two models gets
    # a backward pass here, and which kind?
    raise NotImplementedError("d_step: write me")


def g_step(G: Any, D: Any, opt_g: Any, batch_size: int, noise: Any,
           config: TrainConfig) -> Array:
    """One generator update on a fresh fake batch: make D call G's images real. Returns
    g_loss as a 0-d array."""
    # Hint: the gradient flows from the loss through D (to its input only) and on into G.
    raise NotImplementedError("g_step: write me")


def train_step(G: Any, D: Any, opt_g: Any, opt_d: Any, real: Array, noise: Any,
               config: TrainConfig) -> StepResult:
    """``config.d_steps`` discriminator updates on the real batch, then one generator update.
    The numbers are those of the last D update."""
    # Hint: your two functions above, in the order the lesson gives.
    raise NotImplementedError("train_step: write me")
