"""One record per exercise: everything the grader, the folder loader and ``use_kernels`` need.

An exercise is a row of the grader's table. Its record says which stub file holds it, which
functions (or classes) the learner writes, where minigan keeps its own versions (the
solutions), how to check one case, the simplest case and the hypothesis strategy that draws the
others, how to name a case in a sentence, the hints after the one in the stub, and where the
finished functions go for training (``swap``). The rows are in the order the course assigns
them: preparing the pixels, the convolution written naively and then as a matrix product, the
other kernels, Adam, then the models, their losses, the training step and the two metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from minigan.exercises import checks
from minigan.exercises import course_checks as course
from minigan.exercises import hints as tiers

Case = dict[str, Any]


@dataclass(frozen=True)
class Swap:
    """Where a finished group of functions goes for training: ``module.<name>`` for each."""

    group: str     # "conv2d": what the start-up line of training calls it
    module: str    # "minigan.ops": the namespace the layers (or the trainer) look them up in


@dataclass(frozen=True)
class Exercise:
    """One row of the grader's table."""

    name: str                                  # "conv2d_backward": for `check --hint NAME`
    title: str                                 # "conv2d backward": the row's label
    stub: str                                  # "conv2d.py": the file of the learner's folder
    functions: tuple[str, ...]                 # what the learner writes, and the check grades
    solutions: str                             # the module holding minigan's own versions
    check: Callable[[Any, Case], None]         # check(impl, case): None, or KernelCheckFailed
    simplest: Case                             # tried first; the strategy shrinks towards it
    cases: str                                 # the strategy's name in minigan.exercises.cases
    describe: Callable[[Case], str]            # "x (1, 2, 2, 2), w (...), stride 1, ..."
    hints: tuple[str, ...] = ()                # the tiers after the stub's own hint
    swap: Swap | None = None                   # None: graded, never swapped into training


CONV2D = Swap("conv2d", "minigan.ops")
CONV_TRANSPOSE2D = Swap("conv_transpose2d", "minigan.ops")
BATCH_NORM = Swap("batch_norm", "minigan.ops")
LEAKY_RELU = Swap("leaky_relu", "minigan.ops")
TANH = Swap("tanh", "minigan.ops")
BCE = Swap("bce_with_logits", "minigan.ops")
ADAM = Swap("adam_update", "minigan.optim")
MODELS = Swap("models", "minigan.gan.dcgan")
GAN_LOSSES = Swap("losses", "minigan.gan.losses")
STEP = Swap("step", "minigan.gan.step")


def _shape_and(*keys: str) -> Callable[[Case], str]:
    return lambda case: checks.shape_and(case, *keys)


EXERCISES: tuple[Exercise, ...] = (
    Exercise("scale", "scale pixels", "scale.py", ("scale",), "minigan.exercises.solutions",
             course.check_scale, course.SIMPLEST_SCALE, "scale_cases", course.scale_text,
             tiers.SCALE),
    Exercise("conv2d_naive", "conv2d, seven loops", "conv2d_naive.py", ("conv2d_naive",),
             "minigan.exercises.solutions", course.check_conv2d_naive,
             checks.SIMPLEST_CONV, "conv_cases", checks.conv_text, tiers.CONV2D_NAIVE),
    Exercise("im2col", "im2col and col2im", "im2col.py", ("im2col", "col2im"),
             "minigan.ops.im2col", checks.check_im2col, checks.SIMPLEST_IM2COL, "im2col_cases",
             checks.im2col_text, tiers.IM2COL),
    Exercise("conv2d_forward", "conv2d forward", "conv2d.py", ("conv2d_forward",),
             "minigan.ops.conv2d", checks.check_conv2d_forward, checks.SIMPLEST_CONV,
             "conv_cases", checks.conv_text, tiers.CONV2D_FORWARD, CONV2D),
    Exercise("conv2d_backward", "conv2d backward", "conv2d.py", ("conv2d_backward",),
             "minigan.ops.conv2d", checks.check_conv2d_backward, checks.SIMPLEST_CONV,
             "conv_cases", checks.conv_text, tiers.CONV2D_BACKWARD, CONV2D),
    Exercise("conv_transpose2d", "conv_transpose2d", "conv_transpose2d.py",
             ("conv_transpose2d_forward", "conv_transpose2d_backward"),
             "minigan.ops.conv_transpose2d", checks.check_conv_transpose2d,
             checks.SIMPLEST_CONV_TRANSPOSE, "conv_transpose_cases", checks.conv_text,
             tiers.CONV_TRANSPOSE2D, CONV_TRANSPOSE2D),
    Exercise("batch_norm_train", "batch norm, training", "batchnorm.py",
             ("batch_norm_forward", "batch_norm_backward"), "minigan.ops.batchnorm",
             checks.check_batch_norm_train, checks.SIMPLEST_BATCH_NORM, "batch_norm_cases",
             _shape_and("eps"), tiers.BATCH_NORM_TRAIN, BATCH_NORM),
    Exercise("batch_norm_eval", "batch norm, evaluation", "batchnorm.py",
             ("batch_norm_eval_forward", "batch_norm_backward"), "minigan.ops.batchnorm",
             checks.check_batch_norm_eval, checks.SIMPLEST_BATCH_NORM, "batch_norm_cases",
             _shape_and("eps"), tiers.BATCH_NORM_EVAL, BATCH_NORM),
    Exercise("running_stats", "running statistics", "batchnorm.py", ("update_running_stats",),
             "minigan.ops.batchnorm", checks.check_running_stats,
             checks.SIMPLEST_RUNNING_STATS, "running_stats_cases", _shape_and("momentum"),
             tiers.RUNNING_STATS, BATCH_NORM),
    Exercise("leaky_relu", "leaky ReLU", "activations.py",
             ("leaky_relu_forward", "leaky_relu_backward"), "minigan.ops.activations",
             checks.check_leaky_relu, checks.SIMPLEST_LEAKY_RELU, "leaky_relu_cases",
             _shape_and("negative_slope"), tiers.LEAKY_RELU, LEAKY_RELU),
    Exercise("tanh", "tanh", "activations.py", ("tanh_forward", "tanh_backward"),
             "minigan.ops.activations", checks.check_tanh, checks.SIMPLEST_TANH, "tanh_cases",
             _shape_and(), tiers.TANH, TANH),
    Exercise("bce_with_logits", "BCE with logits", "losses.py",
             ("bce_with_logits_forward", "bce_with_logits_backward"), "minigan.ops.losses",
             checks.check_bce_with_logits, checks.SIMPLEST_BCE, "bce_cases", checks.bce_text,
             tiers.BCE, BCE),
    Exercise("adam_update", "Adam update", "adam.py", ("adam_update",), "minigan.optim",
             checks.check_adam_update, checks.SIMPLEST_ADAM, "adam_cases", checks.adam_text,
             tiers.ADAM, ADAM),
    Exercise("discriminator", "Discriminator", "models.py", ("Discriminator",),
             "minigan.gan.dcgan", course.check_discriminator, course.SIMPLEST_MODEL,
             "model_cases", course.discriminator_text, tiers.DISCRIMINATOR, MODELS),
    Exercise("generator", "Generator", "models.py", ("Generator",), "minigan.gan.dcgan",
             course.check_generator, course.SIMPLEST_MODEL, "model_cases",
             course.generator_text, tiers.GENERATOR, MODELS),
    Exercise("gan_losses", "real and fake losses", "gan_losses.py", ("real_loss", "fake_loss"),
             "minigan.gan.losses", course.check_gan_losses, course.SIMPLEST_GAN_LOSS,
             "gan_loss_cases", course.gan_loss_text, tiers.GAN_LOSSES, GAN_LOSSES),
    Exercise("d_step", "D step", "step.py", ("d_step",), "minigan.gan.step",
             course.check_d_step, course.SIMPLEST_STEP, "step_cases", course.step_text,
             tiers.D_STEP, STEP),
    Exercise("g_step", "G step", "step.py", ("g_step",), "minigan.gan.step",
             course.check_g_step, course.SIMPLEST_STEP, "step_cases", course.step_text,
             tiers.G_STEP, STEP),
    Exercise("train_step", "train step", "step.py", ("train_step",), "minigan.gan.step",
             course.check_train_step, course.SIMPLEST_STEP, "step_cases", course.step_text,
             tiers.TRAIN_STEP, STEP),
    Exercise("inception_score", "Inception Score", "metrics.py", ("inception_score",),
             "minigan.metrics.inception_score", course.check_inception_score,
             course.SIMPLEST_SCORE, "score_cases", course.score_text, tiers.INCEPTION_SCORE),
    Exercise("frechet_distance", "Frechet distance", "metrics.py", ("frechet_distance",),
             "minigan.metrics.frechet", course.check_frechet_distance,
             course.SIMPLEST_FRECHET, "frechet_cases", course.frechet_text, tiers.FRECHET),
)


def stub_files() -> dict[str, tuple[str, ...]]:
    """Each stub file and the functions it holds, in the course's order."""
    files: dict[str, tuple[str, ...]] = {}
    for e in EXERCISES:
        files[e.stub] = files.get(e.stub, ()) + tuple(
            f for f in e.functions if f not in files.get(e.stub, ()))
    return files


def swap_groups() -> dict[str, tuple[Swap, tuple[str, ...]]]:
    """{group: (its Swap, the functions that travel together)}: a forward with its backward and
    whatever shares their cache; D and G; the two losses; the three step functions."""
    groups: dict[str, tuple[Swap, tuple[str, ...]]] = {}
    for e in EXERCISES:
        if e.swap is not None:
            swap, names = groups.get(e.swap.group, (e.swap, ()))
            groups[e.swap.group] = (swap, names + tuple(f for f in e.functions if f not in names))
    return groups


def find(name: str) -> Exercise:
    """The exercise called ``name`` (its name, title, or one of its functions)."""
    for e in EXERCISES:
        if name in (e.name, e.title) or name in e.functions:
            return e
    known = ", ".join(e.name for e in EXERCISES)
    raise ValueError(f"no exercise {name!r}; the exercises are: {known}")


STUB_FILES: dict[str, tuple[str, ...]] = stub_files()
FUNCTION_NAMES: tuple[str, ...] = tuple(n for names in STUB_FILES.values() for n in names)
