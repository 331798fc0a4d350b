"""Optimizers: the first Adam steps equal the closed form, and state round-trips exactly.

With a constant gradient g, Adam's bias-corrected moments are exactly m_hat = g and
v_hat = g**2 at every step, so each step moves a parameter by lr * g / (|g| + eps): about lr in
the direction of -sign(g), whatever the size of g. That is Adam's scale invariance, and a
closed form we can test against.
"""

import numpy as np
import pytest

from minigan.backend import to_device, to_numpy
from minigan.nn import Parameter
from minigan.optim import SGD, Adam, FlatAdam, flatten_parameters


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


# ---------------------------------------------------------------- FlatAdam: one flat buffer
# Adam and SGD update one parameter after another and leave the parameters' arrays alone.
# FlatAdam keeps every parameter as a view of one flat array (flatten_parameters), so that the
# update and zero_grad are one operation each (one kernel launch on a GPU) instead of one per
# parameter, with Adam's numbers bit for bit.

def make_params(rng, shapes=((3, 2), (4,), (2, 1, 2))):
    return [Parameter(to_device(rng.standard_normal(s))) for s in shapes]


def test_parameters_and_gradients_become_views_of_one_flat_array():
    params = make_params(np.random.default_rng(0))
    values = [to_numpy(p.data).copy() for p in params]
    opt = FlatAdam(params)
    assert opt.flat_data.shape == (6 + 4 + 4,)
    for p, v in zip(params, values):
        np.testing.assert_array_equal(to_numpy(p.data), v)        # values kept
    opt.flat_data[6:10] = 7.0            # the flat array and the parameter share memory
    np.testing.assert_array_equal(to_numpy(params[1].data), [7.0] * 4)
    params[1].grad[...] = 5.0            # written through the view ...
    np.testing.assert_array_equal(to_numpy(opt.flat_grad)[6:10], [5.0] * 4)   # ... lands here
    opt.zero_grad()
    assert not np.any(to_numpy(params[1].grad))


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_one_flat_update_equals_updating_each_parameter_on_its_own(weight_decay):
    rng = np.random.default_rng(1)
    params = make_params(rng)
    singles = [Parameter(p.data.copy()) for p in params]
    opt = FlatAdam(params, lr=0.01, betas=(0.5, 0.999), weight_decay=weight_decay)
    opts = [Adam([q], lr=0.01, betas=(0.5, 0.999), weight_decay=weight_decay)
            for q in singles]   # the plain loop, one optimizer per parameter
    for _ in range(3):
        for p, q in zip(params, singles):
            g = to_device(rng.standard_normal(p.shape))
            p.grad[...] = g
            q.grad[...] = g
        opt.step()
        for o in opts:
            o.step()
    for p, q in zip(params, singles):
        np.testing.assert_array_equal(to_numpy(p.data), to_numpy(q.data))   # bit for bit
    for i, o in enumerate(opts):
        np.testing.assert_array_equal(opt.state_dict()[f"m.{i}"], o.state_dict()["m.0"])


def test_step_and_zero_grad_are_one_array_operation_each():
    from minigan import backend
    from minigan.opcount import count_array_ops

    if backend.backend_name() != "numpy":
        pytest.skip("the counter counts on NumPy")
    with count_array_ops() as counter:
        params = make_params(np.random.default_rng(2), shapes=[(3, 3)] * 20)
        opt = FlatAdam(params)
        counter.reset()
        opt.zero_grad()
        assert counter.by_name == {"setitem": 1}
        counter.reset()
        opt.step()
        assert counter.by_name == {"adam_update": 1}


def test_a_replaced_parameter_array_is_gathered_again_before_the_next_step():
    """load_state_dict, Module.to and re-initialisation assign new arrays to p.data: the
    optimizer must update those, not its stale copies."""
    p, q = make_param([1.0, 2.0]), make_param([3.0])
    opt = FlatAdam([p, q], lr=0.1)
    p.data = to_device(np.array([10.0, 20.0]))      # as load_state_dict does
    p.grad[...] = 1.0
    q.grad[...] = 1.0
    opt.step()
    np.testing.assert_allclose(to_numpy(p.data), [10.0 - 0.1, 20.0 - 0.1], rtol=1e-7)
    np.testing.assert_allclose(to_numpy(q.data), [3.0 - 0.1], rtol=1e-7)
    p.data[...] = 0.0                                # a view again: the flat array sees it
    np.testing.assert_array_equal(to_numpy(opt.flat_data)[:2], [0.0, 0.0])


@pytest.mark.parametrize("optimizer", [Adam, FlatAdam])
def test_the_state_follows_a_dtype_change_of_the_model(optimizer):
    from minigan.nn import Linear

    layer = Linear(3, 2)
    opt = optimizer(layer.parameters(), lr=0.1)
    for p in layer.parameters():
        p.grad[...] = 1.0
    opt.step()
    layer.to(dtype=np.float64)                      # new arrays, float64
    for p in layer.parameters():
        p.grad[...] = 1.0
    opt.step()
    assert opt.state["m"][0].dtype == opt.state["v"][1].dtype == np.float64
    if optimizer is FlatAdam:
        assert opt.flat_data.dtype == opt.flat_state["m"].dtype == np.float64
    assert all(p.data.dtype == np.float64 for p in layer.parameters())
    # m = 0.9 * 0.1 + 0.1 * 1: the first step's m = 0.1 came along into float64
    np.testing.assert_allclose(to_numpy(opt.state["m"][0]), 0.19, rtol=1e-6)


def test_parameters_of_different_dtypes_cannot_share_a_flat_buffer():
    a = Parameter(to_device(np.zeros(2, np.float32)))
    b = Parameter(to_device(np.zeros(2, np.float64)))
    with pytest.raises(ValueError, match="FlatAdam: all parameters must share one dtype"):
        FlatAdam([a, b])
    opt = Adam([a, b], lr=0.1)            # the plain loop updates each in its own dtype
    a.grad[...], b.grad[...] = 1.0, 1.0
    opt.step()
    assert a.data.dtype == np.float32 and b.data.dtype == np.float64
    np.testing.assert_allclose(to_numpy(b.data), [-0.1, -0.1], rtol=1e-6)


def test_a_parameter_given_twice_has_one_place_and_moves_once():
    p, q = make_param([1.0]), make_param([1.0])
    with pytest.warns(UserWarning, match="more than once"):
        twice = FlatAdam([p, p], lr=0.1)
    once = FlatAdam([q], lr=0.1)
    assert twice.flat_data.shape == (1,)
    for opt, param in ((twice, p), (once, q)):
        param.grad[...] = 1.0
        opt.step()
    np.testing.assert_array_equal(to_numpy(p.data), to_numpy(q.data))


def test_plain_adam_leaves_the_parameters_arrays_alone_and_flat_adam_rebinds_them():
    params = make_params(np.random.default_rng(3))
    arrays = [(p.data, p.grad) for p in params]
    Adam(params).step()
    assert all(p.data is data and p.grad is grad for p, (data, grad) in zip(params, arrays))
    flat = FlatAdam(params)
    assert all(np.shares_memory(p.data, flat.flat_data) for p in params)


def test_flat_and_plain_adam_save_the_same_state_and_load_each_others():
    rng = np.random.default_rng(4)
    plain_params = make_params(rng)
    flat_params = [Parameter(p.data.copy()) for p in plain_params]
    plain, flat = Adam(plain_params, lr=0.01), FlatAdam(flat_params, lr=0.01)
    for p, q in zip(plain_params, flat_params):
        p.grad[...] = q.grad[...] = to_device(rng.standard_normal(p.shape))
    plain.step()
    flat.step()
    saved_plain, saved_flat = plain.state_dict(), flat.state_dict()
    assert saved_plain.keys() == saved_flat.keys()
    for key in saved_plain:
        np.testing.assert_array_equal(saved_plain[key], saved_flat[key])
    other = FlatAdam([Parameter(p.data.copy()) for p in plain_params], lr=0.01)
    other.load_state_dict(saved_plain)          # into the views of the flat state arrays
    np.testing.assert_array_equal(to_numpy(other.flat_state["m"]),
                                  np.concatenate([saved_plain[f"m.{i}"].ravel()
                                                  for i in range(3)]))


def test_flatten_parameters_is_the_named_mechanism():
    params = make_params(np.random.default_rng(5))
    values = [to_numpy(p.data).copy() for p in params]
    flat = flatten_parameters(params)
    assert flat.data.shape == flat.grad.shape == (6 + 4 + 4,)
    np.testing.assert_array_equal(to_numpy(flat.data),
                                  np.concatenate([v.ravel() for v in values]))
    assert flat.gather_if_replaced() is False
    params[0].data = params[0].data.copy()       # replaced: gathered again
    assert flat.gather_if_replaced() is True and np.shares_memory(params[0].data, flat.data)
