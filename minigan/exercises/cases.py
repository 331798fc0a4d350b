"""The cases the grader draws: small shapes and settings, one hypothesis strategy per exercise.

Each strategy makes plain dicts (``{"x": (N, C, H, W), "w": ..., "stride": 2, ...}``) that the
checks in ``minigan.exercises.checks`` turn into arrays, so that a failing case can be printed
as it is. The shapes are small on purpose: a finite-difference check runs the forward pass twice
per input element, and hypothesis shrinks a failure towards the smallest case that still fails,
which is the one a learner can work out by hand.

Each strategy shrinks towards the simplest case of its exercise (the record's ``simplest``,
in ``minigan.exercises.records``), which the grader tries first (an unfinished stub raises
NotImplementedError on it at once).
"""

from __future__ import annotations

from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

seeds = st.integers(0, 2**32 - 1)


@st.composite
def conv_cases(draw: Any, max_kernel: int = 4, max_size: int = 6) -> dict[str, Any]:
    """x (N, C, H, W), w (F, C, K, K), stride, padding, bias or not; at least one output pixel.
    The same geometries as the project's conv2d tests (``tests/helpers.py``)."""
    N, C, F = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    K, S, P = draw(st.integers(1, max_kernel)), draw(st.integers(1, 3)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, K - 2 * P), max_size))
    W = draw(st.integers(max(1, K - 2 * P), max_size))
    return dict(x=(N, C, H, W), w=(F, C, K, K), stride=S, padding=P,
                bias=draw(st.booleans()), seed=draw(seeds))


@st.composite
def im2col_cases(draw: Any) -> dict[str, Any]:
    """An image shape and a kernel size, stride and padding that fit it."""
    case = draw(conv_cases(max_size=7))
    return dict(x=case["x"], kernel_size=case["w"][2], stride=case["stride"],
                padding=case["padding"], seed=case["seed"])


def transposed_output_size(H: int, K: int, S: int, P: int, output_padding: int) -> int:
    return (H - 1) * S - 2 * P + K + output_padding


@st.composite
def conv_transpose_cases(draw: Any) -> dict[str, Any]:
    """x (N, C_in, H, W), w (C_in, C_out, K, K), stride, padding, output_padding < stride."""
    N, C_in, C_out = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    K, S = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    P, output_padding = draw(st.integers(0, 2)), draw(st.integers(0, S - 1))
    H, W = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    assume(min(transposed_output_size(H, K, S, P, output_padding),
               transposed_output_size(W, K, S, P, output_padding)) >= 1)
    return dict(x=(N, C_in, H, W), w=(C_in, C_out, K, K), stride=S, padding=P,
                output_padding=output_padding, bias=draw(st.booleans()), seed=draw(seeds))


# At least 3 values per channel: with 2, x_hat is +-1 whatever x is, its gradient nearly
# vanishes, and a finite-difference check would measure rounding noise.
batch_norm_shapes = (st.tuples(st.integers(3, 6), st.integers(1, 4))
                     | st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(2, 3),
                                 st.integers(2, 3)))
elementwise_shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)


def batch_norm_cases() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(dict(shape=batch_norm_shapes,
                                      eps=st.sampled_from([1e-5, 1e-3, 0.1]), seed=seeds))


def running_stats_cases() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(dict(shape=batch_norm_shapes,
                                      momentum=st.sampled_from([0.1, 0.5, 1.0, 0.0]),
                                      seed=seeds))


def leaky_relu_cases() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(dict(shape=elementwise_shapes,
                                      negative_slope=st.sampled_from([0.2, 0.01, 0.5, 0.0]),
                                      seed=seeds))


def tanh_cases() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(dict(shape=elementwise_shapes, seed=seeds))


def bce_cases() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(dict(shape=elementwise_shapes, soft_targets=st.booleans(),
                                      scale=st.sampled_from([1.0, 1000.0]),
                                      number_target=st.booleans(), seed=seeds))


def adam_cases() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(dict(
        shape=st.tuples(st.integers(1, 3), st.integers(1, 3)), steps=st.integers(1, 4),
        lr=st.sampled_from([0.1, 1e-3, 2e-4]), beta1=st.sampled_from([0.9, 0.5]),
        beta2=st.sampled_from([0.999, 0.9]), eps=st.sampled_from([1e-8, 1e-3]), seed=seeds))


# ------------------------------------------------------------------------- the course's tasks

def scale_cases() -> st.SearchStrategy[dict[str, Any]]:
    """Pixel arrays of any small shape and the ranges a course uses."""
    return st.fixed_dictionaries(dict(
        shape=st.lists(st.integers(2, 4), min_size=1, max_size=4).map(tuple),
        feature_range=st.sampled_from([(-1, 1), (0, 1), (-0.5, 2.0)]), seed=seeds))


def model_cases() -> st.SearchStrategy[dict[str, Any]]:
    """Small DCGANs: conv_dim, z_size, image size 8, 16 or 32, grey or colour."""
    return st.fixed_dictionaries(dict(
        conv_dim=st.integers(1, 4), z_size=st.integers(1, 8),
        image_size=st.sampled_from([8, 16, 32]), channels=st.sampled_from([1, 3]),
        batch=st.integers(1, 3), seed=seeds))


def gan_loss_cases() -> st.SearchStrategy[dict[str, Any]]:
    """D's logits (N, 1), a real label with or without smoothing, and logits of size 1000."""
    return st.fixed_dictionaries(dict(
        shape=st.tuples(st.integers(1, 5), st.just(1)), real_label=st.sampled_from([1.0, 0.9]),
        scale=st.sampled_from([1.0, 1000.0]), seed=seeds))


def step_cases() -> st.SearchStrategy[dict[str, Any]]:
    """A few steps of a tiny DCGAN, with and without label smoothing and TTUR's d_steps."""
    return st.fixed_dictionaries(dict(
        steps=st.integers(1, 3), batch=st.integers(2, 4), real_label=st.sampled_from([1.0, 0.9]),
        d_steps=st.integers(1, 2), channels=st.sampled_from([1, 3]), seed=seeds))


@st.composite
def score_cases(draw: Any) -> dict[str, Any]:
    """Class probabilities: uniform (IS 1), one class per image spread evenly (IS K), random."""
    kind = draw(st.sampled_from(["uniform", "one-hot", "random", "peaked"]))
    k, splits = draw(st.integers(2, 10)), draw(st.integers(1, 4))
    per_split = draw(st.integers(1, 3)) * (k if kind == "one-hot" else 1)
    return dict(kind=kind, n=per_split * splits + (0 if kind == "one-hot" else
                                                   draw(st.integers(0, splits - 1))),
                k=k, splits=splits, seed=draw(seeds))


def frechet_cases() -> st.SearchStrategy[dict[str, Any]]:
    """Two Gaussians' statistics: identical (FID 0), 1-d, diagonal, random covariances."""
    return st.fixed_dictionaries(dict(
        kind=st.sampled_from(["identical", "one-d", "diagonal", "random"]),
        d=st.integers(1, 6), seed=seeds))
