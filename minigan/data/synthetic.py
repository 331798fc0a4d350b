"""Synthetic "house numbers": an offline stand-in for SVHN, drawn with Pillow.

Each image shows one digit (its label) in a random colour, size, slant and position, over a
random colour background that is sometimes a gradient, often with parts of neighbouring digits
cut off at the left and right edges, as in SVHN's crops of whole house numbers. A little noise
and blur keep it from looking too clean.

It is useful when there is no network (``--dataset synthetic``), and for quick experiments: a
DCGAN learns to draw these digits in a few minutes on a CPU.

How it stays fast: the ten digit shapes are rendered *once*, large, as grey masks; each image
then only resizes and rotates a mask (cheap on images this small) and mixes two colours through
it with NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

GLYPH_SIZE = 64  # font size of the master masks; images are much smaller, so they scale down


@lru_cache(maxsize=1)
def _digit_masks() -> tuple[np.ndarray, ...]:
    """Ten float masks in [0, 1], one per digit, cropped tight to the ink."""
    try:  # Pillow >= 10.1 ships a scalable default font
        font = ImageFont.load_default(size=GLYPH_SIZE)
        scale = 1
    except (TypeError, ImportError, OSError):  # older Pillow or no FreeType: a small bitmap font
        font = ImageFont.load_default()
        scale = 6  # its glyphs are ~11 pixels high; scale them up, smoothing the pixel steps
    masks = []
    for digit in range(10):
        canvas = Image.new("L", (2 * GLYPH_SIZE, 2 * GLYPH_SIZE), 0)
        ImageDraw.Draw(canvas).text((GLYPH_SIZE // 2, GLYPH_SIZE // 4), str(digit), fill=255,
                                    font=font)
        glyph = canvas.crop(canvas.getbbox())
        if scale > 1:
            glyph = glyph.resize((glyph.width * scale, glyph.height * scale), Image.BILINEAR)
        masks.append(np.asarray(glyph, dtype=np.float32) / 255)
    return tuple(masks)


def _glyph(digit: int, height: int, angle: float) -> np.ndarray:
    """The mask of ``digit`` scaled to ``height`` pixels and rotated by ``angle`` degrees."""
    mask = _digit_masks()[digit]
    width = max(1, round(mask.shape[1] * height / mask.shape[0]))
    img = Image.fromarray(np.uint8(mask * 255)).resize((width, height), Image.BILINEAR)
    img = img.rotate(angle, resample=Image.BILINEAR, expand=True)
    return np.asarray(img, dtype=np.float32) / 255


def _paste(canvas: np.ndarray, glyph: np.ndarray, top: int, left: int) -> None:
    """Add ``glyph`` into ``canvas`` (keeping the max) at (top, left), clipped to the canvas."""
    h, w = canvas.shape
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(top + glyph.shape[0], h), min(left + glyph.shape[1], w)
    if t0 < t1 and l0 < l1:
        part = glyph[t0 - top:t1 - top, l0 - left:l1 - left]
        np.maximum(canvas[t0:t1, l0:l1], part, out=canvas[t0:t1, l0:l1])


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A background and a digit colour (RGB floats 0..255) with enough contrast to read."""
    light, dark = rng.uniform(150, 255, 3), rng.uniform(0, 110, 3)
    # mix each towards a random hue so that not every image is near black and white
    light = 0.7 * light + 0.3 * rng.uniform(0, 255, 3)
    dark = 0.7 * dark + 0.3 * rng.uniform(0, 255, 3)
    return (light, dark) if rng.random() < 0.5 else (dark, light)


def _render(rng: np.random.Generator, digit: int, size: int) -> np.ndarray:
    """One ``(size, size, 3)`` float image of ``digit``."""
    bg, fg = _colours(rng)
    # background: flat, or a linear gradient between bg and a nearby colour in a random direction
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    direction = rng.uniform(0, 2 * np.pi)
    t = (np.cos(direction) * xx + np.sin(direction) * yy)[..., None]
    bg2 = np.clip(bg + rng.normal(0, 40, 3), 0, 255) if rng.random() < 0.5 else bg
    background = bg + (bg2 - bg) * (t - t.min()) / max(np.ptp(t), 1e-6)

    height = int(rng.integers(size // 2, int(size * 0.85) + 1))
    angle = rng.uniform(-12, 12)
    ink = np.zeros((size, size), np.float32)
    glyph = _glyph(digit, height, angle)
    top = (size - glyph.shape[0]) // 2 + int(rng.integers(-size // 10, size // 10 + 1))
    left = (size - glyph.shape[1]) // 2 + int(rng.integers(-size // 8, size // 8 + 1))
    _paste(ink, glyph, top, left)
    # neighbours: the digits before and after in the house number, partly outside the crop
    gap = max(1, size // 16)
    if rng.random() < 0.6:
        other = _glyph(int(rng.integers(10)), height, angle)
        _paste(ink, other, top, left - other.shape[1] - gap)
    if rng.random() < 0.6:
        other = _glyph(int(rng.integers(10)), height, angle)
        _paste(ink, other, top, left + glyph.shape[1] + gap)

    ink = ink[..., None] * rng.uniform(0.8, 1.0)  # sometimes slightly faded paint
    image = background * (1 - ink) + fg * ink
    return image + rng.normal(0, 4, image.shape)  # a little sensor noise


def make_synthetic_digits(
    n: int, seed: int | Sequence[int] = 0, size: int = 32, channels: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` synthetic house-number digits.

    Returns ``images: (n, channels, size, size) uint8`` and ``labels: (n,) int64`` in 0..9
    (the centre digit). The same ``seed`` (anything ``numpy.random.default_rng`` accepts) gives
    the same images on the same Pillow version. ``channels`` is 3 (RGB) or 1 (grey).
    """
    if n < 0 or size < 8 or channels not in (1, 3):
        raise ValueError(f"need n >= 0, size >= 8 and channels 1 or 3; got n={n}, size={size}, "
                         f"channels={channels}")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.int64)
    images = np.empty((n, channels, size, size), np.uint8)
    for i, digit in enumerate(labels):
        image = _render(rng, int(digit), size)
        if rng.random() < 0.3:  # slightly out of focus, as many street photos are
            pil = Image.fromarray(np.uint8(np.clip(image, 0, 255)))
            image = np.asarray(pil.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8))))
        if channels == 1:
            image = image @ np.array([0.299, 0.587, 0.114])  # luminance (ITU-R BT.601)
            image = image[..., None]
        images[i] = np.clip(np.rint(image), 0, 255).astype(np.uint8).transpose(2, 0, 1)
    return images, labels
