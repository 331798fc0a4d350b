"""The DCGAN of ``minigan.gan.dcgan`` and the step of ``GANTrainer.train_step``, in PyTorch.

Used only by the benchmarks, to time the same work in PyTorch's eager mode. PyTorch is never a
dependency of minigan: this file is imported only when PyTorch is installed.

Run as a script, it times PyTorch's step alone in a process of its own, as a user runs
PyTorch (bench_step.py starts it that way; the thread variables must be set before it starts):

    OMP_NUM_THREADS=2 python benchmarks/torch_dcgan.py --conv-dim 32 --threads 2

and prints the median milliseconds per step, and a last line ``{"ms": ...}`` for bench_step.py.
"""

import argparse
import json
import statistics
import time

import torch
from torch import nn


def generator(z_size: int, conv_dim: int) -> nn.Module:
    top = conv_dim * 4
    return nn.Sequential(
        nn.Linear(z_size, top * 4 * 4), nn.Unflatten(1, (top, 4, 4)),
        nn.ConvTranspose2d(top, top // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(top // 2), nn.ReLU(),
        nn.ConvTranspose2d(top // 2, top // 4, 4, 2, 1, bias=False), nn.BatchNorm2d(top // 4),
        nn.ReLU(),
        nn.ConvTranspose2d(top // 4, 3, 4, 2, 1), nn.Tanh(),
    )


def discriminator(conv_dim: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, conv_dim, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(conv_dim, conv_dim * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(conv_dim * 2),
        nn.LeakyReLU(0.2),
        nn.Conv2d(conv_dim * 2, conv_dim * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(conv_dim * 4),
        nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(conv_dim * 4 * 4 * 4, 1),
    )


def make_torch_step(conv_dim: int, z_size: int, batch: int, device: str, seed: int = 0):
    torch.manual_seed(seed)
    G, D = generator(z_size, conv_dim).to(device), discriminator(conv_dim).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    real = torch.rand(batch, 3, 32, 32, device=device) * 2 - 1
    ones = torch.ones(batch, 1, device=device)
    zeros = torch.zeros(batch, 1, device=device)

    def step():
        opt_d.zero_grad()
        loss_real = bce(D(real), ones)
        loss_real.backward()
        fake = G(torch.rand(batch, z_size, device=device) * 2 - 1).detach()
        loss_fake = bce(D(fake), zeros)
        loss_fake.backward()
        opt_d.step()
        opt_g.zero_grad()
        for p in D.parameters():          # as minigan: no D weight gradients in the G step
            p.requires_grad_(False)
        g_loss = bce(D(G(torch.rand(batch, z_size, device=device) * 2 - 1)), ones)
        g_loss.backward()
        for p in D.parameters():
            p.requires_grad_(True)
        opt_g.step()
        # Like minigan's trainer, leave the losses on the device (no .item(): no wait per step).
        return loss_real + loss_fake, g_loss

    return step


def time_alone(conv_dim: int, z_size: int, batch: int, threads: int, repeats: int,
               warmup: int, seed: int = 0) -> list[float]:
    """Milliseconds of each of ``repeats`` CPU steps, after ``warmup`` untimed ones."""
    torch.set_num_threads(threads)
    step = make_torch_step(conv_dim, z_size, batch, "cpu", seed)
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(1000 * (time.perf_counter() - start))
    return times


def main() -> None:
    p = argparse.ArgumentParser(description="Time PyTorch's DCGAN step alone, on the CPU.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--conv-dim", type=int, default=32)
    p.add_argument("--z-size", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10, help="timed steps (the median is shown)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--seed", type=int, default=0, help="torch.manual_seed for weights and data")
    args = p.parse_args()
    times = time_alone(args.conv_dim, args.z_size, args.batch_size, args.threads, args.repeats,
                       args.warmup, args.seed)
    ms = statistics.median(times)
    print(f"PyTorch {torch.__version__} eager, CPU, {args.threads} threads, conv_dim "
          f"{args.conv_dim}: {ms:.1f} ms/step (median of {args.repeats})")
    print(json.dumps({"ms": ms, "times": times, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
