"""conv_transpose2d: the adjoint of conv2d, checked three ways.

A transposed convolution stamps a scaled copy of the kernel at every input pixel, S pixels
apart, and adds the overlaps. That is exactly how a convolution sends its output gradient back
to its input, so:

* the kernel, fast and plain, agrees with ``conv_transpose2d_forward_reference`` and
  ``conv_transpose2d_backward_reference``, plain loops that stamp kernels, and its output size
  follows H_out = (H - 1) * S - 2P + K + output_padding, per axis (square and rectangular
  kernels, strides, paddings and output paddings are drawn);
* it is the adjoint of conv2d with the same weights:
  ``<conv2d(x, w), y> == <x, conv_transpose2d(y, w)>`` for every x and y;
* its backward pass agrees with finite differences (``helper_test_op`` checks these two in one
  line), and its input gradient *is* conv2d's forward pass.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from minigan.backend import to_numpy
from minigan.exercises import cases
from minigan.ops.conv2d import conv2d_backward, conv2d_forward
from minigan.ops.conv_transpose2d import (
    ConvTranspose2dCache,
    conv_transpose2d_backward,
    conv_transpose2d_forward,
)
from minigan.ops.im2col import pair
from tests.helpers import conv_geometries, helper_test_op, random_array


@st.composite
def conv_transpose_cases(draw, rectangular: bool | None = None):
    """x (N, C_in, H, W), w (C_in, C_out, KH, KW), stride, padding and output_padding < stride.

    The exercises' own cases (``minigan.exercises.cases.conv_transpose_cases``): square (ints),
    or rectangular ((h, w) pairs: the H numbers from one case, the W numbers from another), as
    hypothesis chooses unless ``rectangular`` says.
    """
    if rectangular is None:
        rectangular = draw(st.booleans())
    rows = draw(cases.conv_transpose_cases())
    cols = draw(cases.conv_transpose_cases()) if rectangular else rows
    (N, C_in, H, _), (_, C_out, KH, _) = rows["x"], rows["w"]
    W, KW = cols["x"][3], cols["w"][3]
    per_axis = {key: (rows[key], cols[key]) if rectangular else rows[key]
                for key in ("stride", "padding", "output_padding")}
    return dict(x=(N, C_in, H, W), w=(C_in, C_out, KH, KW), **per_axis, seed=rows["seed"])


def make_inputs(case, bias=True, dtype=np.float64):
    rng = np.random.default_rng(case["seed"])
    x = random_array(rng, case["x"], dtype=dtype)
    w = random_array(rng, case["w"], dtype=dtype)
    b = random_array(rng, case["w"][1:2], dtype=dtype) if bias else None
    return x, w, b


def options(case):
    return dict(stride=case["stride"], padding=case["padding"],
                output_padding=case["output_padding"])


@given(conv_transpose_cases(), st.booleans())
def test_kernel_matches_its_reference_and_finite_differences(case, bias):
    """Forward and backward, fast and plain kernels, against the stamping loops of
    ``minigan.ops.reference`` and against central differences."""
    x, w, b = make_inputs(case, bias=bias)
    helper_test_op("conv_transpose2d", x, w, b, **options(case))


@given(conv_transpose_cases())
def test_output_size_follows_the_rule_per_axis(case):
    x, w, b = make_inputs(case)
    y, _ = conv_transpose2d_forward(x, w, b, **options(case))
    N, _, H, W = case["x"]
    _, C_out, KH, KW = case["w"]
    (SH, SW), (PH, PW) = pair(case["stride"]), pair(case["padding"])
    OH, OW = pair(case["output_padding"])
    # The rule as the exercises spell it, independently of the kernel's own helper.
    assert y.shape == (N, C_out, cases.transposed_output_size(H, KH, SH, PH, OH),
                       cases.transposed_output_size(W, KW, SW, PW, OW))


@st.composite
def adjoint_cases(draw):
    """A conv2d geometry, plus the output_padding that makes its transpose map back to H x W."""
    case = draw(conv_geometries())
    (_, _, H, W), K, S, P = case["x"], case["w"][2], case["stride"], case["padding"]
    # conv2d maps S different sizes to the same H_out; output_padding says which one to go back to.
    assume((H + 2 * P - K) % S == (W + 2 * P - K) % S)
    return dict(case, output_padding=(H + 2 * P - K) % S)


@given(adjoint_cases())
def test_conv_transpose2d_is_the_adjoint_of_conv2d(case):
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)>, with no bias and the same weights.

    w is (F, C, K, K) for conv2d (out, in) and read as (C_in, C_out, K, K) = (F, C, K, K) by
    conv_transpose2d: PyTorch's two weight layouts are made so that the same array works."""
    rng = np.random.default_rng(case["seed"])
    x, w = random_array(rng, case["x"]), random_array(rng, case["w"])
    conv_x, _ = conv2d_forward(x, w, stride=case["stride"], padding=case["padding"])
    y = random_array(rng, conv_x.shape)
    conv_t_y, _ = conv_transpose2d_forward(y, w, **options(case))
    assert conv_t_y.shape == x.shape
    lhs = float(to_numpy(conv_x * y).sum())
    rhs = float(to_numpy(x * conv_t_y).sum())
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)


@given(adjoint_cases())
def test_each_op_backward_is_the_other_op_forward(case):
    """conv2d's input gradient is conv_transpose2d's forward, and the other way round."""
    rng = np.random.default_rng(case["seed"])
    x, w = random_array(rng, case["x"]), random_array(rng, case["w"])
    S, P = case["stride"], case["padding"]
    y, conv_cache = conv2d_forward(x, w, stride=S, padding=P)
    g = random_array(rng, y.shape)          # a gradient at conv2d's output = an input of convT

    dx_conv, _, _ = conv2d_backward(g, conv_cache)
    convt_g, convt_cache = conv_transpose2d_forward(g, w, **options(case))
    np.testing.assert_allclose(to_numpy(dx_conv), to_numpy(convt_g), rtol=1e-12, atol=1e-12)

    h = random_array(rng, convt_g.shape)    # a gradient at convT's output = an input of conv2d
    dg_convt, _, _ = conv_transpose2d_backward(h, convt_cache)
    conv_h, _ = conv2d_forward(h, w, stride=S, padding=P)
    np.testing.assert_allclose(to_numpy(dg_convt), to_numpy(conv_h), rtol=1e-12, atol=1e-12)


@given(conv_transpose_cases())
def test_skipping_the_weight_gradient_gives_the_same_input_gradient(case):
    x, w, b = make_inputs(case)
    y, cache = conv_transpose2d_forward(x, w, b, **options(case))
    dy = random_array(np.random.default_rng(0), y.shape)
    dx, _, _ = conv_transpose2d_backward(dy, cache)
    dx_only, no_dw, no_db = conv_transpose2d_backward(dy, cache, need_weight_grad=False)
    assert no_dw is None and no_db is None
    np.testing.assert_array_equal(to_numpy(dx_only), to_numpy(dx))


def test_dcgan_upsampling_doubles_the_size():
    """The DCGAN generator's layer: kernel 4, stride 2, padding 1 maps H to exactly 2H."""
    x, w, b = make_inputs(dict(x=(2, 8, 4, 4), w=(8, 3, 4, 4), seed=0))
    y, cache = conv_transpose2d_forward(x, w, b, stride=2, padding=1)
    assert isinstance(cache, ConvTranspose2dCache)
    assert y.shape == (2, 3, 8, 8)
    dx, dw, db = conv_transpose2d_backward(random_array(np.random.default_rng(1), y.shape), cache)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_in_is_dtype_out(dtype):
    x, w, b = make_inputs(dict(x=(2, 4, 3, 3), w=(4, 3, 4, 4), seed=0), dtype=dtype)
    y, cache = conv_transpose2d_forward(x, w, b, stride=2, padding=1)
    dx, dw, db = conv_transpose2d_backward(random_array(np.random.default_rng(1), y.shape, dtype),
                                           cache)
    assert y.dtype == dx.dtype == dw.dtype == db.dtype == dtype


def test_output_padding_must_be_smaller_than_the_stride():
    x, w, _ = make_inputs(dict(x=(1, 2, 3, 3), w=(2, 2, 3, 3), seed=0))
    with pytest.raises(ValueError, match="output_padding"):
        conv_transpose2d_forward(x, w, stride=2, output_padding=2)


@pytest.mark.parametrize("op, x_shape, w_shape, b_shape, options, message", [
    ("conv2d", (1, 3, 5, 5), (2, 4, 3, 3), None, {}, r"x has 3 channels but w \(F, C, KH, KW\)"),
    ("conv_transpose2d", (1, 3, 3, 3), (4, 2, 3, 3), None, {},
     r"x has 3 channels but w \(C_in, C_out, KH, KW\)"),
    ("conv2d", (1, 3, 5, 5), (2, 3, 3, 3), (3,), {}, r"b must have shape \(2,\)"),
    ("conv_transpose2d", (1, 3, 3, 3), (3, 2, 3, 3), (3,), {}, r"b must have shape \(2,\)"),
    ("conv2d", (1, 3, 5, 5), (2, 3, 3, 3), None, {"stride": 0}, "conv2d needs stride >= 1"),
    ("conv_transpose2d", (1, 3, 3, 3), (3, 2, 3, 3), None, {"padding": (0, -1)},
     "conv_transpose2d needs stride >= 1, padding >= 0"),
    ("conv2d", (3, 5, 5), (2, 3, 3, 3), None, {}, r"conv2d expects x \(N, C, H, W\)"),
])
def test_both_convolutions_check_their_arguments_in_one_place(op, x_shape, w_shape, b_shape,
                                                              options, message):
    """conv2d and conv_transpose2d share check_conv_args: the same rules, the same sentences,
    read with each op's weight layout."""
    from minigan import ops

    rng = np.random.default_rng(0)
    x, w = random_array(rng, x_shape), random_array(rng, w_shape)
    b = random_array(rng, b_shape) if b_shape else None
    with pytest.raises(ValueError, match=message):
        getattr(ops, f"{op}_forward")(x, w, b, **options)
