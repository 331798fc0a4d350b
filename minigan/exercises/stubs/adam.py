"""Exercise: one step of Adam for one parameter, in place.

Adam keeps two running averages per parameter, of the gradient (m) and of its square (v):

    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g**2
    m_hat = m / (1 - beta1**t);  v_hat = v / (1 - beta2**t)     (t: the step count, from 1)
    param = param - lr * m_hat / (sqrt(v_hat) + eps)

m and v start at 0, so early on they are biased towards 0; dividing by 1 - beta**t undoes that.
``minigan.optim.Adam.step`` calls this function once per parameter with the scalars already
worked out, so that nothing here depends on t. The grader runs a few steps and compares param,
m and v with the formulas above after each one.
"""

from __future__ import annotations

from typing import Any

Array = Any


def adam_update(param, grad, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2,
                step_size, sqrt_bias2, eps):
    """One Adam update of one parameter, in place: the formulas of this file's docstring.

    param, grad, m, v: arrays of the same shape (param, m and v are updated in place)
    With bias1 = 1 - beta1**t and bias2 = 1 - beta2**t, the caller passes
    step_size = lr / bias1 and sqrt_bias2 = sqrt(bias2), so that
        param -= lr * m_hat / (sqrt(v_hat) + eps)
    is written as PyTorch writes it, as step_size * m / (sqrt(v) / sqrt_bias2 + eps).
    Returns nothing.
    """
    # Hint: "in place" means writing into the arrays you were given; a new local array is
    # never seen by the optimizer.
    raise NotImplementedError("adam_update: write me")
