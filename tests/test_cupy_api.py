"""The CuPy path, checked without a GPU.

What a training step (fast and plain kernels), a short training run around it (samples,
checkpoint, resume), the exercises' solutions and the FID Inception network ask of ``xp`` is
recorded by running them on ``tests/device_standin.py``'s stand-in for CuPy, and then:

* each run must finish: the stand-in's arrays refuse ``numpy.asarray`` (as CuPy's do) and
  refuse to meet a NumPy array in one operation, so an implicit copy to the host fails here as
  it would on a GPU (these tests need only NumPy);
* every function, ufunc, method, attribute and keyword recorded must exist in the installed
  ``cupy`` (its namespace, its ufuncs' methods, ``cupy.ndarray``), with the keyword in the
  signature where CuPy's docstrings or ``inspect`` give one (CuPy imports without a GPU; these
  tests skip when it is not installed: ``pip install -e ".[test]"`` installs it).
"""

from __future__ import annotations

import inspect
import re
import tempfile
from collections.abc import Callable
from typing import Any

import numpy
import pytest

import minigan.ops
from minigan.backend import to_device, to_numpy
from tests import device_standin
from tests.device_standin import DeviceArray, HostArrayMixed, on_fake_device

try:
    import cupy
except Exception:   # not installed, or a broken install: the API comparison skips
    cupy = None
needs_cupy = pytest.mark.skipif(cupy is None, reason="CuPy is not installed (the test extra)")


# ----------------------------------------------------------------------- what is run
def training_steps(fast: bool) -> None:
    """Two ``GANTrainer.train_step``s of a small DCGAN, and the losses read to the host."""
    from minigan.gan.dcgan import Discriminator, Generator, dcgan_init
    from minigan.gan.trainer import GANTrainer, TrainConfig

    minigan.ops.use_fast_kernels(fast)
    G, D = dcgan_init(Generator(16, 8)), dcgan_init(Discriminator(8))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = GANTrainer(G, D, None, TrainConfig(z_size=16), tmp)
    real = to_device(numpy.random.default_rng(0).uniform(-1, 1, (4, 3, 32, 32)), "float32")
    for step in range(2):   # the second reuses what the first kept (buffers, flat gradients)
        trainer.history.append(step, 1, trainer.train_step(real))
    trainer.history.read()
    assert numpy.isfinite(trainer.history.columns["d_loss"]).all()


def training_run() -> None:
    """What a training run does around its steps: ``fit`` (batches from the loader, the loss
    history, sample grids, the checkpoint), resuming from the checkpoint, and generating."""
    from minigan.data import DataLoader, make_synthetic_digits
    from minigan.gan.dcgan import Discriminator, Generator, dcgan_init
    from minigan.gan.trainer import GANTrainer, TrainConfig

    images, _ = make_synthetic_digits(16, seed=0, size=32, channels=3)

    def trainer(folder: str, steps: int) -> GANTrainer:
        G, D = dcgan_init(Generator(16, 4)), dcgan_init(Discriminator(4))
        config = TrainConfig(epochs=1, z_size=16, num_samples=4, seed=0, max_steps=steps)
        return GANTrainer(G, D, DataLoader(images, batch_size=8, seed=0), config, folder)

    with tempfile.TemporaryDirectory() as folder:
        trainer(folder, 1).fit(progress=False)
        resumed = trainer(folder, 2)
        resumed.load_checkpoint()
        resumed.fit(progress=False)
        assert len(resumed.history.columns["d_loss"]) == 2
        G = resumed.G.eval()
        picture = G(to_device(numpy.random.default_rng(0).uniform(-1, 1, (2, 16)), "float32"))
        assert to_numpy(picture).shape == (2, 3, 32, 32)


def larger_case(simplest: dict[str, Any]) -> dict[str, Any] | None:
    """A strided, padded, multi-channel version of an exercise's simplest case (told apart by
    its keys), or None for the element-wise exercises."""
    if "output_padding" in simplest:
        changes = dict(x=(2, 3, 3, 3), w=(3, 2, 4, 4), stride=2, padding=1)
    elif "w" in simplest:
        changes = dict(x=(2, 3, 5, 5), w=(4, 3, 3, 3), stride=2, padding=1)
    elif "kernel_size" in simplest:
        changes = dict(x=(2, 3, 5, 5), kernel_size=3, stride=2, padding=1)
    elif "eps" in simplest:
        changes = dict(shape=(4, 3, 2, 2))
    else:
        return None
    return dict(simplest, seed=1, **changes)


def exercise_solutions() -> None:
    """Every exercise's check on minigan's own kernels, on its simplest case and a strided,
    padded one where the exercise has them, with the fast and the plain kernels."""
    from minigan.exercises import EXERCISES, minigan_kernels

    solutions = minigan_kernels()
    for fast in (True, False):
        minigan.ops.use_fast_kernels(fast)
        for exercise in EXERCISES:
            simplest = getattr(exercise, "simplest", None)
            if simplest is None:   # before the exercises' records held their simplest case
                from minigan.exercises.checks import SIMPLEST_CASES

                simplest = SIMPLEST_CASES[exercise.kind]
            for case in (simplest, larger_case(simplest)):
                if case is not None:
                    exercise.check(solutions, dict(case))


def inception_network() -> None:
    """The FID Inception's scorer on two images (resized to 75 x 75, its smallest input)."""
    from minigan.metrics.inception import FIDInceptionV3
    from minigan.metrics.inception_eval import InceptionScorer
    from minigan.nn import ResizeBilinear

    net = FIDInceptionV3()
    net.resize = ResizeBilinear(75)
    images = numpy.random.default_rng(0).integers(0, 256, (2, 3, 16, 16), dtype=numpy.uint8)
    pool3, probs = InceptionScorer(net.eval(), batch_size=2).pool3_and_probabilities(
        to_device(images, "uint8"))
    assert pool3.shape == (2, 2048) and numpy.allclose(probs.sum(axis=1), 1.0)


WORKLOADS: dict[str, Callable[[], None]] = {
    "training step, fast kernels": lambda: training_steps(fast=True),
    "training step, plain kernels": lambda: training_steps(fast=False),
    "training run: fit, checkpoint, resume": training_run,
    "exercise solutions": exercise_solutions,
    "Inception network": inception_network,
}


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    """workload -> what it asked of xp (device_standin.Calls), or the exception it raised."""
    results: dict[str, Any] = {}
    was_fast = minigan.ops.fast_kernels_enabled()
    try:
        for name, run in WORKLOADS.items():
            try:
                with on_fake_device() as calls:
                    run()
                results[name] = calls
            except Exception as error:   # reported by the test of that workload
                results[name] = error
    finally:
        minigan.ops.use_fast_kernels(was_fast)
    return results


# ----------------------------------------------------------------------- comparing with CuPy
def accepted_keywords(target: Any, name: str) -> set[str] | None:
    """The keyword names ``target`` accepts, or None when it takes any (``**kwargs``) or its
    signature cannot be read. CuPy's Cython functions, ufuncs and methods have none for
    ``inspect``; their docstrings start with one: "exp(x, /, out=None, \\*, casting=...)"."""
    try:
        parameters = list(inspect.signature(target).parameters.values())
        if any(p.kind is p.VAR_KEYWORD for p in parameters):
            return None
        return {p.name for p in parameters if p.kind is not p.POSITIONAL_ONLY}
    except (TypeError, ValueError):
        pass
    doc = (getattr(target, "__doc__", None) or "").replace("\\", "")
    first = re.match(r"\s*[\w.]*\((.*?)\)", doc)
    if first is None:
        return None
    names: set[str] = set()
    for part in first.group(1).split(","):
        part = part.strip()
        if part.startswith("**"):
            return None
        word = re.match(r"\*?(\w+)", part)
        if word and word.group(1) != "self":
            names.add(word.group(1))
    return names


def find_in_cupy(kind: str, name: str) -> Any:
    """What ``cupy`` has under that name, or None."""
    if kind in ("method", "array attribute"):
        return getattr(cupy.ndarray, name, None)
    owner: Any = cupy
    for part in name.split("."):
        owner = getattr(owner, part, None)
        if owner is None:
            return None
    return owner


def missing_from_cupy(calls: device_standin.Calls) -> list[str]:
    """'kind name' for each recorded name cupy lacks, and 'kind name(keyword=)' for each
    keyword its signature lacks."""
    problems = []
    for (kind, name), keywords in sorted(calls.used.items()):
        target = find_in_cupy(kind, name)
        if target is None:
            problems.append(f"{kind} {name}")
            continue
        accepted = accepted_keywords(target, name) if keywords else None
        if accepted is not None:
            problems += [f"{kind} {name}({k}=)" for k in sorted(keywords - accepted)]
    return problems


# ----------------------------------------------------------------------- the tests
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_runs_on_device_arrays_without_converting_them_to_numpy(recorded, workload):
    result = recorded[workload]
    if isinstance(result, Exception):
        raise result
    assert result.used, "nothing was recorded: the stand-in was not in use"


@needs_cupy
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_every_function_method_and_keyword_exists_in_cupy(recorded, workload):
    result = recorded[workload]
    if isinstance(result, Exception):
        pytest.fail(f"{workload} did not run on the stand-in: {result!r}")
    assert missing_from_cupy(result) == []


def test_the_step_asks_for_what_a_step_needs(recorded):
    """The recording sees the calls that matter: matrix products, the operators, reductions,
    the patch copies' strided views, the in-place updates' ``out=``."""
    calls = recorded["training step, fast kernels"]
    if isinstance(calls, Exception):
        pytest.fail(f"the step did not run on the stand-in: {calls!r}")
    used = calls.used
    assert ("ufunc", "matmul") in used
    assert ("ufunc", "multiply") in used and ("ufunc", "add") in used
    assert ("method", "reshape") in used
    assert any(kind == "function" and "as_strided" in name for kind, name in used)
    assert any("out" in keywords for keywords in used.values())


def test_kernels_take_their_cupy_branches_on_the_stand_in():
    """Where a kernel does something else on a GPU (batch norm's sums), the stand-in's arrays
    take the GPU's lines, so that those are the ones checked; afterwards, nothing is left
    patched."""
    from minigan import backend
    from minigan.ops import batchnorm

    with on_fake_device():
        x = to_device(numpy.ones(2))
        if hasattr(batchnorm, "is_cupy_array"):
            assert batchnorm.is_cupy_array(x)
        if hasattr(batchnorm, "runs_on_host"):
            assert not batchnorm.runs_on_host(backend.get_array_module(x))
    assert getattr(batchnorm, "is_cupy_array", backend.is_cupy_array) is backend.is_cupy_array
    assert backend.array_module() is numpy


# ---- the checks can fail
def test_a_numpy_asarray_on_a_device_array_fails():
    with on_fake_device():
        x = to_device(numpy.ones((2, 3)))
        assert isinstance(x, DeviceArray)
        with pytest.raises(TypeError, match="Implicit conversion"):
            numpy.asarray(x)
        with pytest.raises(TypeError, match="Implicit conversion"):
            numpy.array(x[0])
        with pytest.raises(HostArrayMixed):
            x + numpy.ones(3)                       # a host array in a device operation
        numpy.testing.assert_array_equal(to_numpy(x * 2), numpy.full((2, 3), 2.0))  # explicit
        with pytest.raises(TypeError, match="Implicit conversion"):
            numpy.asarray(x)                        # and only that once


def code_that_calls(name: str, **keywords: Any) -> Callable[[], None]:
    def run() -> None:
        from minigan.backend import array_module

        xp = array_module()
        x = to_device(numpy.ones(3))
        getattr(xp, name)(x, **keywords)
    return run


@needs_cupy
def test_a_name_cupy_lacks_is_caught():
    # NumPy functions CuPy has not implemented (the first that this CuPy lacks is used).
    lacking = next(n for n in ("busday_count", "is_busday", "nanquantile", "nanpercentile",
                               "einsum_path", "info")
                   if hasattr(numpy, n) and not hasattr(cupy, n))
    with on_fake_device() as calls:
        try:
            code_that_calls(lacking)()
        except Exception:   # NumPy may refuse the arguments: the name was still recorded
            pass
    assert f"function {lacking}" in missing_from_cupy(calls)


@needs_cupy
def test_a_keyword_cupy_lacks_is_caught():
    # NumPy's ufuncs take where=; CuPy's take out, dtype and casting only.
    with on_fake_device() as calls:
        code_that_calls("exp", where=True)()
        code_that_calls("log", out=None)()
    assert missing_from_cupy(calls) == ["ufunc exp(where=)"]


@needs_cupy
def test_a_method_cupy_lacks_is_caught():
    # NumPy array methods CuPy's arrays lack (the first that this CuPy lacks is used).
    lacking = next(n for n in ("getfield", "setflags", "resize", "tofile", "dump")
                   if not hasattr(cupy.ndarray, n))
    with on_fake_device() as calls:
        x = to_device(numpy.ones((2, 2)))
        x.sum(axis=0, keepdims=True)
        assert x.nbytes == 32
        try:
            getattr(x, lacking)()
        except Exception:   # NumPy may want arguments: the name was still recorded
            pass
    assert missing_from_cupy(calls) == [f"method {lacking}"]
