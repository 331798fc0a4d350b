"""``summary(model, input_shape)``: each layer's output shape and parameter count, as a table."""

from __future__ import annotations

from typing import Any

import numpy

from minigan.backend import default_dtype, to_device
from minigan.nn.module import Module, Sequential


def _leaves(module: Module, prefix: str = "") -> list[tuple[str, Module]]:
    """The layers in the order they run: a Sequential is opened up, anything else is one row."""
    if not isinstance(module, Sequential):
        return [(prefix or type(module).__name__, module)]
    rows = []
    for name, child in module.named_children():
        rows += _leaves(child, f"{prefix}.{name}" if prefix else name)
    return rows


def output_shapes(model: Module, x: Any) -> list[tuple[str, Module, tuple[int, ...]]]:
    """Run ``x`` through ``model`` one layer at a time, in the model's own mode, as ``summary``
    lists them (a Sequential opened up): each layer's name, the layer and its output's shape."""
    shapes = []
    for name, layer in _leaves(model):
        x = layer(x)
        shapes.append((name, layer, tuple(x.shape)))
    return shapes


def summary(model: Module, input_shape: tuple[int, ...], batch_size: int = 2,
            print_fn: Any = print) -> str:
    """Print (and return) a table of each layer's output shape and parameter count.

    ``input_shape`` excludes the batch dimension, e.g. ``(3, 32, 32)``. The model is run once on
    zeros in eval mode (so batch norm's running statistics are not touched) and then put back in
    its previous mode. Layers nested inside a Sequential are listed one by one; any other module
    is one row.
    """
    was_training = model.training
    model.eval()
    x = to_device(numpy.zeros((batch_size, *input_shape), dtype=default_dtype()))
    rows = [("input", "", str((batch_size, *input_shape)), "")]
    try:
        for name, layer, shape in output_shapes(model, x):
            count = sum(p.size for p in layer.parameters())
            rows.append((name, type(layer).__name__, str(shape), f"{count:,}"))
    finally:
        model.train(was_training)
    total = sum(p.size for p in model.parameters())
    header = ("layer", "type", "output shape", "parameters")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    text = [line.format(*header), "-" * (sum(widths) + 6)]
    text += [line.format(*r) for r in rows]
    text += ["-" * (sum(widths) + 6), f"total parameters: {total:,}"]
    result = "\n".join(text)
    if print_fn is not None:
        print_fn(result)
    return result
