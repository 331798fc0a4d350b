"""The grader grades: minigan's own kernels pass, untouched stubs are "not started", and a wrong
kernel fails with one sentence naming the smallest case that shows it.

The grader (``python -m minigan.exercises check``) runs the checks of
``minigan.exercises.checks`` over cases drawn by hypothesis and shrinks a failure to the smallest
failing case. These tests hold it to what a learner sees: the table's statuses, the exact
sentence for some typical mistakes (a weight gradient reshaped in the wrong layout, a naive
binary cross-entropy that overflows, the biased variance in the running statistics, an Adam
that updates a copy instead of the parameter), and no traceback anywhere.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from minigan.exercises import EXERCISES, FUNCTION_NAMES, grade, load_kernels, minigan_kernels
from minigan.exercises.__main__ import main
from minigan.exercises.folder import STUBS
from minigan.exercises.grader import FAILED, NOT_STARTED, PASSED, grade_one
from tests.exercises.conftest import LEAKY_RELU_BACKWARD, LEAKY_RELU_FORWARD, fill_in

EXAMPLES = 10   # cases per exercise: enough to find each mistake below, quick on 2 cores


def exercise(title: str):
    return next(e for e in EXERCISES if e.title == title)


def statuses(results) -> dict[str, str]:
    return {r.exercise.title: r.status for r in results}


def test_minigan_kernels_are_the_solutions():
    results = grade(minigan_kernels(), max_examples=EXAMPLES)
    assert statuses(results) == {e.title: PASSED for e in EXERCISES}


def test_the_table_lists_every_kernel_and_every_course_task_in_the_lessons_order():
    assert [e.name for e in EXERCISES] == [
        "scale", "conv2d_naive", "im2col", "conv2d_forward", "conv2d_backward",
        "conv_transpose2d", "batch_norm_train", "batch_norm_eval", "running_stats",
        "leaky_relu", "tanh", "bce_with_logits", "adam_update", "discriminator", "generator",
        "gan_losses", "d_step", "g_step", "train_step", "inception_score", "frechet_distance"]


def test_untouched_stubs_are_all_not_started(stubs, capsys):
    assert main(["check", str(stubs), "--examples", str(EXAMPLES)]) == 1
    out = capsys.readouterr()
    assert len(EXERCISES) == 21
    rows = dict(re.findall(r"^  (\S.*?)\s{2,}(passed|failed|not started)$", out.out, re.M))
    assert rows == {e.title: NOT_STARTED for e in EXERCISES}
    assert f"0 passed, 0 failed, {len(EXERCISES)} not started" in out.out
    assert "Traceback" not in out.out + out.err
    assert (stubs / "grader_report.txt").read_text().startswith(f"Grading {stubs}")


def test_filling_in_leaky_relu_passes_it_and_leaves_the_rest_not_started(stubs, capsys):
    fill_in(stubs / "activations.py", "leaky_relu_forward", LEAKY_RELU_FORWARD)
    fill_in(stubs / "activations.py", "leaky_relu_backward", LEAKY_RELU_BACKWARD)
    main(["check", str(stubs), "--examples", str(EXAMPLES)])
    out = capsys.readouterr().out
    assert re.search(r"^  leaky ReLU\s+passed$", out, re.M)
    assert f"1 passed, 0 failed, {len(EXERCISES) - 1} not started" in out


def test_a_wrong_backward_gives_one_sentence_with_the_smallest_failing_case(stubs):
    """leaky ReLU's backward without the slope: right for x > 0 only. Hypothesis shrinks to
    the simplest case, the shape (2,) with the slope 0.2."""
    fill_in(stubs / "activations.py", "leaky_relu_forward", LEAKY_RELU_FORWARD)
    fill_in(stubs / "activations.py", "leaky_relu_backward", "return dy * (cache.slope == 1)")
    result = grade_one(exercise("leaky ReLU"), load_kernels(stubs), EXAMPLES)
    assert result.status == FAILED
    assert re.fullmatch(r"leaky_relu_backward: dx is wrong for x \(2,\), negative_slope 0\.2: "
                        r"relative error \S+ against finite differences \(should be below "
                        r"1e-06\)", result.sentence), result.sentence


def write(folder: Path, name: str, source: str) -> None:
    (folder / name).write_text(inspect.cleandoc(source) + "\n", encoding="utf-8")


def test_a_weight_gradient_in_the_wrong_layout_shrinks_to_two_channels_and_a_2x2_kernel(stubs):
    """cols.T @ dy_rows is (K*K*C, F) in im2col's (i, j, c) order; reshaping it straight to
    (F, C, K, K) scrambles it, but only when both C > 1 and K > 1. The smallest case that
    shows the mistake has exactly that: two channels, a 2 x 2 kernel."""
    write(stubs, "im2col.py", "from minigan.ops.im2col import col2im, conv_output_size, im2col")
    write(stubs, "conv2d.py", '''
        from minigan.ops.conv2d import conv2d_backward as minigan_backward
        from minigan.ops.conv2d import conv2d_forward  # noqa: F401
        from minigan.ops.layout import to_rows


        def conv2d_backward(dy, cache, need_weight_grad=True, need_input_grad=True):
            dx, dw, db = minigan_backward(dy, cache, need_weight_grad, need_input_grad)
            if dw is not None:
                dw = (cache.cols.T @ to_rows(dy)).T.reshape(cache.w.shape)   # the mistake
            return dx, dw, db
    ''')
    result = grade_one(exercise("conv2d backward"), load_kernels(stubs), EXAMPLES)
    assert result.status == FAILED
    assert result.case["x"] == (1, 2, 2, 2) and result.case["w"] == (1, 2, 2, 2)
    assert re.fullmatch(r"conv2d_backward: dw is wrong for x \(1, 2, 2, 2\), w \(1, 2, 2, 2\), "
                        r"stride 1, padding 0, no bias: relative error \S+ against finite "
                        r"differences \(should be below 1e-06\)", result.sentence), result.sentence
    # Side by side, each weight position named (f, c, i, j): (0, 0, 0, 0) and (0, 1, 1, 1)
    # are right (the two orders agree there), the six between are permuted.
    rows = result.detail.splitlines()[2:]
    assert len(rows) == 8 and rows[0].split()[:5] == ["(f,", "c,", "i,", "j)", "="]
    assert [row.startswith("    x ") for row in rows] == [False] + [True] * 6 + [False]


def test_the_side_by_side_shows_a_mistake_a_dy_of_ones_would_hide(stubs):
    """The x_hat * dgamma term of batch norm's dx with the wrong sign: with dy = 1 both the
    true and the wrong dx are 0 (dgamma = sum x_hat = 0), so the entry by entry comparison must
    use the check's own random dy to show where it is wrong."""
    write(stubs, "batchnorm.py", '''
        from minigan.ops.batchnorm import batch_norm_backward as minigan_backward
        from minigan.ops.batchnorm import (  # noqa: F401
            BatchNormCache, batch_norm_eval_forward, batch_norm_forward, from_rows,
            update_running_stats)


        def batch_norm_backward(dy, cache, across=None):
            dx, dgamma, dbeta = minigan_backward(dy, cache, across)
            if cache.training:   # the mistake: + x_hat * dgamma instead of - x_hat * dgamma
                k = cache.gamma * cache.inv_std / cache.m
                dx = dx + from_rows(2 * k * dgamma * cache.x_hat, dx.shape)
            return dx, dgamma, dbeta
    ''')
    result = grade_one(exercise("batch norm, training"), load_kernels(stubs), EXAMPLES)
    assert result.status == FAILED and result.sentence.startswith("batch_norm_backward: dx is "
                                                                  "wrong"), result.sentence
    rows = result.detail.splitlines()
    assert "for the check's random dy" in rows[0]
    assert any(row.startswith("    x ") for row in rows[2:]), result.detail


NAIVE_BCE = {"bce_with_logits_forward": """
    s = 1 / (1 + xp.exp(-logits))      # the textbook formula: overflows for large |x|
    loss = -xp.mean(targets * xp.log(s) + (1 - targets) * xp.log(1 - s))
    return xp.asarray(loss), BCEWithLogitsCache(logits, targets)
""", "bce_with_logits_backward": """
    from minigan.ops.activations import sigmoid   # stable for any x
    x, t = cache.logits, cache.targets
    return (sigmoid(x) - t) * (get_array_module(x).asarray(dloss, dtype=x.dtype) / x.size)
"""}
BCE_FOR_ARRAY_TARGETS_ONLY = {"bce_with_logits_forward": """
    t = targets.astype(logits.dtype)   # but the trainer passes the number 1.0 (or 0.9) too
    per_element = xp.maximum(logits, 0) - logits * t + xp.log1p(xp.exp(-xp.abs(logits)))
    return xp.asarray(per_element.mean()), BCEWithLogitsCache(logits, t)
""", "bce_with_logits_backward": NAIVE_BCE["bce_with_logits_backward"]}
ADAM_ON_COPIES = {"adam_update": """
    m = beta1 * m + one_minus_beta1 * grad     # new local arrays: the caller sees nothing
    v = beta2 * v + one_minus_beta2 * grad * grad
    param = param - step_size * m / (v ** 0.5 / sqrt_bias2 + eps)
"""}
TANH_FOR_VECTORS_ONLY = {"tanh_forward": """
    xp = get_array_module(x)
    if x.ndim > 1:
        raise ValueError("only vectors for now")
    return xp.tanh(x), TanhCache(y=xp.tanh(x))
""", "tanh_backward": "return dy * (1 - cache.y ** 2)"}

FLOAT64_CONV_GRADIENTS = {"conv2d_forward": """
    from minigan.ops.conv2d import conv2d_forward as minigans
    return minigans(x, w, b, stride, padding)
""", "conv2d_backward": """
    from minigan.ops.conv2d import conv2d_backward as minigans
    return tuple(None if g is None else g.astype("float64")     # right values, wrong dtype
                 for g in minigans(dy, cache, need_weight_grad, need_input_grad))
"""}
FLOAT64_BATCH_NORM_GRADIENTS = {"batch_norm_forward": """
    from minigan.ops.batchnorm import batch_norm_forward as minigans
    return minigans(x, gamma, beta, eps)
""", "batch_norm_backward": """
    from minigan.ops.batchnorm import batch_norm_backward as minigans
    return tuple(g.astype("float64") for g in minigans(dy, cache))
"""}

BCE_PROMOTING_A_FLOAT64_DLOSS = {  # right for the number 1.0 the trainer passes; not for an array
    "bce_with_logits_forward": """
    from minigan.ops.losses import bce_with_logits_forward as minigans
    return minigans(logits, targets)
""", "bce_with_logits_backward": """
    from minigan.ops.activations import sigmoid
    x, t = cache.logits, cache.targets
    return (sigmoid(x) - t) * dloss / x.size
"""}

# Right, except that every 7th call is doubled: finite differences then see a jumping forward.
FORWARD_WITH_A_MEMORY = {"tanh_forward": """
    import itertools
    calls = tanh_forward.__dict__.setdefault("calls", itertools.count(1))
    y = get_array_module(x).tanh(x) * (2 if next(calls) % 7 == 0 else 1)
    return y, TanhCache(y=y)
""", "tanh_backward": "return dy * (1 - cache.y ** 2)"}

BACKWARD_RETURNING_A_LIST = {"leaky_relu_forward": LEAKY_RELU_FORWARD,
                             "leaky_relu_backward": "return (dy * cache.slope).tolist()"}


@pytest.mark.parametrize("title, file, bodies, sentence", [
    ("BCE with logits", "losses.py", NAIVE_BCE,
     r"bce_with_logits_forward or its backward is not stable for x \(1,\), logits as large "
     r"as 1000: FloatingPointError: (overflow encountered in exp|divide by zero encountered "
     r"in log)"),
    ("BCE with logits", "losses.py", BCE_FOR_ARRAY_TARGETS_ONLY,
     r"bce_with_logits_forward raised AttributeError: .* for x \(1,\), target the number 1"),
    ("Adam update", "adam.py", ADAM_ON_COPIES,
     r"adam_update did not change param at step 1 \(param \(1, 1\), lr 0\.1, betas "
     r"\(0\.9, 0\.999\), eps 1e-08\): update param, m and v in place .*"),
    ("tanh", "activations.py", TANH_FOR_VECTORS_ONLY,
     r"tanh_forward raised ValueError: only vectors for now for x \(1, 1\)"),
    # float64 gradients pass every value check, then fail when training adds them to float32
    ("conv2d backward", "conv2d.py", FLOAT64_CONV_GRADIENTS,
     r"conv2d_backward: dx is float64 for float32 input \(x \(1, 1, 2, 2\), .*\): dtype in "
     r"must be dtype out"),
    ("batch norm, training", "batchnorm.py", FLOAT64_BATCH_NORM_GRADIENTS,
     r"batch_norm_backward: dx is float64 for float32 input \(x \(3, 1\), eps 1e-05 "
     r"\(training mode\)\): dtype in must be dtype out"),
    # a forward pass that answers differently is named, not the backward the check then fails
    ("tanh", "activations.py", FORWARD_WITH_A_MEMORY,
     r"tanh_forward gives another output when called again on the same input \(x \(.*\)\): "
     r"the gradient check needs the same answer every time \(state kept between calls\?\)"),
    ("BCE with logits", "losses.py", BCE_PROMOTING_A_FLOAT64_DLOSS,
     r"bce_with_logits_backward: dlogits for a float64 0-d dloss is float64 for float32 input "
     r"\(.*\): dtype in must be dtype out"),
    # the check itself fails on what came back: named by the function that returned it
    ("leaky ReLU", "activations.py", BACKWARD_RETURNING_A_LIST,
     r"the grader cannot use what leaky_relu_backward returned \(AttributeError: 'list' object "
     r"has no attribute '\w+'\) for x \(\d+,\), negative_slope \S+"),
], ids=["naive-bce", "bce-array-targets-only", "adam-on-copies", "tanh-crashes",
        "conv-float64-gradients", "batch-norm-float64-gradients", "forward-with-a-memory",
        "bce-float64-dloss", "backward-returns-a-list"])
def test_typical_mistakes_get_their_sentence(stubs, title, file, bodies, sentence):
    for function, body in bodies.items():
        fill_in(stubs / file, function, body)
    result = grade_one(exercise(title), load_kernels(stubs), EXAMPLES)
    assert result.status == FAILED
    assert re.fullmatch(sentence, result.sentence), result.sentence


def test_running_var_with_the_biased_variance_is_named(stubs):
    write(stubs, "batchnorm.py", '''
        from minigan.ops.batchnorm import batch_norm_forward  # noqa: F401


        def update_running_stats(running_mean, running_var, cache, momentum=0.1):
            return ((1 - momentum) * running_mean + momentum * cache.mean,
                    (1 - momentum) * running_var + momentum * cache.var)   # biased: wrong
    ''')
    result = grade_one(exercise("running statistics"), load_kernels(stubs), EXAMPLES)
    assert result.status == FAILED
    assert "uses the biased batch variance" in result.sentence
    assert "m / (m - 1) * sigma2_B" in result.sentence


def test_a_finished_kernel_waiting_for_an_unfinished_one_says_so(stubs):
    """conv2d written on top of the learner's im2col, which is still a stub."""
    fill_in(stubs / "conv2d.py", "conv2d_forward", """
        cols = im2col(x, w.shape[2], stride, padding)
        return cols @ weight_matrix(w), None
    """)
    result = grade_one(exercise("conv2d forward"), load_kernels(stubs), EXAMPLES)
    assert result.status == NOT_STARTED and result.sentence == "needs im2col first"


def test_the_stubs_keep_the_signatures_of_minigans_kernels(stubs):
    mine, theirs = minigan_kernels(), load_kernels(stubs)
    for name in FUNCTION_NAMES:
        ours = inspect.signature(getattr(mine, name))
        stub = inspect.signature(getattr(theirs, name))
        assert [(p.name, p.default) for p in stub.parameters.values()] == \
               [(p.name, p.default) for p in ours.parameters.values()], name
        with pytest.raises(NotImplementedError, match=f"{name}: write me"):
            getattr(theirs, name)(*[None] * len(stub.parameters))


def test_init_never_overwrites_and_errors_are_one_line(stubs, tmp_path, capsys):
    assert main(["init", str(stubs)]) == 2
    assert main(["check", str(tmp_path / "nowhere")]) == 2
    assert main(["check", str(stubs), "--examples", "0"]) == 2
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["init", str(tmp_path / "notes.txt")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and all(line.startswith("error: ") for line in err)
    assert "already holds every stub" in err[0] and "init" in err[1] and "--examples" in err[2]
    assert "notes.txt is a file" in err[3] and (tmp_path / "notes.txt").read_text() == "mine"


def test_init_again_brings_back_only_the_stubs_that_are_gone(stubs, capsys):
    """Deleting one stub and running init again starts that exercise afresh; the learner's
    other files stay exactly as they were."""
    fill_in(stubs / "scale.py", "scale", "return x")
    mine = (stubs / "scale.py").read_text()
    (stubs / "conv2d.py").write_text("# my broken attempt")
    (stubs / "conv2d.py").unlink()
    assert main(["init", str(stubs)]) == 0
    out = capsys.readouterr().out
    assert f"copied 1 file into {stubs}: conv2d.py (the files already there" in out
    assert f"next: fill in {stubs / 'conv2d.py'}" in out
    assert (stubs / "scale.py").read_text() == mine
    assert (stubs / "conv2d.py").read_bytes() == (STUBS / "conv2d.py").read_bytes()


def test_the_report_never_replaces_a_file_that_is_not_a_report(stubs, tmp_path, capsys):
    """`--report scale.py` by mistake must not turn a learner's solution into a table; a part
    graded with --only leaves the folder's whole report alone; an earlier report is replaced."""
    fill_in(stubs / "scale.py", "scale", "return x")
    mine = (stubs / "scale.py").read_text()
    assert main(["check", str(stubs), "--only", "scale", "--report", str(stubs / "scale.py"),
                 "--examples", "1"]) == 2
    assert (stubs / "scale.py").read_text() == mine
    err = capsys.readouterr().err
    assert "scale.py exists and is not a grader report, so it is left as it is" in err
    assert main(["check", str(stubs), "--only", "scale", "--examples", "1"]) == 1
    assert not (stubs / "grader_report.txt").exists()        # --only: a part, not the table
    report = tmp_path / "report.txt"
    for _ in range(2):                                        # new, then an earlier report
        assert main(["check", str(stubs), "--only", "scale", "--report", str(report),
                     "--examples", "1"]) == 1
        assert report.read_text().startswith(f"Grading {stubs} (up to 1 case per exercise")


def test_a_file_that_does_not_import_fails_its_own_exercises_only(stubs, capsys):
    """A syntax error in activations.py: its exercises fail with the file and line, the
    others are graded as usual, and nothing prints a traceback."""
    (stubs / "activations.py").write_text("def leaky_relu_forward(x:\n")
    main(["check", str(stubs), "--examples", str(EXAMPLES)])
    out = capsys.readouterr()
    assert re.search(r"^  leaky ReLU\s+failed$", out.out, re.M)
    assert re.search(r"^  tanh\s+failed$", out.out, re.M)
    assert re.search(r"^  conv2d forward\s+not started$", out.out, re.M)
    assert re.search(r"^\S+activations\.py, line \d+: ", out.out, re.M)
    assert "Traceback" not in out.out + out.err


def test_the_command_line_grades_the_solutions_and_shows_its_defaults(capsys):
    assert main(["check", "--solutions", "--examples", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Grading minigan's own solutions (up to 3 cases per exercise, seed 0, "
                          "10 s per case)")
    assert f"{len(EXERCISES)} passed, 0 failed, 0 not started" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "cases drawn per exercise before it counts as passed (default: 50)" in text
    assert "--seed" in text and "(default: my_kernels)" in text


def test_a_kernel_with_a_mind_of_its_own_is_named(stubs):
    """A kernel that answers differently each time cannot be pinned to one failing case."""
    fill_in(stubs / "activations.py", "tanh_forward", """
        xp = get_array_module(x)
        tanh_forward.calls = getattr(tanh_forward, "calls", 0) + 1
        wrong = 40 <= tanh_forward.calls < 45             # wrong for a while, then right again
        y = 2 * xp.tanh(x) if wrong else xp.tanh(x)
        return y, TanhCache(y=y)
    """)
    fill_in(stubs / "activations.py", "tanh_backward", "return dy * (1 - cache.y ** 2)")
    result = grade_one(exercise("tanh"), load_kernels(stubs), EXAMPLES)
    assert result.status == FAILED
    assert result.sentence.startswith("tanh_forward fails on some cases but not when they are "
                                      "repeated"), result.sentence
