"""Finite-difference gradient checking: is a hand-written backward pass right?

The idea in three lines. Pick a random "upstream gradient" ``dy`` and define the scalar
``L(inputs) = sum(forward(inputs) * dy)``. Then ``dL/d input`` is exactly what ``backward(dy)``
must return, and calculus gives an independent estimate, the central difference::

    dL/dx_i  ~=  (L(x + eps * e_i) - L(x - eps * e_i)) / (2 * eps)

whose error shrinks like eps**2. In float64 with eps = 1e-6 the two agree to about 1e-9 relative
error when backward is right, and typically disagree by 1e-2 or more when it is wrong. (In float32
the rounding of L swamps the difference quotient: always check in float64.)

Two ways to compare:

* **element-wise**: one central difference per input element; the clearest, and exact enough, but
  it runs the forward pass 2 * (number of elements) times, so it is for small inputs;
* **directional** (as Chainer's ``check_backward`` does): pick a random direction ``d`` over all
  inputs at once and compare the single number ``(L(x + eps d) - L(x - eps d)) / (2 eps)`` with
  ``sum_i <grad_i, d_i>``. Two forward passes per direction, whatever the size of the inputs.

The relative error of one input is ``max|analytic - numeric| / max(max|analytic|, max|numeric|)``
(scaled by the largest entry, so tiny entries of a large gradient do not blow it up);
the functions here return the largest relative error over all inputs or directions.

Usage on an op that follows minigan's ``forward -> (y, cache)`` / ``backward(dy, cache)``
contract::

    from minigan.gradcheck import check_op
    err = check_op(conv2d_forward, conv2d_backward, x, w, b, stride=2, padding=1)
    assert err < 1e-6

and on a layer (its input gradient and every parameter's gradient)::

    from minigan.gradcheck import check_module
    err = check_module(my_layer, x)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy

from minigan.backend import get_array_module, to_numpy

Array = Any
ELEMENTWISE_LIMIT = 4096  # "auto" mode checks element by element up to this many elements


def _relative_error(analytic: numpy.ndarray, numeric: numpy.ndarray) -> float:
    scale = max(float(numpy.max(numpy.abs(analytic), initial=0.0)),
                float(numpy.max(numpy.abs(numeric), initial=0.0)))
    if scale == 0.0:
        return 0.0
    return float(numpy.max(numpy.abs(analytic - numeric))) / scale


def _scalar_loss(forward: Callable[[], Array], dy: Array) -> float:
    """L = sum(forward() * dy), computed in float64 on the host."""
    y = forward()
    return float(numpy.sum(to_numpy(y).astype(numpy.float64) * to_numpy(dy)))


def numerical_gradient(
    forward: Callable[[], Array], x: Array, dy: Array, eps: float = 1e-6,
) -> numpy.ndarray:
    """Central-difference estimate of d sum(forward() * dy) / dx, one element at a time.

    ``forward`` takes no arguments and reads ``x``, which this function perturbs *in place* (and
    restores). Returns a NumPy float64 array shaped like ``x``.
    """
    if not x.flags.c_contiguous:
        raise ValueError("numerical_gradient needs a C-contiguous array to perturb in place")
    flat = x.reshape(-1)  # a view: writing flat[i] changes x
    grad = numpy.zeros(flat.shape, dtype=numpy.float64)
    for i in range(flat.size):
        original = flat[i].item()
        flat[i] = original + eps
        loss_plus = _scalar_loss(forward, dy)
        flat[i] = original - eps
        loss_minus = _scalar_loss(forward, dy)
        flat[i] = original
        grad[i] = (loss_plus - loss_minus) / (2 * eps)
    return grad.reshape(x.shape)


def _check_stream(seed: int) -> numpy.random.Generator:
    """The random numbers of a check: dy first, then the directions. They come from their own
    stream (seed plus a fixed tag), never the same numbers as inputs drawn with
    default_rng(seed): a dy equal to x would make, for example, batch norm's true input
    gradient zero, and the check would compare rounding noise."""
    return numpy.random.default_rng([seed, 0x6D67])


def upstream_gradient(y: Array, seed: int = 0) -> Array:
    """The dy that ``gradcheck(..., seed=seed)`` hands the backward pass, for a forward output
    ``y``: to show the same comparison the check made, entry by entry."""
    return get_array_module(y).asarray(_check_stream(seed).standard_normal(y.shape))


def gradcheck(
    forward: Callable[[], Array],
    backward: Callable[[Array], Sequence[Array]],
    inputs: Sequence[Array],
    *,
    eps: float = 1e-6,
    mode: str = "auto",
    directions: int = 4,
    seed: int = 0,
) -> float:
    """Compare ``backward`` with finite differences of ``forward``; return the worst relative error.

    forward:  () -> y. Reads the arrays in ``inputs``, which are perturbed in place while checking.
    backward: dy -> one gradient per entry of ``inputs`` (same shapes), at the unperturbed inputs.
    inputs:   float64 arrays (NumPy or CuPy).
    mode:     "elementwise", "directional", or "auto" (element-wise up to 4096 elements in all).
    """
    for a in inputs:
        if a.dtype != numpy.float64:
            raise TypeError(f"gradcheck needs float64 inputs (got {a.dtype}): float32 rounding "
                            "is larger than the finite-difference signal")
    xp = get_array_module(*inputs)
    rng = _check_stream(seed)
    y = forward()
    dy = xp.asarray(rng.standard_normal(getattr(y, "shape", ())))
    analytic = [to_numpy(g).astype(numpy.float64) for g in backward(dy)]
    if len(analytic) != len(inputs):
        raise ValueError(f"backward returned {len(analytic)} gradients for {len(inputs)} inputs")
    for g, a in zip(analytic, inputs):
        if g.shape != a.shape:
            raise ValueError(f"a gradient has shape {g.shape} but its input has shape {a.shape}")

    if mode == "auto":
        mode = "elementwise" if sum(a.size for a in inputs) <= ELEMENTWISE_LIMIT else "directional"
    if mode == "elementwise":
        return max(_relative_error(g, numerical_gradient(forward, a, dy, eps))
                   for g, a in zip(analytic, inputs))
    if mode != "directional":
        raise ValueError(f"mode must be 'auto', 'elementwise' or 'directional', not {mode!r}")

    return _directional_error(forward, analytic, inputs, dy, eps, directions, rng)


def _directional_error(forward: Callable[[], Any], analytic: list[numpy.ndarray],
                       inputs: Sequence[Array], dy: Array, eps: float, directions: int,
                       rng: numpy.random.Generator) -> float:
    """gradcheck's directional mode: along ``directions`` random unit directions over all
    inputs together, the analytic directional derivative against a central difference."""
    xp = get_array_module(*inputs)
    worst = 0.0
    for _ in range(directions):
        parts = [rng.standard_normal(a.shape) for a in inputs]
        norm = numpy.sqrt(sum(float(numpy.sum(p * p)) for p in parts))
        parts = [xp.asarray(p / norm) for p in parts]
        predicted = sum(float(numpy.sum(g * to_numpy(p))) for g, p in zip(analytic, parts))
        for a, p in zip(inputs, parts):
            a += eps * p
        loss_plus = _scalar_loss(forward, dy)
        for a, p in zip(inputs, parts):
            a -= 2 * eps * p
        loss_minus = _scalar_loss(forward, dy)
        for a, p in zip(inputs, parts):
            a += eps * p
        measured = (loss_plus - loss_minus) / (2 * eps)
        scale = max(abs(predicted), abs(measured))
        # The directional derivative is a sum of many terms: compare it with the size of the
        # gradient itself, so that a near-zero projection does not count as a large error.
        scale = max(scale, max(float(numpy.linalg.norm(g)) for g in analytic) * 1e-3)
        if scale > 0:
            worst = max(worst, abs(predicted - measured) / scale)
    return worst


def check_op(
    forward_fn: Callable[..., tuple[Array, Any]],
    backward_fn: Callable[[Array, Any], Any],
    *inputs: Array | None,
    **kwargs: Any,
) -> float:
    """Gradient-check an op pair ``y, cache = forward_fn(*inputs, **kwargs)``,
    ``grads = backward_fn(dy, cache)``.

    Inputs that are ``None`` (an absent bias) are passed through and skipped; options such as
    ``mode=`` or ``eps=`` for :func:`gradcheck` may be given as ``check_options={...}``.
    """
    options = kwargs.pop("check_options", {})
    checked = [i for i, a in enumerate(inputs) if a is not None]

    def forward() -> Array:
        return forward_fn(*inputs, **kwargs)[0]

    def backward(dy: Array) -> list[Array]:
        _, cache = forward_fn(*inputs, **kwargs)
        grads = backward_fn(dy, cache)
        if not isinstance(grads, tuple):
            grads = (grads,)
        return [grads[i] for i in checked]

    return gradcheck(forward, backward, [inputs[i] for i in checked], **options)


def check_module(module: Any, x: Array, **options: Any) -> float:
    """Gradient-check a layer: its input gradient and the gradient of every parameter.

    The module and ``x`` must be float64 (``module.to(dtype="float64")``). Parameter gradients
    are read from ``Parameter.grad`` after ``zero_grad()`` and one backward pass.
    """
    params = [p for p in module.parameters()]

    def forward() -> Array:
        return module(x)

    def backward(dy: Array) -> list[Array]:
        module.zero_grad()
        module(x)
        dx = module.backward(dy)
        return [dx] + [p.grad for p in params]

    return gradcheck(forward, backward, [x] + [p.data for p in params], **options)
