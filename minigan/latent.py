"""The latent vectors z a generator turns into images: their distributions, spelled once.

The course draws z uniformly from [-1, 1]; PyTorch's DCGAN example draws from the standard
normal. A generator must be sampled with the distribution it was trained on, so the trainer,
the evaluator and ``examples/generate.py`` all draw through ``sample_z``.
"""

from __future__ import annotations

from typing import Any

import numpy

from minigan.backend import global_rng, randn, uniform

LATENT_DISTRIBUTIONS = ("uniform", "normal")


def check_distribution(distribution: str, what: str = "z distribution") -> None:
    """Refuse a name that is not one of ``LATENT_DISTRIBUTIONS``, with one line."""
    if distribution not in LATENT_DISTRIBUTIONS:
        names = " or ".join(repr(d) for d in LATENT_DISTRIBUTIONS)
        raise ValueError(f"{what} must be {names}, not {distribution!r}")


def sample_z(n: int, z_size: int, distribution: str = "uniform",
             rng: numpy.random.Generator | None = None, dtype: Any = None) -> Any:
    """n latent vectors (n, z_size) on the active backend: uniform in [-1, 1] (the course's
    choice) or standard normal (the DCGAN paper's PyTorch example). They are drawn on the host
    by a seeded NumPy generator, so a seed gives the same z on NumPy and on CuPy."""
    check_distribution(distribution)
    rng = rng or global_rng()
    if distribution == "uniform":
        return uniform(rng, (n, z_size), -1.0, 1.0, dtype=dtype)
    return randn(rng, (n, z_size), dtype=dtype)
