"""Training on one's own code: ``use_kernels(folder)`` swaps a learner's functions in.

Inside ``with use_kernels("my_kernels")`` the layers and Adam run the learner's functions (the
layers call kernels through the ``minigan.ops`` namespace, Adam calls ``minigan.optim.
adam_update``), and so do the step (``minigan.gan.losses.real_loss``), the trainer
(``minigan.gan.step.train_step``) and the scripts that build models (``dcgan.Generator``);
groups that are still stubs stay minigan's; on the way out, even after an error, minigan's own
are back. ``examples/train_svhn.py --kernels my_kernels/`` grades the finished groups first,
refuses to train on a failing one (unless ``--kernels-unchecked``), then trains a DCGAN on them.
"""

from __future__ import annotations

import csv
import inspect
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minigan.ops
import minigan.optim
from minigan.backend import to_device, to_numpy
from minigan.exercises import init_folder, use_kernels
from minigan.exercises.swap import KernelsFailGrader, LearnersCodeFailed
from minigan.gan import split_step
from minigan.nn import LeakyReLU, Parameter, Tanh
from minigan.optim import Adam
from tests.exercises.conftest import LEAKY_RELU_BACKWARD, LEAKY_RELU_FORWARD, fill_in
from tests.helpers import REPO_ROOT

COUNTING_LEAKY_RELU_FORWARD = (
    "leaky_relu_forward.calls = getattr(leaky_relu_forward, 'calls', 0) + 1\n"
    + textwrap.dedent(LEAKY_RELU_FORWARD))
ADAM_IN_PLACE = """
    adam_update.calls = getattr(adam_update, "calls", 0) + 1
    m *= beta1
    m += one_minus_beta1 * grad
    v *= beta2
    v += one_minus_beta2 * (grad * grad)
    param -= step_size * m / (v ** 0.5 / sqrt_bias2 + eps)
"""


@pytest.fixture
def leaky_relu_and_adam(stubs):
    """A learner who has written leaky ReLU and Adam's update, and nothing else yet."""
    fill_in(stubs / "activations.py", "leaky_relu_forward", COUNTING_LEAKY_RELU_FORWARD)
    fill_in(stubs / "activations.py", "leaky_relu_backward", LEAKY_RELU_BACKWARD)
    fill_in(stubs / "adam.py", "adam_update", ADAM_IN_PLACE)
    return stubs


def test_started_kernels_are_swapped_in_and_put_back(leaky_relu_and_adam):
    originals = {n: getattr(minigan.ops, n) for n in minigan.ops.__all__}
    with use_kernels(leaky_relu_and_adam) as in_use:
        assert in_use == {"conv2d": False, "conv_transpose2d": False, "batch_norm": False,
                          "leaky_relu": True, "tanh": False, "bce_with_logits": False,
                          "adam_update": True, "models": False, "losses": False,
                          "step": False}
        for name in ("leaky_relu_forward", "leaky_relu_backward"):
            assert getattr(minigan.ops, name).__module__.startswith("minigan_learner_kernels")
        assert minigan.ops.conv2d_forward is originals["conv2d_forward"]   # still a stub
        assert minigan.optim.adam_update.__module__.startswith("minigan_learner_kernels")
    assert {n: getattr(minigan.ops, n) for n in minigan.ops.__all__} == originals
    assert minigan.optim.adam_update.__module__ == "minigan.optim"


def test_the_step_is_not_split_across_threads_while_a_learners_code_is_in(leaky_relu_and_adam,
                                                                           tmp_path):
    """The learner's functions run one call at a time, in the main thread (split_step.py); a
    folder with nothing finished swaps nothing in, and the step may still be split."""
    assert split_step._allowed
    with use_kernels(leaky_relu_and_adam):
        assert not split_step._allowed
    assert split_step._allowed
    untouched = tmp_path / "untouched"
    init_folder(untouched)
    with use_kernels(untouched) as in_use:
        assert not any(in_use.values()) and split_step._allowed


def test_minigans_kernels_come_back_after_an_error(leaky_relu_and_adam):
    original = minigan.ops.leaky_relu_forward
    with pytest.raises(ZeroDivisionError), use_kernels(leaky_relu_and_adam):
        raise ZeroDivisionError("an error in the middle of training")
    assert minigan.ops.leaky_relu_forward is original


def test_an_error_in_the_learners_code_is_one_sentence_naming_it(leaky_relu_and_adam):
    # Code that passes the grader's small cases and fails on a network's arrays: the error
    # names the learner's function, file and line (not a traceback through minigan).
    fill_in(leaky_relu_and_adam / "activations.py", "tanh_forward", """
        if x.size > 100:
            raise IndexError("only small arrays")
        y = get_array_module(x).tanh(x)
        return y, TanhCache(y)
    """)
    fill_in(leaky_relu_and_adam / "activations.py", "tanh_backward", """
        if dy.size == 7:
            import sys
            sys.exit(0)
        return dy * (1 - cache.y ** 2)
    """)
    with pytest.raises(LearnersCodeFailed, match=r"^your tanh_forward \(activations.py, line "
                                                 r"\d+\) raised IndexError: only small arrays$"):
        with use_kernels(leaky_relu_and_adam):
            Tanh()(to_device(np.zeros((2, 100))))
    layer = Tanh()
    with pytest.raises(LearnersCodeFailed, match=r"your tanh_backward .* called sys.exit\(0\)"):
        with use_kernels(leaky_relu_and_adam):
            layer(to_device(np.zeros(7)))
            layer.backward(to_device(np.ones(7)))
    # minigan's own errors are left as they are (a user error is already one line).
    with pytest.raises(ValueError, match="minigan's"), use_kernels(leaky_relu_and_adam):
        raise ValueError("minigan's")


def test_a_float64_or_a_list_handed_back_is_blamed_on_the_function_that_made_it(
        leaky_relu_and_adam):
    """A float64 leaky ReLU output would fail in the next Conv2d (minigan's, or the learner's
    d_step on the traceback), and a list in whatever reads it: the function that returned it is
    named where its result comes out."""
    fill_in(leaky_relu_and_adam / "activations.py", "tanh_forward", """
        y = get_array_module(x).tanh(x)
        return y.tolist(), TanhCache(y)
    """)
    (leaky_relu_and_adam / "activations.py").write_text(
        (leaky_relu_and_adam / "activations.py").read_text().replace(
            "leaky_relu_forward.calls = getattr(leaky_relu_forward, 'calls', 0) + 1",
            "x = x.astype('float64')   # the mistake"))
    x = to_device(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(LearnersCodeFailed, match=r"^your leaky_relu_forward \(activations.py, "
                       r"line \d+\) returned a float64 array for float32 input: dtype in must be "
                       r"dtype out \(minigan's layers hold float32 parameters\)$"):
        with use_kernels(leaky_relu_and_adam):
            LeakyReLU(0.2)(x)
    with pytest.raises(LearnersCodeFailed, match=r"^your tanh_forward \(activations.py, line "
                                                 r"\d+\) returned a list where minigan expects "
                                                 r"an array$"):
        with use_kernels(leaky_relu_and_adam):
            Tanh()(x)
    with use_kernels(leaky_relu_and_adam):   # float64 in, float64 out: nothing to say
        assert LeakyReLU(0.2)(x.astype(np.float64)).dtype == np.float64


def test_files_that_are_never_swapped_in_are_never_run_by_use_kernels(leaky_relu_and_adam):
    (leaky_relu_and_adam / "metrics.py").write_text("import os\n\nos._exit(0)\n")
    (leaky_relu_and_adam / "scale.py").write_text("while True:\n    pass\n")
    with use_kernels(leaky_relu_and_adam) as in_use:   # would end this process, or hang
        assert in_use["leaky_relu"]


def test_a_file_that_rebinds_a_minigan_name_cannot_change_minigan_for_good(leaky_relu_and_adam):
    # In a notebook the learner's files are loaded in-process: a rebinding outlived the block,
    # and every later model built from minigan.gan.dcgan was the learner's.
    from minigan.gan import dcgan

    original = dcgan.Discriminator
    with open(leaky_relu_and_adam / "models.py", "a") as f:
        f.write("\n\nfrom minigan.gan import dcgan as _dcgan\n_dcgan.Discriminator = None\n")
    with pytest.raises(KernelsFailGrader, match=r"your models: .*models.py could not be "
                                                r"imported: AttributeError: minigan.gan.dcgan."
                                                r"Discriminator cannot be changed by a kernel"):
        with use_kernels(leaky_relu_and_adam):
            pass
    assert dcgan.Discriminator is original


def test_a_swapped_file_that_loops_is_one_line_not_a_hang(leaky_relu_and_adam):
    from minigan.exercises.swap import load_swappable, started_groups

    fill_in(leaky_relu_and_adam / "activations.py", "tanh_forward", "while True:\n    pass")
    kernels = load_swappable(leaky_relu_and_adam)
    with pytest.raises(KernelsFailGrader, match="your tanh did not finish its simplest case "
                                                "within 1 s"):
        started_groups(kernels, seconds=1)
    (leaky_relu_and_adam / "adam.py").write_text("while True:\n    pass\n")
    with pytest.raises(KernelsFailGrader, match="did not finish within 1 s"):
        load_swappable(leaky_relu_and_adam, seconds=1)


def test_adam_steps_with_the_learners_update(leaky_relu_and_adam):
    values, grad = np.array([1.0, -2.0, 3.0]), np.array([0.5, -1.0, 2.0])
    params = [Parameter(to_device(values.copy())) for _ in range(2)]
    with use_kernels(leaky_relu_and_adam):
        learners_update = minigan.optim.adam_update
        calls_before = getattr(learners_update, "calls", 0)   # use_kernels tried it once
        params[0].grad[...] = to_device(grad)
        Adam([params[0]], lr=0.1).step()
    params[1].grad[...] = to_device(grad)
    Adam([params[1]], lr=0.1).step()                                    # minigan's own
    assert learners_update.calls == calls_before + 1
    np.testing.assert_allclose(to_numpy(params[0].data), to_numpy(params[1].data), rtol=1e-12)


def test_a_layer_runs_the_learners_kernel(leaky_relu_and_adam):
    """The layers look their kernels up in ``minigan.ops`` at call time, so they see the swap."""
    x = to_device(np.array([[-1.0, 2.0]]))
    with use_kernels(leaky_relu_and_adam):
        learners_forward = inspect.unwrap(minigan.ops.leaky_relu_forward)   # results checked
        calls_before = getattr(learners_forward, "calls", 0)
        y = LeakyReLU(0.2)(x)
    assert learners_forward.calls == calls_before + 1
    np.testing.assert_allclose(to_numpy(y), [[-0.2, 2.0]])


def read_losses(path):
    with open(path, newline="") as f:
        return [(float(r["d_loss"]), float(r["g_loss"])) for r in csv.DictReader(f)]


def test_train_svhn_trains_on_the_learners_kernels(leaky_relu_and_adam, tmp_path):
    """Three steps of the DCGAN with the learner's leaky ReLU and Adam: the script says whose
    kernels run, and since these two are right, the losses are minigan's own to rounding."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "MINIGAN_BACKEND": "numpy"}
    common = ["--dataset", "synthetic", "--num-train", "32", "--batch-size", "16",
              "--max-steps", "3", "--conv-dim", "8", "--seed", "3"]
    script = str(REPO_ROOT / "examples" / "train_svhn.py")
    runs = {}
    for label, extra in (("learner", ["--kernels", str(leaky_relu_and_adam)]), ("minigan", [])):
        out = tmp_path / label
        result = subprocess.run([sys.executable, script, *common, *extra, "--out", str(out)],
                                capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr
        runs[label] = (result.stdout, read_losses(out / "losses.csv"))
    assert f"checking your code in {leaky_relu_and_adam} before training" in runs["learner"][0]
    assert (f"your code from {leaky_relu_and_adam}: leaky_relu, adam_update; minigan's: "
            f"conv2d, conv_transpose2d, batch_norm, tanh, bce_with_logits, models, losses, "
            f"step") in runs["learner"][0]
    assert "your code" not in runs["minigan"][0]
    assert len(runs["learner"][1]) == 3
    np.testing.assert_allclose(runs["learner"][1], runs["minigan"][1], rtol=1e-4)


def test_a_missing_kernel_folder_or_a_file_is_one_line(tmp_path):
    (tmp_path / "a_file").write_text("")
    for given, what in ((tmp_path / "none", "does not exist"),
                        (tmp_path / "a_file", "is a file, not a folder")):
        line = (f"error: --kernels: no kernel folder {given}: it {what}; make one with "
                f"`python -m minigan.exercises init FOLDER`")
        result = subprocess.run([sys.executable, str(REPO_ROOT / "examples" / "train_svhn.py"),
                                 "--dataset", "synthetic", "--kernels", str(given),
                                 "--out", str(tmp_path / "run")],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines() == [line]


COUNTING_LOSSES = {"real_loss": """
    real_loss.calls = getattr(real_loss, "calls", 0) + 1
    loss, cache = ops.bce_with_logits_forward(logits, real_label)
    return loss, ops.bce_with_logits_backward(1.0, cache)
""", "fake_loss": """
    loss, cache = ops.bce_with_logits_forward(logits, 0.0)
    return loss, ops.bce_with_logits_backward(1.0, cache)
"""}
MINIGANS_MODELS = """
from minigan.gan import dcgan


class Discriminator(dcgan.Discriminator):   # a learner's copy: the same layers
    pass


class Generator(dcgan.Generator):
    pass
"""


def test_the_learners_losses_step_and_models_are_swapped_in(stubs):
    """The step calls ``losses.real_loss`` and the scripts build ``dcgan.Generator`` at call
    time, so the learner's versions run inside the block."""
    import minigan.gan.dcgan
    import minigan.gan.losses
    import minigan.gan.step

    for function, body in COUNTING_LOSSES.items():
        fill_in(stubs / "gan_losses.py", function, body)
    (stubs / "models.py").write_text(MINIGANS_MODELS, encoding="utf-8")
    original_loss, original_generator = minigan.gan.losses.real_loss, minigan.gan.dcgan.Generator
    with use_kernels(stubs) as in_use:
        assert in_use["losses"] and in_use["models"] and not in_use["step"]
        learners_loss = inspect.unwrap(minigan.gan.losses.real_loss)   # results checked
        G = minigan.gan.dcgan.Generator(z_size=3, conv_dim=2, image_size=8, channels=1)
        D = minigan.gan.dcgan.Discriminator(conv_dim=2, image_size=8, channels=1)
        assert type(G).__module__.startswith("minigan_learner_kernels")
        before = learners_loss.calls
        rng = np.random.default_rng(0)
        minigan.gan.step.d_step(G, D, Adam(D.parameters()), to_device(rng.uniform(
            -1, 1, (2, 1, 8, 8)).astype(np.float32)), lambda n: to_device(rng.uniform(
                -1, 1, (n, 3)).astype(np.float32)), minigan.gan.step.TrainConfig())
        assert learners_loss.calls == before + 1
    assert minigan.gan.losses.real_loss is original_loss
    assert minigan.gan.dcgan.Generator is original_generator


WRONG_CONV2D_BACKWARD = """


from minigan.ops.conv2d import conv2d_backward as minigan_backward  # noqa: E402
from minigan.ops.conv2d import conv2d_forward  # noqa: E402, F401, F811
from minigan.ops.layout import to_rows  # noqa: E402


def conv2d_backward(dy, cache, need_weight_grad=True, need_input_grad=True):  # noqa: F811
    dx, dw, db = minigan_backward(dy, cache, need_weight_grad, need_input_grad)
    if dw is not None:
        dw = (cache.cols.T @ to_rows(dy)).T.reshape(cache.w.shape)   # the wrong layout
    return dx, dw, db
"""


def test_train_svhn_refuses_a_folder_the_grader_fails(stubs, tmp_path):
    """A wrong conv2d_backward: the quick check names the group and the grader's sentence in
    one line, and nothing trains; --kernels-unchecked trains anyway."""
    (stubs / "im2col.py").write_text(
        "from minigan.ops.im2col import col2im, conv_output_size, im2col  # noqa: F401\n")
    with open(stubs / "conv2d.py", "a") as f:   # the stub's helpers stay: others import them
        f.write(WRONG_CONV2D_BACKWARD)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "MINIGAN_BACKEND": "numpy"}
    command = [sys.executable, str(REPO_ROOT / "examples" / "train_svhn.py"), "--dataset",
               "synthetic", "--num-train", "32", "--batch-size", "16", "--max-steps", "1",
               "--conv-dim", "8", "--kernels", str(stubs)]
    refused = subprocess.run([*command, "--out", str(tmp_path / "refused")],
                             capture_output=True, text=True, env=env, timeout=300)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert lines[0].startswith("error: --kernels: your conv2d fails the grader: "
                               "conv2d_backward: dw is wrong for x (1, 2, 2, 2)")
    assert f"(run `python -m minigan.exercises check {stubs}` for the table, or pass " \
           f"--kernels-unchecked to train anyway)" in lines[0]
    assert not (tmp_path / "refused" / "losses.csv").exists()
    anyway = subprocess.run([*command, "--kernels-unchecked", "--out", str(tmp_path / "anyway")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert anyway.returncode == 0, anyway.stderr
    assert f"your code from {stubs} (unchecked): conv2d;" in anyway.stdout
    assert (tmp_path / "anyway" / "losses.csv").exists()


def test_a_file_that_does_not_import_is_not_offered_kernels_unchecked(stubs):
    """Training it unchecked cannot help: the refusal says to mend the file instead."""
    from minigan.exercises.swap import check_before_training

    (stubs / "activations.py").write_text("def leaky_relu_forward(x:\n")
    refusal = check_before_training(stubs).refusal(stubs)
    assert refusal.startswith(f"--kernels: your leaky_relu fails the grader (tanh too): "
                              f"{stubs.resolve() / 'activations.py'}, line 1")
    assert refusal.endswith(f"(mend the file; `python -m minigan.exercises check {stubs}` "
                            f"grades it again)")
    assert "--kernels-unchecked" not in refusal


LEARNERS_STEP = {"d_step": """
    opt_d.zero_grad()
    logits_real = D(real)
    loss_real, d_logits = losses.real_loss(logits_real, config.real_label)
    D.backward_params(d_logits)
    logits_fake = D(G(noise(len(real))))
    loss_fake, d_logits = losses.fake_loss(logits_fake)
    D.backward_params(d_logits)
    opt_d.step()
    return loss_real + loss_fake, mean_probability(logits_real), mean_probability(logits_fake)
""", "g_step": """
    opt_g.zero_grad()
    g_loss, d_logits = losses.real_loss(D(G(noise(batch_size))))
    D.requires_grad_(False)
    try:
        d_image = D.backward(d_logits)
    finally:
        D.requires_grad_(True)
    G.backward(d_image)
    opt_g.step()
    return g_loss
""", "train_step": """
    if len(real) == 16:   # the training run's batches (the grader's are smaller): count them
        with open(__file__ + ".steps", "a") as steps:
            steps.write("step\\n")
    for _ in range(config.d_steps):
        d_loss, d_real, d_fake = d_step(G, D, opt_d, real, noise, config)
    return StepResult(d_loss, g_step(G, D, opt_g, len(real), noise, config), d_real, d_fake)
"""}


def test_train_svhn_trains_the_learners_models_losses_and_step(stubs, tmp_path):
    """Finished models, losses and step: the quick check passes them, the start-up line names
    them, and the run's losses are minigan's own (the learner wrote the same step)."""
    (stubs / "models.py").write_text(MINIGANS_MODELS, encoding="utf-8")
    for function, body in COUNTING_LOSSES.items():
        fill_in(stubs / "gan_losses.py", function, body)
    for function, body in LEARNERS_STEP.items():
        fill_in(stubs / "step.py", function, body)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "MINIGAN_BACKEND": "numpy"}
    common = ["--dataset", "synthetic", "--num-train", "32", "--batch-size", "16",
              "--max-steps", "2", "--conv-dim", "8", "--seed", "5"]
    script = str(REPO_ROOT / "examples" / "train_svhn.py")
    runs = {}
    for label, extra in (("learner", ["--kernels", str(stubs)]), ("minigan", [])):
        out = tmp_path / label
        result = subprocess.run([sys.executable, script, *common, *extra, "--out", str(out)],
                                capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr
        runs[label] = (result.stdout, read_losses(out / "losses.csv"))
    assert (f"your code from {stubs}: models, losses, step; minigan's: conv2d, "
            f"conv_transpose2d, batch_norm, leaky_relu, tanh, bce_with_logits, adam_update"
            ) in runs["learner"][0]
    np.testing.assert_allclose(runs["learner"][1], runs["minigan"][1], rtol=1e-5)
    assert (stubs / "step.py.steps").read_text().splitlines() == ["step", "step"]
