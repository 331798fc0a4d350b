"""Fused kernels: checking, without a GPU, that each body is one cupy.fuse can compile.

``minigan.backend.fuse`` turns a small Python function (Adam's update, batch norm's
normalise-scale-shift, ...) into a single GPU kernel by *tracing* it: CuPy calls the function once
with stand-in objects that record every operator applied to them. Those stand-ins support
arithmetic, comparison and in-place operators, ``.dtype`` and ``.astype``, and nothing else. On
the CPU the same functions run on NumPy arrays, which accept far more, so a body could pass every
other test here and still fail to compile on a GPU.

``Traced`` below is a stand-in with the same limits, holding a NumPy value so that the result can
be compared with a plain run. It refuses NumPy functions (``np.sqrt(t)``), attributes such as
``.shape``, arithmetic between two scalars (CuPy's tracer types those on its own rules, and a
float32 update can silently become float64), and any operation that changes the dtype.
The GPU test at the end compares each fused kernel with its unfused body on CuPy arrays.
"""

from __future__ import annotations

import operator

import numpy as np
import pytest

import minigan.ops  # noqa: F401  (importing the kernels registers their fused functions)
import minigan.optim  # noqa: F401
from minigan import backend


class Traced:
    """A stand-in for CuPy's tracing variable: operators only, on a NumPy array or scalar."""

    __array_ufunc__ = None  # NumPy functions refuse it, as they would refuse CuPy's stand-in

    def __init__(self, value):
        self.value = value

    @property
    def dtype(self):
        return self.value.dtype

    @property
    def is_scalar(self):
        return np.ndim(self.value) == 0

    def astype(self, dtype):
        return Traced(self.value.astype(dtype))

    def _apply(self, other, op, reflected=False):
        other_value = other.value if isinstance(other, Traced) else other
        other_is_scalar = not isinstance(other, Traced) or other.is_scalar
        if self.is_scalar and other_is_scalar:
            raise TypeError("arithmetic between two scalars inside a fused function: "
                            "compute it outside and pass the result")
        a, b = (other_value, self.value) if reflected else (self.value, other_value)
        result = op(a, b)
        if self.dtype != np.bool_ and result.dtype not in (self.dtype, np.bool_):
            raise TypeError(f"{op.__name__} turns {self.dtype} into {result.dtype}")
        return Traced(result)

    def _apply_in_place(self, other, op):
        if self.is_scalar:
            raise TypeError("in-place operator on a scalar inside a fused function")
        self.value[...] = self._apply(other, op).value
        return self


def _binary(op):
    return lambda self, other: self._apply(other, op)


def _reflected(op):
    return lambda self, other: self._apply(other, op, reflected=True)


def _in_place(op):
    return lambda self, other: self._apply_in_place(other, op)


# The operators a fused body may use, each one defined through _apply: a loop instead of twenty
# methods that differ only in the operator (Traced.__add__ = _binary(operator.add), ...).
for _name, _op in [("add", operator.add), ("sub", operator.sub), ("mul", operator.mul),
                   ("truediv", operator.truediv), ("pow", operator.pow)]:
    setattr(Traced, f"__{_name}__", _binary(_op))
    setattr(Traced, f"__r{_name}__", _reflected(_op))
    setattr(Traced, f"__i{_name}__", _in_place(_op))
for _name, _op in [("gt", operator.gt), ("ge", operator.ge), ("lt", operator.lt),
                   ("le", operator.le)]:
    setattr(Traced, f"__{_name}__", _binary(_op))
Traced.__neg__ = lambda self: Traced(-self.value)


def run_traced(function, args):
    """Call ``function`` on Traced stand-ins of ``args``; return its outputs as NumPy values."""
    result = function(*[Traced(a) for a in args])
    if result is None:
        return ()
    outputs = result if isinstance(result, tuple) else (result,)
    assert all(isinstance(o, Traced) for o in outputs), "a fused function must return arrays"
    return tuple(o.value for o in outputs)


# One example call for every fused function: arrays of float32 and scalars already float32,
# as the kernels pass them. A new fused function needs an entry here (see the first test).
def _examples(rng):
    f32 = np.float32

    def array(*shape):
        return rng.standard_normal(shape).astype(f32)

    rows, channels = array(12, 5), 5
    return {
        "adam_update": (array(6, 4), array(6, 4), array(6, 4), np.abs(array(6, 4)),
                        f32(0.5), f32(0.5), f32(0.999), f32(0.001), f32(4e-4), f32(0.03),
                        f32(1e-8)),
        "normalize_scale_shift": (rows, np.abs(array(channels)) + 1, array(channels),
                                  array(channels)),
        "input_grad_from_sums": (array(12, 5), rows, array(channels), np.abs(array(channels)),
                                 array(channels), array(channels), f32(12)),
        "leaky_relu_and_slope": (array(2, 3, 4, 4), f32(0.2), f32(0.8)),
        "normalize_scale_shift_relu": (rows, np.abs(array(channels)) + 1, array(channels),
                                       array(channels)),
        "normalize_scale_shift_leaky_relu": (rows, np.abs(array(channels)) + 1,
                                             array(channels), array(channels), f32(0.2),
                                             f32(0.8)),
        "input_grad_through_slope": (np.where(array(12, 5) > 0, f32(1), f32(0.2)),
                                     array(12, 5), rows, array(channels),
                                     np.abs(array(channels)), array(channels), array(channels),
                                     f32(12)),
        "relu_gradient": (array(2, 3, 4, 4), np.maximum(array(2, 3, 4, 4), 0)),
        "tanh_gradient": (array(2, 3, 4, 4), np.tanh(array(2, 3, 4, 4))),
        "centered_and_squares": (rows, array(channels)),
        "eval_scale_shift": (rows, array(channels), np.abs(array(channels)), array(channels),
                             array(channels)),
        "variance_and_inv_std": (np.abs(array(channels)) * 12, f32(12), f32(1e-5)),
        "variance_inv_std_and_running_stats": (
            np.abs(array(channels)) * 12, f32(12), f32(1e-5), array(channels),
            np.abs(array(channels)), array(channels), f32(0.9), f32(0.1), f32(12 / 11)),
        "blend_running_stats": (array(channels), np.abs(array(channels)), array(channels),
                                np.abs(array(channels)), f32(0.9), f32(0.1), f32(12 / 11)),
        "blend_running_stats_twice": (array(channels), np.abs(array(channels)),
                                      array(channels), np.abs(array(channels)),
                                      array(channels), np.abs(array(channels)), f32(0.9),
                                      f32(0.1), f32(12 / 11)),
        # gradients added in place into two .grad arrays (a batch norm's gamma and beta)
        "add_gamma_and_beta_gradients": (array(channels), array(channels), array(channels),
                                         array(channels)),
        "add_two_groups_gradients": (array(channels), array(channels), array(channels),
                                     array(channels), array(channels), array(channels)),
        # A number as the target (the trainer's labels), then an array of targets.
        "bce_terms": (array(8, 1), f32(0.9), np.abs(array(8, 1))),
        "bce_gradient": (array(8, 1), (array(8, 1) > 0).astype(f32), np.exp(-np.abs(array(8, 1))),
                         f32(1 / 8)),
        "negative_abs": (array(8, 1),),
    }


def _copy(a):
    return a.copy() if isinstance(a, np.ndarray) else a   # scalars stay scalars


# minigan's own (a test module may define one of its own: tests/test_opcount.py does)
FUSED = {f.__name__: f for f in backend.FUSED_FUNCTIONS if f.__module__.startswith("minigan.")}


def test_every_fused_function_has_an_example():
    assert set(FUSED) == set(_examples(np.random.default_rng(0)))


@pytest.mark.parametrize("name", sorted(FUSED))
def test_fused_body_uses_only_what_cupy_fuse_traces(name):
    """Traced stand-ins and plain NumPy arrays give exactly the same outputs and updates."""
    args = _examples(np.random.default_rng(1))[name]
    plain_args = [_copy(a) for a in args]
    traced_args = [_copy(a) for a in args]
    plain = FUSED[name].__wrapped__(*plain_args)
    plain = () if plain is None else plain if isinstance(plain, tuple) else (plain,)

    traced = run_traced(FUSED[name].__wrapped__, traced_args)

    assert len(traced) == len(plain)
    for t, p in zip(traced, plain):
        assert t.dtype == p.dtype == np.float32
        np.testing.assert_array_equal(t, p)
    for t, p in zip(traced_args, plain_args):   # arguments updated in place (Adam's m, v, param)
        np.testing.assert_array_equal(t, p)


def test_fused_adam_update_changes_param_m_and_v_in_place():
    param, grad, m, v, *scalars = _examples(np.random.default_rng(2))["adam_update"]
    before = [a.copy() for a in (param, grad, m, v)]
    assert FUSED["adam_update"](param, grad, m, v, *scalars) is None
    for changed, old in zip((param, m, v), before[:1] + before[2:]):
        assert not np.array_equal(changed, old)
    np.testing.assert_array_equal(grad, before[1])


@pytest.mark.parametrize("body", [
    lambda x, s: np.sqrt(x),          # a NumPy function: the tracer only knows operators
    lambda x, s: x * (1 - s),         # scalar arithmetic inside the kernel
    lambda x, s: x * 0.5 if x.shape else x,   # reading the shape
    lambda x, s: x * np.float64(2),   # promotes float32 to float64
])
def test_traced_refuses_what_cupy_fuse_cannot_compile(body):
    x = np.ones((3, 2), np.float32)
    with pytest.raises((TypeError, AttributeError)):
        run_traced(body, (x, np.float32(0.2)))


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(FUSED))
def test_fused_kernel_matches_its_unfused_body_on_cupy(name):
    cupy = backend._import_cupy()
    args = _examples(np.random.default_rng(3))[name]
    on_gpu = [cupy.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
    fused_args = [cupy.copy(a) if isinstance(a, cupy.ndarray) else a for a in on_gpu]
    plain_args = [cupy.copy(a) if isinstance(a, cupy.ndarray) else a for a in on_gpu]

    fused = FUSED[name](*fused_args)                 # one compiled kernel
    plain = FUSED[name].__wrapped__(*plain_args)     # the same lines as separate CuPy calls

    fused = () if fused is None else fused if isinstance(fused, tuple) else (fused,)
    plain = () if plain is None else plain if isinstance(plain, tuple) else (plain,)
    for f, p in list(zip(fused, plain)) + list(zip(fused_args, plain_args)):
        if isinstance(f, cupy.ndarray):
            assert f.dtype == p.dtype
            # A fused kernel may contract a * b + c into one rounding (FMA): equal to float32
            # rounding, not bit for bit.
            np.testing.assert_allclose(cupy.asnumpy(f), cupy.asnumpy(p), rtol=1e-6, atol=1e-6)
