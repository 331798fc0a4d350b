"""One switch picks the plain kernels or their fast variants: ``minigan.ops.fast_kernels``.

* the switch is a context manager that restores the previous state, even after an error, and
  nests; ``MINIGAN_KERNELS=plain|fast`` sets the state a process starts in, and a bad value is a
  one-line error that names the variable;
* ``switch.FAST_VARIANTS`` names every guard: the guards are found in the source of
  ``minigan/ops`` (every ``if fast_kernels_enabled(): return X(...)``) and compared with it;
* with the switch off, no fast variant runs: each is replaced here by a function that fails, and
  every kernel that has one still works, forward and backward; nor does anything a fast variant
  brings with it (the reused zero-bordered buffer, fused helpers, the loss cache's extra field);
* with it on, each plain kernel hands over to its fast variant (counted);
* stepping into ``Conv2d.backward`` with the plain kernels reaches col2im's loop and passes
  through no speed trick (the functions that run are recorded, as a debugger would see them);
* both give the same numbers (and tests/gan/test_fast_vs_plain.py trains a DCGAN both ways).
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

import minigan.ops.activations
import minigan.ops.batchnorm
import minigan.ops.im2col
from minigan import ops
from minigan.backend import to_device, to_numpy
from minigan.ops.batchnorm import batch_norm_train_forward
from minigan.ops.switch import FAST_VARIANTS
from tests.helpers import REPO_ROOT, random_array

OPS_FOLDER = REPO_ROOT / "minigan" / "ops"


def guards_in_the_source() -> set[tuple[str, str, str]]:
    """(module, plain kernel, fast variant) for every ``if fast_kernels_enabled(): return X(...)``
    in minigan/ops; and an assertion that the switch is read nowhere else there."""
    found, reads = set(), 0
    for path in sorted(OPS_FOLDER.glob("*.py")):
        tree = ast.parse(path.read_text())
        reads += sum(isinstance(node, ast.Call) and getattr(node.func, "id", "") ==
                     "fast_kernels_enabled" for node in ast.walk(tree))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            for statement in function.body:
                if (isinstance(statement, ast.If)
                        and isinstance(statement.test, ast.Call)
                        and getattr(statement.test.func, "id", "") == "fast_kernels_enabled"):
                    assert len(statement.body) == 1 and not statement.orelse, function.name
                    returned = statement.body[0]
                    assert isinstance(returned, ast.Return), function.name
                    assert isinstance(returned.value, ast.Call), function.name
                    found.add((path.stem, function.name, returned.value.func.id))
    assert reads == len(found), "fast_kernels_enabled() is read outside a guard in minigan/ops"
    return found


def test_the_list_of_fast_variants_is_every_guard_in_the_source():
    assert guards_in_the_source() == set(FAST_VARIANTS)


def fast_variant_places():
    """(module object, name of the fast variant) for each guard: where to replace it."""
    return [(importlib.import_module(f"minigan.ops.{module}"), fast)
            for module, _, fast in FAST_VARIANTS]


def run_every_kernel_with_a_fast_variant():
    """conv2d, conv_transpose2d, batch norm (training and eval, running statistics), the BCE
    loss, ReLU, leaky ReLU and tanh, forward and backward, and col2im(im2col(x)): all their
    outputs."""
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
    running = ops.update_running_stats(gamma * 0, gamma * 0 + 1, cache_bn)
    z_train, _, *running_train = batch_norm_train_forward(x, gamma, beta, *running)
    z_eval, cache_eval = ops.batch_norm_eval_forward(x, gamma, beta, *running)
    grads_eval = ops.batch_norm_backward(random_array(rng, z.shape), cache_eval)
    loss, cache_loss = ops.bce_with_logits_forward(random_array(rng, (4, 1)), 0.9)
    dlogits = ops.bce_with_logits_backward(1.0, cache_loss)
    pooled, cache_pool = ops.max_pool2d_forward(x, 3, stride=2, padding=1)
    dx_pool = ops.max_pool2d_backward(random_array(rng, pooled.shape), cache_pool)
    averaged, _ = ops.avg_pool2d_forward(x, 3, stride=1, padding=1, count_include_pad=False)
    relu, cache_relu = ops.relu_forward(x)
    dx_relu = ops.relu_backward(random_array(rng, x.shape), cache_relu)
    leaky, cache_leaky = ops.leaky_relu_forward(x, 0.2)
    dx_leaky = ops.leaky_relu_backward(random_array(rng, x.shape), cache_leaky)
    t, cache_tanh = ops.tanh_forward(x)
    dtanh = ops.tanh_backward(random_array(rng, x.shape), cache_tanh)
    # col2im on its own: with the fast kernels, the convolutions' input gradients do not use it.
    back = minigan.ops.im2col.col2im(minigan.ops.im2col.im2col(x, 3, 2, 1), x.shape, 3, 2, 1)
    return [y, *grads[:2], yt, *grads_t[:2], z, *grads_bn, *running, z_train, *running_train,
            z_eval, *grads_eval, loss, dlogits, pooled, dx_pool, averaged, relu, dx_relu, leaky,
            dx_leaky, dtanh, back]


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

    for module, name in fast_variant_places():
        monkeypatch.setattr(module, name, refuse)
    # What the fast variants bring with them: none of it may run either.
    for module, name in [(minigan.ops.im2col, "_zero_bordered_buffer"),
                         (minigan.ops.batchnorm, "normalize_scale_shift"),
                         (minigan.ops.batchnorm, "input_grad_from_sums"),
                         (minigan.ops.batchnorm, "blend_running_stats"),
                         (minigan.ops.batchnorm, "variance_inv_std_and_running_stats"),
                         (minigan.ops.batchnorm, "eval_scale_shift"),
                         (minigan.ops.activations, "relu_gradient"),
                         (minigan.ops.activations, "leaky_relu_and_slope"),
                         (minigan.ops.activations, "tanh_gradient")]:
        monkeypatch.setattr(module, name, refuse)
    with ops.fast_kernels(False):
        outputs = run_every_kernel_with_a_fast_variant()
        _, cache = ops.bce_with_logits_forward(to_device(np.zeros((2, 1))), 1.0)
    assert all(np.all(np.isfinite(to_numpy(a))) for a in outputs)
    assert not hasattr(cache, "exp_neg_abs")    # the loss cache's fast-only field


def test_fast_kernels_call_every_fast_variant(monkeypatch):
    calls = {name: 0 for _, name in fast_variant_places()}
    for module, name in fast_variant_places():
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


SPEED_TRICKS = {fast for _, _, fast in FAST_VARIANTS} | {"_window_view", "phase_weight_matrix"}


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
