"""Draw images from a trained generator: a grid of samples and a walk through latent space.

    python examples/generate.py --checkpoint runs/svhn/checkpoint.npz --num-samples 64

Writes ``samples.png`` (random z) and ``interpolation.png`` (each row walks in a straight line
from one random z to another: smooth changes mean G has learned a smooth map, not a lookup
table of training images) into --out (default: the checkpoint's folder).
"""

from __future__ import annotations

import minigan.startup  # noqa: F401  (first: Ctrl-C while NumPy loads is one line)

# isort: split
import argparse
import sys
from pathlib import Path

from minigan.backend import get_array_module, make_rng, use_backend
from minigan.gan.run_folder import GENERATED_FILES, load_generator
from minigan.scripts import (
    OneLineParser,
    add_backend_argument,
    add_overwrite_argument,
    prepare_results_folder,
    run_script,
    seed_argument,
)
from minigan.viz import save_image_grid


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="checkpoint.npz written by training")
    p.add_argument("--num-samples", type=int, default=64, help="images in samples.png")
    p.add_argument("--rows", type=int, default=8, help="interpolation rows (pairs of z)")
    p.add_argument("--steps", type=int, default=10, help="images per interpolation row")
    p.add_argument("--seed", type=seed_argument, default=0, help="seed of the latent vectors")
    add_backend_argument(p)
    p.add_argument("--out", default=None, help="output folder (default: the checkpoint's)")
    add_overwrite_argument(p, "--out (samples.png and interpolation.png)")
    return p


def generate(args: argparse.Namespace) -> None:
    if args.num_samples < 1 or args.rows < 1 or args.steps < 2:
        raise ValueError("--num-samples and --rows must be >= 1, --steps >= 2")
    use_backend(args.backend)
    # samples.png and interpolation.png: a new training run in the folder removes them
    out = prepare_results_folder(args.out or Path(args.checkpoint).parent, GENERATED_FILES,
                                 args.overwrite)
    G = load_generator(args.checkpoint)
    rng = make_rng(args.seed)

    # Latent vectors from the distribution G was trained with (saved in the checkpoint).
    samples = save_image_grid(G(G.sample_z(args.num_samples, rng)), out / "samples.png")

    # Row r goes from z_start[r] (t = 0) to z_end[r] (t = 1) in equal steps.
    z_start = G.sample_z(args.rows, rng)[:, None, :]
    z_end = G.sample_z(args.rows, rng)[:, None, :]
    t = get_array_module(z_start).linspace(0, 1, args.steps, dtype=z_start.dtype)[None, :, None]
    path = ((1 - t) * z_start + t * z_end).reshape(-1, G.z_size)
    walk = save_image_grid(G(path), out / "interpolation.png", nrow=args.steps)
    print(f"wrote {samples} and {walk} (z ~ {G.z_distribution})")


def main(argv: list[str] | None = None) -> int:
    return run_script(generate, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
