"""A layer's state a reader can hold: the rules of ``minigan/nn/module.py``'s docstring.

* one cache per forward call, in the plain attribute ``_cache``, shown read-only as ``cache``;
* read and cleared in one place, ``_saved_cache``: after a backward the cache is gone, so a
  second backward raises and adds nothing; ``clear_cache()`` drops every cache of a network, for
  a forward pass that no backward follows (what the metrics' feature extractors do);
* no property that writes, no ``object.__setattr__``, and no module of minigan that writes
  another object's ``_cache`` (checked in the source);
* at most two backward entry points per layer, ``backward`` and ``backward_params``.
"""

from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest

import minigan.gan.dcgan  # noqa: F401  (its Modules are checked too)
import minigan.metrics.features  # noqa: F401
import minigan.metrics.inception  # noqa: F401
from minigan import nn
from minigan.backend import set_default_dtype, to_device, to_numpy
from minigan.metrics.inception import FIDInceptionA, FIDInceptionE
from tests.helpers import REPO_ROOT, random_array

PACKAGE = REPO_ROOT / "minigan"


def every_module_class() -> list[type]:
    classes, todo = [], [nn.Module]
    while todo:
        cls = todo.pop()
        classes.append(cls)
        todo.extend(cls.__subclasses__())
    return [c for c in classes if c.__module__.startswith("minigan.")]


def test_every_layer_has_at_most_two_backward_entry_points():
    for cls in every_module_class():
        names = {name for name, _ in inspect.getmembers(cls, callable) if "backward" in name}
        assert names <= {"backward", "backward_params", "_saved_cache"}, (cls, names)


def test_no_module_writes_another_objects_cache_or_uses_object_setattr():
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "__setattr__":
                assert getattr(node.value, "id", "") != "object", path
            targets = []
            if isinstance(node, ast.Assign):
                targets = [t for target in node.targets
                           for t in (target.elts if isinstance(target, ast.Tuple) else [target])]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "_cache":
                    writer = getattr(target.value, "id", "")
                    # A layer writes its own; Module.clear_cache walks the modules as ``m``.
                    allowed = {"self", "m"} if path.name == "module.py" else {"self"}
                    where = path.relative_to(REPO_ROOT)
                    assert writer in allowed, f"{where} writes {writer}._cache"


def test_module_defines_no_property_that_writes():
    for name, member in vars(nn.Module).items():
        if isinstance(member, property):
            assert member.fset is None, name


def small_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.LeakyReLU(0.2),
                         nn.Flatten(), nn.Linear(4 * 5 * 5, 2))


def test_backward_reads_the_cache_and_clears_it():
    set_default_dtype(np.float64)
    try:
        net = small_net()
        x = random_array(np.random.default_rng(0), (2, 3, 5, 5))
        net(x)
        conv = net[0]
        assert conv.cache.cols.shape == (2 * 5 * 5, 3 * 3 * 3)
        assert all(layer.cache is not None for layer in net.layers)
        net.backward(to_device(np.ones((2, 2))))
        assert all(layer.cache is None for layer in net.layers)   # handed over, then gone
        once = to_numpy(conv.weight.grad).copy()
        with pytest.raises(RuntimeError, match="twice after one forward"):
            net.backward(to_device(np.ones((2, 2))))
        np.testing.assert_array_equal(to_numpy(conv.weight.grad), once)
    finally:
        set_default_dtype(np.float32)


def test_clear_cache_drops_every_cache_of_a_network():
    net = small_net()
    net(random_array(np.random.default_rng(0), (2, 3, 5, 5), dtype=np.float32))
    net.clear_cache()
    assert all(m.cache is None for m in net.modules())
    with pytest.raises(RuntimeError, match="before forward"):
        net.backward(to_device(np.ones((2, 2), dtype=np.float32)))


@pytest.mark.parametrize("make_block", [lambda: FIDInceptionA(3, pool_features=2),
                                        lambda: FIDInceptionE(3, max_pool=True)],
                         ids=["A", "E"])
def test_an_inception_block_keeps_one_cache_and_clears_it(make_block):
    block = make_block().to(dtype="float64")   # made here: on the backend the test runs on
    x = random_array(np.random.default_rng(0), (1, 3, 5, 5))
    y = block(x)
    splits = block.cache.splits    # the concatenations inside branches: the E block's 1x3 | 3x1
    assert len(splits) == (2 if isinstance(block, FIDInceptionE) else 0)
    dx = block.backward(to_device(np.ones(y.shape)))
    assert dx.shape == x.shape and block.cache is None
    block(x)
    block.clear_cache()
    assert all(m.cache is None for m in block.modules())
