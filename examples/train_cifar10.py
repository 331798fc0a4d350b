"""Train a DCGAN on CIFAR-10 (32x32 colour photos of ten kinds of object).

    python examples/train_cifar10.py --backend numpy --epochs 20

The first run downloads the binary CIFAR-10 archive (163 MB, MD5-checked) into ~/.cache/minigan.
Same options and outputs as examples/train_svhn.py (see --help).
"""

import sys

from minigan.gan.cli import main

if __name__ == "__main__":
    sys.exit(main(dataset="cifar10", description=__doc__.split("\n\n")[0]))
