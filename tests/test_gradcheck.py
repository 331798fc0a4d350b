"""The gradient checker itself: it must pass a right backward pass and catch a wrong one.

A test that cannot fail proves nothing, so before trusting ``minigan.gradcheck`` on the real
kernels we check it on functions whose derivative we know, including a deliberately broken one.
"""

import numpy as np
import pytest

from minigan.backend import to_device
from minigan.gradcheck import check_op, gradcheck, numerical_gradient


def square_forward(x):
    return x * x, x


def square_backward(dy, cache):
    return 2 * cache * dy


def wrong_square_backward(dy, cache):
    return 1.9 * cache * dy  # a 5% mistake, the kind a typo makes


def test_numerical_gradient_of_a_known_function():
    x = to_device(np.array([[1.0, -2.0], [0.5, 3.0]]))
    dy = to_device(np.ones((2, 2)))
    grad = numerical_gradient(lambda: x ** 3, x, dy)
    np.testing.assert_allclose(grad, 3 * np.array([[1.0, -2.0], [0.5, 3.0]]) ** 2, rtol=1e-8)


@pytest.mark.parametrize("mode", ["elementwise", "directional"])
def test_right_backward_passes(mode):
    x = to_device(np.random.default_rng(0).standard_normal((3, 4)))
    assert check_op(square_forward, square_backward, x, check_options={"mode": mode}) < 1e-8


@pytest.mark.parametrize("mode", ["elementwise", "directional"])
def test_wrong_backward_is_caught(mode):
    x = to_device(np.random.default_rng(0).standard_normal((3, 4)))
    assert check_op(square_forward, wrong_square_backward, x,
                    check_options={"mode": mode}) > 1e-2


def test_float32_is_refused():
    x = to_device(np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda: x * x, lambda dy: [2 * x * dy], [x])


def test_inputs_are_restored_after_checking():
    x = to_device(np.random.default_rng(1).standard_normal(5))
    before = np.array(x.tolist())
    check_op(square_forward, square_backward, x, check_options={"mode": "elementwise"})
    check_op(square_forward, square_backward, x, check_options={"mode": "directional"})
    np.testing.assert_allclose(np.array(x.tolist()), before, atol=1e-12)
