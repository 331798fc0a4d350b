"""A tiny data-parallel DCGAN run, for the tests to start under ``mpiexec -n 2`` and to call in
their own process (one rank) for comparison.

    mpiexec -n 2 python tests/distributed/tiny_run.py OUT [--max-steps K] [--resume] ...

Float64 throughout, so that two ranks and one process can be compared to 1e-10. Rank 0 writes
``OUT/final.npz``: every parameter and buffer of G and D, and the loss history.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import numpy as np

from minigan.backend import manual_seed, set_default_dtype, use_backend
from minigan.checkpoint import atomic_savez
from minigan.data import make_synthetic_digits
from minigan.data.sharded import ShardedLoader
from minigan.distributed import SINGLE_PROCESS, World, join_world
from minigan.gan.dcgan import Discriminator, Generator, dcgan_init
from minigan.gan.one_pass import one_pass_step
from minigan.gan.trainer import GANTrainer, TrainConfig
from minigan.metrics.gan_eval import GANEvaluator
from minigan.nn.sync_batchnorm import convert_sync_batch_norm

NUM_IMAGES = 48


class Float64Loader(ShardedLoader):
    """ShardedLoader whose batches are float64 (exact: every float32 is a float64)."""

    def epoch(self, epoch, start_batch=0):
        for x, y in super().epoch(epoch, start_batch):
            yield x.astype(np.float64), y


def make_trainer(out: Path, world: World = SINGLE_PROCESS, batch_size: int = 16,
                 sync_batch_norm: bool = True, dropout: float = 0.0,
                 features: Path | None = None, **config) -> GANTrainer:
    """G and D for 16x16 images (conv_dim 4, z of 8), on 48 rendered digits, in float64.
    ``batch_size`` is the whole step's batch, all ranks together."""
    use_backend("numpy")
    set_default_dtype(np.float64)
    manual_seed(0)
    G = dcgan_init(Generator(z_size=8, conv_dim=4, image_size=16))
    D = dcgan_init(Discriminator(conv_dim=4, image_size=16, dropout=dropout))
    if sync_batch_norm:
        G, D = convert_sync_batch_norm(G, world), convert_sync_batch_norm(D, world)
    images, _ = make_synthetic_digits(NUM_IMAGES, seed=0, size=16, channels=3)
    loader = Float64Loader(images, batch_size=batch_size, rank=world.rank, size=world.size,
                           seed=0)
    settings = dict(epochs=2, z_size=8, num_samples=4, seed=0)
    settings.update(config)
    # With a feature network: FID and IS of 40 generated images after every epoch.
    evaluate = None if features is None else GANEvaluator(features, num_samples=40, batch_size=16)
    if evaluate is not None:
        settings["metrics_every"] = 1
    return GANTrainer(G, D, loader, TrainConfig(**settings), out, world=world, evaluate=evaluate)


def final_state(trainer: GANTrainer) -> dict[str, np.ndarray]:
    state = {f"G/{k}": v for k, v in trainer.G.state_dict().items()}
    state.update({f"D/{k}": v for k, v in trainer.D.state_dict().items()})
    state.update({f"history/{k}": np.asarray(v) for k, v in trainer.history.columns.items()})
    state.update({f"metrics/{k}": np.asarray(v) for k, v in trainer.metrics.items()})
    return state


def stop_this_rank_at(trainer: GANTrainer, step: int, how: str) -> None:
    """Make this rank die (``kill``: SIGKILL, as the kernel's OOM killer would) or raise an
    uncaught exception (``raise``) at the start of training step ``step``."""
    original = trainer.train_step

    def train_step(real):
        if trainer.step + 1 == step:
            print(f"rank {trainer.world.rank}: stopping at step {step} ({how})", flush=True)
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"a bug on rank {trainer.world.rank} at step {step}")
        return original(real)

    trainer.train_step = train_step


def poison_this_rank_at(trainer: GANTrainer, step: int) -> None:
    """Make D's first weights NaN on this rank alone, just before training step ``step``."""
    original = trainer.train_step

    def train_step(real):
        if trainer.step + 1 == step:
            trainer.D[0].weight.data[...] = np.nan
        return original(real)

    trainer.train_step = train_step


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-sync-batch-norm", action="store_true")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--stop-rank", type=int, default=None)
    p.add_argument("--stop-at-step", type=int, default=2)
    p.add_argument("--stop-how", choices=("kill", "raise"), default="kill")
    p.add_argument("--nan-rank", type=int, default=None)
    p.add_argument("--nan-at-step", type=int, default=5)
    p.add_argument("--features", type=Path, default=None,
                   help="a FeatureNet file: score G with it after every epoch")
    p.add_argument("--one-pass", action="store_true",
                   help="run the step a GPU runs (minigan/gan/one_pass.py) on the CPU")
    args = p.parse_args()

    world = join_world()
    trainer = make_trainer(args.out, world, args.batch_size,
                           sync_batch_norm=not args.no_sync_batch_norm, dropout=args.dropout,
                           features=args.features, epochs=args.epochs,
                           max_steps=args.max_steps)
    if args.resume:
        trainer.load_checkpoint()
    if args.stop_rank == world.rank:
        stop_this_rank_at(trainer, args.stop_at_step, args.stop_how)
    if args.nan_rank == world.rank:
        poison_this_rank_at(trainer, args.nan_at_step)
    with one_pass_step(True if args.one_pass else None):
        trainer.fit(progress=False)
    if world.is_root:
        atomic_savez(args.out / "final.npz", final_state(trainer))
    print(f"rank {world.rank} of {world.size}: {trainer.step} steps", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
