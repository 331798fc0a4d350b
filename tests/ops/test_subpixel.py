"""Sub-pixel convolution: a transposed convolution needs no scatter-add.

A convolution's input gradient (which is a transposed convolution) is usually written with
col2im, which adds every window's gradient back where the window came from, overlaps and all:

    dx = col2im(to_rows(dy) @ weight_matrix(w).T)

Split the input pixels by their *phase* (h mod S, w mod S) and each phase turns out to be an
ordinary stride-1 convolution of dy with T x T taps of w, T = ceil(K / S). All S*S of them read
the same windows of dy, so they are one matrix product; a pixel shuffle then puts each phase's
block in its place, and no two blocks touch the same pixel. The tests show:

* ``conv2d_input_grad_subpixel`` gives the same numbers as the col2im formula, for every
  geometry drawn: S dividing K or not, trailing pixels that no window reaches, and rectangular
  kernels, strides and paddings (the phases then split per axis);
* ``phase_weight_matrix`` holds exactly the taps its docstring promises (a worked example for
  K = 4, S = 2), with zeros for the taps past K when S does not divide K (K = 3, S = 2);
* the dtype is kept, and the result has channels-last memory, like every convolution output
  (for both fast ways: ``test_input_grad_fast.py``);
* a dy of the wrong shape is a clear error, not a broadcasting failure deep inside (for both
  fast ways: ``test_input_grad_fast.py``).
"""

from __future__ import annotations

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from minigan.backend import to_device, to_numpy
from minigan.ops import fast_kernels
from minigan.ops.conv2d import conv2d_input_grad
from minigan.ops.im2col import output_shape
from minigan.ops.layout import channels_last_view, to_rows
from minigan.ops.subpixel import conv2d_input_grad_subpixel, phase_weight_matrix
from tests.helpers import conv_geometries, random_array


def case(x, w, stride, padding, seed=0):
    return dict(x=x, w=w, stride=stride, padding=padding, seed=seed)


def plain_input_grad(dy, w, x_shape, stride, padding):
    """The definition, col2im(to_rows(dy) @ weight_matrix(w).T): every window's gradient, added
    back where the window came from. It is the plain body of ``conv2d_input_grad``."""
    with fast_kernels(False):
        return conv2d_input_grad(dy, w, x_shape, stride, padding)


def make_dy_and_w(geometry, dtype=np.float64, channels_last=False):
    """A random gradient at the output of the convolution, and random weights."""
    rng = np.random.default_rng(geometry["seed"])
    N, F = geometry["x"][0], geometry["w"][0]
    y_shape = (N, F, *output_shape(geometry["x"], geometry["w"][2:], geometry["stride"],
                                   geometry["padding"]))
    dy = random_array(rng, y_shape, dtype=dtype)
    if channels_last:   # the layout dy has when it comes from a convolution or batch norm
        dy = channels_last_view(to_rows(dy), y_shape)
    return dy, random_array(rng, geometry["w"], dtype=dtype)


# The examples pin down the corners hypothesis might not draw in 20 tries:
@example(case((1, 2, 6, 6), (2, 2, 3, 3), 2, 0), False)   # S does not divide K; (6-3) % 2 = 1:
                                                          # the last row and column get nothing
@example(case((1, 1, 7, 5), (1, 1, 1, 1), 3, 0), False)   # K < S: phases 1, 2 get no tap at all
@example(case((2, 3, 8, 8), (3, 3, 4, 4), 2, 1), True)    # the DCGAN layer: K = 4, S = 2, P = 1
@example(case((1, 1, 3, 4), (2, 1, 5, 5), 3, 2), False)   # K = 5, S = 3: T = 2, a tap past K
@example(case((1, 2, 1, 1), (1, 2, 1, 1), 1, 2), False)   # P >= K: windows of padding only
@example(case((1, 2, 5, 9), (3, 2, 1, 7), 1, (0, 3)), True)      # Inception-v3's 1 x 7 layer
@example(case((1, 2, 7, 6), (2, 2, 3, 4), (2, 3), (1, 0)), False)   # T = (2, 2), per axis
@given(st.booleans().flatmap(
    lambda rectangular: conv_geometries(max_kernel=5, max_size=9, rectangular=rectangular)),
    st.booleans())
def test_subpixel_equals_the_col2im_definition(geometry, channels_last):
    dy, w = make_dy_and_w(geometry, channels_last=channels_last)
    S, P = geometry["stride"], geometry["padding"]
    dx = conv2d_input_grad_subpixel(dy, w, geometry["x"], S, P)
    assert dx.shape == geometry["x"]
    np.testing.assert_allclose(to_numpy(dx), to_numpy(plain_input_grad(dy, w, geometry["x"], S, P)),
                               rtol=1e-12, atol=1e-12)


def expected_phase_matrix(w: np.ndarray, S: int) -> np.ndarray:
    """The docstring's formula, one entry at a time:

    w_phase[(t', u', f), (a, b, c)] = w[f, c, a + S*(T-1-t'), b + S*(T-1-u')], 0 past K.
    Rows run over (t', u', f) and columns over (a, b, c), the last index fastest.
    """
    F, C, K, _ = w.shape
    T = -(-K // S)
    out = np.zeros((T * T * F, S * S * C))
    for t in range(T):
        for u in range(T):
            for f in range(F):
                for a in range(S):
                    for b in range(S):
                        for c in range(C):
                            i, j = a + S * (T - 1 - t), b + S * (T - 1 - u)
                            if i < K and j < K:
                                out[(t * T + u) * F + f, (a * S + b) * C + c] = w[f, c, i, j]
    return out


def numbered_weights(F, C, K):
    """w[f, c, i, j] = a different number for each entry, so that each one can be traced."""
    return np.arange(F * C * K * K, dtype=np.float64).reshape(F, C, K, K) + 1


def test_phase_weight_matrix_worked_example_k4_s2():
    """The DCGAN layer, K = 4 and S = 2: T = ceil(4 / 2) = 2 taps per phase in each direction.

    Even input rows (phase a = 0) receive the kernel rows 0 and 2, odd rows (a = 1) the rows 1
    and 3; likewise for columns. Every tap of w lands in exactly one place.
    """
    F, C, K, S, T = 2, 3, 4, 2, 2
    w = numbered_weights(F, C, K)
    w_phase = to_numpy(phase_weight_matrix(to_device(w), S))
    assert w_phase.shape == (T * T * F, S * S * C) == (8, 12)

    # One entry by hand: window row t' = 0, column u' = 1, filter f = 1; phase (a, b) = (1, 0),
    # channel c = 2. Row (t', u', f) = (0 * T + 1) * F + 1 = 3, column (a, b, c) =
    # (1 * S + 0) * C + 2 = 8; the tap is w[f, c, a + S*(T-1-t'), b + S*(T-1-u')] = w[1, 2, 3, 0].
    assert w_phase[3, 8] == w[1, 2, 3, 0]

    np.testing.assert_array_equal(w_phase, expected_phase_matrix(w, S))
    # S divides K: no zero taps, each of the F*C*K*K weights appears exactly once.
    assert sorted(w_phase.ravel()) == sorted(w.ravel())


def test_phase_weight_matrix_taps_past_k_are_zero():
    """K = 3, S = 2: T = 2, so the taps run up to i = a + S*(T-1) = 3, one past K - 1 = 2.

    Odd rows (a = 1) would take kernel rows 1 and 3; there is no row 3, so that tap is 0.
    Of the (S*T)**2 = 16 taps per (f, c), 16 - 9 = 7 are zeros.
    """
    F, C, K, S, T = 1, 2, 3, 2, 2
    w = numbered_weights(F, C, K)
    w_phase = to_numpy(phase_weight_matrix(to_device(w), S))
    assert w_phase.shape == (T * T * F, S * S * C) == (4, 8)
    np.testing.assert_array_equal(w_phase, expected_phase_matrix(w, S))

    # Row (t', u', f) = (0, 0, 0) pairs with taps i = a + 2, j = b + 2: only phase (0, 0)
    # reaches a real tap, w[0, c, 2, 2]; phases (0, 1), (1, 0) and (1, 1) fall past K.
    for c in range(C):
        assert w_phase[0, (0 * S + 0) * C + c] == w[0, c, 2, 2]
        for a, b in [(0, 1), (1, 0), (1, 1)]:
            assert w_phase[0, (a * S + b) * C + c] == 0
    assert np.count_nonzero(w_phase == 0) == 7 * F * C
    assert sorted(w_phase[w_phase != 0]) == sorted(w.ravel())
