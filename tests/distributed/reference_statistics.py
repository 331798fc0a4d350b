"""Started by tests/distributed/test_processes.py as ``python -m minigan.launch -n 2`` ranks:
the ranks compute Inception reference statistics together (``save_inception_statistics`` with
a world). Each prints, as JSON, how many images it scored itself."""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from minigan.backend import manual_seed
from minigan.distributed import join_world
from minigan.metrics.inception import FIDInceptionV3
from minigan.metrics.inception_eval import InceptionScorer, save_inception_statistics
from minigan.nn import ResizeBilinear


def small_inception() -> FIDInceptionV3:
    """Random weights, the same on every rank and in the test; 75x75 inputs, to be quick."""
    manual_seed(0)
    net = FIDInceptionV3()
    net.resize = ResizeBilinear(75)
    return net.eval()


def real_images() -> np.ndarray:
    return np.random.default_rng(4).integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)


def main() -> int:
    world = join_world()
    scorer = InceptionScorer(small_inception(), batch_size=2)
    scored = []
    score_share = scorer.pool3_and_probabilities

    def counting(images, progress=False):
        scored.append(len(images))
        return score_share(images, progress)

    scorer.pool3_and_probabilities = counting
    save_inception_statistics(scorer, real_images(), sys.argv[1], world=world, dataset="test")
    # One write call per line: the ranks share one pipe.
    report = json.dumps({"rank": world.rank, "scored": sum(scored)})
    os.write(sys.stdout.fileno(), (report + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
