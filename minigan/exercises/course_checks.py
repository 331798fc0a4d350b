"""The checks of the course's own tasks: scale, the naive convolution, D and G, the losses, the
training step, the Inception Score and the Fréchet distance.

As in ``checks``, each ``check_*`` takes the implementation under test (``impl.scale``,
``impl.Discriminator``, ``impl.d_step``, ...) and one case (a small dict) and raises
``KernelCheckFailed`` with one sentence when the answer is wrong. The oracles:

* scale: the formula ``lo + pixels / 255 * (hi - lo)`` in float64;
* conv2d_naive: ``minigan.ops.reference.conv2d_reference``;
* the models: minigan's ``Generator`` and ``Discriminator`` (``minigan/gan/dcgan.py``): the same
  layers in the same order, the same parameter count and output shapes, and, given the same
  weights, the same outputs;
* the losses: the binary cross-entropy written with ``numpy.logaddexp`` (never overflows);
* the step: minigan's own ``minigan.gan.step``, run beside the learner's from the same weights,
  batches and noise, its losses and weights compared after every step;
* the metrics: minigan's scipy-based ``inception_score`` and ``frechet_distance``, and the
  values known without them (uniform predictions give IS 1, one class per image spread evenly
  gives IS K, identical statistics give FID 0, one dimension gives (m1 - m2)^2 + (s1 - s2)^2).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy
import scipy.special

from minigan.backend import to_device, to_numpy
from minigan.exercises.checks import (
    CONV_AXES,
    KernelCheckFailed,
    compare,
    conv_inputs,
    conv_text,
    expect_dtype,
    shape_text,
)
from minigan.gan import dcgan, losses, step
from minigan.metrics.frechet import frechet_distance as reference_frechet_distance
from minigan.metrics.inception_score import inception_score as reference_inception_score
from minigan.nn import Module
from minigan.ops.reference import conv2d_reference
from minigan.optim import Adam

Case = dict[str, Any]

SIMPLEST_SCALE = dict(shape=(2,), feature_range=(-1, 1), seed=0)
SIMPLEST_MODEL = dict(conv_dim=1, z_size=1, image_size=8, channels=1, batch=1, seed=0)
SIMPLEST_GAN_LOSS = dict(shape=(1, 1), real_label=1.0, scale=1.0, seed=0)
SIMPLEST_STEP = dict(steps=1, batch=2, real_label=1.0, d_steps=1, channels=1, seed=0)
SIMPLEST_SCORE = dict(kind="uniform", n=2, k=2, splits=1, seed=0)
SIMPLEST_FRECHET = dict(kind="identical", d=1, seed=0)


# ------------------------------------------------------------------------- scale

def scale_text(case: Case) -> str:
    return f"pixels {shape_text(case['shape'])}, feature_range {tuple(case['feature_range'])}"


def check_scale(impl: Any, case: Case) -> None:
    """uint8 pixels 0..255 -> float32 in feature_range, 0 to its low end and 255 to its high
    end; the input is left as it was."""
    rng = numpy.random.default_rng(case["seed"])
    pixels = rng.integers(0, 256, case["shape"]).astype(numpy.uint8)
    pixels.reshape(-1)[:2] = (255, 0)[:pixels.size]       # both ends of the range, always
    x = to_device(pixels.copy())
    lo, hi = case["feature_range"]
    where = scale_text(case)
    y = impl.scale(x, feature_range=tuple(case["feature_range"]))
    if y is None or not hasattr(y, "dtype"):
        raise KernelCheckFailed(f"scale should return an array, got {type(y).__name__} "
                                f"for {where}")
    if not numpy.array_equal(to_numpy(x), pixels):
        raise KernelCheckFailed(f"scale changed its input for {where}: return a new array")
    expected = lo + pixels.astype(numpy.float64) / 255 * (hi - lo)
    got = numpy.asarray(to_numpy(y))
    if got.shape == pixels.shape and numpy.all(numpy.isfinite(got)):
        got = got.astype(numpy.float64)
        wrong = numpy.abs(got - expected) > 1e-6 * (1 + numpy.abs(expected))
        # Small pixels right, large ones wrong but still inside the range: what wrap-around
        # gives (255 * 2 is 254 in uint8). A value outside the range is a wrong constant.
        inside = (got >= min(lo, hi)) & (got <= max(lo, hi))
        if wrong.any() and numpy.all(pixels[wrong] > 127) and numpy.all(inside[wrong]):
            raise KernelCheckFailed(f"scale is wrong only for pixels above 127 for {where}: "
                                    f"uint8 arithmetic wraps around at 256 (pixel "
                                    f"{int(pixels[wrong][0])} gives {got[wrong][0]:.6g}); make "
                                    f"the pixels floats first")
    compare("scale", "the output", got, expected, where, rtol=1e-6, atol=1e-6,
            axes=_pixel_axes(pixels))
    if numpy.dtype(y.dtype) != numpy.float32:   # uint8 in, float32 out: not "dtype in = out"
        raise KernelCheckFailed(f"scale: the output is {y.dtype} for {where}: it must be "
                                f"float32, the dtype of minigan's layers (uint8 pixels in, "
                                f"float32 out)")


def _pixel_axes(pixels: numpy.ndarray) -> Callable[[tuple[int, ...]], str]:
    return lambda index: f"{index} (pixel {int(pixels[index])})"


# ------------------------------------------------------------------------- naive convolution

def check_conv2d_naive(impl: Any, case: Case) -> None:
    """The seven loops against the reference (which loops over output pixels and sums each
    window); float32 stays float32."""
    x, w, b = conv_inputs(case, case["w"][:1])
    S, P, where = case["stride"], case["padding"], conv_text(case)
    y = impl.conv2d_naive(x, w, b, stride=S, padding=P)
    if isinstance(y, tuple):
        raise KernelCheckFailed("conv2d_naive should return y alone (no cache: it has no "
                                "backward pass)")
    compare("conv2d_naive", "y", y, conv2d_reference(x, w, b, S, P), where,
            axes=CONV_AXES["y"])
    y32 = impl.conv2d_naive(x.astype("float32"), w.astype("float32"),
                            None if b is None else b.astype("float32"), stride=S, padding=P)
    expect_dtype("conv2d_naive", "y", y32, numpy.float32, where)


# ------------------------------------------------------------------------- the models

def discriminator_text(case: Case) -> str:
    return (f"conv_dim {case['conv_dim']}, image_size {case['image_size']}, channels "
            f"{case['channels']}")


def generator_text(case: Case) -> str:
    return f"z_size {case['z_size']}, " + discriminator_text(case)


def layer_list(model: Module) -> list[Module]:
    """The leaf layers in the order they run (nested Sequentials flattened)."""
    return [m for m in model.modules() if not any(True for _ in m.children())]


def layer_text(layer: Module) -> str:
    """'Conv2d 3 -> 32, kernel 4, stride 2, padding 1, no bias', 'BatchNorm2d(64)',
    'LeakyReLU(0.2)': what tells two layers apart."""
    name, weight = type(layer).__name__, getattr(layer, "weight", None)
    bias = "with bias" if getattr(layer, "bias", None) is not None else "no bias"
    if name in ("Conv2d", "ConvTranspose2d") and weight is not None:
        c_out, c_in = weight.shape[:2] if name == "Conv2d" else weight.shape[1::-1]
        return (f"{name} {c_in} -> {c_out}, kernel {weight.shape[2]}, stride "
                f"{getattr(layer, 'stride', '?')}, padding {getattr(layer, 'padding', '?')}, "
                f"{bias}")
    if name == "Linear" and weight is not None:
        return f"Linear {weight.shape[1]} -> {weight.shape[0]}, {bias}"
    if weight is not None:
        return f"{name}({weight.shape[0]})"
    if hasattr(layer, "negative_slope"):
        return f"{name}({layer.negative_slope:g})"
    shape = getattr(layer, "shape", None)
    return f"{name}{tuple(shape) if shape is not None else '()'}"


def _build(impl: Any, kind: str, case: Case) -> tuple[Module, Module]:
    """(the learner's model, minigan's) for the case, both in float64."""
    settings = dict(conv_dim=case["conv_dim"], image_size=case["image_size"],
                    channels=case["channels"])
    if kind == "Generator":
        settings["z_size"] = case["z_size"]
    theirs = getattr(dcgan, kind)(**settings)
    mine = getattr(impl, kind)(**settings)
    if not isinstance(mine, Module):
        raise KernelCheckFailed(f"{kind}(...) should build a minigan Module (a Sequential of "
                                f"minigan.nn layers), got {type(mine).__name__}")
    return mine.to(dtype=numpy.float64), theirs.to(dtype=numpy.float64)


def _same_layers(kind: str, mine: Module, theirs: Module, where: str) -> None:
    ours, reference = layer_list(mine), layer_list(theirs)
    for i, (a, b) in enumerate(zip(ours, reference)):
        if layer_text(a) != layer_text(b):
            raise KernelCheckFailed(f"{kind}: layer {i} is {layer_text(a)} but should be "
                                    f"{layer_text(b)} for {where}")
    if len(ours) != len(reference):
        extra = (f"layer {len(reference)} ({layer_text(ours[len(reference)])}) is one too many"
                 if len(ours) > len(reference) else
                 f"it lacks layer {len(ours)} ({layer_text(reference[len(ours)])})")
        raise KernelCheckFailed(f"{kind}: {len(ours)} layers instead of {len(reference)} "
                                f"for {where}: {extra}")
    count = sum(p.size for p in mine.parameters())
    expected = sum(p.size for p in theirs.parameters())
    if count != expected:
        raise KernelCheckFailed(f"{kind}: {count} parameters instead of {expected} for {where}")


def _copy_weights(mine: Module, theirs: Module) -> None:
    """The reference's parameters and buffers into the learner's model, in order."""
    for p, q in zip(mine.parameters(), theirs.parameters()):
        p.data[...] = q.data
    for (name, _), (_, value) in zip(mine.named_buffers(), theirs.named_buffers()):
        owner, attribute = mine._owner_of(name)
        setattr(owner, attribute, copy.deepcopy(value))


def _same_function(kind: str, mine: Module, theirs: Module, x: Any, where: str) -> None:
    out_shape = tuple(theirs(x).shape)
    y = mine(x)
    if tuple(y.shape) != out_shape:
        raise KernelCheckFailed(f"{kind}: the output has shape {shape_text(y.shape)} but "
                                f"should have {shape_text(out_shape)} for {where}")
    _copy_weights(mine, theirs)
    for mode in ("train", "eval"):
        getattr(mine, mode)()
        getattr(theirs, mode)()
        compare(kind, f"the output ({mode} mode, minigan's weights)", mine(x), theirs(x),
                where, rtol=1e-9, atol=1e-12)


def check_discriminator(impl: Any, case: Case) -> None:
    """Layers, parameter count, output shape (N, 1) and, with minigan's weights, minigan's
    logits."""
    where = discriminator_text(case)
    mine, theirs = _build(impl, "Discriminator", case)
    _same_layers("Discriminator", mine, theirs, where)
    dcgan.dcgan_init(theirs, numpy.random.default_rng(case["seed"]))
    rng = numpy.random.default_rng([case["seed"], 1])
    x = to_device(rng.uniform(-1, 1, (case["batch"] + 1, case["channels"], case["image_size"],
                                      case["image_size"])))
    _same_function("Discriminator", mine, theirs, x, where)


def check_generator(impl: Any, case: Case) -> None:
    """Layers, parameter count, output shape (N, channels, S, S) and, with minigan's weights,
    minigan's images."""
    where = generator_text(case)
    mine, theirs = _build(impl, "Generator", case)
    _same_layers("Generator", mine, theirs, where)
    dcgan.dcgan_init(theirs, numpy.random.default_rng(case["seed"]))
    rng = numpy.random.default_rng([case["seed"], 1])
    z = to_device(rng.uniform(-1, 1, (case["batch"] + 1, case["z_size"])))
    _same_function("Generator", mine, theirs, z, where)
    _same_settings(mine, theirs, where)


def _same_settings(mine: Module, theirs: Module, where: str) -> None:
    """Training saves ``G.config()`` in every checkpoint (and rebuilds G from it): the learner's
    generator must give minigan's settings, which the stub's given lines store."""
    if not hasattr(mine, "config"):
        return
    try:
        settings = mine.config()
    except Exception as error:
        raise KernelCheckFailed(f"Generator.config() raised {type(error).__name__}: {error} "
                                f"for {where}: keep the stub's given lines that store the "
                                f"settings (training saves them in every checkpoint)") from None
    if settings != theirs.config():
        raise KernelCheckFailed(f"Generator.config() is {settings} but should be "
                                f"{theirs.config()} for {where}")


# ------------------------------------------------------------------------- the losses

def gan_loss_text(case: Case, with_label: bool = True) -> str:
    """The case in words; ``with_label=False`` for fake_loss, which takes no real_label."""
    text = f"logits {shape_text(case['shape'])}" + (
        f", real_label {case['real_label']:g}" if with_label else "")
    return text + (f", logits as large as {case['scale']:g}" if case["scale"] > 1 else "")


def bce_oracle(x: numpy.ndarray, t: float) -> tuple[float, numpy.ndarray]:
    """Mean BCE of sigmoid(x) against the number t, and its gradient, from stable pieces."""
    per_element = t * numpy.logaddexp(0, -x) + (1 - t) * numpy.logaddexp(0, x)
    return float(per_element.mean()), (scipy.special.expit(x) - t) / x.size


def _loss_pair(name: str, result: Any, logits: Any, where: str) -> tuple[float, Any]:
    if not (isinstance(result, tuple) and len(result) == 2):
        raise KernelCheckFailed(f"{name} should return a pair (loss, d_logits), got "
                                f"{type(result).__name__} for {where}")
    loss, d_logits = result
    if numpy.ndim(to_numpy(loss)) != 0:
        raise KernelCheckFailed(f"{name}: the loss should be one number (a 0-d array), got "
                                f"shape {shape_text(numpy.shape(to_numpy(loss)))} for {where}")
    if d_logits is None or tuple(numpy.shape(to_numpy(d_logits))) != tuple(logits.shape):
        got = "None" if d_logits is None else shape_text(numpy.shape(to_numpy(d_logits)))
        raise KernelCheckFailed(f"{name}: d_logits is {got} but should have the logits' shape "
                                f"{shape_text(logits.shape)} for {where}")
    return float(to_numpy(loss)), d_logits


def check_gan_losses(impl: Any, case: Case) -> None:
    """real_loss(logits, real_label) = mean BCE against real_label (0.9: label smoothing),
    fake_loss(logits) = mean BCE against 0; both with d loss / d logits, finite at any size."""
    rng = numpy.random.default_rng(case["seed"])
    x_h = case["scale"] * rng.standard_normal(case["shape"])
    logits, label, where = to_device(x_h), case["real_label"], gan_loss_text(case)
    fake_where = gan_loss_text(case, with_label=False)
    with numpy.errstate(over="raise", divide="raise", invalid="raise"):
        try:
            real = _loss_pair("real_loss", impl.real_loss(logits, real_label=label), logits,
                              where)
            fake = _loss_pair("fake_loss", impl.fake_loss(logits), logits, fake_where)
        except FloatingPointError as error:
            raise KernelCheckFailed(f"real_loss or fake_loss is not stable for {where}: "
                                    f"FloatingPointError: {error}") from None
    expected_real, expected_fake = bce_oracle(x_h, label), bce_oracle(x_h, 0.0)
    if not math.isclose(real[0], expected_real[0], rel_tol=1e-9, abs_tol=1e-12):
        if math.isclose(real[0], bce_oracle(x_h, 1.0)[0], rel_tol=1e-9) and label != 1.0:
            raise KernelCheckFailed(f"real_loss ignores real_label for {where}: its target "
                                    f"should be real_label (label smoothing), not 1")
        if math.isclose(real[0], expected_fake[0], rel_tol=1e-9):
            raise KernelCheckFailed(f"real_loss compares the logits with 0 for {where}: "
                                    f"real images should be labelled real_label")
    compare("real_loss", "the loss", numpy.asarray(real[0]), numpy.asarray(expected_real[0]),
            where, rtol=1e-9, atol=1e-12)
    compare("real_loss", "d_logits", real[1], expected_real[1], where, rtol=1e-9, atol=1e-15)
    compare("fake_loss", "the loss", numpy.asarray(fake[0]), numpy.asarray(expected_fake[0]),
            fake_where, rtol=1e-9, atol=1e-12)
    compare("fake_loss", "d_logits", fake[1], expected_fake[1], fake_where, rtol=1e-9,
            atol=1e-15)
    loss32, _ = impl.real_loss(logits.astype("float32"), real_label=label)
    expect_dtype("real_loss", "the loss", to_device(numpy.asarray(to_numpy(loss32))) if
                 not hasattr(loss32, "dtype") else loss32, numpy.float32, where)


# ------------------------------------------------------------------------- the training step

def step_text(case: Case) -> str:
    text = (f"{case['steps']} step{'s' if case['steps'] > 1 else ''}, batch {case['batch']}, "
            f"real_label {case['real_label']:g}")
    return text + (f", d_steps {case['d_steps']}" if case["d_steps"] > 1 else "")


Z_SIZE, CONV_DIM, IMAGE_SIZE = 3, 2, 8   # a DCGAN small enough to step in milliseconds


class _Side:
    """One copy of everything a step touches: G, D, their Adams, a noise stream."""

    def __init__(self, case: Case):
        rng = numpy.random.default_rng(case["seed"])
        channels = case["channels"]
        self.G = dcgan.Generator(z_size=Z_SIZE, conv_dim=CONV_DIM, image_size=IMAGE_SIZE,
                                 channels=channels).to(dtype=numpy.float64)
        self.D = dcgan.Discriminator(conv_dim=CONV_DIM, image_size=IMAGE_SIZE,
                                     channels=channels).to(dtype=numpy.float64)
        dcgan.dcgan_init(self.G, rng)
        dcgan.dcgan_init(self.D, rng)
        # DCGAN's small initial weights give logits near 0 and every loss near log 2; a larger
        # last layer makes D's verdicts, and so the mistakes, visible in the numbers.
        layer_list(self.D)[-1].weight.data *= 50
        self.opt_g = Adam(self.G.parameters(), lr=2e-2, betas=(0.5, 0.999))
        self.opt_d = Adam(self.D.parameters(), lr=2e-2, betas=(0.5, 0.999))
        noise_rng = numpy.random.default_rng([case["seed"], 1])
        self.noise = lambda n: to_device(noise_rng.uniform(-1, 1, (n, Z_SIZE)))
        self.config = step.TrainConfig(real_label=case["real_label"], d_steps=case["d_steps"],
                                       z_size=Z_SIZE)
        batches = numpy.random.default_rng([case["seed"], 2])
        self.batches = [to_device(batches.uniform(-1, 1, (case["batch"], channels, IMAGE_SIZE,
                                                          IMAGE_SIZE)))
                        for _ in range(case["steps"])]


WEIGHT_AXES = {"Conv2d": ("f", "c", "i", "j"), "ConvTranspose2d": ("c_in", "c_out", "i", "j"),
               "Linear": ("out", "in")}


def _parameters_with_meaning(model: Module) -> list[tuple[str, tuple[str, ...] | None]]:
    """('layer 0 (Conv2d) weight', its axes) for each parameter, in order."""
    named = []
    for i, layer in enumerate(layer_list(model)):
        for label, p in layer.named_parameters():
            kind = type(layer).__name__
            axes = WEIGHT_AXES.get(kind) if label == "weight" else ("c",)
            named.append((f"layer {i} ({kind}) {label}", axes if axes and len(axes) == len(p.shape)
                          else None))
    return named


def _same_weights(name: str, which: str, mine: Module, theirs: Module, where: str) -> None:
    for (label, axes), p, q in zip(_parameters_with_meaning(theirs), mine.parameters(),
                                   theirs.parameters()):
        compare(name, f"{which}'s {label}", p.data, q.data, where, rtol=1e-8, atol=1e-12,
                axes=axes)


def _same_number(name: str, what: str, got: Any, expected: Any, where: str) -> None:
    if got is None:
        raise KernelCheckFailed(f"{name}: {what} is None for {where}")
    compare(name, what, numpy.asarray(float(to_numpy(got))),
            numpy.asarray(float(to_numpy(expected))), where, rtol=1e-8, atol=1e-12)


def _run_steps(impl: Any, name: str, case: Case,
               one: Callable[[Any, _Side, Any], dict[str, Any]]) -> None:
    """The learner's ``name`` and minigan's, each on its own copy, step by step."""
    mine, theirs = _Side(case), _Side(case)
    for t in range(case["steps"]):
        at = f"{step_text(case)}, after step {t + 1}"
        got, expected = one(impl, mine, mine.batches[t]), one(step, theirs, theirs.batches[t])
        try:
            for what in expected:
                _same_number(name, what, got[what], expected[what], at)
            _same_weights(name, "D", mine.D, theirs.D, at)
            _same_weights(name, "G", mine.G, theirs.G, at)
        except KernelCheckFailed as failure:
            if t == 0:
                raise
            raise KernelCheckFailed(f"{failure} (step 1 was right: does something carry over "
                                    f"from one step to the next?)", failure.detail) from None


def _pair_or_triple(name: str, result: Any, n: int, what: str) -> tuple[Any, ...]:
    if not (isinstance(result, tuple) and len(result) == n):
        raise KernelCheckFailed(f"{name} should return {what}, got {type(result).__name__}")
    return result


def check_d_step(impl: Any, case: Case) -> None:
    """One D update on a real and a fake batch: d_loss, mean D(x), mean D(G(z)), and D's
    weights as minigan's d_step leaves them (G's unchanged)."""
    def one(api: Any, side: _Side, real: Any) -> dict[str, Any]:
        d_loss, d_real, d_fake = _pair_or_triple(
            "d_step", api.d_step(side.G, side.D, side.opt_d, real, side.noise, side.config), 3,
            "(d_loss, d_real, d_fake)")
        return {"d_loss": d_loss, "d_real": d_real, "d_fake": d_fake}

    _run_steps(impl, "d_step", case, one)


def check_g_step(impl: Any, case: Case) -> None:
    """One G update through D with flipped labels: g_loss and G's weights as minigan's g_step
    leaves them (D's unchanged)."""
    def one(api: Any, side: _Side, real: Any) -> dict[str, Any]:
        g_loss = api.g_step(side.G, side.D, side.opt_g, len(real), side.noise, side.config)
        return {"g_loss": g_loss}

    probe = _Side(case)   # what the first step's fakes score against either label
    logits = probe.D(probe.G(probe.noise(case["batch"])))
    with_fake_label = float(to_numpy(losses.fake_loss(logits)[0]))
    try:
        _run_steps(impl, "g_step", case, one)
    except KernelCheckFailed as failure:
        mine = _Side(case)
        got = impl.g_step(mine.G, mine.D, mine.opt_g, case["batch"], mine.noise, mine.config)
        if got is not None and math.isclose(float(to_numpy(got)), with_fake_label,
                                            rel_tol=1e-9):
            raise KernelCheckFailed(f"g_step scores G's images with the fake label 0 for "
                                    f"{step_text(case)}: G wants D to call them real (flipped "
                                    f"labels, target 1)") from None
        raise failure


def check_train_step(impl: Any, case: Case) -> None:
    """d_steps D updates then one G update: the four numbers of StepResult and both models'
    weights as minigan's train_step leaves them."""
    def one(api: Any, side: _Side, real: Any) -> dict[str, Any]:
        result = api.train_step(side.G, side.D, side.opt_g, side.opt_d, real, side.noise,
                                side.config)
        fields = ("d_loss", "g_loss", "d_real", "d_fake")
        if not all(hasattr(result, f) for f in fields):
            raise KernelCheckFailed(f"train_step should return a StepResult (d_loss, g_loss, "
                                    f"d_real, d_fake), got {type(result).__name__}")
        return {f: getattr(result, f) for f in fields}

    _run_steps(impl, "train_step", case, one)


# ------------------------------------------------------------------------- the metrics

def score_text(case: Case) -> str:
    kinds = {"uniform": "uniform predictions", "one-hot": "one class per image, spread evenly",
             "random": "random predictions", "peaked": "confident random predictions"}
    return (f"{kinds[case['kind']]}, {case['n']} images x {case['k']} classes, "
            f"splits {case['splits']}")


def score_inputs(case: Case) -> numpy.ndarray:
    n, k, rng = case["n"], case["k"], numpy.random.default_rng(case["seed"])
    if case["kind"] == "uniform":
        return numpy.full((n, k), 1.0 / k)
    if case["kind"] == "one-hot":
        return numpy.eye(k)[numpy.arange(n) % k]
    concentration = 0.2 if case["kind"] == "peaked" else 1.0
    return rng.dirichlet(numpy.full(k, concentration), size=n)


def _pair_of_numbers(name: str, result: Any, where: str) -> tuple[float, float]:
    if not (isinstance(result, tuple) and len(result) == 2):
        raise KernelCheckFailed(f"{name} should return a pair (mean, std), got "
                                f"{type(result).__name__} for {where}")
    try:
        return float(to_numpy(result[0])), float(to_numpy(result[1]))
    except (TypeError, ValueError):
        raise KernelCheckFailed(f"{name} should return two numbers for {where}") from None


def check_inception_score(impl: Any, case: Case) -> None:
    """exp(mean KL(p(y|x) || p(y))) per split, mean and std over the splits: against minigan's
    scipy-based score; uniform predictions give 1."""
    probs, where = score_inputs(case), score_text(case)
    mean, std = _pair_of_numbers("inception_score",
                                 impl.inception_score(to_device(probs), splits=case["splits"]),
                                 where)
    if not (math.isfinite(mean) and math.isfinite(std)):
        raise KernelCheckFailed(f"inception_score is {mean:.6g} +- {std:.6g} for {where}: "
                                f"0 * log 0 counts as 0 (scipy.special.rel_entr, or a mask)")
    expected_mean, expected_std = reference_inception_score(probs, splits=case["splits"])
    compare("inception_score", "the mean", numpy.asarray(mean), numpy.asarray(expected_mean),
            where, rtol=1e-9, atol=1e-9)
    compare("inception_score", "the std over the splits", numpy.asarray(std),
            numpy.asarray(expected_std), where, rtol=1e-7, atol=1e-9)


def frechet_text(case: Case) -> str:
    kinds = {"identical": "identical statistics", "one-d": "two 1-d Gaussians",
             "diagonal": "diagonal covariances", "random": "random covariances"}
    return f"{kinds[case['kind']]}, D {case['d']}"


def frechet_inputs(case: Case) -> tuple[numpy.ndarray, ...]:
    d, rng, kind = case["d"], numpy.random.default_rng(case["seed"]), case["kind"]
    if kind == "one-d":
        d = 1
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    if kind in ("one-d", "diagonal"):
        sigma1, sigma2 = numpy.diag(rng.uniform(0.2, 2, d)), numpy.diag(rng.uniform(0.2, 2, d))
    else:
        a, b = rng.standard_normal((d, d + 2)), rng.standard_normal((d, d + 2))
        sigma1, sigma2 = a @ a.T / (d + 2), b @ b.T / (d + 2)
    if kind == "identical":
        mu2, sigma2 = mu1.copy(), sigma1.copy()
    return mu1, sigma1, mu2, sigma2


def frechet_expected(case: Case, mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """The closed forms where there is one; minigan's scipy-based distance elsewhere."""
    if case["kind"] == "identical":
        return 0.0
    if case["kind"] in ("one-d", "diagonal"):   # sqrt of a diagonal product, entry by entry
        s1, s2 = numpy.sqrt(numpy.diag(sigma1)), numpy.sqrt(numpy.diag(sigma2))
        return float(numpy.sum((mu1 - mu2) ** 2) + numpy.sum((s1 - s2) ** 2))
    return reference_frechet_distance(mu1, sigma1, mu2, sigma2)


def check_frechet_distance(impl: Any, case: Case) -> None:
    """||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2)): 0 for identical
    statistics, the closed forms in 1-d and for diagonal covariances, minigan's elsewhere."""
    mu1, sigma1, mu2, sigma2 = frechet_inputs(case)
    where = frechet_text(case)
    got = impl.frechet_distance(to_device(mu1), to_device(sigma1), to_device(mu2),
                                to_device(sigma2))
    if numpy.iscomplexobj(to_numpy(got)):
        raise KernelCheckFailed(f"frechet_distance returned a complex number for {where}: "
                                f"sqrtm can return tiny imaginary parts; keep the real part")
    try:
        value = float(to_numpy(got))
    except (TypeError, ValueError):
        raise KernelCheckFailed(f"frechet_distance should return one number, got "
                                f"{type(got).__name__} for {where}") from None
    expected = frechet_expected(case, mu1, sigma1, mu2, sigma2)
    scale = 1 + numpy.trace(sigma1) + numpy.trace(sigma2)
    entrywise = float(numpy.sum((mu1 - mu2) ** 2) + numpy.trace(
        sigma1 + sigma2 - 2 * numpy.sqrt(numpy.abs(sigma1 * sigma2))))
    if abs(value - entrywise) <= 1e-9 * scale < abs(expected - entrywise):
        raise KernelCheckFailed(f"frechet_distance is {value:.6g} but should be {expected:.6g} "
                                f"for {where}: that is the square root of each entry of "
                                f"sigma1 * sigma2, not the matrix square root of their product")
    if not (math.isfinite(value) and abs(value - expected) <= 1e-6 * scale):
        raise KernelCheckFailed(f"frechet_distance is {value:.6g} but should be "
                                f"{expected:.6g} for {where}")


__all__ = ["check_conv2d_naive", "check_d_step", "check_discriminator",
           "check_frechet_distance", "check_g_step", "check_gan_losses", "check_generator",
           "check_inception_score", "check_scale", "check_train_step", "losses"]
