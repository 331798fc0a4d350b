"""Optimizers: the first Adam steps equal the closed form, and state round-trips exactly.

With a constant gradient g, Adam's bias-corrected moments are exactly m_hat = g and
v_hat = g**2 at every step, so each step moves a parameter by lr * g / (|g| + eps): about lr in
the direction of -sign(g), whatever the size of g. That is Adam's scale invariance, and a
closed form we can test against.
"""

import numpy as np

from minigan.backend import to_device, to_numpy
from minigan.nn import Parameter
from minigan.optim import SGD, Adam


def make_param(values):
    return Parameter(to_device(np.asarray(values, dtype=np.float64)))


def test_adam_first_steps_match_the_closed_form():
    p = make_param([1.0, -2.0, 3.0])
    g = np.array([0.5, -1e-3, 20.0])
    opt = Adam([p], lr=0.1, betas=(0.5, 0.999), eps=1e-8)
    expected = np.array([1.0, -2.0, 3.0])
    for _ in range(3):
        p.grad[...] = to_device(g)
        opt.step()
        expected -= 0.1 * g / (np.abs(g) + 1e-8)
        np.testing.assert_allclose(to_numpy(p.data), expected, rtol=1e-12)


def test_adam_matches_a_hand_computed_sequence_with_changing_gradients():
    p = make_param([0.0])
    opt = Adam([p], lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    m = v = 0.0
    x = 0.0
    for t, g in enumerate([1.0, -0.5, 2.0, 0.25], start=1):
        p.grad[...] = g
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        x -= 0.01 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        np.testing.assert_allclose(float(p.data[0]), x, rtol=1e-12)


def test_adam_weight_decay_adds_l2_gradient():
    p = make_param([2.0])
    opt = Adam([p], lr=0.1, weight_decay=0.5)
    p.grad[...] = 0.0   # the only gradient is weight_decay * p = 1.0
    opt.step()
    np.testing.assert_allclose(float(p.data[0]), 2.0 - 0.1 * 1.0 / (1.0 + 1e-8), rtol=1e-12)


def test_sgd_with_momentum():
    p = make_param([1.0])
    opt = SGD([p], lr=0.1, momentum=0.9)
    p.grad[...] = 1.0
    opt.step()   # v = 1, p = 0.9
    opt.step()   # v = 1.9, p = 0.71
    np.testing.assert_allclose(float(p.data[0]), 0.71, rtol=1e-12)


def test_state_dict_resumes_exactly():
    rng = np.random.default_rng(0)
    grads = rng.standard_normal((6, 4))
    a, b = make_param(np.zeros(4)), make_param(np.zeros(4))
    opt_a, opt_b = Adam([a], lr=0.01), Adam([b], lr=0.01)
    for g in grads[:3]:
        a.grad[...] = to_device(g)
        opt_a.step()
    # b continues from a's saved state, as a resumed run would.
    b.data[...] = a.data
    opt_b.load_state_dict(opt_a.state_dict())
    for g in grads[3:]:
        a.grad[...] = to_device(g)
        b.grad[...] = to_device(g)
        opt_a.step()
        opt_b.step()
    np.testing.assert_array_equal(to_numpy(a.data), to_numpy(b.data))
    assert opt_b.step_count == 6


def test_zero_grad():
    p = make_param([1.0, 2.0])
    p.grad[...] = 5.0
    Adam([p]).zero_grad()
    assert np.all(to_numpy(p.grad) == 0)
