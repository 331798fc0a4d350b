"""Data parallelism with real processes: two ranks run a tiny DCGAN, started either by
``python -m minigan.launch -n 2`` (shared memory, no MPI) or by ``mpiexec -n 2`` (MPI).

The claim of ``minigan/distributed.py`` is checked number for number: two ranks with B images
each, synchronized batch norm and averaged gradients train exactly as one process with a batch
of 2B (float64, to 1e-10), when each rank's images and z are its slice of the one process's. A
run stopped and resumed from rank 0's checkpoint continues exactly; a rank that dies or raises
stops the whole run instead of leaving the other waiting forever.

The tests of how ranks talk run under both starters (the MPI ones skip where mpi4py or an
``mpiexec`` is missing; ``pip install -e ".[mpi]"`` gives both); those of what the world does
with its ranks (batch norm unsynchronized, a divergence, shared scoring) under the launcher
alone. Each run is a few seconds: most of it is starting Python twice.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import minigan.backend as backend
from minigan.backend import make_rng
from minigan.checkpoint import load_checkpoint
from minigan.data import make_synthetic_digits
from minigan.metrics.features import FeatureNet
from minigan.metrics.gan_eval import save_real_statistics, statistics_path
from tests.distributed.tiny_run import NUM_IMAGES, final_state, make_trainer
from tests.helpers import REPO_ROOT


def find_mpiexec() -> str | None:
    """mpiexec next to this Python (a virtual environment with the mpich wheel), or on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.is_file() else shutil.which("mpiexec")


MPIEXEC = find_mpiexec()
HAVE_MPI = MPIEXEC is not None and importlib.util.find_spec("mpi4py") is not None
TIMEOUT = 120   # seconds: a hung run fails the test instead of hanging the suite
STARTERS = ["launch", pytest.param("mpiexec", marks=pytest.mark.skipif(
    not HAVE_MPI, reason="needs mpi4py and mpiexec: pip install -e '.[mpi]'"))]


@pytest.fixture(params=STARTERS)
def starter(request) -> str:
    """How the two ranks are started: ``python -m minigan.launch`` or ``mpiexec``."""
    return request.param


# Tests of what the world does with its ranks (not of how they talk) run under the launcher
# alone: the transports are held to the same numbers by the tests that take ``starter``.
LAUNCHER = "launch"


def start_ranks(starter: str, *args: str, ranks: int = 2) -> subprocess.CompletedProcess:
    """Start ``ranks`` processes of ``python args...``; one BLAS thread each (2 cores here)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                         os.environ.get("PYTHONPATH")])))
    command = ([sys.executable, "-m", "minigan.launch", "-n", str(ranks)] if starter == "launch"
               else [MPIEXEC, "-n", str(ranks), sys.executable])
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=TIMEOUT,
                          cwd=REPO_ROOT, env=env)


TINY_RUN = str(REPO_ROOT / "tests" / "distributed" / "tiny_run.py")


def tiny_run(starter: str, out: Path, *options: str) -> subprocess.CompletedProcess:
    result = start_ranks(starter, TINY_RUN, str(out), *options)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> dict[str, np.ndarray]:
    """Parameters, buffers and losses after 6 steps (2 epochs) of ONE process, batch 16."""
    name, dtype = backend.backend_name(), backend.default_dtype()
    try:
        trainer = make_trainer(tmp_path_factory.mktemp("one"), batch_size=16)   # float64
        trainer.fit(progress=False)
        return final_state(trainer)
    finally:   # a module-wide fixture: put back what the per-test fixture cannot see
        backend._active, backend._default_dtype = name, dtype


def largest_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert set(a) == set(b)
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


def test_two_ranks_with_sync_batch_norm_equal_one_process_with_twice_the_batch(
        starter, tmp_path, one_process):
    tiny_run(starter, tmp_path, "--batch-size", "16")          # 2 ranks x 8 images, 6 steps
    two_ranks = dict(np.load(tmp_path / "final.npz"))
    assert len(two_ranks["history/step"]) == 6
    assert largest_difference(two_ranks, one_process) < 1e-10
    # The training moved the weights well away from where they started, so the equality says
    # something: the same 6 steps were taken, not none.
    start = make_trainer(tmp_path / "start")
    assert np.max(np.abs(one_process["G/0.weight"] - start.G.state_dict()["0.weight"])) > 1e-3


def test_two_ranks_running_the_gpus_one_pass_step_equal_one_process(tmp_path, one_process):
    """The step a GPU runs (minigan/gan/one_pass.py: G once for all its fake batches, D once
    per update, batch norm's statistics per batch and summed across the ranks), forced here
    on the CPU: two ranks still train as one process running the lesson's step."""
    tiny_run(LAUNCHER, tmp_path, "--batch-size", "16", "--one-pass")
    assert largest_difference(dict(np.load(tmp_path / "final.npz")), one_process) < 1e-10


def test_without_sync_batch_norm_the_ranks_train_a_different_model(tmp_path, one_process):
    """Each rank normalising with its own 8 images is a different computation: the check above
    can fail, and batch norm is why it needs care."""
    tiny_run(LAUNCHER, tmp_path, "--batch-size", "16", "--no-sync-batch-norm")
    assert largest_difference(dict(np.load(tmp_path / "final.npz")), one_process) > 1e-6


def test_rank_0_writes_the_checkpoint_and_a_resumed_run_continues_exactly(starter, tmp_path,
                                                                          one_process):
    run = tmp_path / "run"
    tiny_run(starter, run, "--max-steps", "4")                  # stops inside epoch 2
    assert (run / "checkpoint.npz").is_file()
    assert not list(run.glob("*.tmp"))
    alone = shutil.copytree(run, tmp_path / "resumed_by_one_process")

    tiny_run(starter, run, "--resume")                          # steps 5 and 6
    resumed = dict(np.load(run / "final.npz"))
    assert list(resumed["history/step"]) == [1, 2, 3, 4, 5, 6]
    assert largest_difference(resumed, one_process) < 1e-10

    # The checkpoint holds nothing that belongs to one rank: one process can continue it too.
    trainer = make_trainer(alone, batch_size=16)
    trainer.load_checkpoint()
    trainer.fit(progress=False)
    assert largest_difference(final_state(trainer), one_process) < 1e-10


def test_a_killed_rank_stops_the_run_instead_of_hanging(starter, tmp_path):
    """Rank 1 is killed (SIGKILL, no chance to say goodbye) at step 2 of a 100-epoch run; rank
    0 is then waiting for it inside an allreduce. mpiexec notices the death and ends rank 0:
    the run fails quickly with a message naming the signal."""
    started = time.monotonic()
    result = start_ranks(starter, TINY_RUN, str(tmp_path),
                     "--epochs", "100", "--stop-rank", "1", "--stop-how", "kill")
    assert result.returncode != 0
    assert time.monotonic() - started < TIMEOUT / 2
    assert "rank 1: stopping at step 2 (kill)" in result.stdout
    assert "rank 0 of 2" not in result.stdout           # rank 0 did not finish training
    assert "signal 9" in (result.stdout + result.stderr).lower()


def test_an_exception_on_one_rank_aborts_every_rank(starter, tmp_path):
    """Without ``join_mpi_world``'s abort on uncaught exceptions, rank 1 would print its
    traceback and exit while rank 0 waited forever in the next allreduce."""
    result = start_ranks(starter, TINY_RUN, str(tmp_path),
                     "--epochs", "100", "--stop-rank", "1", "--stop-how", "raise")
    assert result.returncode != 0
    assert "RuntimeError: a bug on rank 1 at step 2" in result.stderr
    assert "rank 0 of 2" not in result.stdout


def test_a_divergence_on_one_rank_stops_the_run_and_keeps_the_last_checkpoint(tmp_path):
    """D's weights become NaN on rank 1 alone before step 5. The averaged losses are NaN on
    every rank, so the run stops at step 5 with the divergence error (the first rank to raise
    it aborts the others), and rank 0's checkpoint of epoch 1 (step 3) is kept."""
    result = start_ranks(LAUNCHER, TINY_RUN, str(tmp_path),
                     "--nan-rank", "1", "--nan-at-step", "5")
    assert result.returncode != 0
    assert "TrainingDiverged: training diverged at step 5" in result.stderr
    assert "rank 0 of 2" not in result.stdout
    assert int(load_checkpoint(tmp_path / "checkpoint.npz")["progress"]["step"]) == 3


def test_train_svhn_distributed_from_the_command_line(starter, tmp_path):
    """The README's command, shortened: 2 processes, 8 images each per step."""
    out = tmp_path / "run"
    args = [str(REPO_ROOT / "examples" / "train_svhn.py"), "--distributed", "--dataset",
            "synthetic", "--num-train", "64", "--batch-size", "16", "--conv-dim", "8",
            "--max-steps", "2", "--out", str(out)]
    result = start_ranks(starter, *args)
    assert result.returncode == 0, result.stderr
    assert "2 processes, 8 images of each batch per process" in result.stdout
    assert result.stdout.count("2 steps in") == 1        # rank 0 alone prints
    for name in ("checkpoint.npz", "losses.csv", "config.json", "samples.gif"):
        assert (out / name).is_file(), name

    odd = start_ranks(starter, *args[:-2], "--batch-size", "15", "--out", str(tmp_path / "odd"))
    assert odd.returncode != 0
    assert "error: --batch-size 15 must be a multiple of the number of processes, 2" in odd.stderr
    assert "Traceback" not in odd.stderr


@pytest.fixture(scope="module")
def feature_net(tmp_path_factory) -> Path:
    """An untrained 16x16 FeatureNet (scores need no good features to be compared), saved with
    the statistics of the tiny run's digits."""
    root = tmp_path_factory.mktemp("features")
    dtype = backend.default_dtype()
    backend.set_default_dtype(np.float64)   # as the tiny run loads it: the same fingerprint
    try:
        net = FeatureNet(3, width=4, feature_dim=16, image_size=16, rng=make_rng(0))
        path = net.save(root / "features.npz", dataset="synthetic")
        images, _ = make_synthetic_digits(NUM_IMAGES, seed=0, size=16, channels=3)
        save_real_statistics(net, images, statistics_path(path), dataset="synthetic")
    finally:
        backend.set_default_dtype(dtype)
    return path


def test_the_ranks_share_the_scoring_and_log_one_process_s_scores(tmp_path, feature_net):
    """FID and IS after each epoch, every rank scoring half of the 40 images: the same numbers
    one process gets scoring all of them."""
    tiny_run(LAUNCHER, tmp_path, "--features", str(feature_net))
    two_ranks = dict(np.load(tmp_path / "final.npz"))
    name, dtype = backend.backend_name(), backend.default_dtype()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # FID from 40 samples is biased: said once
            trainer = make_trainer(tmp_path / "one", features=feature_net)
            trainer.fit(progress=False)
    finally:
        backend._active, backend._default_dtype = name, dtype
    one_process = final_state(trainer)
    assert list(two_ranks["metrics/epoch"]) == [1.0, 2.0]
    for key in ("metrics/fid", "metrics/inception_score", "metrics/inception_score_std"):
        np.testing.assert_allclose(two_ranks[key], one_process[key], rtol=1e-9, err_msg=key)
    assert float(np.min(two_ranks["metrics/fid"])) > 0


def test_the_ranks_share_new_inception_reference_statistics(tmp_path):
    """Each rank computes the pool3 features of its share of the real images, rank 0 writes
    the file: the statistics one process would have written."""
    from minigan.metrics.inception_eval import InceptionScorer, save_inception_statistics
    from minigan.metrics.statistics import load_statistics, load_statistics_meta
    from tests.distributed.reference_statistics import real_images, small_inception

    shared = tmp_path / "shared.npz"
    result = start_ranks(LAUNCHER, str(REPO_ROOT / "tests" / "distributed" /
                                       "reference_statistics.py"), str(shared))
    assert result.returncode == 0, result.stdout + result.stderr
    reports = sorted(json.loads(line)["scored"] for line in result.stdout.splitlines()
                     if line.startswith("{"))
    assert reports == [2, 3]                       # 5 images: 2 on rank 0, 3 on rank 1
    alone = save_inception_statistics(InceptionScorer(small_inception(), batch_size=2),
                                      real_images(), tmp_path / "alone.npz", dataset="test")
    for a, b in zip(load_statistics(shared), load_statistics(alone)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    assert load_statistics_meta(shared)["count"] == 5
