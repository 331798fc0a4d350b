"""examples/semi_supervised.py: a K-class classifier that is also a GAN's discriminator.

Its pieces are checked one by one (the real/fake loss is binary cross-entropy on logsumexp, the
generator's gradient flows through the discriminator's body into the generator), then the
script runs end to end for a few steps on a tiny file of labelled images and on the real MNIST
test files (skipped when they are absent) and must write its plot, samples and numbers.
"""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from minigan.backend import set_default_dtype, to_device, to_numpy
from minigan.gradcheck import check_module
from tests.helpers import random_array, shared_data
from tests.other_uses import (
    error_of,
    load_example,
    one_line_error,
    png_ok,
    run_example,
    tiny_digits_npz,
)

semi = load_example("semi_supervised")


def test_choose_labelled_takes_the_same_number_of_each_class():
    labels = np.repeat(np.arange(10), 30)[np.random.default_rng(0).permutation(300)]
    chosen = semi.choose_labelled(labels, 3, seed=1)
    assert len(chosen) == 30 and len(set(chosen.tolist())) == 30
    np.testing.assert_array_equal(np.bincount(labels[chosen]), np.full(10, 3))
    np.testing.assert_array_equal(chosen, semi.choose_labelled(labels, 3, seed=1))  # seeded
    with pytest.raises(ValueError, match="class"):
        semi.choose_labelled(labels, 31, seed=1)


@pytest.mark.parametrize("arch, shape", [("mlp", (1, 28, 28)), ("conv", (3, 8, 8))])
def test_the_classifier_is_gradient_checked(arch, shape):
    """Noise off (eval mode), the discriminator-classifier is an ordinary network: its backward
    pass must agree with finite differences, input and every weight."""
    set_default_dtype(np.float64)
    net = semi.make_classifier(arch, shape, seed=0).eval()
    x = random_array(np.random.default_rng(0), (2, *shape))
    assert semi.make_classifier(arch, shape, seed=0).head.weight.data.shape[0] == 10
    assert check_module(net, x, mode="directional", directions=6) < 1e-6


def test_gaussian_noise_only_in_training_and_passes_gradients_through():
    noise = semi.GaussianNoise(0.5, np.random.default_rng(0))
    x = to_device(np.zeros((200, 50), dtype=np.float32))
    y = noise(x)
    assert y.dtype == np.float32 and abs(float(y.std()) - 0.5) < 0.02
    dy = to_device(np.ones((200, 50), dtype=np.float32))
    assert noise.backward(dy) is dy
    assert noise.eval()(x) is x


def test_same_seed_same_initial_weights():
    """The baseline and the semi-supervised run start from the very same classifier."""
    a, b = (semi.make_classifier("mlp", (1, 28, 28), seed=3) for _ in range(2))
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(to_numpy(pa.data), to_numpy(pb.data), err_msg=name)


def test_tiny_run_on_an_npz_file(tmp_path):
    data = tiny_digits_npz(tmp_path / "bars.npz")
    out = tmp_path / "run"
    result = run_example("semi_supervised.py", "--dataset", data, "--labels-per-class", 2,
                         "--epochs", 2, "--batch-size", 40, "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the first 240 images are the pool, the last 60 are held out" in result.stdout
    assert "20 labelled images (2 per class), 240 unlabelled, 60 held out; mlp" in result.stdout
    assert png_ok(out / "semi_supervised.png") and png_ok(out / "samples.png")
    rows = list(csv.DictReader(open(out / "accuracy.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for row in rows:
        assert 0 <= float(row["acc_semi_supervised"]) <= 1
        assert 0 <= float(row["acc_baseline"]) <= 1
        assert float(row["loss_unlabelled_semi"]) > 0 and float(row["loss_feature_matching"]) > 0
    summary = (out / "summary.txt").read_text()
    assert re.search(r"semi-supervised GAN accuracy\s+\d\.\d{4}\s+\d\.\d{4}", summary)
    assert re.search(r"baseline \(labels only\) accuracy\s+\d\.\d{4}\s+\d\.\d{4}", summary)


@pytest.mark.slow
def test_tiny_run_on_the_mnist_test_files_with_conv_networks(tmp_path):
    data_dir = shared_data("mnist")
    out = tmp_path / "run"
    result = run_example("semi_supervised.py", "--data-dir", data_dir, "--no-download",
                         "--arch", "conv", "--pool", 200, "--test-size", 50, "--epochs", 1,
                         "--batch-size", 50, "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "only MNIST's test files are at hand" in result.stdout
    assert "100 labelled images (10 per class), 200 unlabelled, 50 held out; conv" \
        in result.stdout
    assert png_ok(out / "semi_supervised.png") and png_ok(out / "samples.png")


@pytest.mark.parametrize("args", [
    ["--epochs", "0"],
    ["--labels-per-class", "0"],
    ["--lr", "-1"],
    ["--arch", "resnet"],
    ["--dataset", "{tmp}/no-such-file.npz"],
    ["--dataset", "{npz}", "--labels-per-class", "100"],
], ids=["zero-epochs", "no-labels", "negative-lr", "unknown-arch", "missing-file",
        "too-few-per-class"])
def test_bad_arguments_are_one_line(args, tmp_path, capsys):
    npz = tiny_digits_npz(tmp_path / "bars.npz", n=100)
    args = [a.replace("{tmp}", str(tmp_path)).replace("{npz}", str(npz)) for a in args]
    error_of(semi, [*args, "--out", tmp_path / "run"], capsys)


def test_bad_argument_from_a_shell_is_one_line(tmp_path):
    result = run_example("semi_supervised.py", "--batch-size", "0", "--out", tmp_path / "run")
    assert one_line_error(result), result.stderr
