"""The checks that grade a kernel: each takes the implementation under test and one case.

Every ``check_*`` function below receives ``impl``, any object whose attributes are the kernel
functions (``impl.conv2d_forward``, ``impl.im2col``, ...: a learner's folder loaded by
``minigan.exercises.folder.load_kernels``, or minigan's own from ``minigan_kernels()``), and
``case``, a small dict of shapes and settings (``minigan.exercises.cases`` draws them with
hypothesis). It returns None when the kernel is right for that case and raises
``KernelCheckFailed`` with one plain sentence when it is not, for example::

    conv2d_backward: dw is wrong for x (1, 2, 2, 2), w (1, 2, 2, 2), stride 1, padding 0,
    no bias: relative error 0.92 against finite differences (should be below 1e-06)

The checks use the project's own checking machinery: ``minigan.gradcheck`` for finite
differences, the loops of ``minigan.ops.reference`` as forward oracles, the adjoint identity for
the transposed convolution, PyTorch's rule for batch norm's running statistics, and exact values
of the binary cross-entropy at huge logits. Everything is float64 (float32 only where the check is
that float32 stays float32), on the active backend (``MINIGAN_BACKEND``).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy
import scipy.special

from minigan.backend import to_device, to_numpy
from minigan.gradcheck import gradcheck, numerical_gradient, upstream_gradient
from minigan.ops.reference import (
    batch_norm_eval_forward_reference,
    batch_norm_forward_reference,
    conv2d_reference,
    conv_transpose2d_reference,
    im2col_reference,
)

Array = Any
Case = dict[str, Any]

FORWARD_RTOL = 1e-10      # forward outputs against an oracle: float64 sums of a few numbers
GRADIENT_TOLERANCE = 1e-6  # finite differences in float64, as in the project's tests


# The simplest case of each kind: what the strategies of ``cases`` shrink towards, and what
# the grader tries first. (Here rather than in ``cases`` so that ``use_kernels`` can probe a
# learner's folder without hypothesis installed.)
SIMPLEST_CONV = dict(x=(1, 1, 2, 2), w=(1, 1, 1, 1), stride=1, padding=0, bias=True, seed=0)
SIMPLEST_IM2COL = dict(x=(1, 1, 2, 2), kernel_size=1, stride=1, padding=0, seed=0)
SIMPLEST_CONV_TRANSPOSE = dict(x=(1, 1, 2, 2), w=(1, 1, 1, 1), stride=1, padding=0,
                               output_padding=0, bias=True, seed=0)
SIMPLEST_BATCH_NORM = dict(shape=(3, 1), eps=1e-5, seed=0)
SIMPLEST_RUNNING_STATS = dict(shape=(3, 1), momentum=0.1, seed=0)
SIMPLEST_LEAKY_RELU = dict(shape=(2,), negative_slope=0.2, seed=0)
SIMPLEST_TANH = dict(shape=(2,), seed=0)
SIMPLEST_BCE = dict(shape=(2,), soft_targets=False, scale=1.0, number_target=False, seed=0)
SIMPLEST_ADAM = dict(shape=(1, 1), steps=1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, seed=0)

# What the positions of each array mean, so that a wrong entry is named by its meaning.
IMAGE_AXES = ("n", "c", "h", "w")
CONV_AXES = {"x": IMAGE_AXES, "w": ("f", "c", "i", "j"), "b": ("f",), "y": ("n", "f", "h", "w")}
CONV_TRANSPOSE_AXES = {"x": IMAGE_AXES, "w": ("c_in", "c_out", "i", "j"), "b": ("c_out",),
                       "y": ("n", "c_out", "h", "w")}


class KernelCheckFailed(AssertionError):
    """A kernel gave a wrong answer; the message is one sentence naming the case.

    ``detail`` (optional, several lines) shows the smallest case's expected and actual values
    side by side, each position named by what it means; the report prints it under the sentence.
    """

    def __init__(self, sentence: str, detail: str = ""):
        super().__init__(sentence)
        self.detail = detail


# ------------------------------------------------------------------------- how a case is named

def shape_text(shape: tuple[int, ...]) -> str:
    """A shape as Python writes it, (2, 3) or (2,), whatever integer types it holds."""
    return str(tuple(int(s) for s in shape))


def conv_text(case: Case) -> str:
    """'x (1, 1, 3, 3), w (2, 1, 2, 2), stride 2, padding 1' (and output_padding if any)."""
    text = (f"x {shape_text(case['x'])}, w {shape_text(case['w'])}, stride {case['stride']}, "
            f"padding {case['padding']}")
    if case.get("output_padding"):
        text += f", output_padding {case['output_padding']}"
    if "bias" in case and not case["bias"]:
        text += ", no bias"
    return text


def im2col_text(case: Case) -> str:
    return (f"x {shape_text(case['x'])}, kernel_size {case['kernel_size']}, "
            f"stride {case['stride']}, padding {case['padding']}")


def bce_text(case: Case) -> str:
    """'x (3,), logits as large as 1000, target the number 0.9' (what is unusual, only)."""
    text = shape_and(case)
    if case["scale"] > 1:
        text += f", logits as large as {case['scale']:g}"
    if case.get("number_target"):
        text += f", target the number {0.9 if case['soft_targets'] else 1.0:g}"
    return text


def adam_text(case: Case) -> str:
    return f"param {shape_text(case['shape'])}"


def shape_and(case: Case, *keys: str) -> str:
    """'x (2, 3), eps 0.001' from the case's shape and the named settings."""
    return ", ".join([f"x {shape_text(case['shape'])}"] + [f"{k} {case[k]:g}" for k in keys])


# ------------------------------------------------------------------------- comparing arrays

def random_inputs(seed: int, *shapes: tuple[int, ...], low: float | None = None) -> list[Array]:
    """Standard-normal float64 arrays on the active backend; ``low`` keeps |a| >= low."""
    rng = numpy.random.default_rng(seed)
    arrays = []
    for shape in shapes:
        a = rng.standard_normal(shape)
        if low is not None:  # keep away from 0 (a kink), keeping the sign
            a = numpy.where(numpy.abs(a) < low, numpy.where(a < 0, -low, low), a)
        arrays.append(to_device(a))
    return arrays


def expect_pair(result: Any, name: str) -> tuple[Any, Any]:
    """A forward function returns (output, cache)."""
    if not (isinstance(result, tuple) and len(result) == 2):
        raise KernelCheckFailed(f"{name} should return a pair (output, cache), "
                                f"got {type(result).__name__}")
    return result


Axes = tuple[str, ...] | Callable[[tuple[int, ...]], str] | None
SHOWN_ENTRIES = 8   # entries of the side-by-side table (all of them for a small array)


def position(index: tuple[int, ...], axes: Axes) -> str:
    """An index named by its meaning: '(f, c, i, j) = (0, 1, 0, 1)', or plain '(0, 1)'."""
    if callable(axes):
        return axes(index)
    if axes and len(axes) == len(index) == 1:
        return f"{axes[0]} = {index[0]}"
    if axes and len(axes) == len(index):
        return f"({', '.join(axes)}) = {index}"
    return f"index {index}"


def side_by_side(got: numpy.ndarray, expected: numpy.ndarray, bad: numpy.ndarray,
                 axes: Axes = None) -> str:
    """Expected and actual values in two columns, one row per position ('x' marks a wrong
    one): every entry of a small array, else the first wrong ones."""
    indices = [tuple(int(i) for i in ix) for ix in numpy.ndindex(*got.shape)] \
        if got.size <= SHOWN_ENTRIES else \
        [tuple(int(i) for i in ix) for ix in numpy.argwhere(bad)[:SHOWN_ENTRIES]]
    names = [position(ix, axes) if ix else "the value" for ix in indices]
    width = max(len(n) for n in names + ["position"])
    lines = [f"    {'':2}{'position':<{width}}  {'expected':>12}  {'yours':>12}"]
    for ix, name in zip(indices, names):
        mark = "x " if bad[ix] else "  "
        lines.append(f"    {mark}{name:<{width}}  {expected[ix]:>12.6g}  {got[ix]:>12.6g}")
    shown = "every entry" if got.size <= SHOWN_ENTRIES else \
        f"the first {len(indices)} of {int(bad.sum())} wrong entries, of {got.size}"
    return f"  expected and yours, side by side ({shown}; x: wrong):\n" + "\n".join(lines)


def compare(name: str, what: str, got: Any, expected: Any, where: str,
            rtol: float = FORWARD_RTOL, atol: float = FORWARD_RTOL, axes: Axes = None) -> None:
    """Raise a one-sentence KernelCheckFailed unless ``got`` matches ``expected``; its detail
    shows the two side by side, positions named by ``axes`` (("f", "c", "i", "j"), say)."""
    if got is None:
        raise KernelCheckFailed(f"{name}: {what} is None for {where}")
    got, expected = to_numpy(got), to_numpy(expected)
    if got.shape != expected.shape:
        raise KernelCheckFailed(f"{name}: {what} has shape {shape_text(got.shape)} but should "
                                f"have {shape_text(expected.shape)} for {where}")
    if not numpy.all(numpy.isfinite(got)):
        raise KernelCheckFailed(f"{name}: {what} holds inf or nan for {where}")
    bad = numpy.abs(got - expected) > atol + rtol * numpy.abs(expected)
    if numpy.any(bad):
        index = tuple(int(i) for i in numpy.argwhere(bad)[0])
        at = f" at {position(index, axes)}" if index else ""
        raise KernelCheckFailed(f"{name}: {what} is wrong for {where}: {got[index]:.6g}{at} "
                                f"should be {expected[index]:.6g}",
                                side_by_side(got, expected, bad, axes))


def expect_dtype(name: str, what: str, array: Any, dtype: Any, where: str) -> None:
    if array is None or numpy.dtype(array.dtype) != numpy.dtype(dtype):
        got = "None" if array is None else str(array.dtype)
        raise KernelCheckFailed(f"{name}: {what} is {got} for {numpy.dtype(dtype)} input "
                                f"({where}): dtype in must be dtype out")


def expect_float32_gradients(forward_fn: Callable[..., Any], backward_fn: Callable[..., Any],
                             inputs: dict[str, Array | None], name: str, where: str,
                             **kwargs: Any) -> None:
    """A float32 forward and backward pass give float32 gradients: one per input of
    ``inputs`` (None where an input is None), in that order after the first output of the
    backward function. A float64 gradient would pass every value check, then fail when
    training adds it to a float32 parameter."""
    as32 = {k: None if v is None else v.astype("float32") for k, v in inputs.items()}
    y, cache = forward_fn(*as32.values(), **kwargs)
    dy = to_device(numpy.ones(tuple(y.shape), "float32"))
    grads = backward_fn(dy, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    for what, given, grad in zip(as32, as32.values(), grads):
        if given is not None:
            expect_dtype(name, f"d{what}", grad, numpy.float32, where)


def gradient_errors(forward_fn: Callable[..., Any], backward_fn: Callable[..., Any],
                    inputs: dict[str, Array | None], backward_name: str, where: str,
                    axes: dict[str, Axes] | None = None, **kwargs: Any) -> None:
    """Check each gradient of an op pair against finite differences, one input at a time.

    ``inputs`` names the arguments of ``forward_fn`` in order ({"x": x, "w": w, "b": None});
    ``backward_fn(dy, cache)`` must return one gradient per argument, in the same order (None
    for an absent bias). Names the first gradient that is missing, misshapen or wrong.
    """
    names, arrays = list(inputs), list(inputs.values())

    def forward() -> Array:
        return forward_fn(*arrays, **kwargs)[0]

    def gradients(dy: Array) -> tuple[Any, ...]:
        grads = backward_fn(dy, expect_pair(forward_fn(*arrays, **kwargs), "forward")[1])
        return grads if isinstance(grads, tuple) else (grads,)

    y = forward()
    grads = gradients(to_device(numpy.ones(y.shape)))
    if len(grads) != len(names):
        raise KernelCheckFailed(f"{backward_name} should return {len(names)} gradients "
                                f"(d{', d'.join(names)}), got {len(grads)}")
    for i, name in enumerate(names):
        if arrays[i] is None:
            if grads[i] is not None:
                raise KernelCheckFailed(f"{backward_name}: d{name} should be None when there is "
                                        f"no {name} ({where})")
            continue
        g = grads[i]
        if g is None or tuple(g.shape) != tuple(arrays[i].shape):
            got = "None" if g is None else f"of shape {shape_text(g.shape)}"
            raise KernelCheckFailed(f"{backward_name}: d{name} is {got} but {name} has shape "
                                    f"{shape_text(arrays[i].shape)} ({where})")

    for i, name in enumerate(names):
        if arrays[i] is None:
            continue
        error = gradcheck(forward, lambda dy, i=i: [gradients(dy)[i]], [arrays[i]])
        if not error < GRADIENT_TOLERANCE:   # also catches nan
            expect_the_same_every_time(forward, y, getattr(forward_fn, "__name__", "forward"),
                                       where)
            raise KernelCheckFailed(f"{backward_name}: d{name} is wrong for {where}: relative "
                                    f"error {error:.2g} against finite differences (should be "
                                    f"below {GRADIENT_TOLERANCE:g})",
                                    _gradient_side_by_side(forward, gradients, arrays[i], i,
                                                           (axes or {}).get(name)))


def expect_the_same_every_time(forward: Callable[[], Array], y: Array, name: str, where: str,
                               calls: int = 10) -> None:
    """Finite differences call the forward pass again and again: one that answers differently
    for the same input (state kept between calls) makes a right backward look wrong. Asked
    when a gradient check fails, so that the sentence names the forward pass instead."""
    for _ in range(calls):
        if not numpy.array_equal(to_numpy(forward()), to_numpy(y), equal_nan=True):
            raise KernelCheckFailed(f"{name} gives another output when called again on the "
                                    f"same input ({where}): the gradient check needs the same "
                                    f"answer every time (state kept between calls?)")


def _gradient_side_by_side(forward: Callable[[], Array], gradients: Callable[..., Any],
                           x: Array, i: int, axes: Axes) -> str:
    """The learner's gradient beside the finite differences, for the dy the check used (a
    dy of ones would hide some mistakes: batch norm's true input gradient is then 0)."""
    dy = upstream_gradient(forward())
    yours = to_numpy(gradients(dy)[i]).astype(numpy.float64)
    expected = numerical_gradient(forward, x, dy)
    bad = numpy.abs(yours - expected) > 1e-5 + 1e-4 * numpy.abs(expected)
    return side_by_side(yours, expected, bad, axes).replace(
        "expected and yours", "finite differences and your gradient (for the check's random dy)")


def inner(a: Array, b: Array) -> float:
    return float(numpy.sum(to_numpy(a) * to_numpy(b)))


# ------------------------------------------------------------------------- im2col and col2im

def cols_axes(case: Case) -> Callable[[tuple[int, ...]], str]:
    """Names an entry (row, column) of cols by its meaning: the output pixel (n, ho, wo) of
    the row and the kernel offset and channel (i, j, c) of the column."""
    N, C, H, W = case["x"]
    K, S, P = case["kernel_size"], case["stride"], case["padding"]
    H_out, W_out = (H + 2 * P - K) // S + 1, (W + 2 * P - K) // S + 1

    def name(index: tuple[int, ...]) -> str:
        row, column = index
        n, ho, wo = numpy.unravel_index(row, (N, H_out, W_out))
        i, j, c = numpy.unravel_index(column, (K, K, C))
        return (f"row {row} (n, ho, wo) = ({n}, {ho}, {wo}), column {column} (i, j, c) = "
                f"({i}, {j}, {c})")

    return name


def check_im2col(impl: Any, case: Case) -> None:
    """im2col copies every window into a row in the documented order (``im2col_reference``, one
    window at a time); col2im is its adjoint: <im2col(x), c> == <x, col2im(c)> for every x, c."""
    K, S, P, where = case["kernel_size"], case["stride"], case["padding"], im2col_text(case)
    x, = random_inputs(case["seed"], case["x"])
    cols = impl.im2col(x, K, S, P)
    compare("im2col", "cols", cols, im2col_reference(x, K, S, P), where,
            axes=cols_axes(case))
    # The naive convolution (the seven loops, the conv2d_naive exercise's solution) is the
    # oracle of what im2col is for: its columns times the flattened weights are the convolution.
    N, C = case["x"][:2]
    w, = random_inputs(case["seed"] + 2, (2, C, K, K))
    naive = conv2d_reference(x, w, None, S, P)
    H_out, W_out = naive.shape[2:]
    w_mat = to_numpy(w).transpose(2, 3, 1, 0).reshape(K * K * C, 2)
    product = (to_numpy(cols) @ w_mat).reshape(N, H_out, W_out, 2).transpose(0, 3, 1, 2)
    compare("im2col", "im2col(x) @ w_mat (as an image)", product, naive, where + ", against "
            "the naive seven-loop convolution", axes=CONV_AXES["y"])
    c, = random_inputs(case["seed"] + 1, tuple(cols.shape))
    back = impl.col2im(c, tuple(case["x"]), K, S, P)
    if back is None or tuple(back.shape) != tuple(case["x"]):
        got = "None" if back is None else f"shape {shape_text(back.shape)}"
        raise KernelCheckFailed(f"col2im: its output is {got} but should have the image's shape "
                                f"{shape_text(case['x'])} for {where}")
    lhs, rhs = inner(cols, c), inner(x, back)
    if not math.isclose(lhs, rhs, rel_tol=FORWARD_RTOL, abs_tol=FORWARD_RTOL):
        raise KernelCheckFailed(f"col2im is not the adjoint of im2col for {where}: "
                                f"<im2col(x), c> = {lhs:.6g} but <x, col2im(c)> = {rhs:.6g}")


# ------------------------------------------------------------------------- convolutions

def conv_inputs(case: Case, bias_shape: tuple[int, ...]) -> tuple[Array, Array, Array | None]:
    x, w, b = random_inputs(case["seed"], case["x"], case["w"], bias_shape)
    return x, w, (b if case.get("bias", True) else None)


def check_conv2d_forward(impl: Any, case: Case) -> None:
    """conv2d_forward agrees with ``conv2d_reference``, the loop over output pixels."""
    x, w, b = conv_inputs(case, case["w"][:1])
    S, P, where = case["stride"], case["padding"], conv_text(case)
    y, _ = expect_pair(impl.conv2d_forward(x, w, b, stride=S, padding=P), "conv2d_forward")
    compare("conv2d_forward", "y", y, conv2d_reference(x, w, b, S, P), where,
            axes=CONV_AXES["y"])
    y32, _ = impl.conv2d_forward(x.astype("float32"), w.astype("float32"),
                                 None if b is None else b.astype("float32"), stride=S, padding=P)
    expect_dtype("conv2d_forward", "y", y32, numpy.float32, where)


def check_conv2d_backward(impl: Any, case: Case) -> None:
    """dx, dw and db agree with finite differences; the need_* flags skip what they say."""
    x, w, b = conv_inputs(case, case["w"][:1])
    S, P, where = case["stride"], case["padding"], conv_text(case)
    gradient_errors(impl.conv2d_forward, impl.conv2d_backward, {"x": x, "w": w, "b": b},
                    "conv2d_backward", where, axes=CONV_AXES, stride=S, padding=P)
    # The layers ask for only what they need: the generator step needs no weight gradients of
    # D, the discriminator's first layer no gradient at its input (the images).
    y, cache = impl.conv2d_forward(x, w, b, stride=S, padding=P)
    dy, = random_inputs(case["seed"] + 1, tuple(y.shape))
    dx, _, _ = impl.conv2d_backward(dy, cache)
    dx_only, dw_none, db_none = impl.conv2d_backward(dy, cache, need_weight_grad=False)
    if dw_none is not None or db_none is not None:
        raise KernelCheckFailed(f"conv2d_backward: with need_weight_grad=False, dw and db "
                                f"should be None ({where})")
    compare("conv2d_backward", "dx with need_weight_grad=False", dx_only, dx, where,
            axes=IMAGE_AXES)
    no_dx, _, _ = impl.conv2d_backward(dy, cache, need_input_grad=False)
    if no_dx is not None:
        raise KernelCheckFailed(f"conv2d_backward: with need_input_grad=False, dx should be "
                                f"None ({where})")
    expect_float32_gradients(impl.conv2d_forward, impl.conv2d_backward, {"x": x, "w": w, "b": b},
                             "conv2d_backward", where, stride=S, padding=P)


def check_conv_transpose2d(impl: Any, case: Case) -> None:
    """The transposed convolution: the stamping loop, the adjoint identity
    <conv2d(x, w), y> == <x, conv_transpose2d(y, w)>, and finite differences."""
    x, w, b = conv_inputs(case, case["w"][1:2])
    S, P, op, where = case["stride"], case["padding"], case["output_padding"], conv_text(case)
    name = "conv_transpose2d_forward"
    y, _ = expect_pair(impl.conv_transpose2d_forward(x, w, b, stride=S, padding=P,
                                                     output_padding=op), name)
    compare(name, "y", y, conv_transpose2d_reference(x, w, b, S, P, op), where,
            axes=CONV_TRANSPOSE_AXES["y"])
    # The adjoint: conv2d from y's shape back to x's shape, with the same weight array.
    u, = random_inputs(case["seed"] + 1, tuple(y.shape))
    y_nobias, _ = impl.conv_transpose2d_forward(x, w, None, stride=S, padding=P,
                                                output_padding=op)
    lhs, rhs = inner(conv2d_reference(u, w, None, S, P), x), inner(u, y_nobias)
    if not math.isclose(lhs, rhs, rel_tol=FORWARD_RTOL, abs_tol=FORWARD_RTOL):
        raise KernelCheckFailed(f"{name} is not the adjoint of conv2d for {where}: "
                                f"<conv2d(u, w), x> = {lhs:.6g} but "
                                f"<u, conv_transpose2d(x, w)> = {rhs:.6g}")
    gradient_errors(impl.conv_transpose2d_forward, impl.conv_transpose2d_backward,
                    {"x": x, "w": w, "b": b}, "conv_transpose2d_backward", where,
                    axes=CONV_TRANSPOSE_AXES, stride=S, padding=P, output_padding=op)
    y32, _ = impl.conv_transpose2d_forward(x.astype("float32"), w.astype("float32"), None,
                                           stride=S, padding=P, output_padding=op)
    expect_dtype(name, "y", y32, numpy.float32, where)
    expect_float32_gradients(impl.conv_transpose2d_forward, impl.conv_transpose2d_backward,
                             {"x": x, "w": w, "b": b}, "conv_transpose2d_backward", where,
                             stride=S, padding=P, output_padding=op)


# ------------------------------------------------------------------------- batch normalization

def channel_axes(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Every axis but the channel axis 1: what a channel's statistics are taken over."""
    return (0,) if len(shape) == 2 else (0, 2, 3)


def batch_norm_axes(case: Case) -> dict[str, Axes]:
    x_axes = ("n", "c") if len(case["shape"]) == 2 else IMAGE_AXES
    return {"x": x_axes, "y": x_axes, "gamma": ("c",), "beta": ("c",)}


def batch_norm_inputs(case: Case) -> tuple[Array, Array, Array]:
    C = case["shape"][1]
    x, gamma, beta = random_inputs(case["seed"], case["shape"], (C,), (C,))
    gamma = to_device(1 + 0.5 * numpy.tanh(to_numpy(gamma)))   # in (0.5, 1.5): away from 0
    return x, gamma, beta


def running_statistics(case: Case) -> tuple[Array, Array]:
    rng = numpy.random.default_rng([case["seed"], 7])
    C = case["shape"][1]
    return to_device(rng.standard_normal(C)), to_device(rng.uniform(0.5, 2.0, C))


def check_batch_norm_train(impl: Any, case: Case) -> None:
    """Training mode: y = gamma * (x - mu_B) / sqrt(sigma2_B + eps) + beta with the batch's own
    mean and biased variance per channel; dx, dgamma and dbeta against finite differences."""
    x, gamma, beta = batch_norm_inputs(case)
    eps, where = case["eps"], shape_and(case, "eps")
    expected, _ = batch_norm_forward_reference(x, gamma, beta, eps)   # one channel at a time
    y, _ = expect_pair(impl.batch_norm_forward(x, gamma, beta, eps=eps), "batch_norm_forward")
    axes = batch_norm_axes(case)
    compare("batch_norm_forward", "y", y, expected, where, rtol=1e-9, atol=1e-9, axes=axes["y"])
    gradient_errors(impl.batch_norm_forward, impl.batch_norm_backward,
                    {"x": x, "gamma": gamma, "beta": beta}, "batch_norm_backward",
                    where + " (training mode)", axes=axes, eps=eps)
    y32, _ = impl.batch_norm_forward(x.astype("float32"), gamma.astype("float32"),
                                     beta.astype("float32"), eps=eps)
    expect_dtype("batch_norm_forward", "y", y32, numpy.float32, where)
    expect_float32_gradients(impl.batch_norm_forward, impl.batch_norm_backward,
                             {"x": x, "gamma": gamma, "beta": beta}, "batch_norm_backward",
                             where + " (training mode)", eps=eps)


def check_batch_norm_eval(impl: Any, case: Case) -> None:
    """Evaluation mode: the running statistics instead of the batch's, so each channel is a
    fixed affine map; its gradients against finite differences."""
    x, gamma, beta = batch_norm_inputs(case)
    running_mean, running_var = running_statistics(case)
    eps, where = case["eps"], shape_and(case, "eps")
    expected, _ = batch_norm_eval_forward_reference(x, gamma, beta, running_mean, running_var,
                                                    eps)
    name = "batch_norm_eval_forward"
    y, _ = expect_pair(impl.batch_norm_eval_forward(x, gamma, beta, running_mean, running_var,
                                                    eps=eps), name)
    axes = batch_norm_axes(case)
    compare(name, "y", y, expected, where + ", running statistics", rtol=1e-9, atol=1e-9,
            axes=axes["y"])

    @functools.wraps(impl.batch_norm_eval_forward)   # named as the function it calls
    def forward(x: Array, gamma: Array, beta: Array) -> Any:   # running stats: constants
        return impl.batch_norm_eval_forward(x, gamma, beta, running_mean, running_var, eps=eps)

    gradient_errors(forward, impl.batch_norm_backward, {"x": x, "gamma": gamma, "beta": beta},
                    "batch_norm_backward", where + " (evaluation mode)", axes=axes)


def check_running_stats(impl: Any, case: Case) -> None:
    """PyTorch's rule: new = (1 - momentum) * old + momentum * batch statistic, with the
    *unbiased* batch variance going into running_var."""
    x, gamma, beta = batch_norm_inputs(case)
    old_mean, old_var = running_statistics(case)
    momentum, where = case["momentum"], shape_and(case, "momentum")
    _, cache = expect_pair(impl.batch_norm_forward(x, gamma, beta), "batch_norm_forward")
    result = impl.update_running_stats(old_mean, old_var, cache, momentum=momentum)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise KernelCheckFailed("update_running_stats should return a pair "
                                "(new_running_mean, new_running_var)")
    x_h, axes = to_numpy(x), channel_axes(case["shape"])
    expected_mean = (1 - momentum) * to_numpy(old_mean) + momentum * x_h.mean(axis=axes)
    expected_var = (1 - momentum) * to_numpy(old_var) + momentum * x_h.var(axis=axes, ddof=1)
    compare("update_running_stats", "the new running_mean", result[0], expected_mean, where,
            rtol=1e-9, atol=1e-12, axes=("c",))
    biased = (1 - momentum) * to_numpy(old_var) + momentum * x_h.var(axis=axes)
    got_var = to_numpy(result[1])
    if (got_var.shape == biased.shape and momentum > 0
            and numpy.allclose(got_var, biased, rtol=1e-9) and x_h.size > x_h.shape[1]
            and not numpy.allclose(biased, expected_var, rtol=1e-9)):
        raise KernelCheckFailed(f"update_running_stats: the new running_var uses the biased "
                                f"batch variance for {where}; it should use the unbiased one, "
                                f"m / (m - 1) * sigma2_B")
    compare("update_running_stats", "the new running_var", result[1], expected_var, where,
            rtol=1e-9, atol=1e-12, axes=("c",))


# ------------------------------------------------------------------------- activations

def check_leaky_relu(impl: Any, case: Case) -> None:
    """y = x for x > 0, negative_slope * x elsewhere; dx against finite differences (inputs kept
    1e-3 away from the kink at 0, where no derivative exists)."""
    slope, where = case["negative_slope"], shape_and(case, "negative_slope")
    x, = random_inputs(case["seed"], case["shape"], low=1e-3)
    x_h = to_numpy(x)
    y, _ = expect_pair(impl.leaky_relu_forward(x, negative_slope=slope), "leaky_relu_forward")
    compare("leaky_relu_forward", "y", y, numpy.where(x_h > 0, x_h, slope * x_h), where)
    gradient_errors(impl.leaky_relu_forward, impl.leaky_relu_backward, {"x": x},
                    "leaky_relu_backward", where, negative_slope=slope)
    y32, cache32 = impl.leaky_relu_forward(x.astype("float32"), negative_slope=slope)
    expect_dtype("leaky_relu_forward", "y", y32, numpy.float32, where)
    dx32 = impl.leaky_relu_backward(to_device(numpy.ones(case["shape"], "float32")), cache32)
    expect_dtype("leaky_relu_backward", "dx", dx32, numpy.float32, where)


def check_tanh(impl: Any, case: Case) -> None:
    """y = tanh(x); dx = dy * (1 - y**2) against finite differences."""
    where = shape_and(case)
    x, = random_inputs(case["seed"], case["shape"])
    y, _ = expect_pair(impl.tanh_forward(x), "tanh_forward")
    compare("tanh_forward", "y", y, numpy.tanh(to_numpy(x)), where)
    gradient_errors(impl.tanh_forward, impl.tanh_backward, {"x": x}, "tanh_backward", where)
    y32, cache32 = impl.tanh_forward(x.astype("float32"))
    expect_dtype("tanh_forward", "y", y32, numpy.float32, where)
    dx32 = impl.tanh_backward(to_device(numpy.ones(case["shape"], "float32")), cache32)
    expect_dtype("tanh_backward", "dx", dx32, numpy.float32, where)


# ------------------------------------------------------------------------- loss

def bce_oracle(x: numpy.ndarray, t: numpy.ndarray) -> tuple[float, numpy.ndarray]:
    """Loss and dloss/dx of the mean BCE on logits, from NumPy's own stable pieces:
    -log(sigmoid(x)) = logaddexp(0, -x), -log(1 - sigmoid(x)) = logaddexp(0, x)."""
    per_element = t * numpy.logaddexp(0, -x) + (1 - t) * numpy.logaddexp(0, x)
    return float(per_element.mean()), (scipy.special.expit(x) - t) / x.size


def check_bce_with_logits(impl: Any, case: Case) -> None:
    """The mean binary cross-entropy of sigmoid(logits): right values, finite and silent even
    at logits of size 1000 (no overflow in exp), and its gradient against finite differences."""
    scale, where = case["scale"], bce_text(case)
    rng = numpy.random.default_rng(case["seed"])
    x_h = scale * rng.standard_normal(case["shape"])
    t_h = rng.uniform(0, 1, case["shape"]) if case["soft_targets"] else \
        rng.integers(0, 2, case["shape"]).astype(numpy.float64)
    x, t = to_device(x_h), to_device(t_h)
    if case.get("number_target"):   # one number for every element: the trainer's 1.0 and 0.9
        t_h = t = 0.9 if case["soft_targets"] else 1.0
    expected_loss, expected_grad = bce_oracle(x_h, t_h)
    name = "bce_with_logits_forward"
    try:
        with warnings.catch_warnings(), numpy.errstate(over="raise", divide="raise",
                                                       invalid="raise"):
            warnings.simplefilter("error")
            loss, cache = expect_pair(impl.bce_with_logits_forward(x, t), name)
            dx = impl.bce_with_logits_backward(1.0, cache)
    except (FloatingPointError, RuntimeWarning) as error:
        raise KernelCheckFailed(f"{name} or its backward is not stable for {where}: "
                                f"{type(error).__name__}: {error}") from None
    if numpy.ndim(to_numpy(loss)) != 0:
        raise KernelCheckFailed(f"{name}: the loss should be one number (a 0-d array), got "
                                f"shape {shape_text(numpy.shape(to_numpy(loss)))} for {where}")
    compare(name, "the loss", numpy.asarray(to_numpy(loss)), numpy.asarray(expected_loss), where,
            rtol=1e-9, atol=1e-12)
    compare("bce_with_logits_backward", "dlogits", dx, expected_grad, where,
            rtol=1e-9, atol=1e-15)
    if scale == 1:
        @functools.wraps(impl.bce_with_logits_forward)   # named as the function it calls
        def forward(logits: Array) -> Any:       # the targets are data, not differentiated
            return impl.bce_with_logits_forward(logits, t)

        gradient_errors(forward, impl.bce_with_logits_backward, {"logits": x},
                        "bce_with_logits_backward", where)
    loss32, cache32 = impl.bce_with_logits_forward(x.astype("float32"), t if numpy.isscalar(t)
                                                   else t.astype("float32"))
    expect_dtype(name, "the loss", loss32, numpy.float32, where)
    expect_dtype("bce_with_logits_backward", "dlogits",
                 impl.bce_with_logits_backward(1.0, cache32), numpy.float32, where)
    # A float64 0-d dloss (a loss a step computed in float64) must not promote float32 either.
    expect_dtype("bce_with_logits_backward", "dlogits for a float64 0-d dloss",
                 impl.bce_with_logits_backward(to_device(numpy.asarray(1.0)), cache32),
                 numpy.float32, where)


# ------------------------------------------------------------------------- Adam

def check_adam_update(impl: Any, case: Case) -> None:
    """A few Adam steps, in place, against the textbook formulas with bias correction:
    m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g**2, p -= lr m_hat / (sqrt(v_hat) + eps)."""
    lr, beta1, beta2, eps = case["lr"], case["beta1"], case["beta2"], case["eps"]
    where = (f"param {shape_text(case['shape'])}, lr {lr:g}, betas ({beta1:g}, {beta2:g}), "
             f"eps {eps:g}")
    rng = numpy.random.default_rng(case["seed"])
    p_h = rng.standard_normal(case["shape"])
    m_h, v_h = numpy.zeros_like(p_h), numpy.zeros_like(p_h)
    param, m, v = to_device(p_h.copy()), to_device(m_h.copy()), to_device(v_h.copy())
    for t in range(1, case["steps"] + 1):
        g_h = rng.standard_normal(case["shape"])
        before = to_numpy(param).copy()
        bias1, bias2 = 1 - beta1 ** t, 1 - beta2 ** t
        impl.adam_update(param, to_device(g_h), m, v, beta1, 1 - beta1, beta2, 1 - beta2,
                         lr / bias1, math.sqrt(bias2), eps)
        # The textbook version, one line per formula.
        m_h = beta1 * m_h + (1 - beta1) * g_h
        v_h = beta2 * v_h + (1 - beta2) * g_h ** 2
        m_hat, v_hat = m_h / bias1, v_h / bias2
        p_h = p_h - lr * m_hat / (numpy.sqrt(v_hat) + eps)
        if numpy.array_equal(to_numpy(param), before):
            raise KernelCheckFailed(f"adam_update did not change param at step {t} ({where}): "
                                    f"update param, m and v in place (param -= ..., m *= ...)")
        at = f"{where}, after step {t}"
        compare("adam_update", "m", m, m_h, at, rtol=1e-9, atol=1e-12)
        compare("adam_update", "v", v, v_h, at, rtol=1e-9, atol=1e-12)
        compare("adam_update", "param", param, p_h, at, rtol=1e-9, atol=1e-12)
