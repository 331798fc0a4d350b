"""The discriminator's update with the real and the fake batch as one batch of 2N: for GPUs.

``step.d_step`` is the lesson: D scores the real batch, then the fake batch, in two calls, and
the two backward passes add up in D's gradients. On a GPU every array operation is a kernel
launch that costs microseconds whatever its size, and a DCGAN of this size is bound by them.
``one_pass.d_step`` makes the same update with D's forward and backward pass run once, on both
batches together, so it launches D's kernels once instead of twice: 290 array operations in
the whole training step become 230 (``benchmarks/README.md``).

The same update, up to rounding, because nothing in D mixes the images of a batch except batch
norm, and batch norm here keeps the real batch's statistics apart from the fake batch's
(``minigan.nn.batch_groups``): the same mu_B, sigma2_B, outputs, running statistics (updated
twice, real batch first) and gradients as the two calls. ``tests/gan/test_one_pass.py`` checks
that against ``d_step``.

On the CPU the two calls are a little faster: arrays twice as large fall out of the
processor's caches, and the launches saved cost nothing there (the whole D update took 4-6%
longer in one pass: ``benchmarks/bench_one_pass.py``). So the step takes this path on a GPU only, unless ``discriminator_in_one_pass`` says otherwise, and
only where D allows it (``runs_as_one_batch``: fast kernels on, no dropout, minigan's own batch
norm kernels); anywhere else ``d_step`` goes on as the lesson reads.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Iterator
from typing import Any

from minigan import ops
from minigan.backend import get_array_module, is_cupy_array
from minigan.gan import losses
from minigan.nn.batch_groups import runs_as_one_batch, statistics_per_group

Array = Any

_one_pass: bool | None = None   # None: on a GPU only (see the module's text)


@contextlib.contextmanager
def discriminator_in_one_pass(on: bool | None) -> Iterator[None]:
    """Inside the block, ``step.d_step`` runs D once on both batches where it can (True), never
    (False), or on a GPU only (None, the default): for tests, benchmarks and the op counter,
    which counts the step a GPU would run."""
    global _one_pass
    before, _one_pass = _one_pass, on
    try:
        yield
    finally:
        _one_pass = before


def pays(D: Any, real: Array) -> bool:
    """Whether ``step.d_step`` should hand over to this module's ``d_step``: wanted (above),
    D can (``runs_as_one_batch``), and the losses are the lesson's (a learner's own
    ``real_loss`` or ``fake_loss``, swapped in by an exercise, must be the one that runs)."""
    wanted = is_cupy_array(real) if _one_pass is None else _one_pass
    return wanted and _lesson_losses() and runs_as_one_batch(D, real)


def d_step(G: Any, D: Any, opt_d: Any, real: Array, noise: Any,
                    config: Any) -> tuple[Array, Array, Array]:
    """``step.d_step``, with D's passes run once on the real and the fake batch together.
    Returns (d_loss, mean D(x), mean D(G(z))) as 0-d arrays."""
    xp = get_array_module(real)
    n = len(real)
    opt_d.zero_grad()
    fake = G(noise(n))                             # no G.backward below: G is "detached"
    with statistics_per_group(D, 2):               # the real batch, then the fake batch
        logits = D(xp.concatenate([real, fake]))
    d_loss, d_logits = real_and_fake_loss(logits, config.real_label)
    D.backward_params(d_logits)
    opt_d.step()
    d_real, d_fake = mean_probabilities(logits, 2)
    return d_loss, d_real, d_fake


def real_and_fake_loss(logits: Array, real_label: float) -> tuple[Array, Array]:
    """``losses.real_loss`` of the first half of the logits (2N, 1) plus ``losses.fake_loss``
    of the second half, as one binary cross-entropy against the targets real_label (N times)
    then 0 (N times). Its mean is over 2N logits, so the sum of the two losses is twice it, and
    d loss / d logits is the BCE's gradient for d loss / d mean = 2."""
    targets = _real_then_fake_targets(get_array_module(logits), logits.shape, logits.dtype,
                                      real_label)
    mean, cache = ops.bce_with_logits_forward(logits, targets)
    return mean * 2, ops.bce_with_logits_backward(2.0, cache)


_LESSON_LOSSES = (losses.real_loss, losses.fake_loss)


def _lesson_losses() -> bool:
    """The losses in ``minigan.gan.losses`` are minigan's (or wrap them: a timer, say)."""
    return all(inspect.unwrap(getattr(losses, loss.__name__)) is loss for loss in _LESSON_LOSSES)


@functools.lru_cache(maxsize=8)
def _real_then_fake_targets(xp: Any, shape: tuple[int, ...], dtype: Any,
                            real_label: float) -> Array:
    """real_label for the first half of ``shape``'s rows, 0 for the second: made once per
    shape and label, then reused (never written to), so that a step makes no array for it."""
    targets = xp.zeros(shape, dtype=dtype)
    targets[:shape[0] // 2] = real_label
    return targets


def mean_probabilities(logits: Array, groups: int) -> Array:
    """``step.mean_probability`` of each of ``groups`` equal parts of the logits, in the same
    five operations as one: a (groups,) array, whose items are 0-d arrays on the device."""
    xp = get_array_module(logits)
    half = logits.dtype.type(0.5)
    return (xp.tanh(logits.reshape(groups, -1) * half).mean(axis=1) + 1) * half
