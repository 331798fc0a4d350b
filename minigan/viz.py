"""Pictures a learner wants to look at: image grids, an animated GIF of them, and loss curves."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy
from PIL import Image

from minigan.backend import to_numpy


def to_uint8_images(images: Any) -> numpy.ndarray:
    """(N, C, H, W) floats in [-1, 1] (the generator's tanh range) -> (N, H, W, C) uint8."""
    x = to_numpy(images).astype(numpy.float32)
    x = numpy.clip((x + 1) * 127.5 + 0.5, 0, 255).astype(numpy.uint8)
    return x.transpose(0, 2, 3, 1)


def image_grid(images: Any, nrow: int | None = None, padding: int = 2) -> numpy.ndarray:
    """Tile (N, C, H, W) images in [-1, 1] into one (rows*H, cols*W, C) uint8 picture."""
    x = to_uint8_images(images)
    n, h, w, c = x.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = numpy.full((rows * (h + padding) + padding, nrow * (w + padding) + padding, c), 255,
                      dtype=numpy.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top:top + h, left:left + w] = x[i]
    return grid


def save_image_grid(images: Any, path: str | Path, nrow: int | None = None,
                    scale: int = 2) -> Path:
    """Save a grid of (N, C, H, W) images in [-1, 1] as a PNG, enlarged ``scale`` times."""
    grid = image_grid(images, nrow)
    picture = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    if scale != 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return path


def save_gif(frames: Sequence[str | Path], path: str | Path, seconds_per_frame: float = 0.5,
             skip_unreadable: bool = False) -> Path | None:
    """Animate PNG frames (e.g. one sample grid per epoch) into a looping GIF.

    With ``skip_unreadable``, frames that are missing or damaged are left out (the trainer's
    GIF must not stop a run whose old sample files were moved or deleted); with no readable
    frame at all nothing is written and None returned.
    """
    pictures = []
    for frame in frames:
        try:
            with Image.open(frame) as picture:
                pictures.append(picture.convert("RGB"))
        except (OSError, ValueError):
            if not skip_unreadable:
                raise
    if not pictures:
        return None
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")   # atomic: a whole GIF or the old one
    pictures[0].save(tmp, save_all=True, append_images=pictures[1:],
                     duration=int(seconds_per_frame * 1000), loop=0)
    tmp.replace(path)
    return path


def _smooth(values: numpy.ndarray, window: int) -> numpy.ndarray:
    """Moving average, so that the trend shows through the step-to-step noise."""
    if len(values) < window or window < 2:
        return values
    kernel = numpy.ones(window) / window
    return numpy.convolve(values, kernel, mode="valid")


def plot_losses(history: dict[str, Sequence[float]], path: str | Path,
                metrics: dict[str, Sequence[float]] | None = None) -> Path:
    """Loss curves (and D's outputs) per step; FID/IS per epoch in a third panel if given."""
    # A Figure made directly (not through pyplot) needs no screen and leaves pyplot's backend
    # alone, so a notebook that calls this still draws its own plots inline afterwards.
    from matplotlib.figure import Figure

    steps = numpy.asarray(history["step"])
    panels = 3 if metrics and len(metrics.get("epoch", [])) else 2
    fig = Figure(figsize=(5.5 * panels, 4))
    axes = fig.subplots(1, panels)
    window = max(1, len(steps) // 50)
    for key, label in (("d_loss", "discriminator"), ("g_loss", "generator")):
        values = numpy.asarray(history[key])
        axes[0].plot(steps, values, alpha=0.25)
        axes[0].plot(steps[window - 1:], _smooth(values, window), label=label,
                     color=axes[0].lines[-1].get_color())
    axes[0].set(xlabel="step", ylabel="BCE loss", title="losses")
    axes[0].legend()
    for key, label in (("d_real", "mean D(x), real"), ("d_fake", "mean D(G(z)), fake")):
        values = numpy.asarray(history[key])
        axes[1].plot(steps[window - 1:], _smooth(values, window), label=label)
    axes[1].axhline(0.5, color="gray", linestyle=":", linewidth=1)
    axes[1].set(xlabel="step", ylabel="probability", title="discriminator outputs", ylim=(0, 1))
    axes[1].legend()
    if panels == 3:
        epochs = numpy.asarray(metrics["epoch"])
        ax = axes[2]
        ax.plot(epochs, metrics["fid"], "o-", color="tab:red", label="FID (lower is better)")
        ax.set(xlabel="epoch", ylabel="FID", title="sample quality")
        if "inception_score" in metrics:
            twin = ax.twinx()
            twin.plot(epochs, metrics["inception_score"], "s--", color="tab:green",
                      label="IS (higher is better)")
            twin.set_ylabel("Inception Score")
            twin.legend(loc="upper right")
        ax.legend(loc="upper left")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path
