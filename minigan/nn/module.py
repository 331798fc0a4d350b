"""Parameter, Module and Sequential: the bookkeeping around the kernels in ``minigan.ops``.

A Module does three things a bare kernel cannot:

* it *owns* its learnable arrays (``Parameter``: a ``data`` array and a ``grad`` array of the same
  shape) and its non-learnable state (*buffers*, such as batch norm's running statistics);
* it remembers the cache of its last forward pass, so that ``dx = m.backward(dy)`` needs only the
  upstream gradient;
* it walks its children, so that a whole network answers ``parameters()``, ``zero_grad()``,
  ``train()``/``eval()``, ``state_dict()`` and ``to(...)`` like a single layer.

The contract, as in PyTorch but with an explicit backward pass:

    y = m(x)             # forward; caches what backward needs
    dx = m.backward(dy)  # returns dL/dx and ADDS dL/dparam into each Parameter.grad

Gradients accumulate, so call ``zero_grad()`` (or ``optimizer.zero_grad()``) before each step.

A layer's state, all of it in plain attributes a reader can print:

* **one cache per forward call**, ``self._cache``: the kernel's NamedTuple (or, for a layer
  built of others, one record of what its own backward needs). Only the layer's own ``forward``
  writes it (``y, self._cache = ops.<op>_forward(...)``); ``layer.cache`` shows it, read-only;
* **read and cleared in one place**, ``_saved_cache(dy)``, called at the start of every backward:
  it hands the cache over and sets ``_cache`` back to None. So each forward allows exactly one
  backward (a second would add the parameter gradients twice; it raises instead, as PyTorch
  does), and the memory of the cache is free as soon as the backward has read it;
* **no backward will follow** (scoring, feature extraction): ``module.clear_cache()`` drops the
  caches of a module and every module inside it; nothing outside a layer touches ``_cache``;
* **at most two backward entry points**, ``backward(dy)`` and ``backward_params(dy)`` (below);
  ``tests/nn/test_layer_state.py`` checks every layer for all of these rules.

Skipping gradients no one needs, one rule for every layer (this is the only place it is
written down):

* **parameter gradients**: a Parameter with ``requires_grad = False`` gets nothing added to its
  ``.grad`` (``Parameter.accumulate`` enforces it, whatever the layer). When none of a layer's
  own parameters wants a gradient (``needs_param_grads()`` is False) the layer tells its kernel
  ``need_weight_grad=False``, and the kernel skips that work where it can: conv, transposed
  conv and linear skip a matrix product; batch norm's input gradient is built from the same
  two sums, so it computes them anyway. ``module.requires_grad_(False)`` freezes a whole network
  (``g_step`` in ``minigan/gan/step.py`` freezes D while it carries the generator's loss back
  through D);
* **the input gradient**: call ``backward_params(dy)`` instead of ``backward(dy)`` when the input
  is data that no one will differentiate (the discriminator's images in its own step). It adds
  the same parameter gradients and returns nothing; Sequential passes it to its first layer,
  and a layer whose kernel can skip dx (Conv2d, ConvTranspose2d: ``need_input_grad=False``)
  does so. Measured on the SVHN DCGAN, skipping D's first-layer dx saves two of the largest
  input-gradient computations of a step (see docs/speed.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy

from minigan.backend import array_module, get_array_module, to_device, to_numpy, use_backend
from minigan.ops.switch import fast_kernels_enabled


class ShapeError(ValueError):
    """A layer was given an input of the wrong shape or dtype."""


class Parameter:
    """A learnable array and its gradient.

    data: the values, updated by an optimizer;  grad: dL/d data, same shape, summed over backward
    passes until ``zero_grad``.  ``requires_grad = False`` freezes it: backward passes add nothing
    to ``grad`` and skip computing it where they can (the module docstring has the rule).
    """

    # The order in which a flat parameter buffer (``minigan.optim.flatten_parameters``, used by
    # FlatAdam) stores this parameter's axes, outermost first; None: the order of its shape.
    # A layout, not a value: p.data keeps its shape either way. Conv2d and ConvTranspose2d set
    # (2, 3, 1, 0), i.e. (KH, KW, C, F) in memory, the layout of their kernels' weight matrix
    # (``weight_matrix``), which is then a free view instead of a copy in every call, and in
    # which their weight gradients arrive (``weight_from_matrix``), so adding one into ``grad``
    # reads and writes memory in order.
    memory_order: tuple[int, ...] | None = None

    def __init__(self, data: Any):
        self.data = data
        self.grad = get_array_module(data).zeros_like(data)
        self.requires_grad = True

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def size(self) -> int:
        return int(self.data.size)

    def accumulate(self, grad: Any) -> None:
        """Add a gradient computed by a backward pass, unless this parameter is frozen
        (``requires_grad`` False) or the gradient was not computed (None).

        A gradient of another dtype or shape is refused: ``+=`` would cast it silently (float64
        into float32) or broadcast it."""
        if grad is None or not self.requires_grad:
            return
        if grad.dtype != self.data.dtype or tuple(grad.shape) != self.data.shape:
            raise ValueError(f"a gradient of dtype {grad.dtype} and shape {tuple(grad.shape)} "
                             f"cannot be added to a parameter of dtype {self.data.dtype} and "
                             f"shape {self.data.shape}")
        self.grad += grad

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


def _check_loadable(name: str, value: Any) -> None:
    """Refuse a saved value no layer can use: not a number array, or NaN / infinite values (a
    diverged run's weights would only turn every output into NaN, far from where they came)."""
    host = to_numpy(value) if hasattr(value, "dtype") else numpy.asarray(value)
    if host.dtype.kind not in "fiub":
        raise ValueError(f"{name}: saved values of dtype {host.dtype} are not numbers")
    if host.dtype.kind == "f" and not numpy.isfinite(host).all():
        bad = int(host.size - numpy.isfinite(host).sum())
        raise ValueError(f"{name}: {bad} of its {host.size} saved values are NaN or infinite; "
                         f"refusing to load them")


def _float_dtype(dtype: Any) -> numpy.dtype:
    """``dtype`` as a NumPy dtype, if it is a floating type (parameters need one)."""
    try:
        result = numpy.dtype(dtype)
    except TypeError:
        raise ValueError(f"module.to: {dtype!r} is not a dtype") from None
    if result.kind != "f":
        raise ValueError(f"module.to: parameters need a floating dtype (float32 or float64), "
                         f"got {result}")
    return result


class Module:
    """Base class of every layer and network. Subclasses define ``forward`` and ``backward``."""

    training: bool = True
    _cache: Any = None       # what the last forward saved for backward (module docstring)
    _output_shape: tuple[int, ...] | None = None  # the shape of the last forward's output

    def __init__(self) -> None:
        # Buffers are state that is saved and moved with the module but not learned.
        self._buffer_names: list[str] = []
        self._cache = None

    # ------------------------------------------------------------------ the forward/backward API
    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        y = self.forward(x, *args, **kwargs)
        shape = getattr(y, "shape", None)
        self._output_shape = None if shape is None else tuple(shape)  # checked by backward
        return y

    def forward(self, x: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def backward(self, dy: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define backward")

    def backward_params(self, dy: Any) -> None:
        """Like ``backward``, for when no one needs the gradient at the input (it is data).

        Only the parameter gradients are added into ``.grad``. This default runs ``backward`` and
        drops dx; layers that can skip computing it (Conv2d, ConvTranspose2d) override it.
        """
        self.backward(dy)

    # A layer and the one after it as one kernel (fast kernels only; ``forward_pairing`` below).
    # Layers that can (batch norm) override these; by default a layer runs alone.
    def runs_with(self, after: Module, x: Any) -> bool:
        """Whether ``forward_with(after, x)`` can run ``after`` inside this layer's kernels."""
        return False

    def forward_with(self, after: Module, x: Any) -> Any:
        """``after(self(x))`` in this layer's kernels; both layers keep their caches."""
        raise NotImplementedError(f"{type(self).__name__} runs no other layer")

    def takes_back_with(self, after: Module) -> bool:
        """Whether ``input_grad_with(after, dy)`` can take both layers' backward passes."""
        return False

    def input_grad_with(self, after: Module, dy: Any) -> Any:
        """``self.backward(after.backward(dy))`` in this layer's kernels."""
        raise NotImplementedError(f"{type(self).__name__} runs no other layer")

    @property
    def cache(self) -> Any:
        """What the last forward pass saved for backward (a kernel's NamedTuple cache), or None
        (no forward yet, its backward has run, or ``clear_cache``).

        Public so that you can look at it (``conv.cache.cols`` is the im2col matrix,
        ``bn.cache.x_hat`` the normalised input); read-only, since backward relies on it.
        """
        return self._cache

    def clear_cache(self) -> None:
        """Drop what the last forward passes of this module and every module inside it saved
        for backward: for a forward pass that no backward will follow (scoring, features), so
        that its memory is free now. A backward afterwards raises, as before any forward."""
        for m in self.modules():
            m._cache = None

    def needs_param_grads(self) -> bool:
        """Whether any of this layer's own parameters (not its children's) wants a gradient."""
        return any(value.requires_grad for value in vars(self).values()
                   if isinstance(value, Parameter))

    def check_input(self, x: Any, expected: tuple[int | str, ...], dtype: Any = None) -> None:
        """Raise a ShapeError naming this layer unless ``x`` matches ``expected``.

        ``expected`` lists each dimension as a size (must match) or a letter (any size), e.g.
        ``("N", 3, "H", "W")``. Checking here, at the layer, turns what would be a broadcasting
        error deep inside a kernel into a message a learner can act on.
        """
        shape_text = "(" + ", ".join(str(d) for d in expected) + ")"
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise ShapeError(f"{self._describe()}: expected an array of shape {shape_text}, "
                             f"got {type(x).__name__}")
        actual = tuple(x.shape)
        fits = len(actual) == len(expected) and all(
            isinstance(e, str) or a == e for a, e in zip(actual, expected))
        if not fits:
            raise ShapeError(f"{self._describe()}: expected input of shape {shape_text}, "
                             f"got {actual}")
        if dtype is not None and x.dtype != dtype:
            raise ShapeError(f"{self._describe()}: expected input of dtype {dtype} (the dtype of "
                             f"its parameters), got {x.dtype}; convert one with .astype() or "
                             f"module.to(dtype=...)")

    def _saved_cache(self, dy: Any = None) -> Any:
        """Hand over the cache of the last forward pass and clear it: the one place a backward
        reads it (see the module docstring). A clear error if there is none, or if ``dy`` does
        not fit it.

        Give it the backward pass's ``dy``: dy must have the shape of the output it is the
        gradient of, and a mismatch found here names the layer, where the kernel would only say
        that two shapes do not broadcast (checked when the forward pass went through ``__call__``).
        """
        cache = self._cache
        if cache is None:
            raise RuntimeError(f"{self._describe()}.backward() was called before forward(), or "
                               f"twice after one forward(): each forward() allows one backward() "
                               f"(a second would add the parameter gradients twice)")
        dy_shape = getattr(dy, "shape", None)
        if self._output_shape is not None and dy_shape is not None \
                and tuple(dy_shape) != self._output_shape:
            raise ShapeError(f"{self._describe()}.backward(): the gradient has shape "
                             f"{tuple(dy_shape)}, but the output of the last forward pass had "
                             f"shape {self._output_shape}")
        self._cache = None
        return cache

    # ------------------------------------------------------------------ walking the tree
    def register_buffer(self, name: str, value: Any) -> None:
        self._buffer_names.append(name)
        setattr(self, name, value)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def modules(self) -> Iterator[Module]:
        """This module and every module below it, depth first."""
        yield self
        for child in self.children():
            yield from child.modules()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_parameters(prefix + name + ".")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        for name in self._buffer_names:
            yield prefix + name, getattr(self, name)
        for name, child in self.named_children():
            yield from child.named_buffers(prefix + name + ".")

    # ------------------------------------------------------------------ training helpers
    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad[...] = 0

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Switch the computation of parameter gradients on or off for every parameter."""
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def train(self, mode: bool = True) -> Module:
        """Training mode: batch norm uses batch statistics, dropout drops."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        """Evaluation mode: batch norm uses its running statistics, dropout is the identity."""
        return self.train(False)

    # ------------------------------------------------------------------ state and devices
    def state_dict(self) -> dict[str, numpy.ndarray]:
        """Every parameter and buffer by dotted name, copied to the host as NumPy arrays."""
        state = {name: to_numpy(p.data).copy() for name, p in self.named_parameters()}
        state.update({name: to_numpy(b).copy() for name, b in self.named_buffers()})
        return state

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Copy values into this module's parameters and buffers (on this module's backend).

        Every entry is checked before anything is copied, so a refused state leaves the module
        as it was: a missing or unexpected name (when ``strict``), a shape that differs from the
        module's, values that are not numbers, and NaN or infinite values are refused."""
        params = dict(self.named_parameters())
        buffers = {name for name, _ in self.named_buffers()}
        expected = set(params) | buffers
        if strict:
            missing, unexpected = expected - set(state), set(state) - expected
            if missing or unexpected:
                raise KeyError(f"state_dict does not match {type(self).__name__}: missing "
                               f"{sorted(missing)}, unexpected {sorted(unexpected)}")
        targets = {name: params[name].data if name in params else getattr(*self._owner_of(name))
                   for name in state if name in expected}
        for name, old in targets.items():
            value = state[name]
            _check_loadable(name, value)
            if tuple(value.shape) != tuple(old.shape):   # would broadcast silently later
                raise ShapeError(f"{name}: saved shape {tuple(value.shape)} does not match "
                                 f"the model's {tuple(old.shape)}")
        for name, old in targets.items():
            new = get_array_module(old).asarray(to_numpy(state[name]), dtype=old.dtype)
            if name in params:
                params[name].data = new
            else:
                setattr(*self._owner_of(name), new)

    def _owner_of(self, dotted: str) -> tuple[Module, str]:
        *path, attr = dotted.split(".")
        owner: Module = self
        for part in path:
            owner = getattr(owner, part)
        return owner, attr

    def to(self, dtype: Any = None, backend: str | None = None) -> Module:
        """Convert every parameter and buffer to ``dtype`` and/or move it to ``backend``.

        ``dtype`` must be a floating type (float32, float64, ...): anything else is refused
        before any array changes.

        ``backend`` switches the active backend too (``minigan.use_backend``), so that batches
        made afterwards land on the same device as the model.
        """
        if dtype is not None:
            dtype = _float_dtype(dtype)   # before anything changes
        if backend is not None:
            use_backend(backend)
        for m in self.modules():
            for value in vars(m).values():
                if isinstance(value, Parameter):
                    data = value.data if backend is None else to_device(value.data)
                    value.data = data.astype(dtype) if dtype is not None else data
                    value.grad = get_array_module(value.data).zeros_like(value.data)
            for name in m._buffer_names:
                buf = getattr(m, name)
                if backend is not None:
                    buf = array_module().asarray(to_numpy(buf))
                # Integer buffers (such as a step counter) keep their dtype.
                if dtype is not None and buf.dtype.kind == "f":
                    buf = buf.astype(dtype)
                setattr(m, name, buf)
        self.clear_cache()   # a cache holds arrays of the old dtype or device
        return self

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """The arguments shown in ``print(module)``, e.g. ``3, 32, kernel_size=4``."""
        return ""

    def _describe(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return self._describe()
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            child_text = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_text}")
        lines.append(")")
        return "\n".join(lines)


class Sequential(Module):
    """Layers applied one after another; backward visits them in reverse order."""

    def __init__(self, *layers: Module):
        super().__init__()
        for index, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential takes Modules, got {type(layer).__name__}")
            setattr(self, str(index), layer)

    @property
    def layers(self) -> list[Module]:
        return list(self.children())

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def forward(self, x: Any) -> Any:
        if fast_kernels_enabled():  # a layer and the one after it in one kernel: forward_pairing
            return forward_pairing(self.layers, x)
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, dy: Any) -> Any:
        return self._gradient_through(self.layers, dy)

    def backward_params(self, dy: Any) -> None:
        """``backward`` without the input gradient: the first layer skips it."""
        first, *rest = self.layers
        first.backward_params(self._gradient_through(rest, dy))

    @staticmethod
    def _gradient_through(layers: list[Module], dy: Any) -> Any:
        """The layers' backward passes, last layer first."""
        if fast_kernels_enabled():  # a layer and the one after it in one kernel: gradient_pairing
            return gradient_pairing(layers, dy)
        for layer in reversed(layers):
            dy = layer.backward(dy)
        return dy


# With the fast kernels on, a layer may run the layer right after it inside its own kernels
# (``Module.runs_with``): a batch norm and the ReLU or LeakyReLU after it are one kernel forward
# and one back (minigan/nn/batchnorm.py says what that buys). The numbers are the same.

def forward_pairing(layers: list[Module], x: Any) -> Any:
    """``Sequential.forward``, with each layer that runs the next one in its kernels doing so."""
    i = 0
    while i < len(layers):
        if i + 1 < len(layers) and layers[i].runs_with(layers[i + 1], x):
            x = layers[i].forward_with(layers[i + 1], x)
            i += 2
        else:
            x = layers[i](x)
            i += 1
    return x


def gradient_pairing(layers: list[Module], dy: Any) -> Any:
    """The layers' backward passes, last first, with each pair that the first layer can take
    back in its kernels (``Module.takes_back_with``) taken back as one, whatever ran their
    forward passes."""
    i = len(layers) - 1
    while i >= 0:
        if i >= 1 and layers[i - 1].takes_back_with(layers[i]):
            dy = layers[i - 1].input_grad_with(layers[i], dy)
            i -= 2
        else:
            dy = layers[i].backward(dy)
            i -= 1
    return dy
