"""The training step with each network run once where the lesson runs it several times: for GPUs.

``step.train_step`` is the lesson. G makes a fake batch for every D update and a fresh one for
its own update, and each D update calls D on the real batch and again on the fake batch, the two
backward passes adding up in D's gradients. On a GPU every array operation is a kernel launch
that costs microseconds whatever its size, and a DCGAN of this size is bound by them. This
module's ``train_step`` makes the same step with fewer calls:

* G runs forward once, on the latent vectors of all the step's fake batches together (drawn in
  the lesson's order), and backward once, with a zero gradient for the batches D's updates used;
* each D update runs D once on its real and its fake batch together, with one BCE for the two
  losses.

That takes the step from 284 array operations to 195 (``benchmarks/README.md``). The price
is arithmetic: G's backward pass also runs over the batches that get no gradient (with one D
update per step, twice G's backward work, about a sixth more for the whole step), which a
launch-bound GPU hardly notices.

The same step, up to rounding, because nothing in G or D mixes the examples of a batch except
batch norm, and here each batch norm keeps every batch's statistics apart
(``minigan.nn.batch_groups``): the same mu_B, sigma2_B and outputs per batch, the running
statistics updated once per batch in the lesson's order, and the same gradients (a zero
gradient adds nothing). ``tests/gan/test_one_pass.py`` checks that against the lesson's step,
``tests/gan/test_step.py`` against PyTorch's.

On the CPU the lesson's step is faster (by a sixth to a fifth: ``benchmarks/bench_one_pass.py``):
there a launch costs nothing, the extra arithmetic does, and arrays twice as large fall further
out of the processor's caches. So ``step.train_step`` hands over on a GPU only, unless
``one_pass_step`` says otherwise, and only where the networks allow it
(``runs_as_one_batch``: fast kernels on, no dropout, minigan's own batch norm kernels) and the
step's parts are the lesson's (an exercise's ``d_step`` or ``real_loss`` must be the one that
runs); anywhere else the lesson's step runs as it reads.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from minigan import ops
from minigan.backend import get_array_module, is_cupy_array
from minigan.gan import losses
from minigan.nn.batch_groups import runs_as_one_batch, statistics_per_group
from minigan.ops.layout import constant_array

Array = Any

_one_pass: bool | None = None   # None: on a GPU only (see the module's text)


@contextlib.contextmanager
def one_pass_step(on: bool | None) -> Iterator[None]:
    """Inside the block, ``step.train_step`` hands over to this module's ``train_step``
    wherever it can (True), never (False), or on a GPU only (None, the default): for tests,
    benchmarks and the op counter, which counts the step a GPU would run."""
    global _one_pass
    before, _one_pass = _one_pass, on
    try:
        yield
    finally:
        _one_pass = before


def pays(G: Any, D: Any, real: Array, *parts: Callable) -> bool:
    """Whether ``step.train_step`` should hand over to this module's ``train_step``: wanted
    (above), both networks can (``runs_as_one_batch``), and ``parts`` (the step's d_step and
    g_step, as the step finds them) and the losses are minigan's own, not a learner's."""
    wanted = is_cupy_array(real) if _one_pass is None else _one_pass
    return (wanted and _lessons(*parts, losses.real_loss, losses.fake_loss)
            and runs_as_one_batch(D, real) and runs_as_one_batch(G, real))


def train_step(G: Any, D: Any, opt_g: Any, opt_d: Any, real: Array, noise: Any,
               config: Any) -> tuple[Array, Array, Array, Array]:
    """``step.train_step`` with G run once for all its fake batches and D once per update.
    Returns (d_loss, g_loss, mean D(x), mean D(G(z))) as 0-d arrays, those of the last D
    update, as the lesson's step does."""
    xp = get_array_module(real)
    n, updates = len(real), config.d_steps
    zs = [noise(n) for _ in range(updates + 1)]      # each D update's, then G's: the lesson's order
    with statistics_per_group(G, updates + 1):
        fakes = G(xp.concatenate(zs))                # G's backward below, with the G update
    for i in range(updates):
        d_loss, d_real, d_fake = d_update(D, opt_d, real, fakes[i * n:(i + 1) * n], config)
    g_loss = g_update(G, D, opt_g, fakes, n)
    return d_loss, g_loss, d_real, d_fake


def d_update(D: Any, opt_d: Any, real: Array, fake: Array,
             config: Any) -> tuple[Array, Array, Array]:
    """``step.d_step`` given its fake batch, D run once on the real and the fake batch.
    Returns (d_loss, mean D(x), mean D(G(z))) as 0-d arrays."""
    xp = get_array_module(real)
    opt_d.zero_grad()
    with statistics_per_group(D, 2):                 # the real batch, then the fake batch
        logits = D(xp.concatenate([real, fake]))
    d_loss, d_logits = real_and_fake_loss(logits, config.real_label)
    D.backward_params(d_logits)                      # no G.backward: G is "detached"
    opt_d.step()
    d_real, d_fake = mean_probabilities(logits, 2)
    return d_loss, d_real, d_fake


def g_update(G: Any, D: Any, opt_g: Any, fakes: Array, n: int) -> Array:
    """``step.g_step`` on the last n of ``fakes``, whose forward pass G made (with the batches
    before them, which get a zero gradient). Returns g_loss as a 0-d array."""
    xp = get_array_module(fakes)
    opt_g.zero_grad()
    fake = fakes[len(fakes) - n:]
    g_loss, d_logits = losses.real_loss(D(fake))     # flipped label: 1, never smoothed
    D.requires_grad_(False)                          # only d loss / d image is needed from D
    try:
        d_image = D.backward(d_logits)
    finally:
        D.requires_grad_(True)
    unused = constant_array(xp, (len(fakes) - n, *fake.shape[1:]), fake.dtype, 0.0)
    G.backward(xp.concatenate([unused, d_image]))
    opt_g.step()
    return g_loss


def real_and_fake_loss(logits: Array, real_label: float) -> tuple[Array, Array]:
    """``losses.real_loss`` of the first half of the logits (2N, 1) plus ``losses.fake_loss``
    of the second half, as one binary cross-entropy against the targets real_label (N times)
    then 0 (N times). Its mean is over 2N logits, so the sum of the two losses is twice it, and
    d loss / d logits is the BCE's gradient for d loss / d mean = 2."""
    targets = _real_then_fake_targets(get_array_module(logits), logits.shape, logits.dtype,
                                      real_label)
    mean, cache = ops.bce_with_logits_forward(logits, targets)
    return mean * 2, ops.bce_with_logits_backward(2.0, cache)


def mean_probabilities(logits: Array, groups: int) -> Array:
    """``step.mean_probability`` of each of ``groups`` equal parts of the logits, in the same
    five operations as one: a (groups,) array, whose items are 0-d arrays on the device."""
    xp = get_array_module(logits)
    half = logits.dtype.type(0.5)
    return (xp.tanh(logits.reshape(groups, -1) * half).mean(axis=1) + 1) * half


def _lessons(*functions: Callable) -> bool:
    """Each function is minigan's own (or wraps it: a timer, say): one of the lesson's files
    defines it, where an exercise's would come from the learner's."""
    return all(inspect.unwrap(f).__module__ in ("minigan.gan.step", "minigan.gan.losses")
               for f in functions)


@functools.lru_cache(maxsize=8)
def _real_then_fake_targets(xp: Any, shape: tuple[int, ...], dtype: Any,
                            real_label: float) -> Array:
    """real_label for the first half of ``shape``'s rows, 0 for the second: made once per
    shape and label, then reused (never written to), so that a step makes no array for it."""
    targets = xp.zeros(shape, dtype=dtype)
    targets[:shape[0] // 2] = real_label
    return targets

