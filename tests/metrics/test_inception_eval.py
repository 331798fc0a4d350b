"""Scoring with the FID Inception: the scorer, the PNG export, and ``evaluate.py --features
inception`` end to end.

The real weights are not needed for the plumbing: a FIDInceptionV3 with its initial random
weights stands in, and (to keep the test quick) resizes to 75 x 75, Inception's smallest input,
instead of 299 x 299. What is checked:

* grey images are scored as the RGB images with three equal channels;
* the IS probabilities come from the last layer *without* its bias (the original IS code's
  logits) and each row sums to 1;
* exported PNG files read back as exactly the 8-bit images that were scored;
* the script computes and caches the reference statistics, prints FID, IS and its settings,
  and the FID it prints is the one of the exported PNG files, recomputed from disk.
"""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest
from PIL import Image

from minigan.backend import to_device
from minigan.metrics import inception_weights
from minigan.metrics.frechet import frechet_distance
from minigan.metrics.gan_eval import SmallSampleWarning
from minigan.metrics.inception import FIDInceptionV3
from minigan.metrics.inception_eval import InceptionScorer, export_samples
from minigan.metrics.statistics import feature_statistics, load_statistics, load_statistics_meta
from minigan.nn import ResizeBilinear
from tests.helpers import REPO_ROOT
from tests.metrics.test_evaluate_cli import tiny_trainer


def small_inception():
    net = FIDInceptionV3()
    net.resize = ResizeBilinear(75)   # Inception's smallest input: quick, same code path
    return net.eval()


@pytest.fixture(scope="module")
def net():
    return small_inception()


def test_grey_images_are_scored_as_three_equal_channels(net):
    grey = np.random.default_rng(0).integers(0, 256, (2, 1, 16, 16), dtype=np.uint8)
    scorer = InceptionScorer(net, batch_size=1)
    pool3_grey, probs_grey = scorer.pool3_and_probabilities(grey)
    pool3_rgb, probs_rgb = scorer.pool3_and_probabilities(np.repeat(grey, 3, axis=1))
    assert pool3_grey.shape == (2, 2048) and probs_grey.shape == (2, 1008)
    np.testing.assert_array_equal(pool3_grey, pool3_rgb)
    np.testing.assert_allclose(probs_grey.sum(axis=1), 1.0, rtol=1e-6)


def test_is_probabilities_ignore_the_last_layers_bias(net):
    images = np.random.default_rng(1).uniform(-1, 1, (2, 3, 16, 16)).astype(np.float32)
    scorer = InceptionScorer(net)
    _, before = scorer.pool3_and_probabilities(images)
    old_bias = net.fc.bias.data.copy()
    net.fc.bias.data[:] = to_device(np.linspace(-5, 5, old_bias.size, dtype=np.float32))
    try:
        _, after = scorer.pool3_and_probabilities(images)
    finally:
        net.fc.bias.data[:] = old_bias
    np.testing.assert_array_equal(before, after)


def test_scoring_shows_a_progress_bar_with_the_time_left_on_stderr(net, capsys):
    images = np.random.default_rng(3).integers(0, 256, (3, 3, 16, 16), dtype=np.uint8)
    scorer = InceptionScorer(net, batch_size=2)
    scorer.pool3_and_probabilities(images, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    # The last state of the bar: all 3 images (not 2 batches), elapsed<remaining, the rate.
    final = captured.err.replace("\r", "\n").strip().splitlines()[-1]
    assert re.search(r"FID Inception: 100%.* 3/3 \[\d\d:\d\d<00:00, +[\d.]+s?/?image", final), \
        final
    scorer.pool3_and_probabilities(images)              # progress=False: silent
    assert capsys.readouterr().err == ""


def test_the_training_evaluator_shows_progress_by_default(tmp_path, monkeypatch, capsys):
    from minigan.metrics.inception_eval import inception_evaluator

    monkeypatch.setattr(inception_weights, "load_fid_inception",
                        lambda *args, **kwargs: small_inception())
    real = np.random.default_rng(4).integers(0, 256, (2, 3, 16, 16), dtype=np.uint8)
    with pytest.warns(SmallSampleWarning):
        evaluate = inception_evaluator(real, "tiny", num_samples=10,
                                       stats_path=tmp_path / "stats.npz", batch_size=2)
    assert evaluate.progress is True
    assert "FID Inception: 100%" in capsys.readouterr().err   # the reference statistics' bar


def test_exported_pngs_read_back_as_the_8_bit_images(tmp_path):
    floats = np.linspace(-1, 1, 2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    paths = export_samples(floats, tmp_path / "rgb")
    assert [p.name for p in paths] == ["000000.png", "000001.png"]
    read = np.stack([np.asarray(Image.open(p)) for p in paths]).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(read, np.rint((floats + 1) / 2 * 255).astype(np.uint8))
    grey = np.arange(2 * 1 * 3 * 3, dtype=np.uint8).reshape(2, 1, 3, 3)
    (path, _) = export_samples(grey, tmp_path / "grey")
    assert Image.open(path).mode == "L"
    np.testing.assert_array_equal(np.asarray(Image.open(path)), grey[0, 0])
    assert not list((tmp_path / "rgb").glob(".*"))   # no temporary files left


@pytest.mark.slow
def test_evaluate_script_scores_with_inception_and_exports_what_it_scored(tmp_path, monkeypatch,
                                                                         capsys):
    trainer = tiny_trainer(tmp_path / "run", max_steps=1)
    trainer.fit(progress=False)
    checkpoint = next((tmp_path / "run").glob("checkpoint*.npz"))
    monkeypatch.setattr(inception_weights, "load_fid_inception",
                        lambda *args, **kwargs: small_inception())
    monkeypatch.chdir(tmp_path)
    real = np.random.default_rng(2).integers(0, 256, (12, 3, 32, 32), dtype=np.uint8)
    np.savez(tmp_path / "real.npz", images=real)
    spec = importlib.util.spec_from_file_location("evaluate_script",
                                                  REPO_ROOT / "examples" / "evaluate.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    code = script.main(["--checkpoint", str(checkpoint), "--features", "inception",
                        "--dataset", "real.npz", "--reference-count", "12", "--num-samples",
                        "20", "--batch-size", "10", "--export-samples", "samples"])
    out = capsys.readouterr().out
    assert code == 0, out
    stats = tmp_path / "runs" / "inception_stats_real.npz"
    assert load_statistics_meta(stats)["count"] == 12
    fid = float(re.search(r"^FID ([-\d.]+)$", out, re.MULTILINE).group(1))
    assert "IS  " in out and "20 samples" in out and "runs/inception_stats_real.npz" in out
    # The printed FID is that of the PNG files on disk.
    pngs = sorted((tmp_path / "samples").glob("*.png"))
    assert len(pngs) == 20
    images = np.stack([np.asarray(Image.open(p)) for p in pngs]).transpose(0, 3, 1, 2)
    pool3, _ = InceptionScorer(small_inception()).pool3_and_probabilities(images)
    mu, sigma = feature_statistics(pool3)
    assert frechet_distance(mu, sigma, *load_statistics(stats)) == pytest.approx(fid, abs=2e-3)


def test_inception_needs_reference_statistics_or_a_dataset(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("evaluate_script",
                                                  REPO_ROOT / "examples" / "evaluate.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    code = script.main(["--checkpoint", str(tmp_path / "none.npz"), "--features", "inception"])
    err = capsys.readouterr().err
    assert code != 0 and "--reference-stats" in err and "\n" == err[-1] and err.count("\n") == 1


def test_the_trainers_evaluator_computes_reference_statistics_once(tmp_path, monkeypatch):
    from minigan.metrics.inception_eval import InceptionEvaluator, inception_evaluator

    monkeypatch.setattr(inception_weights, "load_fid_inception",
                        lambda *args, **kwargs: small_inception())
    monkeypatch.chdir(tmp_path)
    real = np.random.default_rng(3).integers(0, 256, (6, 3, 32, 32), dtype=np.uint8)
    with pytest.warns(UserWarning, match="biased upwards"):
        evaluate = inception_evaluator(real, "svhn", num_samples=10, reference_count=4)
    assert isinstance(evaluate, InceptionEvaluator)
    stats = tmp_path / "runs" / "inception_stats_svhn.npz"
    assert load_statistics_meta(stats)["count"] == 4
    before = stats.stat().st_mtime_ns
    with pytest.warns(UserWarning):
        inception_evaluator(real, "svhn", num_samples=10)
    assert stats.stat().st_mtime_ns == before   # reused, not recomputed


def test_reference_statistics_of_another_network_are_refused(tmp_path, net):
    from minigan.metrics.inception_eval import InceptionEvaluator
    from minigan.metrics.statistics import save_statistics

    other = save_statistics(tmp_path / "other.npz", np.zeros(2048), np.eye(2048),
                            features="svhn-classifier")
    with pytest.raises(ValueError, match="not of the FID Inception"):
        InceptionEvaluator(other, net, num_samples=10000)
    small = save_statistics(tmp_path / "small.npz", np.zeros(16), np.eye(16))
    with pytest.raises(ValueError, match="16-d statistics"):
        InceptionEvaluator(small, net, num_samples=10000)
    # A pytorch-fid --save-stats file (mu and sigma only, no meta) is accepted.
    np.savez(tmp_path / "pytorch_fid.npz", mu=np.zeros(2048), sigma=np.eye(2048))
    InceptionEvaluator(tmp_path / "pytorch_fid.npz", net, num_samples=10000)
