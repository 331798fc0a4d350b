"""Train a DCGAN on the Street View House Numbers (SVHN) dataset.

    python examples/train_svhn.py --backend numpy           # CPU
    python examples/train_svhn.py --backend cupy            # NVIDIA GPU
    python examples/train_svhn.py --dataset synthetic       # offline: rendered digits
    python examples/train_svhn.py --dataset my_images.npz   # your own images (minigan/data/npz.py)
    mpiexec -n 2 python examples/train_svhn.py --distributed   # 2 processes (docs/distributed.md)

The first run downloads SVHN's training set (182 MB, checked against its MD5 sum) into
~/.cache/minigan. Each epoch writes a grid of samples from fixed latent vectors, the loss curves
and a checkpoint into the run folder (runs/svhn); --resume continues an interrupted run.
The recipe itself is ``minigan.gan.cli.train``; the training step is
``minigan.gan.step.train_step``.
"""

import sys

from minigan.gan import cli

DESCRIPTION = __doc__.split("\n\n")[0]


def build_parser():
    """The command line of this script (``--help`` shows it)."""
    return cli.build_parser("svhn", DESCRIPTION)


if __name__ == "__main__":
    sys.exit(cli.main(dataset="svhn", description=DESCRIPTION))
