"""Started by tests/distributed/test_launch.py as ``python -m minigan.launch -n N`` ranks: each
rank runs the shared-memory collectives on known arrays and prints what it got, as JSON."""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from minigan.distributed import join_world
from minigan.shared_comm import SLOT_BYTES


def main() -> int:
    world = join_world()
    small = np.arange(5, dtype=np.float64) + 10 * world.rank
    world.allreduce_sum(small)
    # More than one slot: the sum goes through in pieces. Every rank adds 1 / (rank + 1).
    large = np.full(SLOT_BYTES // 4 + 1000, 1 / (world.rank + 1), dtype=np.float32)
    world.allreduce_sum(large)
    state = np.arange(6.0).reshape(2, 3) if world.is_root else np.zeros((2, 3))
    world.comm.Bcast(state, root=0)
    if len(sys.argv) > 1 and sys.argv[1] == "--rank-1-exits" and world.rank == 1:
        return 3                         # leaves; the others wait for it at the next barrier
    if len(sys.argv) > 1 and sys.argv[1] == "--rank-1-sleeps" and world.rank == 1:
        time.sleep(60)
    world.barrier()
    report = json.dumps({"rank": world.rank, "size": world.size, "small": small.tolist(),
                         "large": sorted(set(large.tolist())), "state": state.tolist()})
    # One write call per line: the ranks share one pipe, and print's separate writes of the
    # text and the newline could interleave with another rank's.
    os.write(sys.stdout.fileno(), (report + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
