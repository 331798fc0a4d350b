"""Optimizers: SGD with momentum and Adam, following PyTorch's update rules.

An optimizer holds a list of Parameters; ``step()`` reads each ``p.grad`` and updates ``p.data``
in place. Its per-parameter state (momentum buffers, Adam's moments and step count) is exposed by
``state_dict()`` as plain NumPy arrays, so a checkpoint can store it and a resumed run continues
with exactly the same updates.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy

from minigan.backend import fuse, get_array_module, to_numpy
from minigan.nn.module import Parameter


class Optimizer:
    """Base class: the parameter list, ``zero_grad``, and saving per-parameter state."""

    state_names: tuple[str, ...] = ()  # names of the per-parameter arrays a subclass keeps

    def __init__(self, params: Iterable[Parameter]):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if len({id(p) for p in self.params}) < len(self.params):
            # As PyTorch warns: such a parameter would be updated twice per step.
            warnings.warn(f"{type(self).__name__} got a parameter more than once; each copy is "
                          f"updated, so it moves twice per step", UserWarning, stacklevel=3)
        self.state: dict[str, list[Any]] = {
            name: [get_array_module(p.data).zeros_like(p.data) for p in self.params]
            for name in self.state_names
        }
        self.step_count = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad[...] = 0

    def step(self) -> None:
        raise NotImplementedError

    def hyperparameters(self) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, numpy.ndarray]:
        """Step count, hyperparameters and every state array, as NumPy arrays keyed by name."""
        state = {"step": numpy.asarray(self.step_count)}
        state.update({k: numpy.asarray(v) for k, v in self.hyperparameters().items()})
        for name, arrays in self.state.items():
            for i, a in enumerate(arrays):
                state[f"{name}.{i}"] = to_numpy(a).copy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step"])
        for key in self.hyperparameters():
            setattr(self, key, float(state[key]))
        for name, arrays in self.state.items():
            for i, p in enumerate(self.params):
                saved = state[f"{name}.{i}"]
                if tuple(saved.shape) != p.shape:
                    raise ValueError(f"optimizer state {name}.{i} has shape {saved.shape}, "
                                     f"but parameter {i} has shape {p.shape}")
                arrays[i] = get_array_module(p.data).asarray(to_numpy(saved), dtype=p.dtype)


def _check_hyperparameters(optimizer: str, **values: float) -> None:
    """PyTorch's checks: each value must be 0 or more (``not 0 <= nan``, so NaN fails too)."""
    for name, value in values.items():
        if not 0.0 <= value < float("inf"):
            raise ValueError(f"{optimizer}: invalid {name} {value}: must be a finite number "
                             f">= 0")


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (PyTorch's form, no dampening):

        v = momentum * v + g;   p = p - lr * v        (with momentum = 0: p = p - lr * g)
    """

    state_names = ("velocity",)

    def __init__(self, params: Iterable[Parameter], lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        _check_hyperparameters("SGD", lr=lr, momentum=momentum, weight_decay=weight_decay)
        super().__init__(params)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay

    def hyperparameters(self) -> dict[str, float]:
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay}

    def step(self) -> None:
        self.step_count += 1
        for p, v in zip(self.params, self.state["velocity"]):
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.momentum:
                v *= self.momentum
                v += g
                g = v
            p.data -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as ``torch.optim.Adam``. For each parameter:

        g = grad + weight_decay * p             (L2 penalty, PyTorch's Adam; not AdamW)
        m = beta1 * m + (1 - beta1) * g         running mean of gradients
        v = beta2 * v + (1 - beta2) * g**2      running mean of squared gradients
        m_hat = m / (1 - beta1**t);  v_hat = v / (1 - beta2**t)     undo the bias towards 0
        p = p - lr * m_hat / (sqrt(v_hat) + eps)

    DCGAN uses lr = 2e-4 and beta1 = 0.5 (instead of 0.9): a shorter memory of past gradients
    keeps up with an opponent that keeps changing.
    """

    state_names = ("m", "v")

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        _check_hyperparameters("Adam", lr=lr, eps=eps, weight_decay=weight_decay)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Adam: invalid betas {betas}: each must be in [0, 1)")
        super().__init__(params)
        self.lr, self.eps, self.weight_decay = lr, eps, weight_decay
        self.beta1, self.beta2 = betas

    def hyperparameters(self) -> dict[str, float]:
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps,
                "weight_decay": self.weight_decay}

    def step(self) -> None:
        self.step_count += 1
        t = self.step_count
        bias1, bias2 = 1 - self.beta1 ** t, 1 - self.beta2 ** t
        for p, m, v in zip(self.params, self.state["m"], self.state["v"]):
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            # The scalars are converted to the parameter's dtype here, once, so that nothing in
            # the update promotes float32 to float64 (and so that cupy.fuse can compile it).
            s = p.data.dtype.type
            adam_update(p.data, g, m, v, s(self.beta1), s(1 - self.beta1), s(self.beta2),
                        s(1 - self.beta2), s(self.lr / bias1), s(bias2 ** 0.5), s(self.eps))


@fuse
def adam_update(param, grad, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2,
                step_size, sqrt_bias2, eps):
    """One Adam update of one parameter, in place: the formulas of the ``Adam`` docstring.

    With bias1 = 1 - beta1**t and bias2 = 1 - beta2**t, the caller passes
    step_size = lr / bias1 and sqrt_bias2 = sqrt(bias2), so that
        param -= lr * m_hat / (sqrt(v_hat) + eps)
    is written as PyTorch writes it, as step_size * m / (sqrt(v) / sqrt_bias2 + eps): one
    division by an array fewer. In-place operators (m *= ..., m += ...) allocate no new arrays.
    On a GPU, ``fuse`` makes these five lines one kernel instead of about ten.
    """
    m *= beta1
    m += one_minus_beta1 * grad
    v *= beta2
    v += one_minus_beta2 * (grad * grad)
    param -= step_size * m / (v ** 0.5 / sqrt_bias2 + eps)
