"""Draw images from a trained generator: a grid of samples and a walk through latent space.

    python examples/generate.py --checkpoint runs/svhn/checkpoint.npz --num-samples 64

Writes ``samples.png`` (random z) and ``interpolation.png`` (each row walks in a straight line
from one random z to another: smooth changes mean G has learned a smooth map, not a lookup
table of training images) into --out (default: the checkpoint's folder).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy

from minigan.backend import to_device, use_backend
from minigan.gan.dcgan import generator_from_checkpoint
from minigan.scripts import (
    USER_ERRORS,
    OneLineParser,
    add_backend_argument,
    print_error,
)
from minigan.viz import save_image_grid


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="checkpoint.npz written by training")
    p.add_argument("--num-samples", type=int, default=64, help="images in samples.png")
    p.add_argument("--rows", type=int, default=8, help="interpolation rows (pairs of z)")
    p.add_argument("--steps", type=int, default=10, help="images per interpolation row")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent vectors")
    add_backend_argument(p)
    p.add_argument("--out", default=None, help="output folder (default: the checkpoint's)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.num_samples < 1 or args.rows < 1 or args.steps < 2:
            raise ValueError("--num-samples and --rows must be >= 1, --steps >= 2")
        use_backend(args.backend)
        G = generator_from_checkpoint(args.checkpoint)
    except USER_ERRORS as error:
        return print_error(error)
    out = Path(args.out or Path(args.checkpoint).parent)
    rng = numpy.random.default_rng(args.seed)

    def draw_z(*shape: int) -> numpy.ndarray:
        """Latent vectors from the distribution G was trained with."""
        if G.z_distribution == "normal":
            return rng.standard_normal(shape)
        return rng.uniform(-1, 1, shape)

    z = draw_z(args.num_samples, G.z_size).astype(numpy.float32)
    samples = save_image_grid(G(to_device(z)), out / "samples.png")

    # Row r goes from z_start[r] (t = 0) to z_end[r] (t = 1) in equal steps.
    z_start = draw_z(args.rows, 1, G.z_size)
    z_end = draw_z(args.rows, 1, G.z_size)
    t = numpy.linspace(0, 1, args.steps).reshape(1, -1, 1)
    path = ((1 - t) * z_start + t * z_end).reshape(-1, G.z_size).astype(numpy.float32)
    walk = save_image_grid(G(to_device(path)), out / "interpolation.png", nrow=args.steps)
    print(f"wrote {samples} and {walk} (z ~ {G.z_distribution})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
