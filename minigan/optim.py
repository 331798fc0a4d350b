"""Optimizers: SGD with momentum and Adam, following PyTorch's update rules.

An optimizer holds a list of Parameters; ``step()`` reads each ``p.grad`` and updates ``p.data``
in place (all of them at once: see ``Optimizer`` on the flat arrays). Its per-parameter state
(momentum buffers, Adam's moments and step count) is exposed by ``state_dict()`` as plain NumPy
arrays, so a checkpoint can store it and a resumed run continues with exactly the same updates.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy

from minigan.backend import fuse, get_array_module, to_numpy
from minigan.nn.module import Parameter


class Optimizer:
    """Base class: the parameter list, ``zero_grad``, and saving per-parameter state.

    The optimizer keeps every parameter's values in ONE flat array, ``flat_data``, and every
    gradient in another, ``flat_grad``: each ``p.data`` and ``p.grad`` becomes a view (a
    reshaped slice) of them, so layers read and update them exactly as before. What that buys:
    the update is element by element, so updating the flat arrays once is the same arithmetic
    as updating each parameter in turn, and clearing every gradient is one fill. On a GPU that
    is one kernel launch each instead of one per parameter (a DCGAN has 20). The per-parameter
    state (momentum, Adam's m and v) lives in flat arrays too, with a view per parameter in
    ``state[name][i]``.

    If someone replaces a parameter's array afterwards (``load_state_dict``, ``Module.to``,
    re-initialising weights), the next ``step`` or ``zero_grad`` notices and gathers the
    parameters into fresh flat arrays, so the update never goes to a stale copy.
    """

    state_names: tuple[str, ...] = ()  # names of the per-parameter arrays a subclass keeps

    def __init__(self, params: Iterable[Parameter]):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if len({id(p) for p in self.params}) < len(self.params):
            # PyTorch warns too (and then updates such a parameter twice per step). Here each
            # parameter has one place in the flat arrays, so a repeat is dropped.
            warnings.warn(f"{type(self).__name__} got a parameter more than once; it is kept "
                          f"(and updated) once", UserWarning, stacklevel=3)
            self.params = list({id(p): p for p in self.params}.values())
        self._gather_into_flat_arrays()
        xp = get_array_module(self.flat_data)
        self.flat_state = {name: xp.zeros_like(self.flat_data) for name in self.state_names}
        self.state: dict[str, list[Any]] = {name: self._views_of(flat)
                                            for name, flat in self.flat_state.items()}
        self.step_count = 0

    # ------------------------------------------------------------------ the flat arrays
    def _gather_into_flat_arrays(self) -> None:
        """Copy every parameter and gradient into one flat array each; make them views of it."""
        dtypes = {p.dtype for p in self.params}
        if len(dtypes) > 1:
            raise ValueError(f"{type(self).__name__}: all parameters must share one dtype to be "
                             f"kept in one flat array, got {sorted(str(d) for d in dtypes)}")
        xp = get_array_module(*(p.data for p in self.params))
        total = sum(p.size for p in self.params)
        self.flat_data = xp.empty(total, dtype=self.params[0].dtype)
        self.flat_grad = xp.empty(total, dtype=self.params[0].dtype)
        data_views, grad_views = self._views_of(self.flat_data), self._views_of(self.flat_grad)
        for p, data, grad in zip(self.params, data_views, grad_views):
            data[...] = p.data
            grad[...] = p.grad
            p.data, p.grad = data, grad
        self._bound = [(p.data, p.grad) for p in self.params]

    def _views_of(self, flat: Any) -> list[Any]:
        """One view of ``flat`` per parameter, shaped like it, in parameter order."""
        views, start = [], 0
        for p in self.params:
            views.append(flat[start:start + p.size].reshape(p.shape))
            start += p.size
        return views

    def _keep_parameters_in_flat_arrays(self) -> None:
        """Gather again if any p.data or p.grad is no longer the view handed out (cheap: only
        identity checks, no array operations)."""
        if all(p.data is data and p.grad is grad
               for p, (data, grad) in zip(self.params, self._bound)):
            return
        if sum(p.size for p in self.params) != self.flat_data.size:
            raise ValueError(f"{type(self).__name__}: a parameter changed its size after the "
                             f"optimizer was made; make a new optimizer")
        self._gather_into_flat_arrays()
        xp = get_array_module(self.flat_data)   # the state follows a move or a dtype change
        for name, flat in self.flat_state.items():
            self.flat_state[name] = xp.asarray(to_numpy(flat) if xp is numpy else flat,
                                               dtype=self.flat_data.dtype)
            self.state[name] = self._views_of(self.flat_state[name])

    # ------------------------------------------------------------------ the API
    def zero_grad(self) -> None:
        """Clear every gradient: one fill of the flat gradient array."""
        self._keep_parameters_in_flat_arrays()
        self.flat_grad[...] = 0

    def step(self) -> None:
        raise NotImplementedError

    def hyperparameters(self) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, numpy.ndarray]:
        """Step count, hyperparameters and every state array, as NumPy arrays keyed by name
        (one array per parameter: ``m.0``, ``m.1``, ...)."""
        state = {"step": numpy.asarray(self.step_count)}
        state.update({k: numpy.asarray(v) for k, v in self.hyperparameters().items()})
        for name, arrays in self.state.items():
            for i, a in enumerate(arrays):
                state[f"{name}.{i}"] = to_numpy(a).copy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._keep_parameters_in_flat_arrays()
        self.step_count = int(state["step"])
        for key in self.hyperparameters():
            setattr(self, key, float(state[key]))
        for name, arrays in self.state.items():
            for i, p in enumerate(self.params):
                saved = state[f"{name}.{i}"]
                if tuple(saved.shape) != p.shape:
                    raise ValueError(f"optimizer state {name}.{i} has shape {saved.shape}, "
                                     f"but parameter {i} has shape {p.shape}")
                # Into the view, so that the flat state array holds it.
                arrays[i][...] = get_array_module(p.data).asarray(to_numpy(saved),
                                                                  dtype=p.dtype)


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
        """One update of every parameter at once, on the flat arrays."""
        self._keep_parameters_in_flat_arrays()
        self.step_count += 1
        p, v = self.flat_data, self.flat_state["velocity"]
        g = self.flat_grad + self.weight_decay * p if self.weight_decay else self.flat_grad
        if self.momentum:
            v *= self.momentum
            v += g
            g = v
        p -= self.lr * g


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
        """One Adam update of every parameter, as ONE call of ``adam_update`` on the flat arrays.

        The update is element by element, so this is exactly the loop
            for p, m, v in zip(self.params, self.state["m"], self.state["v"]):
                adam_update(p.data, p.grad, m, v, ...)
        done in one pass: on a GPU, one kernel instead of one per parameter.
        """
        self._keep_parameters_in_flat_arrays()
        self.step_count += 1
        t = self.step_count
        bias1, bias2 = 1 - self.beta1 ** t, 1 - self.beta2 ** t
        param, grad = self.flat_data, self.flat_grad
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        # The scalars are converted to the parameters' dtype here, once, so that nothing in the
        # update promotes float32 to float64 (and so that cupy.fuse can compile it).
        s = param.dtype.type
        adam_update(param, grad, self.flat_state["m"], self.flat_state["v"], s(self.beta1),
                    s(1 - self.beta1), s(self.beta2), s(1 - self.beta2), s(self.lr / bias1),
                    s(bias2 ** 0.5), s(self.eps))


@fuse
def adam_update(param, grad, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2,
                step_size, sqrt_bias2, eps):
    """One Adam update of a parameter (or of all of them, flat), in place: the formulas of the
    ``Adam`` docstring.

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
