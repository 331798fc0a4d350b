"""Runs that never lose work: each mechanism of the run folder, tried with real processes.

A user's work is the run folder: its checkpoint, its settings, its samples. These tests start
the training script as a shell would and then do to it what happens to real runs: the
checkpoint is cut short or a bit flips, the folder is reused by mistake, a setting is changed
on --resume, the samples/ folder is cleaned, a scheduler sends SIGTERM. Each case must end in
one readable line and a non-zero exit code, or work as described, and never in a lost checkpoint.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = ["--dataset", "synthetic", "--batch-size", "8", "--conv-dim", "4", "--z-size", "8",
        "--num-train", "32", "--seed", "3"]


def run(script, *args, **kwargs):
    return subprocess.run([sys.executable, str(REPO / "examples" / script), *map(str, args)],
                          capture_output=True, text=True, timeout=300, **kwargs)


def one_line_error(result):
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "error:" in lines[0], result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run folder after 2 steps of a tiny DCGAN (a few seconds)."""
    out = tmp_path_factory.mktemp("runs") / "run"
    result = run("train_svhn.py", *TINY, "--max-steps", "2", "--out", out)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture
def run_copy(trained, tmp_path):
    """A private copy of the trained run folder, to damage or continue."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


# ----------------------------------------------------------------------------- damaged files
def damage(path, how):
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[:len(data) // 2])
    elif how == "bit flipped":
        flipped = bytearray(data)
        flipped[len(data) // 3] ^= 0x10          # inside an array's bytes: a bad CRC
        path.write_bytes(bytes(flipped))
    elif how == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(len(data)))
    elif how == "missing section":
        with np.load(path) as archive:
            kept = {k: archive[k] for k in archive.files if not k.startswith("G/")}
        np.savez(path, **kept)


@pytest.mark.parametrize("how", ["truncated", "bit flipped", "random bytes", "missing section"])
def test_a_damaged_checkpoint_is_one_line_naming_the_file(run_copy, how):
    checkpoint = run_copy / "checkpoint.npz"
    damage(checkpoint, how)
    # Issue 13's cases: BadZipFile / Bad CRC-32 tracebacks, advice to use allow_pickle,
    # "error: 'G'". generate.py stands for every reader: they share one checked loader.
    line = one_line_error(run("generate.py", "--checkpoint", checkpoint, "--out", run_copy))
    assert str(checkpoint) in line and "pickle" not in line
    if how == "missing section":
        assert "section 'G' missing" in line


def test_resume_from_a_damaged_checkpoint_is_one_line(run_copy):
    damage(run_copy / "checkpoint.npz", "bit flipped")
    line = one_line_error(run("train_svhn.py", *TINY, "--resume", "--out", run_copy))
    assert "checkpoint.npz" in line and "corrupted" in line


def test_weights_with_nan_are_refused(run_copy):
    checkpoint = run_copy / "checkpoint.npz"
    with np.load(checkpoint) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["G/0.weight"][0, 0] = np.nan
    np.savez(checkpoint, **arrays)
    line = one_line_error(run("generate.py", "--checkpoint", checkpoint, "--out", run_copy))
    assert "G 0.weight holds NaN or infinite values" in line


def test_an_orphaned_temporary_checkpoint_is_removed_on_the_next_start(run_copy):
    orphan = run_copy / "checkpoint.npz.abc123.tmp"      # what a write killed by -9 leaves
    orphan.write_bytes(b"half a checkpoint")
    others = [run_copy / "config.json.4242.tmp", run_copy / "samples.tmp.gif"]
    for other in others:
        other.write_bytes(b"half a file")
    result = run("train_svhn.py", *TINY, "--max-steps", "3", "--resume", "--out", run_copy)
    assert result.returncode == 0, result.stderr
    assert not orphan.exists() and f"removed {orphan}" in result.stdout
    assert not any(other.exists() for other in others)


# ----------------------------------------------------------------------------- the run folder
def test_a_fresh_run_never_overwrites_a_checkpoint(run_copy):
    before = (run_copy / "checkpoint.npz").read_bytes()
    line = one_line_error(run("train_svhn.py", *TINY, "--max-steps", "1", "--out", run_copy))
    assert "already holds a run" in line and "--resume" in line and "--overwrite" in line
    assert (run_copy / "checkpoint.npz").read_bytes() == before

    result = run("train_svhn.py", *TINY, "--max-steps", "1", "--out", run_copy, "--overwrite")
    assert result.returncode == 0, result.stderr
    assert "1 steps in" in result.stdout


def test_overwrite_leaves_nothing_of_the_earlier_run_to_be_taken_for_the_new_ones(run_copy):
    # What an earlier, longer run (with scores, snapshots and generate.py's pictures) leaves.
    earlier = ["checkpoint_epoch_003.npz", "checkpoint_epoch_004.npz", "metrics.csv",
               "samples/epoch_003.png", "samples.png", "interpolation.png"]
    for name in earlier:
        (run_copy / name).write_bytes(b"the earlier run's")
    (run_copy / "notes.txt").write_text("the user's own file")
    result = run("train_svhn.py", *TINY, "--epochs", "1", "--keep-snapshots", "2",
                 "--out", run_copy, "--overwrite")
    assert result.returncode == 0, result.stderr
    assert "removed the" in result.stdout
    assert not any((run_copy / name).exists() for name in earlier)
    assert not (run_copy / "samples" / "step_000002.png").exists()   # the earlier run's too
    # The new run's own snapshot is kept (the old ones counted towards "the last 2" before),
    # its files are listed, and nothing else of the user's is touched.
    assert sorted(p.name for p in run_copy.glob("checkpoint_epoch_*.npz")) == [
        "checkpoint_epoch_001.npz"]
    assert "metrics.csv" not in result.stdout
    assert "checkpoint_epoch_*.npz  (1 copy of earlier epochs' checkpoints, the last " \
        "checkpoint_epoch_001.npz)" in result.stdout
    assert (run_copy / "notes.txt").read_text() == "the user's own file"


def test_a_fresh_run_refuses_an_earlier_runs_files_even_without_a_checkpoint(tmp_path):
    out = tmp_path / "run"
    (out / "samples").mkdir(parents=True)
    (out / "samples" / "epoch_001.png").write_bytes(b"a run stopped before its checkpoint")
    line = one_line_error(run("train_svhn.py", *TINY, "--max-steps", "1", "--out", out))
    assert "epoch_001.png" in line and "--overwrite" in line
    assert (out / "samples" / "epoch_001.png").read_bytes().startswith(b"a run stopped")


def test_the_same_command_again_after_a_run_that_failed_before_its_first_checkpoint(tmp_path):
    # A run stopped by an error in its first epoch (say a learner's kernel) leaves config.json
    # and real_samples.png: the learner's retry after the fix must simply start.
    out = tmp_path / "run"
    out.mkdir()
    for name in ("config.json", "real_samples.png"):
        (out / name).write_text("from a run that failed early")
    result = run("train_svhn.py", *TINY, "--max-steps", "1", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "replaced config.json, real_samples.png of an earlier run" in result.stdout
    assert (out / "checkpoint.npz").is_file()


def test_resuming_a_run_with_nothing_left_to_train_is_refused(run_copy):
    config = (run_copy / "config.json").read_text()
    line = one_line_error(run("train_svhn.py", "--resume", "--out", run_copy,
                              "--max-steps", "2"))
    assert "has done 2 steps, and --max-steps is 2: nothing is left to train" in line
    finished = run_copy / "finished"
    assert run("train_svhn.py", *TINY, "--epochs", "1", "--out", finished).returncode == 0
    for epochs in ([], ["--epochs", "1"]):
        line = one_line_error(run("train_svhn.py", "--resume", "--out", finished, *epochs))
        assert "has done 4 steps in 1 epoch, and --epochs is 1" in line
        assert "give --epochs 2 or more" in line
    # A smaller --epochs than was trained is refused before config.json records it.
    kept = (finished / "config.json").read_text()
    one_line_error(run("train_svhn.py", "--resume", "--out", finished, "--epochs", "0"))
    assert (finished / "config.json").read_text() == kept
    assert (run_copy / "config.json").read_text() == config


def test_generate_refuses_to_replace_its_pictures_without_overwrite(trained, tmp_path):
    args = ["--checkpoint", trained / "checkpoint.npz", "--num-samples", "4", "--rows", "1",
            "--steps", "2", "--out", tmp_path]
    assert run("generate.py", *args).returncode == 0
    before = (tmp_path / "samples.png").read_bytes()
    line = one_line_error(run("generate.py", *args, "--seed", "1"))
    assert "samples.png already exists" in line and "--overwrite" in line
    assert (tmp_path / "samples.png").read_bytes() == before
    assert run("generate.py", *args, "--seed", "1", "--overwrite").returncode == 0
    assert (tmp_path / "samples.png").read_bytes() != before


def test_a_run_folder_given_for_its_checkpoint_says_which_file_to_give(trained):
    line = one_line_error(run("generate.py", "--checkpoint", trained))
    assert line == f"error: {trained} is a run folder: give its {trained / 'checkpoint.npz'}"


def test_a_script_that_does_not_take_part_in_several_processes_is_refused_by_the_launcher(
        trained, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "minigan.launch", "-n", "2", str(REPO / "examples" / "generate.py"),
         "--checkpoint", str(trained / "checkpoint.npz"), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.count("generate.py does not run as several processes") == 1
    assert "Traceback" not in result.stderr and not list(tmp_path.glob("*.png"))


def test_the_fid_inception_is_not_downloaded_with_no_download(tmp_path):
    line = one_line_error(run("train_svhn.py", *TINY, "--max-steps", "1", "--features",
                              "inception", "--no-download", "--data-dir", tmp_path,
                              "--out", tmp_path / "run"))
    assert "not found" in line and "could not reach" not in line


def test_config_json_records_every_setting(trained):
    config = json.loads((trained / "config.json").read_text())
    for key, value in {"dataset": "synthetic", "split": "train", "batch_size": 8,
                       "conv_dim": 4, "z_size": 8, "z_distribution": "uniform",
                       "lr_d": 2e-4, "lr_g": 2e-4, "beta1": 0.5, "beta2": 0.999,
                       "label_smoothing": 0.0, "real_label": 1.0, "seed": 3,
                       "num_train": 32}.items():
        assert config[key] == value, key
    assert "minigan_version" in config
    assert config["generator"]["conv_dim"] == 4


def test_resume_refuses_a_setting_that_cannot_change(run_copy):
    line = one_line_error(run("train_svhn.py", *TINY, "--conv-dim", "8", "--resume",
                              "--out", run_copy))
    assert "--conv-dim 8 differs from the checkpoint's 4" in line


def test_resume_takes_the_checkpoints_settings_and_honours_a_new_learning_rate(run_copy):
    # Only --resume, --out and the new rate: the rest (conv_dim 4, z_size 8, ...) is read from
    # the checkpoint. Issue 13's case: the new rate was ignored while config.json recorded it.
    result = run("train_svhn.py", "--resume", "--out", run_copy, "--max-steps", "3",
                 "--lr-g", "1e-4")
    assert result.returncode == 0, result.stderr
    assert "changed: --lr-g 0.0002 -> 0.0001" in result.stdout
    assert json.loads((run_copy / "config.json").read_text())["lr_g"] == 1e-4
    with np.load(run_copy / "checkpoint.npz") as archive:
        assert float(archive["opt_g/lr"]) == 1e-4 and float(archive["opt_d/lr"]) == 2e-4
        assert int(archive["progress/step"]) == 3


def test_resume_refuses_another_feature_network_once_the_run_has_scores(tmp_path):
    """Scores of two feature networks in one metrics.csv would read as one curve (a jump from
    one network to the other looks like progress)."""
    from minigan.backend import make_rng
    from minigan.data import make_synthetic_digits
    from minigan.metrics.features import FeatureNet
    from minigan.metrics.gan_eval import save_real_statistics, statistics_path

    networks = []
    for seed in (0, 1):
        net = FeatureNet(3, width=4, feature_dim=16, image_size=32, rng=make_rng(seed))
        path = net.save(tmp_path / f"features_{seed}.npz", dataset="synthetic")
        images, _ = make_synthetic_digits(32, seed=0, size=32, channels=3)
        save_real_statistics(net, images, statistics_path(path), dataset="synthetic")
        networks.append(path)
    out = tmp_path / "run"
    first = run("train_svhn.py", *TINY, "--epochs", "1", "--features", networks[0],
                "--metrics-samples", "20", "--out", out)
    assert first.returncode == 0, first.stderr
    assert (out / "metrics.csv").is_file()
    line = one_line_error(run("train_svhn.py", "--resume", "--out", out, "--epochs", "2",
                              "--features", networks[1]))
    assert f"--features {networks[1]} differs from the {networks[0]} that made the scores" in line
    again = run("train_svhn.py", "--resume", "--out", out, "--epochs", "2")   # the same one
    assert again.returncode == 0, again.stderr
    assert len((out / "metrics.csv").read_text().splitlines()) == 3       # header, 2 epochs


def test_resume_refuses_a_checkpoint_copied_in_from_another_run(run_copy, tmp_path):
    """Its history would replace the folder's losses.csv and grids: refused, nothing touched."""
    other = tmp_path / "other"
    result = run("train_svhn.py", *TINY, "--conv-dim", "8", "--max-steps", "1", "--out", other)
    assert result.returncode == 0, result.stderr
    shutil.copyfile(other / "checkpoint.npz", run_copy / "checkpoint.npz")
    losses = (run_copy / "losses.csv").read_text()
    line = one_line_error(run("train_svhn.py", "--resume", "--out", run_copy, "--max-steps", 3))
    assert "is not the checkpoint of the run that" in line
    assert "(conv_dim is 8 in the checkpoint, 4 in config.json)" in line
    assert (run_copy / "losses.csv").read_text() == losses


def test_a_run_refused_before_it_writes_anything_leaves_no_folder(tmp_path):
    for args in (["--dataset", str(tmp_path / "nonexist.npz")], ["--dataset", "synthetic",
                                                                  "--resume"]):
        one_line_error(run("train_svhn.py", *args, cwd=tmp_path))
    assert not (tmp_path / "runs").exists()
    (tmp_path / "runs").mkdir()                       # a folder that was there stays
    one_line_error(run("train_svhn.py", "--dataset", "synthetic", "--resume", cwd=tmp_path))
    assert (tmp_path / "runs").is_dir() and not list((tmp_path / "runs").iterdir())


def test_resume_needs_only_the_checkpoint(run_copy, tmp_path):
    # Issue 13's case: a deleted samples/ (or a moved checkpoint) failed every resume at the
    # epoch's end, when the GIF re-read the old sample PNGs.
    shutil.rmtree(run_copy / "samples")
    (run_copy / "samples.gif").unlink()
    result = run("train_svhn.py", "--resume", "--out", run_copy, "--epochs", "1")
    assert result.returncode == 0, result.stderr
    assert (run_copy / "samples" / "epoch_001.png").is_file()
    assert (run_copy / "samples.gif").is_file()


# ----------------------------------------------------------------------------- values and outputs
@pytest.mark.parametrize("args, message", [
    (["--label-smoothing", "0.9"], "--label-smoothing is the amount S"),   # would invert D
    (["--lr-g", "nan"], "argument --lr-g: must be a finite number"),
    (["--lr-d", "inf"], "argument --lr-d: must be a finite number"),
    (["--seed", "-1"], "argument --seed: must be 0 or more"),
    (["--keep-snapshots", "-2"], "argument --keep-snapshots: must be 0 or more, or all"),
    (["--conv-dim", "1000000"], "--conv-dim 1000000 (about"),
    (["--num-train", "1e12"], "--num-train 1000000000000 synthetic images would need about"),
    (["--features", "f.npz", "--metrics-samples", "10"], "--metrics-samples must be at least 20"),
    (["--kernels-unchecked"], "--kernels-unchecked goes with --kernels FOLDER"),
])
def test_values_that_make_no_sense_are_refused_where_they_are_parsed(tmp_path, args, message):
    line = one_line_error(run("train_svhn.py", "--dataset", "synthetic", *args,
                              "--out", tmp_path / "run"))
    assert message in line


@pytest.mark.parametrize("script, args", [
    ("generate.py", ["--checkpoint", "x.npz"]),
    ("evaluate.py", ["--checkpoint", "x.npz", "--features", "f.npz"]),
    ("train_classifier.py", ["--dataset", "synthetic"]),
    ("batch_norm_mnist.py", []),
    ("step_through.py", []),
])
def test_a_negative_seed_names_the_option_in_every_script(script, args):
    line = run(script, *args, "--seed", "-1").stderr.strip()
    assert "argument --seed: must be 0 or more" in line and "Traceback" not in line


def test_label_smoothing_is_the_amount_taken_off_the_real_target(run_copy):
    result = run("train_svhn.py", *TINY, "--max-steps", "1", "--label-smoothing", "0.1",
                 "--out", run_copy / "smoothed")
    assert result.returncode == 0, result.stderr
    config = json.loads((run_copy / "smoothed" / "config.json").read_text())
    assert config["label_smoothing"] == 0.1 and config["real_label"] == 0.9


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root may write anywhere")
@pytest.mark.parametrize("script, args", [
    ("train_svhn.py", TINY + ["--out", "{ro}/run"]),
    ("train_classifier.py", ["--dataset", "synthetic", "--out", "{ro}/features.npz"]),
    ("batch_norm_mnist.py", ["--out", "{ro}/bn"]),
    ("generate.py", ["--checkpoint", "{ckpt}", "--out", "{ro}/gen"]),
])
def test_an_unwritable_output_is_refused_before_any_work(trained, tmp_path, script, args):
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o500)
    try:
        args = [a.format(ro=read_only, ckpt=trained / "checkpoint.npz") for a in args]
        started = time.perf_counter()
        line = one_line_error(run(script, *args))
        assert "cannot write there" in line and str(read_only) in line
        assert time.perf_counter() - started < 60     # refused, not trained first
    finally:
        read_only.chmod(0o700)


@pytest.mark.parametrize("script, args", [
    ("train_svhn.py", TINY + ["--out", "{file}"]),
    ("train_classifier.py", ["--dataset", "synthetic", "--out", "{file}/features.npz"]),
    ("batch_norm_mnist.py", ["--out", "{file}"]),
    ("generate.py", ["--checkpoint", "{ckpt}", "--out", "{file}"]),
])
def test_an_output_path_blocked_by_a_file_is_refused_before_any_work(trained, tmp_path, script,
                                                                    args):
    # The same check as an unwritable folder, and one that root cannot write through either.
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    args = [a.format(file=blocker, ckpt=trained / "checkpoint.npz") for a in args]
    line = one_line_error(run(script, *args))
    assert str(blocker) in line


# ----------------------------------------------------------------------------- interrupts
def start(*args):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, str(REPO / "examples" / "train_svhn.py"),
                             *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def wait_for_line(process, text, seconds=120):
    deadline = time.monotonic() + seconds
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        seen.append(line)
        if text in line:
            return seen
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"never printed {text!r}: {''.join(seen)}")


def test_sigterm_saves_like_ctrl_c_and_exits_130(tmp_path):
    out = tmp_path / "run"
    process = start(*TINY, "--epochs", "1000", "--out", out)
    wait_for_line(process, "training a DCGAN")
    time.sleep(2)                    # a few steps in
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr      # so that `train && generate` stops
    assert "interrupted: saved a checkpoint" in stdout and "Traceback" not in stderr
    with np.load(out / "checkpoint.npz") as archive:
        assert int(archive["progress/step"]) >= 1


def test_ctrl_c_while_preparing_the_data_is_one_line_and_exit_130(tmp_path):
    process = start("--dataset", "synthetic", "--num-train", "20000", "--out", tmp_path / "r")
    wait_for_line(process, "preparing the train images")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted"), stderr


def test_errors_and_warnings_start_on_a_line_of_their_own_after_the_progress_bar(tmp_path):
    # Issue 13's case: the divergence message was glued to the end of the progress bar.
    result = run("train_svhn.py", *TINY, "--lr-d", "1e30", "--lr-g", "1e30", "--max-steps",
                 "5", "--out", tmp_path / "run")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.replace("\r", "\n").splitlines()
    assert any(ln.startswith("error: training diverged at step") for ln in lines), result.stderr
    assert all(ln.startswith("warning:") for ln in lines if "warning:" in ln), result.stderr


def test_a_folder_of_pictures_trains_the_64x64_dcgan(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(8):          # pictures of assorted sizes, as a folder of photos would hold
        size = (int(rng.integers(64, 120)), int(rng.integers(64, 120)))
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"photo_{i}.jpg")
    out = tmp_path / "run"
    result = run("train_svhn.py", "--dataset", tmp_path, "--image-size", "64", "--batch-size",
                 "4", "--conv-dim", "4", "--z-size", "8", "--max-steps", "1", "--out", out)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "config.json").read_text())["generator"]["image_size"] == 64
    generated = run("generate.py", "--checkpoint", out / "checkpoint.npz", "--num-samples", "4",
                    "--rows", "1", "--steps", "2")
    assert generated.returncode == 0, generated.stderr
    from PIL import Image as PILImage
    with PILImage.open(out / "samples.png") as grid:     # 2x2 grid of 64x64 images, scaled 2x
        assert grid.size == (2 * (2 * 64 + 3 * 2),) * 2


MNIST = REPO.parent / "shared" / "data" / "mnist"


@pytest.mark.skipif(not (MNIST / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="needs ../shared/data/mnist")
def test_mirror_option_downloads_from_the_mirror(tmp_path):
    mirror = tmp_path / "mirror" / "mnist"       # the cache's layout: <mirror>/<dataset>/<file>
    mirror.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copyfile(MNIST / name, mirror / name)
    result = run("train_svhn.py", "--dataset", "mnist", "--split", "test", "--mirror",
                 mirror.parent.as_uri(), "--data-dir", tmp_path / "cache", "--max-steps", "1",
                 "--batch-size", "8", "--conv-dim", "4", "--z-size", "8", "--num-train", "16",
                 "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cache" / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()
