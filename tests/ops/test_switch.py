"""One switch picks the plain kernels or their fast variants: ``minigan.ops.fast_kernels``.

* the switch is a context manager that restores the previous state, even after an error, and
  nests; ``MINIGAN_KERNELS=plain|fast`` sets the state a process starts in, and a bad value is a
  one-line error that names the variable;
* with the switch off, no fast variant runs: each is replaced here by a function that fails, and
  a convolution, a transposed convolution and batch norm, forward and backward, still work;
* with it on, each plain kernel hands over to its fast variant (counted);
* stepping into ``Conv2d.backward`` with the plain kernels reaches col2im's loop and passes
  through no speed trick (the functions that run are recorded, as a debugger would see them);
* both give the same numbers (and tests/gan/test_fast_vs_plain.py trains a DCGAN both ways).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import minigan.ops.batchnorm
import minigan.ops.conv2d
import minigan.ops.im2col
from minigan import ops
from minigan.backend import to_device, to_numpy
from tests.helpers import REPO_ROOT, random_array

# (module, name of the fast variant) for every kernel that has one.
FAST_VARIANTS = [
    (minigan.ops.im2col, "im2col_fast"),
    (minigan.ops.im2col, "col2im_fast"),
    (minigan.ops.conv2d, "conv2d_input_grad_subpixel"),
    (minigan.ops.batchnorm, "batch_norm_forward_fast"),
    (minigan.ops.batchnorm, "batch_norm_backward_fast"),
]


def run_every_kernel_with_a_fast_variant():
    """conv2d, conv_transpose2d and batch norm, forward and backward, and col2im(im2col(x)):
    all their outputs."""
    rng = np.random.default_rng(0)
    x = random_array(rng, (2, 3, 6, 6))
    w = random_array(rng, (4, 3, 3, 3))
    y, cache = ops.conv2d_forward(x, w, None, stride=2, padding=1)
    grads = ops.conv2d_backward(random_array(rng, y.shape), cache)
    wt = random_array(rng, (3, 2, 4, 4))
    yt, cache_t = ops.conv_transpose2d_forward(x, wt, None, stride=2, padding=1)
    grads_t = ops.conv_transpose2d_backward(random_array(rng, yt.shape), cache_t)
    gamma, beta = random_array(rng, (3,)), random_array(rng, (3,))
    z, cache_bn = ops.batch_norm_forward(x, gamma, beta)
    grads_bn = ops.batch_norm_backward(random_array(rng, z.shape), cache_bn)
    # col2im on its own: with the fast kernels, the convolutions' input gradients do not use it.
    back = minigan.ops.im2col.col2im(minigan.ops.im2col.im2col(x, 3, 2, 1), x.shape, 3, 2, 1)
    return [y, *grads[:2], yt, *grads_t[:2], z, *grads_bn, back]


def test_the_switch_restores_the_previous_state_and_nests():
    start = ops.fast_kernels_enabled()
    with ops.fast_kernels(False):
        assert ops.fast_kernels_enabled() is False
        with ops.fast_kernels(True):
            assert ops.fast_kernels_enabled() is True
        assert ops.fast_kernels_enabled() is False
        with pytest.raises(RuntimeError), ops.fast_kernels(True):
            raise RuntimeError("an error inside the block")
        assert ops.fast_kernels_enabled() is False   # restored after the error, too
    assert ops.fast_kernels_enabled() is start


def test_plain_kernels_never_call_a_fast_variant(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a fast variant ran with fast_kernels(False)")

    for module, name in FAST_VARIANTS:
        monkeypatch.setattr(module, name, refuse)
    with ops.fast_kernels(False):
        outputs = run_every_kernel_with_a_fast_variant()
    assert all(np.all(np.isfinite(to_numpy(a))) for a in outputs)


def test_fast_kernels_call_every_fast_variant(monkeypatch):
    calls = {name: 0 for _, name in FAST_VARIANTS}
    for module, name in FAST_VARIANTS:
        original = getattr(module, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    with ops.fast_kernels(True):
        run_every_kernel_with_a_fast_variant()
    assert all(count > 0 for count in calls.values()), calls


def test_both_paths_give_the_same_numbers():
    with ops.fast_kernels(True):
        fast = run_every_kernel_with_a_fast_variant()
    with ops.fast_kernels(False):
        plain = run_every_kernel_with_a_fast_variant()
    for a, b in zip(fast, plain):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-12, atol=1e-12)


def functions_called_by(call) -> list[str]:
    """The names of the Python functions that run during call(), in order (what a debugger
    stepping into it would pass through)."""
    names = []

    def profile(frame, event, arg):
        if event == "call":
            names.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return names


SPEED_TRICKS = {"im2col_fast", "col2im_fast", "conv2d_input_grad_subpixel", "_window_view",
                "phase_weight_matrix", "batch_norm_forward_fast", "batch_norm_backward_fast"}


def test_stepping_into_conv2d_backward_with_plain_kernels_reaches_the_col2im_loop():
    from minigan import nn

    conv = nn.Conv2d(3, 4, 4, stride=2, padding=1).to(dtype="float64")
    x = random_array(np.random.default_rng(0), (2, 3, 8, 8))
    with ops.fast_kernels(False):
        y = conv(x)
        called = functions_called_by(lambda: conv.backward(to_device(np.ones(y.shape))))
    assert "conv2d_input_grad" in called and "col2im" in called
    assert not SPEED_TRICKS & set(called), SPEED_TRICKS & set(called)
    with ops.fast_kernels(True):
        y = conv(x)
        called = functions_called_by(lambda: conv.backward(to_device(np.ones(y.shape))))
    assert "conv2d_input_grad_subpixel" in called and "col2im" not in called


def kernels_in_a_fresh_process(value: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MINIGAN_KERNELS=value, PYTHONPATH=str(REPO_ROOT))
    code = "from minigan import ops; print(ops.fast_kernels_enabled())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          cwd=REPO_ROOT)


@pytest.mark.parametrize("value, expected", [("plain", "False"), ("fast", "True"),
                                             ("Plain", "False"), ("", "True")])
def test_the_environment_variable_sets_the_starting_state(value, expected):
    result = kernels_in_a_fresh_process(value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_a_bad_environment_value_is_an_error_naming_the_variable():
    result = kernels_in_a_fresh_process("quick")
    assert result.returncode != 0
    assert "ValueError: MINIGAN_KERNELS must be 'plain' or 'fast', got 'quick'" in result.stderr


def train_two_steps(tmp_path, *args: str, kernels: str = "fast") -> subprocess.CompletedProcess:
    env = dict(os.environ, MINIGAN_KERNELS=kernels, PYTHONPATH=str(REPO_ROOT),
               OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg", MINIGAN_BACKEND="numpy")
    command = [sys.executable, str(REPO_ROOT / "examples" / "train_svhn.py"), "--dataset",
               "synthetic", "--max-steps", "2", "--batch-size", "8", "--conv-dim", "4",
               "--num-train", "16", "--out", str(tmp_path / "run"), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO_ROOT)


def test_the_training_script_runs_with_plain_kernels(tmp_path):
    result = train_two_steps(tmp_path, "--plain-kernels")
    assert result.returncode == 0, result.stderr
    assert "2 steps in" in result.stdout


def test_the_training_script_reports_a_bad_kernel_choice_in_one_line(tmp_path):
    result = train_two_steps(tmp_path, kernels="quick")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "MINIGAN_KERNELS must be 'plain' or 'fast'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
