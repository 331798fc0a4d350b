"""Train a DCGAN on CIFAR-10 (32x32 colour photos of ten kinds of object).

    python examples/train_cifar10.py --backend numpy --epochs 20

The first run downloads the binary CIFAR-10 archive (163 MB, MD5-checked) into ~/.cache/minigan.
Same options and outputs as examples/train_svhn.py (see --help).
"""

import minigan.startup  # noqa: F401  (first: Ctrl-C while NumPy loads is one line)

# isort: split
import sys

from minigan import cli

DESCRIPTION = __doc__.split("\n\n")[0]


def build_parser():
    """The command line of this script (``--help`` shows it)."""
    return cli.build_parser("cifar10", DESCRIPTION)


if __name__ == "__main__":
    sys.exit(cli.main(dataset="cifar10", description=DESCRIPTION))
