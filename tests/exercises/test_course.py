"""The course's own tasks as exercises: what the grader says about a learner's typical mistake.

The DCGAN lesson asks for ``scale``, the Discriminator and the Generator, the two losses, the
training step, and the metrics lesson for the Inception Score and FID; a naive convolution
comes before im2col. Each test below fills in one stub with a mistake learners make (uint8
arithmetic that wraps, a stride forgotten in the loops, batch norm on D's first layer, label
smoothing ignored, gradients never cleared, one marginal for every split, a square root taken
entry by entry) and holds the grader to the sentence it writes. Hints come in tiers, and none
of them (nor a stub) holds its answer.
"""

from __future__ import annotations

import inspect
import re

import pytest

from minigan.exercises import EXERCISES, find, grade_one, hint, load_kernels, minigan_kernels
from minigan.exercises.__main__ import main
from minigan.exercises.folder import STUBS
from minigan.exercises.grader import FAILED
from tests.exercises.conftest import fill_in

EXAMPLES = 20

NAIVE_CONV_WITHOUT_STRIDE = """
    N, C, H, W = x.shape
    F, _, K, _ = w.shape
    x_pad = xp.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    H_out = (H + 2 * padding - K) // stride + 1
    W_out = (W + 2 * padding - K) // stride + 1
    y = xp.zeros((N, F, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for ho in range(H_out):
                for wo in range(W_out):
                    for c in range(C):
                        for i in range(K):
                            for j in range(K):
                                y[n, f, ho, wo] += w[f, c, i, j] * x_pad[n, c, ho + i, wo + j]
                    if b is not None:
                        y[n, f, ho, wo] += b[f]
    return y
"""
D_WITH_BATCH_NORM_ON_ITS_INPUT_LAYER = """
    layers = []
    in_channels = channels
    for i in range(num_stride2_layers(image_size)):
        out_channels = conv_dim * 2 ** i
        layers += [Conv2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False),
                   BatchNorm2d(out_channels), LeakyReLU(0.2)]
        in_channels = out_channels
    layers += [Flatten(), Linear(in_channels * 16, 1)]
"""
G_WITHOUT_TANH = """
    n = num_stride2_layers(image_size)
    top = conv_dim * 2 ** (n - 1)
    layers = [Linear(z_size, top * 16), Reshape(top, 4, 4)]
    for _ in range(n - 1):
        layers += [ConvTranspose2d(top, top // 2, 4, stride=2, padding=1, bias=False),
                   BatchNorm2d(top // 2), ReLU()]
        top //= 2
    layers += [ConvTranspose2d(top, channels, 4, stride=2, padding=1)]
"""
D_STEP_WITHOUT_ZERO_GRAD = """
    logits_real = D(real)
    loss_real, d_logits = losses.real_loss(logits_real, config.real_label)
    D.backward_params(d_logits)
    logits_fake = D(G(noise(len(real))))
    loss_fake, d_logits = losses.fake_loss(logits_fake)
    D.backward_params(d_logits)
    opt_d.step()
    return loss_real + loss_fake, mean_probability(logits_real), mean_probability(logits_fake)
"""
G_STEP_WITHOUT_FLIPPED_LABELS = """
    opt_g.zero_grad()
    g_loss, d_logits = losses.fake_loss(D(G(noise(batch_size))))
    D.requires_grad_(False)
    G.backward(D.backward(d_logits))
    D.requires_grad_(True)
    opt_g.step()
    return g_loss
"""
IS_WITH_ONE_MARGINAL = """
    probs = np.asarray(to_numpy(probs), dtype=np.float64)
    marginal = probs.mean(axis=0)
    scores = []
    for i in range(splits):
        part = probs[i * len(probs) // splits:(i + 1) * len(probs) // splits]
        scores.append(np.exp(scipy.special.rel_entr(part, marginal).sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))
"""
FID_WITH_AN_ENTRYWISE_ROOT = """
    mu1, mu2 = np.asarray(to_numpy(mu1), float), np.asarray(to_numpy(mu2), float)
    s1, s2 = np.asarray(to_numpy(sigma1), float), np.asarray(to_numpy(sigma2), float)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * np.sqrt(np.abs(s1 * s2))))
"""
MISTAKES = {
    "scale-wraps": ("scale", "scale.py", {"scale": """
        lo, hi = feature_range
        return (x * (hi - lo) / 255 + lo).astype("float32")
    """}, r"scale is wrong only for pixels above 127 for pixels \(2,\), feature_range \(-1, 1\): "
          r"uint8 arithmetic wraps around at 256 \(pixel 255 gives -0\.00392157\); make the "
          r"pixels floats first"),
    # A wrong constant sends 255 outside the range: not the wrap-around sentence above.
    "scale-wrong-constant": ("scale", "scale.py", {"scale": """
        lo, hi = feature_range
        return (x.astype("float32") / 252 * (hi - lo) + lo).astype("float32")
    """}, r"scale: the output is wrong for pixels \(2,\), feature_range \(-1, 1\): 1\.02381 at "
          r"\(0,\) \(pixel 255\) should be 1"),
    "scale-float64": ("scale", "scale.py", {"scale": """
        lo, hi = feature_range
        return x / 255 * (hi - lo) + lo
    """}, r"scale: the output is float64 for pixels \(2,\), feature_range \(-1, 1\): it must be "
          r"float32, the dtype of minigan's layers \(uint8 pixels in, float32 out\)"),
    "naive-conv-without-stride": ("conv2d_naive", "conv2d_naive.py",
                                  {"conv2d_naive": NAIVE_CONV_WITHOUT_STRIDE},
                                  r"conv2d_naive: y is wrong for x \(1, 1, 1, 3\), w \(1, 1, 1, "
                                  r"1\), stride 2, padding 0, no bias: \S+ at \(n, f, h, w\) = "
                                  r"\(0, 0, 0, 1\) should be \S+"),
    "d-with-batch-norm-first": ("discriminator", "models.py",
                                {"Discriminator": D_WITH_BATCH_NORM_ON_ITS_INPUT_LAYER},
                                r"Discriminator: layer 0 is Conv2d 1 -> 1, kernel 4, stride 2, "
                                r"padding 1, no bias but should be Conv2d 1 -> 1, kernel 4, "
                                r"stride 2, padding 1, with bias for conv_dim 1, image_size 8, "
                                r"channels 1"),
    "g-without-tanh": ("generator", "models.py", {"Generator": G_WITHOUT_TANH},
                       r"Generator: 3 layers instead of 4 for z_size 1, conv_dim 1, image_size "
                       r"8, channels 1: it lacks layer 3 \(Tanh\(\)\)"),
    "real-loss-ignores-smoothing": ("gan_losses", "gan_losses.py", {"real_loss": """
        loss, cache = ops.bce_with_logits_forward(logits, 1.0)
        return loss, ops.bce_with_logits_backward(1.0, cache)
    """, "fake_loss": """
        loss, cache = ops.bce_with_logits_forward(logits, 0.0)
        return loss, ops.bce_with_logits_backward(1.0, cache)
    """}, r"real_loss ignores real_label for logits \(1, 1\), real_label 0\.9: its target "
          r"should be real_label \(label smoothing\), not 1"),
    "fake-loss-gradient-sign": ("gan_losses", "gan_losses.py", {"real_loss": """
        loss, cache = ops.bce_with_logits_forward(logits, real_label)
        return loss, ops.bce_with_logits_backward(1.0, cache)
    """, "fake_loss": """
        loss, cache = ops.bce_with_logits_forward(logits, 0.0)
        return loss, -ops.bce_with_logits_backward(1.0, cache)
    """}, r"fake_loss: d_logits is wrong for logits \(1, 1\): \S+ at index \(0, 0\) should be "
          r"\S+"),   # fake_loss has no real_label: the sentence names none
    "d-step-without-zero-grad": ("d_step", "step.py", {"d_step": D_STEP_WITHOUT_ZERO_GRAD},
                                 r"d_step: D's layer 0 \(Conv2d\) weight is wrong for 2 steps, "
                                 r"batch 2, real_label 1, after step 2: \S+ at \(f, c, i, j\) = "
                                 r"\(0, 0, 0, 0\) should be \S+ \(step 1 was right: does "
                                 r"something carry over from one step to the next\?\)"),
    "g-step-without-flipped-labels": ("g_step", "step.py",
                                      {"g_step": G_STEP_WITHOUT_FLIPPED_LABELS},
                                      r"g_step scores G's images with the fake label 0 for 1 "
                                      r"step, batch 2, real_label 1: G wants D to call them "
                                      r"real \(flipped labels, target 1\)"),
    "is-with-one-marginal": ("inception_score", "metrics.py",
                             {"inception_score": IS_WITH_ONE_MARGINAL},
                             r"inception_score: the mean is wrong for random predictions, 2 "
                             r"images x 2 classes, splits 2: \S+ should be 1"),
    "fid-with-an-entrywise-root": ("frechet_distance", "metrics.py",
                                   {"frechet_distance": FID_WITH_AN_ENTRYWISE_ROOT},
                                   r"frechet_distance is \S+ but should be \S+ for random "
                                   r"covariances, D 2: that is the square root of each entry "
                                   r"of sigma1 \* sigma2, not the matrix square root of their "
                                   r"product"),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_a_typical_mistake_gets_its_sentence(stubs, mistake):
    name, stub, bodies, sentence = MISTAKES[mistake]
    for function, body in bodies.items():
        fill_in(stubs / stub, function, body)
    result = grade_one(find(name), load_kernels(stubs), EXAMPLES)
    assert result.status == FAILED
    assert re.fullmatch(sentence, result.sentence), result.sentence


def test_a_generator_without_its_settings_fails_before_training_would(stubs):
    # Right layers, but the given lines that store the settings deleted: training saves
    # G.config() in every checkpoint and stopped there with a traceback.
    fill_in(stubs / "models.py", "Generator", G_WITHOUT_TANH + "    layers.append(Tanh())\n")
    text = (stubs / "models.py").read_text()
    given = text[text.index("        self.z_size, self.conv_dim"):
                 text.index("    def config(self)")]
    (stubs / "models.py").write_text(text.replace(given, "\n"))
    result = grade_one(find("generator"), load_kernels(stubs), EXAMPLES)
    assert result.status == FAILED
    assert re.fullmatch(r"Generator.config\(\) raised AttributeError: 'Generator' object has no "
                        r"attribute 'z_size' for z_size 1, .*: keep the stub's given lines that "
                        r"store the settings \(training saves them in every checkpoint\)",
                        result.sentence), result.sentence


COLUMNS_IN_C_I_J_ORDER = """
    N, C, H, W = x.shape
    K, S, P = kernel_size, stride, padding
    x_pad = xp.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    H_out, W_out = conv_output_size(H, K, S, P), conv_output_size(W, K, S, P)
    rows = [x_pad[n, :, S * ho:S * ho + K, S * wo:S * wo + K].reshape(-1)   # (c, i, j) order
            for n in range(N) for ho in range(H_out) for wo in range(W_out)]
    return xp.stack(rows)
"""


def test_a_wrong_im2col_entry_is_named_by_its_pixel_and_its_kernel_offset(stubs):
    fill_in(stubs / "im2col.py", "im2col", COLUMNS_IN_C_I_J_ORDER)
    fill_in(stubs / "im2col.py", "col2im", "from minigan.ops.im2col import col2im as minigans\n"
                                           "return minigans(cols, x_shape, kernel_size, stride, "
                                           "padding)")
    result = grade_one(find("im2col"), load_kernels(stubs), EXAMPLES)
    assert result.sentence.startswith(
        "im2col: cols is wrong for x (1, 2, 2, 2), kernel_size 2, stride 1, padding 0: ")
    assert "at row 0 (n, ho, wo) = (0, 0, 0), column 1 (i, j, c) = (0, 0, 1) should be" \
        in result.sentence
    marks = [line[4] for line in result.detail.splitlines()[2:]]
    assert marks == [" ", "x", "x", "x", "x", "x", "x", " "]   # the corners agree


def test_the_naive_convolution_is_the_oracle_of_im2col():
    """A wrong im2col whose entries match the reference's (checked first) cannot exist; the
    product with the flattened weights is compared with the seven loops as well."""
    source = inspect.getsource(find("im2col").check)
    assert "conv2d_reference" in source and "naive seven-loop convolution" in source


def test_hint_tiers_and_their_command(capsys):
    assert main(["check", "--hint", "conv2d_backward"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Hint 2 of 3 for conv2d backward (conv2d_backward in conv2d.py):")
    assert "(next: --hint conv2d_backward --tier 3)" in out
    assert "weight_from_matrix" in hint("conv2d_backward", 3)
    assert main(["check", "--hint", "conv2d_backward", "--tier", "4"]) == 2
    assert main(["check", "--hint", "no_such_exercise"]) == 2
    assert main(["check", "--hint", "conv2d_backward", "--tier", "1"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and "tiers 1 (in conv2d.py) to 3" in err[0]
    assert "no exercise 'no_such_exercise'" in err[1]
    assert "hint 1 of conv2d_backward is the text above its function in conv2d.py; --tier " \
           "takes 2 to 3" in err[2]
    assert all(len(e.hints) >= 1 for e in EXERCISES)


def stub_hints(filename: str) -> str:
    """The comments of a stub (its first-tier hints), without the docstrings."""
    text = (STUBS / filename).read_text(encoding="utf-8")
    return "\n".join(line.split("#", 1)[1] for line in text.splitlines() if "#" in line)


def solution_lines(exercise) -> list[str]:
    """The code lines of minigan's solution to an exercise, 20 characters or longer."""
    lines = []
    for name in exercise.functions:
        source = inspect.getsource(getattr(minigan_kernels(), name))
        body = re.sub(r'"""[\s\S]*?"""', "", source)
        lines += [" ".join(line.split("#")[0].split()) for line in body.splitlines()]
    return [line for line in lines if len(line) >= 20 and not line.startswith("def ")]


# Lines the hints of earlier versions gave away (the whole leaky ReLU, im2col's row order, the
# stable BCE, the convolution's product, the transposed convolution's forward pass).
GIVEN_AWAY = ["xp.where(x > 0, 1, negative_slope)", "y = x * slope",
              "window.transpose(1, 2, 0).reshape(-1)", "max(x, 0) - x*t + log(1 + exp(-|x|))",
              "cols @ weight_matrix(w)", "col2im(nchw_to_rows(x) @ weight_matrix(w).T",
              "cols.T @ dy_rows, then weight_from_matrix", "dy_rows @ weight_matrix(w).T"]


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.name)
def test_no_stub_or_hint_holds_its_answer(exercise):
    hints = " ".join((stub_hints(exercise.stub) + "\n" + "\n".join(exercise.hints)).split())
    for line in solution_lines(exercise):
        assert line not in hints, (exercise.name, line)
    for given_away in GIVEN_AWAY:
        assert given_away not in hints, (exercise.name, given_away)
