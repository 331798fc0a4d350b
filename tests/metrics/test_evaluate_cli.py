"""Scoring a generator end to end: GANEvaluator and the evaluate / train_classifier scripts.

The idea: FID and IS are computed by pushing G's samples through a *fixed* feature network and
comparing with statistics of real images that were computed once and cached. Here everything is
miniature -- a generator trained for one step, a feature network trained for one epoch on a few
rendered digits -- because the point is the plumbing (files, fixed seeds, eval mode, warnings,
errors), not the quality of the numbers.
"""

import csv
import importlib.util
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

from minigan.backend import make_rng, manual_seed
from minigan.classifier import train_classifier
from minigan.data import DataLoader, make_synthetic_digits
from minigan.gan.dcgan import Discriminator, Generator, dcgan_init
from minigan.gan.trainer import GANTrainer, TrainConfig
from minigan.metrics.features import FeatureNet
from minigan.metrics.gan_eval import (
    GANEvaluator,
    SmallSampleWarning,
    save_real_statistics,
    statistics_path,
)
from tests.helpers import REPO_ROOT, shared_data

Z_SIZE = 8


def tiny_trainer(out_dir, channels=3, **config):
    """A 32x32 DCGAN with 4 channels in D's first layer, on 16 rendered digits."""
    manual_seed(0)
    G = dcgan_init(Generator(z_size=Z_SIZE, conv_dim=4, image_size=32, channels=channels))
    D = dcgan_init(Discriminator(conv_dim=4, image_size=32, channels=channels))
    images, _ = make_synthetic_digits(16, seed=0, size=32, channels=channels)
    loader = DataLoader(images, batch_size=8, seed=0)
    settings = dict(epochs=1, z_size=Z_SIZE, num_samples=4, seed=0)
    settings.update(config)
    return GANTrainer(G, D, loader, TrainConfig(**settings), out_dir)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A generator checkpoint after one training step, and a small feature network trained
    for a few epochs on rendered digits, saved with its real-data statistics."""
    root = tmp_path_factory.mktemp("evaluate")
    trainer = tiny_trainer(root / "run", max_steps=1)
    trainer.fit(progress=False)

    images, labels = make_synthetic_digits(128, seed=1, size=32, channels=3)
    net = train_classifier(images, labels, epochs=3, batch_size=16, seed=0, progress=False,
                           width=4, feature_dim=16)
    features = net.save(root / "features.npz", dataset="synthetic", accuracy=0.5)
    save_real_statistics(net, images, statistics_path(features), dataset="synthetic/train")
    return {"checkpoint": trainer.checkpoint_path, "features": features, "G": trainer.G,
            "root": root}


def run_script(name, *args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, str(REPO_ROOT / "examples" / name), *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300)


def assert_one_line_error(result):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


# ---------------------------------------------------------------------- GANEvaluator
def test_evaluator_returns_the_scores_and_is_repeatable(files):
    G = files["G"].train()
    with pytest.warns(SmallSampleWarning, match="biased"):
        evaluate = GANEvaluator(files["features"], num_samples=200, batch_size=64)
    first, second = evaluate(G), evaluate(G)
    assert set(first) == {"fid", "inception_score", "inception_score_std"}
    assert first == second          # a fixed seed: the same z, so the same images and scores
    assert first["fid"] > 0
    assert 1.0 <= first["inception_score"] <= 10.0   # 10 classes: IS lies in [1, 10]
    assert first["inception_score_std"] >= 0
    assert G.training                # G's mode is put back after sampling in eval mode


def test_evaluator_scores_real_images_better_than_noise(files):
    """The cached statistics were computed on these very images: FID of the same set is ~0."""
    images, _ = make_synthetic_digits(128, seed=1, size=32, channels=3)
    noise = np.random.default_rng(0).integers(0, 256, images.shape, dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        evaluate = GANEvaluator(files["features"], num_samples=128)
    real, fake = evaluate.score_images(images), evaluate.score_images(noise)
    assert abs(real["fid"]) < 1e-9
    assert fake["fid"] > 1e-3


def test_no_warning_with_enough_samples(files):
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallSampleWarning)
        GANEvaluator(files["features"], num_samples=2048)


def test_statistics_of_another_network_are_refused(files, tmp_path):
    images, _ = make_synthetic_digits(32, seed=2, size=32, channels=3)
    other = FeatureNet(3, width=4, feature_dim=16, rng=make_rng(5))
    save_real_statistics(other, images, tmp_path / "other_stats.npz")
    with pytest.raises(ValueError, match="different feature network"):
        GANEvaluator(files["features"], num_samples=2048, stats_path=tmp_path / "other_stats.npz")


def test_trainer_records_the_scores_every_epoch(files, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        evaluate = GANEvaluator(files["features"], num_samples=40, batch_size=20)
    trainer = tiny_trainer(tmp_path, epochs=2, metrics_every=1)
    trainer.evaluate = evaluate
    trainer.fit(progress=False)
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["epoch"]) for r in rows] == [1.0, 2.0]
    assert all(float(r["fid"]) > 0 and float(r["inception_score"]) >= 1 for r in rows)


# ---------------------------------------------------------------------- examples/evaluate.py
def test_evaluate_prints_fid_and_is_and_the_small_sample_warning(files):
    result = run_script("evaluate.py", "--checkpoint", files["checkpoint"], "--features",
                        files["features"], "--num-samples", 256, "--backend", "numpy")
    assert result.returncode == 0, result.stderr
    fid = re.search(r"^FID\s+([0-9.]+)$", result.stdout, re.M)
    score = re.search(r"^IS\s+([0-9.]+) ± ([0-9.]+)", result.stdout, re.M)
    assert fid and score, result.stdout
    assert float(fid.group(1)) > 0
    assert 1.0 <= float(score.group(1)) <= 10.0
    assert "256 samples" in result.stdout and str(files["features"]) in result.stdout
    assert re.search(r"^warning: FID from 256 samples", result.stderr, re.M), result.stderr


def printed_scores(stdout: str) -> tuple[str, str]:
    fid = re.search(r"^FID\s+([0-9.]+)$", stdout, re.M)
    score = re.search(r"^IS\s+([0-9.]+ ± [0-9.]+)", stdout, re.M)
    assert fid and score, stdout
    return fid.group(1), score.group(1)


def test_evaluate_with_two_processes_prints_one_process_s_scores(files, tmp_path):
    """--processes 2: each process scores half of the samples; rank 0 prints and exports."""
    args = ["--checkpoint", files["checkpoint"], "--features", files["features"],
            "--num-samples", 256, "--backend", "numpy"]
    alone = run_script("evaluate.py", *args)
    shared = run_script("evaluate.py", *args, "--processes", 2, "--export-samples",
                        tmp_path / "samples")
    assert alone.returncode == 0 and shared.returncode == 0, shared.stderr
    assert "2 processes, each scoring 1/2 of the samples" in shared.stdout
    assert shared.stdout.count("FID ") == 1                 # rank 0 alone prints
    assert shared.stderr.count("warning: FID from 256 samples") == 1   # and warns
    assert len(list((tmp_path / "samples").glob("*.png"))) == 256
    # The exported 8-bit images are scored in the shared run: compare with them alone.
    exported = run_script("evaluate.py", *args, "--export-samples", tmp_path / "again")
    assert printed_scores(shared.stdout) == printed_scores(exported.stdout)
    assert printed_scores(alone.stdout)[0] != "0.000"
    bad = run_script("evaluate.py", *args, "--processes", 0)
    assert_one_line_error(bad)


def test_evaluate_rebuilds_the_generator_that_was_saved(files):
    """The generator's settings are saved in the checkpoint and read back by from_config."""
    spec = importlib.util.spec_from_file_location("evaluate_script",
                                                  REPO_ROOT / "examples" / "evaluate.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    G, settings, where = script.load_generator(files["checkpoint"])
    assert settings == {"z_size": Z_SIZE, "conv_dim": 4, "image_size": 32, "channels": 3,
                        "z_distribution": "uniform"}
    assert where["step"] >= 1 and not G.training
    for name, value in files["G"].state_dict().items():
        np.testing.assert_array_equal(G.state_dict()[name], value)


@pytest.mark.parametrize("fault", ["not positive semi-definite", "not symmetric"])
def test_evaluate_refuses_statistics_that_are_not_a_covariance(files, tmp_path, fault):
    """Issue 22: evaluate.py printed FID -127.991 for a sigma with a negative eigenvalue, and
    0.015 for a non-symmetric one. Now: one line naming the file, exit 2, no FID at all."""
    features = tmp_path / "features.npz"
    features.write_bytes(files["features"].read_bytes())
    with np.load(statistics_path(files["features"])) as real:
        mu, sigma, meta = real["mu"], real["sigma"], real["meta"]
    eigenvalues, vectors = np.linalg.eigh(sigma)
    top = vectors[:, -1]
    if fault == "not symmetric":
        bad = sigma + 0.5 * eigenvalues[-1] * np.outer(top, np.roll(top, 1))
    else:                                  # the largest eigenvalue turned into -2 times it
        bad = sigma - 3 * eigenvalues[-1] * np.outer(top, top)
    np.savez(statistics_path(features), mu=mu, sigma=bad, meta=meta)
    result = run_script("evaluate.py", "--checkpoint", files["checkpoint"], "--features",
                        features, "--num-samples", 40, "--backend", "numpy")
    assert_one_line_error(result)
    assert str(statistics_path(features)) in result.stderr and fault in result.stderr
    assert "FID" not in result.stdout


@pytest.mark.parametrize("bad", ["missing", "features", "garbage"])
def test_evaluate_bad_checkpoint_is_a_one_line_error(files, tmp_path, bad):
    path = {"missing": tmp_path / "nothing.npz", "features": files["features"],
            "garbage": tmp_path / "garbage.npz"}[bad]
    if bad == "garbage":
        path.write_bytes(b"not a zip file")
    result = run_script("evaluate.py", "--checkpoint", path, "--features", files["features"],
                        "--num-samples", 256)
    assert_one_line_error(result)


def test_a_missing_checkpoint_is_named_before_the_missing_features(tmp_path):
    """Without --features (or --dataset) and without a checkpoint, the checkpoint is what is
    wrong first: 'give --features' would send the user the wrong way."""
    (tmp_path / "run").mkdir()
    for given in (tmp_path / "nothing.npz", tmp_path / "run"):
        result = run_script("evaluate.py", "--checkpoint", given)
        assert_one_line_error(result)
        assert f"no trainer checkpoint at {given}" in result.stderr


def test_evaluate_refuses_a_dataset_with_other_channels(files):
    result = run_script("evaluate.py", "--checkpoint", files["checkpoint"], "--features",
                        files["features"], "--dataset", "mnist")
    assert_one_line_error(result)
    assert "synthetic" in result.stderr   # the network says what it was trained on


def test_evaluate_checks_an_npz_dataset_by_its_file_name(files, tmp_path):
    """A feature network trained on an .npz file records the path it was given; evaluate.py
    matches it by file name (the same file may be reached by another path) and refuses another
    dataset. A file's channels are not known without reading it, so G is checked against the
    network only."""
    net = FeatureNet.load(files["features"])
    features = net.save(tmp_path / "features_mine.npz", dataset="photos/mine.npz")
    statistics_path(features).write_bytes(statistics_path(files["features"]).read_bytes())

    other = run_script("evaluate.py", "--checkpoint", files["checkpoint"], "--features",
                       features, "--dataset", "theirs.npz")
    assert_one_line_error(other)
    assert "was trained on photos/mine.npz, not theirs.npz" in other.stderr

    same = run_script("evaluate.py", "--checkpoint", files["checkpoint"], "--features",
                      features, "--dataset", tmp_path / "elsewhere" / "mine.npz",
                      "--num-samples", 20, "--batch-size", 20)
    assert same.returncode == 0, same.stderr
    assert "trained on photos/mine.npz" in same.stdout and "FID" in same.stdout


def test_training_refuses_a_feature_network_for_other_images_before_it_starts(files, tmp_path):
    """A 3-channel feature network cannot score a 1-channel (MNIST-shaped) generator: say so
    before the first step, not after the first epoch."""
    data_dir = shared_data("mnist", "t10k-images-idx3-ubyte.gz").parent
    result = run_script("train_svhn.py", "--dataset", "mnist",
                        "--split", "test", "--data-dir", data_dir, "--features",
                        files["features"], "--out", tmp_path / "run")
    assert_one_line_error(result)
    assert "3-channel" in result.stderr and "1-channel" in result.stderr
    assert not (tmp_path / "run" / "losses.csv").exists()


# ---------------------------------------------------------------------- train_classifier.py
def test_train_classifier_bad_holdout_is_a_one_line_error(tmp_path):
    result = run_script("train_classifier.py", "--dataset", "synthetic", "--holdout", "1.5",
                        "--out", tmp_path / "f.npz")
    assert_one_line_error(result)
    assert not (tmp_path / "f.npz").exists()


def test_train_classifier_on_mnist_test_files_only(tmp_path):
    """Offline with only MNIST's t10k files: train on part of the test split, say so, and
    write the network and its statistics, which evaluate.py can then use."""
    data_dir = shared_data("mnist", "t10k-images-idx3-ubyte.gz").parent
    out = tmp_path / "features_mnist.npz"
    result = run_script("train_classifier.py", "--dataset", "mnist", "--data-dir", data_dir,
                        "--no-download", "--num-train", 600, "--epochs", 1, "--width", 4,
                        "--feature-dim", 16, "--batch-size", 50, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "test images are used instead" in result.stdout
    accuracy = float(re.search(r"held-out accuracy ([0-9.]+)", result.stdout).group(1))
    assert 0.0 <= accuracy <= 1.0
    net = FeatureNet.load(out)
    assert (net.channels, net.image_size) == (1, 32)   # 28x28 digits padded to 32x32
    assert FeatureNet.load_info(out)["split"] == "test"
    assert statistics_path(out).is_file()


def test_a_classifier_no_better_than_chance_is_not_saved(tmp_path):
    """Issue 22: with --lr 1e6 the network learns nothing, and was saved as a feature network
    all the same. Now it says so, exit 2, and writes nothing."""
    out = tmp_path / "f.npz"
    result = run_script("train_classifier.py", "--dataset", "synthetic", "--num-train", 400,
                        "--epochs", 1, "--lr", "1e6", "--width", 4, "--feature-dim", 16,
                        "--out", out)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [ln for ln in result.stderr.replace("\r", "\n").splitlines() if "error" in ln]
    assert len(errors) == 1 and errors[0].startswith("error: the feature network reached"), \
        result.stderr                          # (the rest of stderr is the progress bar)
    assert "no better than chance" in errors[0] and "not saved" in errors[0]
    assert not out.exists() and not statistics_path(out).exists()


def test_chance_accuracy_is_that_of_always_answering_the_most_common_class():
    from minigan.classifier import chance_accuracy, check_better_than_chance

    assert chance_accuracy(np.arange(10)) == 0.1
    assert chance_accuracy(np.array([3, 3, 3, 1])) == 0.75
    check_better_than_chance(0.76, np.array([3, 3, 3, 1]), "net")
    with pytest.raises(RuntimeError, match=r"net reached a held-out accuracy of 0.7500, no "
                                           r"better than chance \(0.7500"):
        check_better_than_chance(0.75, np.array([3, 3, 3, 1]), "net")


def test_a_single_class_is_refused_before_training():
    """Issue 22: on a one-class folder the classifier reported accuracy 1.0."""
    images = np.zeros((32, 3, 32, 32), dtype=np.uint8)
    with pytest.raises(ValueError, match="all 32 images have the label 0: a classifier needs "
                                         "at least two classes"):
        train_classifier(images, np.zeros(32, dtype=np.int64), progress=False)


def test_evaluate_never_mixes_an_earlier_export_with_new_samples(tmp_path):
    """--export-samples into a folder that holds an earlier export's PNG files is refused
    before any work (pytorch-fid would score the mix); --overwrite removes them first."""
    samples = tmp_path / "samples"
    samples.mkdir()
    (samples / "000000.png").write_bytes(b"an earlier sample")
    result = run_script("evaluate.py", "--checkpoint", tmp_path / "none.npz", "--features",
                        tmp_path / "none_features.npz", "--export-samples", samples)
    assert_one_line_error(result)
    assert "000000.png already exists" in result.stderr and "--overwrite" in result.stderr
    assert (samples / "000000.png").read_bytes() == b"an earlier sample"
    again = run_script("evaluate.py", "--checkpoint", tmp_path / "none.npz", "--features",
                       tmp_path / "none_features.npz", "--export-samples", samples,
                       "--overwrite")
    assert_one_line_error(again)                  # now it fails on the missing checkpoint
    assert "none.npz" in again.stderr and not (samples / "000000.png").exists()


def test_evaluate_checks_the_feature_network_against_the_checkpoints_dataset(files, tmp_path):
    """Without --dataset, the dataset the checkpoint's run recorded: a feature network made on
    another one is refused (it printed an FID that compared nothing meaningful)."""
    trainer = tiny_trainer(tmp_path / "run", max_steps=1)
    trainer.settings = {"dataset": "cifar10"}   # as train_svhn.py --dataset cifar10 records
    trainer.fit(progress=False)
    result = run_script("evaluate.py", "--checkpoint", trainer.checkpoint_path, "--features",
                        files["features"], "--num-samples", 20, "--backend", "numpy")
    assert_one_line_error(result)
    assert "was trained on synthetic, not cifar10" in result.stderr
    trainer = tiny_trainer(tmp_path / "same", max_steps=1)
    trainer.settings = {"dataset": "synthetic"}
    trainer.fit(progress=False)
    same = run_script("evaluate.py", "--checkpoint", trainer.checkpoint_path, "--features",
                      files["features"], "--num-samples", 20, "--backend", "numpy")
    assert same.returncode == 0, same.stderr
    assert "dataset: synthetic (the checkpoint's run trained on it)" in same.stdout
    assert "(after 1 steps, 0 epochs done)" in same.stdout


def test_evaluate_never_exports_beside_other_pictures(tmp_path):
    """A run's samples/ folder holds its sample grids: exported there, pytorch-fid would score
    them with the samples. Refused before any work, --overwrite or not, and nothing deleted."""
    grids = tmp_path / "samples"
    grids.mkdir()
    (grids / "epoch_001.png").write_bytes(b"a sample grid")
    for extra in ([], ["--overwrite"]):
        result = run_script("evaluate.py", "--checkpoint", tmp_path / "none.npz", "--features",
                            tmp_path / "none_features.npz", "--export-samples", grids, *extra)
        assert_one_line_error(result)
        assert "holds other pictures (epoch_001.png" in result.stderr
    assert (grids / "epoch_001.png").read_bytes() == b"a sample grid"


def test_evaluate_no_download_says_where_the_inception_weights_go(files, tmp_path):
    """--no-download, as every script that can download accepts it: with the Inception weights
    missing, evaluate.py says where to put them by hand instead of fetching them."""
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_script("evaluate.py", "--checkpoint", files["checkpoint"], "--features",
                        "inception", "--data-dir", empty, "--no-download", "--num-samples", 20,
                        "--dataset", "synthetic", "--backend", "numpy")
    assert_one_line_error(result)
    assert "by hand" in result.stderr and str(empty) in result.stderr, result.stderr
