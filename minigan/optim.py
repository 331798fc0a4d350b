"""Optimizers: SGD with momentum and Adam, following PyTorch's update rules; and FlatAdam.

An optimizer holds a list of Parameters; ``step()`` reads each ``p.grad`` and updates ``p.data``
in place, one parameter after another, as the formulas are written. Its per-parameter state
(momentum buffers, Adam's moments and step count) is exposed by ``state_dict()`` as plain NumPy
arrays, so a checkpoint can store it and a resumed run continues with exactly the same updates.

``FlatAdam`` is Adam with one speed mechanism, named where it is created: ``flatten_parameters``
moves every parameter and gradient into one flat array each (``p.data`` and ``p.grad`` become
views of them), so that the whole update is one call (one kernel on a GPU) instead of one per
parameter. Same numbers, bit for bit; the GAN trainer uses it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy

from minigan.backend import fuse, get_array_module, to_numpy
from minigan.nn.module import Parameter


def check_gradient(optimizer: str, index: int, p: Parameter) -> None:
    """Refuse a gradient that cannot update its parameter: another dtype (it would be cast
    silently) or another shape (it would broadcast)."""
    if p.grad.dtype != p.data.dtype or p.grad.shape != p.data.shape:
        raise ValueError(f"{optimizer}: parameter {index} is {p.data.dtype} {p.shape} but its "
                         f"gradient is {p.grad.dtype} {tuple(p.grad.shape)}; a gradient must "
                         f"have its parameter's dtype and shape")


class Optimizer:
    """Base class: the parameter list, ``zero_grad``, and saving per-parameter state.

    ``state[name][i]`` is the state array ``name`` (momentum, Adam's m or v) of parameter i,
    shaped like it. If a parameter's array is replaced by one of another dtype or device
    (``Module.to``), its state follows at the next step.
    """

    state_names: tuple[str, ...] = ()  # names of the per-parameter arrays a subclass keeps

    def __init__(self, params: Iterable[Parameter]):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if len({id(p) for p in self.params}) < len(self.params):
            # PyTorch warns too (and then updates such a parameter twice per step); here a
            # repeat is dropped, so each parameter is updated once.
            warnings.warn(f"{type(self).__name__} got a parameter more than once; it is kept "
                          f"(and updated) once", UserWarning, stacklevel=3)
            self.params = list({id(p): p for p in self.params}.values())
        self.state: dict[str, list[Any]] = {
            name: [get_array_module(p.data).zeros_like(p.data) for p in self.params]
            for name in self.state_names}
        self.step_count = 0

    def zero_grad(self) -> None:
        """Clear every gradient."""
        for p in self.params:
            p.grad[...] = 0

    def step(self) -> None:
        raise NotImplementedError

    def hyperparameters(self) -> dict[str, float]:
        return {}

    def _state_of_each_parameter(self) -> list[tuple[Parameter, list[Any]]]:
        """(p, [its state arrays in state_names order]) for every parameter, after checking its
        gradient; a state array follows its parameter to a new dtype or device."""
        name = type(self).__name__
        rows = []
        for i, p in enumerate(self.params):
            check_gradient(name, i, p)
            arrays = []
            for state_name in self.state_names:
                a = self.state[state_name][i]
                if a.dtype != p.dtype or get_array_module(a) is not get_array_module(p.data):
                    a = get_array_module(p.data).asarray(to_numpy(a), dtype=p.dtype)
                    self.state[state_name][i] = a
                arrays.append(a)
            rows.append((p, arrays))
        return rows

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
        self.step_count = int(state["step"])
        for key in self.hyperparameters():
            setattr(self, key, float(state[key]))
        for name, arrays in self.state.items():
            for i, p in enumerate(self.params):
                saved = state[f"{name}.{i}"]
                if tuple(saved.shape) != p.shape:
                    raise ValueError(f"optimizer state {name}.{i} has shape {saved.shape}, "
                                     f"but parameter {i} has shape {p.shape}")
                if arrays[i].dtype != p.dtype:   # the parameter changed dtype since
                    arrays[i] = get_array_module(p.data).zeros_like(p.data)
                # Into the existing array (for FlatAdam, a view of its flat state array).
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
        """One update of every parameter, one after another."""
        self.step_count += 1
        for p, (v,) in self._state_of_each_parameter():
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
        """One Adam update of every parameter, one ``adam_update`` call each."""
        self.step_count += 1
        for p, (m, v) in self._state_of_each_parameter():
            adam_update(p.data, self._with_weight_decay(p.grad, p.data), m, v,
                        *self._update_scalars(p.dtype))

    def _with_weight_decay(self, grad: Any, param: Any) -> Any:
        """g = grad + weight_decay * p (PyTorch's Adam: an L2 penalty, not AdamW)."""
        return grad + self.weight_decay * param if self.weight_decay else grad

    def _update_scalars(self, dtype: Any) -> tuple[Any, ...]:
        """``adam_update``'s scalar arguments for this step, in the parameters' dtype (so that
        nothing promotes float32 to float64, and so that cupy.fuse can compile the update)."""
        t = self.step_count
        bias1, bias2 = 1 - self.beta1 ** t, 1 - self.beta2 ** t
        s = numpy.dtype(dtype).type
        return (s(self.beta1), s(1 - self.beta1), s(self.beta2), s(1 - self.beta2),
                s(self.lr / bias1), s(bias2 ** 0.5), s(self.eps))


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


# ---------------------------------------------------------------- the flat parameter buffer
# A speed mechanism, not a second formula: the update is element by element, so updating one
# flat array that holds every parameter is the same arithmetic as updating each in turn.

def flat_views(params: list[Parameter], flat: Any) -> list[Any]:
    """One view of ``flat`` per parameter, shaped like it, in parameter order.

    Each parameter's numbers lie in its ``memory_order`` (C order unless a layer asks for
    another): a convolution's weight is stored as its kernels' weight matrix, so that laying
    it out for the matrix product copies nothing (see ``Parameter.memory_order``)."""
    views, start = [], 0
    for p in params:
        order = p.memory_order or tuple(range(len(p.shape)))
        stored = flat[start:start + p.size].reshape(tuple(p.shape[a] for a in order))
        views.append(stored.transpose(tuple(order.index(a) for a in range(len(order)))))
        start += p.size
    return views


class FlatParameters:
    """Every parameter's values in ONE flat array, ``data``, and every gradient in another,
    ``grad``; each ``p.data`` and ``p.grad`` is rebound to a view (a reshaped slice) of them,
    so layers read and update them exactly as before.

    Made by ``flatten_parameters(params)``. If someone replaces a parameter's array afterwards
    (``load_state_dict``, ``Module.to``, re-initialising weights), ``gather_if_replaced`` notices
    (identity checks only, no array operation) and gathers the parameters into fresh flat arrays,
    so an update never goes to a stale copy.
    """

    def __init__(self, params: list[Parameter], owner: str = "flatten_parameters"):
        self.params, self.owner = params, owner
        self.gather()

    def gather(self) -> None:
        """Copy every parameter and gradient into one flat array each; make them views of it."""
        dtypes = {p.dtype for p in self.params}
        if len(dtypes) > 1:
            raise ValueError(f"{self.owner}: all parameters must share one dtype to be kept in "
                             f"one flat array, got {sorted(str(d) for d in dtypes)}")
        for i, p in enumerate(self.params):
            check_gradient(self.owner, i, p)
        xp = get_array_module(*(p.data for p in self.params))
        total = sum(p.size for p in self.params)
        self.data = xp.empty(total, dtype=self.params[0].dtype)
        self.grad = xp.empty(total, dtype=self.params[0].dtype)
        for p, data, grad in zip(self.params, self.views(self.data), self.views(self.grad)):
            data[...] = p.data
            grad[...] = p.grad
            p.data, p.grad = data, grad
        self._bound = [(p.data, p.grad) for p in self.params]

    def views(self, flat: Any) -> list[Any]:
        """One view of ``flat`` per parameter, shaped like it, in parameter order
        (``flat_views``)."""
        return flat_views(self.params, flat)

    def gather_if_replaced(self) -> bool:
        """Gather again if any p.data or p.grad is no longer the view handed out; True if so."""
        if all(p.data is data and p.grad is grad
               for p, (data, grad) in zip(self.params, self._bound)):
            return False
        if sum(p.size for p in self.params) != self.data.size:
            raise ValueError(f"{self.owner}: a parameter changed its size after the optimizer "
                             f"was made; make a new optimizer")
        self.gather()
        return True


def flatten_parameters(params: list[Parameter]) -> FlatParameters:
    """Rebind every ``p.data`` and ``p.grad`` to a view of one flat array each (see
    ``FlatParameters``)."""
    return FlatParameters(params)


class FlatAdam(Adam):
    """Adam on one flat buffer: ``flatten_parameters`` at construction, then every step is ONE
    ``adam_update`` call on the flat arrays and ``zero_grad`` one fill, where ``Adam`` makes one
    per parameter (on a GPU, one kernel launch per network instead of one per parameter, about
    ten for each of a DCGAN's two networks). The numbers are
    Adam's, bit for bit. Adam's m and v live in flat arrays too (``flat_state``), with a view
    per parameter in ``state[name][i]``, so ``state_dict`` is the same as Adam's.

    Constructing it rebinds the parameters' arrays: that is the point of it, and why it is a
    class of its own. All parameters must have one dtype.
    """

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr, betas, eps, weight_decay)
        self.flat = FlatParameters(self.params, owner=type(self).__name__)
        xp = get_array_module(self.flat.data)
        self.flat_state = {name: xp.zeros_like(self.flat.data) for name in self.state_names}
        self._bind_state_views()

    @property
    def flat_data(self) -> Any:
        """Every parameter's values, one flat array."""
        return self.flat.data

    @property
    def flat_grad(self) -> Any:
        """Every parameter's gradient, one flat array."""
        return self.flat.grad

    def _bind_state_views(self) -> None:
        self.state = {name: self.flat.views(flat) for name, flat in self.flat_state.items()}

    def _keep_parameters_flat(self) -> None:
        """Gather again if a parameter's array was replaced; the state follows a move or a
        dtype change."""
        if not self.flat.gather_if_replaced():
            return
        xp = get_array_module(self.flat.data)
        for name, flat in self.flat_state.items():
            self.flat_state[name] = xp.asarray(to_numpy(flat) if xp is numpy else flat,
                                               dtype=self.flat.data.dtype)
        self._bind_state_views()

    def zero_grad(self) -> None:
        """Clear every gradient: one fill of the flat gradient array."""
        self._keep_parameters_flat()
        self.flat.grad[...] = 0

    def step(self) -> None:
        """``Adam.step`` as ONE call of ``adam_update`` on the flat arrays: the same loop
            for p, m, v in zip(self.params, self.state["m"], self.state["v"]):
                adam_update(p.data, p.grad, m, v, ...)
        done in one pass."""
        self._keep_parameters_flat()
        self.step_count += 1
        param = self.flat.data
        adam_update(param, self._with_weight_decay(self.flat.grad, param),
                    self.flat_state["m"], self.flat_state["v"], *self._update_scalars(param.dtype))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._keep_parameters_flat()
        super().load_state_dict(state)
