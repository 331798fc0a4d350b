"""The command-line scripts as a new user runs them: a short real run, and one-line errors.

Each test starts the example script in a fresh Python process, as a user's shell would, so
argument parsing, the exit code and what is printed are all checked together.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from minigan.launch import usable_cores

REPO = Path(__file__).resolve().parents[1]


def run(script, *args, cwd=None, env=None):
    return subprocess.run([sys.executable, str(REPO / "examples" / script), *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300,
                          env=None if env is None else {**os.environ, **env})


@pytest.mark.parametrize("threads", ["1", "2"])
def test_training_says_when_each_batch_is_split_over_two_threads(tmp_path, threads):
    """With two BLAS threads and a model with the work for them, the step runs on both halves
    of the batch at once (minigan/gan/split_step.py), and the start says so; with one, not."""
    variables = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    result = run("train_svhn.py", "--dataset", "synthetic", "--max-steps", "1",
                 "--batch-size", "64", "--conv-dim", "16", "--num-train", "64",
                 "--out", str(tmp_path / "run"), env=dict.fromkeys(variables, threads))
    assert result.returncode == 0, result.stderr
    said = "each batch's two halves at once, a thread each" in result.stdout
    if threads == "2" and usable_cores() < 2:
        pytest.skip("one core: BLAS takes no second thread")
    assert said == (threads == "2")


def test_train_svhn_on_synthetic_data_for_a_few_steps(tmp_path):
    out = tmp_path / "run"
    result = run("train_svhn.py", "--dataset", "synthetic", "--max-steps", "3",
                 "--batch-size", "16", "--conv-dim", "8", "--num-train", "64",
                 "--out", str(out), "--seed", "1", "--z-distribution", "normal")
    assert result.returncode == 0, result.stderr
    assert "3 steps in" in result.stdout
    for name in ("checkpoint.npz", "losses.csv", "losses.png", "samples.gif"):
        assert (out / name).is_file(), name
        assert str(out / name) in result.stdout   # the script says where everything is

    resumed = run("train_svhn.py", "--dataset", "synthetic", "--max-steps", "5",
                  "--batch-size", "16", "--conv-dim", "8", "--num-train", "64",
                  "--out", str(out), "--seed", "1", "--z-distribution", "normal", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout and "at epoch 1, step 3" in resumed.stdout
    assert "2 steps in" in resumed.stdout

    generated = run("generate.py", "--checkpoint", str(out / "checkpoint.npz"),
                    "--num-samples", "9", "--rows", "2", "--steps", "4")
    assert generated.returncode == 0, generated.stderr
    assert (out / "samples.png").is_file() and (out / "interpolation.png").is_file()
    assert "z ~ normal" in generated.stdout   # drawn as the run drew them, read off its config


def test_help_shows_defaults():
    result = run("train_svhn.py", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())   # undo argparse's line wrapping
    assert "--backend {numpy,cupy}" in text
    assert "images per training step (default: 128)" in text
    assert "Adam beta1 (DCGAN uses 0.5) (default: 0.5)" in text
    assert "--label-smoothing" in text and "--d-steps" in text
    assert "(default: None)" not in text


def one_line_error(result):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "error:" in lines[0], result.stderr   # no usage block either
    return lines[0]


def test_bad_arguments_give_one_line(tmp_path):
    line = one_line_error(run("train_svhn.py", "--dataset", "synthetic", "--epochs", "0",
                              "--out", str(tmp_path)))
    assert "--epochs must be at least 1" in line


@pytest.mark.parametrize("script, args", [
    ("train_svhn.py", ["--batch-size", "abc"]),
    ("train_cifar10.py", ["--epochs", "1.5"]),
    ("generate.py", ["--checkpoint", "x.npz", "--num-samples", "abc"]),
    ("evaluate.py", ["--num-samples", "abc"]),
    ("train_classifier.py", ["--epochs", "abc"]),
    ("batch_norm_mnist.py", ["--epochs", "abc"]),
    ("step_through.py", ["--seed", "abc"]),
])
def test_a_malformed_argument_gives_one_line_in_every_script(script, args):
    line = one_line_error(run(script, *args))
    assert "invalid" in line and "--help" in line


@pytest.mark.parametrize("args, message", [
    (["--max-steps", "0"], "--max-steps must be at least 1"),
    (["--beta1", "2"], "--beta1 must be in [0, 1)"),
    (["--lr-d", "-1"], "learning rates must be positive"),
    (["--dropout", "1"], "--dropout must be in [0, 1)"),
])
def test_values_that_would_train_nothing_or_nonsense_are_refused(tmp_path, args, message):
    line = one_line_error(run("train_svhn.py", "--dataset", "synthetic", *args,
                              "--out", str(tmp_path)))
    assert message in line


def test_a_misspelt_backend_variable_gives_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "train_svhn.py"), "--dataset", "synthetic",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "MINIGAN_BACKEND": "gpu"})
    assert "unknown backend 'gpu'" in one_line_error(result)


def test_resume_without_a_checkpoint_gives_one_line(tmp_path):
    line = one_line_error(run("train_svhn.py", "--dataset", "synthetic", "--resume",
                              "--out", str(tmp_path / "nothing")))
    assert "no checkpoint" in line


def test_missing_data_offline_gives_one_line(tmp_path):
    # An empty cache and an address where nothing listens: the download must fail cleanly.
    env_args = ["--dataset", "svhn", "--data-dir", str(tmp_path / "empty"),
                "--out", str(tmp_path / "run")]
    result = subprocess.run(
        [sys.executable, "-c",
         "import sys, minigan.data.svhn as s; s.BASE_URL = 'http://127.0.0.1:9/'; "
         "from minigan.cli import main; sys.exit(main(sys.argv[1:]))", *env_args],
        capture_output=True, text=True, timeout=120)
    line = one_line_error(result)
    assert "train_32x32.mat" in line and "synthetic" in line


def cupy_backend_unusable() -> bool:
    """True where --backend cupy must fail: no CuPy, or CuPy without a GPU it can reach."""
    from minigan.backend import BackendError, check_backend

    try:
        check_backend("cupy")
    except BackendError:
        return True
    return False


@pytest.mark.skipif(not cupy_backend_unusable(), reason="a GPU is at hand")
def test_cupy_backend_without_a_gpu_gives_one_line(tmp_path):
    line = one_line_error(run("train_svhn.py", "--backend", "cupy", "--dataset", "synthetic",
                              "--out", str(tmp_path)))
    assert "pip install" in line


@pytest.mark.skipif(not cupy_backend_unusable(), reason="a GPU is at hand")
def test_grading_on_a_missing_gpu_blames_the_gpu_not_the_learners_files(tmp_path):
    # The children each failed to start the backend, which read as every file failing to import.
    folder = tmp_path / "kernels"
    subprocess.run([sys.executable, "-m", "minigan.exercises", "init", str(folder)], check=True,
                   capture_output=True)
    for args in (["check", str(folder)], ["check", "--solutions"]):
        result = subprocess.run([sys.executable, "-m", "minigan.exercises", *args, "--backend",
                                 "cupy"], capture_output=True, text=True, timeout=120)
        line = one_line_error(result)
        assert "CuPy" in line and "pip install" in line and "import" not in line.split(";")[0]


def tiny_npz(path, size=32, labels=False):
    """16 random colour images saved as most image libraries hold them, (N, H, W, C)."""
    import numpy as np

    rng = np.random.default_rng(0)
    arrays = {"images": rng.integers(0, 256, (16, size, size, 3), dtype=np.uint8)}
    if labels:
        arrays["labels"] = rng.integers(0, 10, 16)
    np.savez(path, **arrays)
    return path


def test_train_on_an_npz_file_of_ones_own(tmp_path):
    data = tiny_npz(tmp_path / "my_photos.npz")
    result = run("train_svhn.py", "--dataset", str(data), "--max-steps", "2",
                 "--batch-size", "8", "--conv-dim", "4", "--z-size", "8", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "training a DCGAN on 16" in result.stdout and "2 steps in" in result.stdout
    out = tmp_path / "runs" / "my_photos"           # the default run folder: the file's stem
    assert (out / "checkpoint.npz").is_file()
    assert str(Path("runs") / "my_photos" / "checkpoint.npz") in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--split", "test"], "no 'test' split"),
    (["--dataset", "svhm"], "unknown dataset 'svhm': choose svhn, cifar10, mnist, synthetic, "
                            "the path of an .npz file or a folder of pictures"),
], ids=["split", "name"])
def test_an_npz_file_has_no_test_split_and_a_misspelt_name_is_refused(tmp_path, args, message):
    data = tiny_npz(tmp_path / "mine.npz")
    line = one_line_error(run("train_svhn.py", "--dataset", str(data), *args,
                              "--out", str(tmp_path / "run")))
    assert message in line


def test_images_of_another_size_than_32_are_refused(tmp_path):
    data = tiny_npz(tmp_path / "big.npz", size=64)
    line = one_line_error(run("train_svhn.py", "--dataset", str(data),
                              "--out", str(tmp_path / "run")))
    assert "are 64x64, but --image-size is 32: give --image-size 64" in line


def test_the_feature_network_needs_labels(tmp_path):
    data = tiny_npz(tmp_path / "unlabelled.npz")
    line = one_line_error(run("train_classifier.py", "--dataset", str(data),
                              "--out", str(tmp_path / "features.npz")))
    assert "unlabelled.npz has no labels that match its images" in line
    assert not (tmp_path / "features.npz").exists()


def test_a_discriminator_without_the_dropout_asked_for_is_refused(tmp_path, monkeypatch, capsys):
    """A learner's Discriminator (--kernels) may ignore its dropout argument (the grader builds
    it with 0): training with --dropout would then run without any, while config.json said
    otherwise. One line, before anything trains."""
    from minigan import cli
    from minigan.gan import dcgan

    class NoDropout(dcgan.Discriminator):
        def __init__(self, conv_dim=32, image_size=32, channels=3, dropout=0.0):
            super().__init__(conv_dim, image_size, channels, dropout=0.0)   # the mistake

    monkeypatch.setattr(dcgan, "Discriminator", NoDropout)
    args = ["--dataset", "synthetic", "--num-train", "16", "--batch-size", "8", "--conv-dim",
            "2", "--max-steps", "1", "--dropout", "0.3", "--out", str(tmp_path / "run")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err == ("error: --dropout 0.3: this Discriminator has no Dropout layer (yours "
                   "ignores its dropout argument?): add Dropout after each LeakyReLU, or leave "
                   "out --dropout\n")
    assert not (tmp_path / "run" / "losses.csv").exists()
    monkeypatch.undo()                                    # minigan's own has the Dropout
    assert cli.main([*args[:-1], str(tmp_path / "minigans")]) == 0


def test_distributed_started_alone_says_it_trains_alone(tmp_path):
    """--distributed without mpiexec or the launcher is one process: said, not hidden behind
    '1 processes, 16 images of each batch per process'."""
    pytest.importorskip("mpi4py")
    result = run("train_svhn.py", "--dataset", "synthetic", "--num-train", "32",
                 "--batch-size", "16", "--conv-dim", "4", "--max-steps", "1", "--distributed",
                 "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert ("warning: --distributed, but this is the only process (not started by mpiexec -n N "
            "or python -m minigan.launch -n N): it trains alone") in result.stderr
    assert "1 processes" not in result.stdout
