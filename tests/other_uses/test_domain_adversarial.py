"""examples/domain_adversarial.py: a label classifier and a domain classifier that fight over
the features, through a gradient-reversal layer.

The pieces: lambda's schedule rises from 0 to about 1; the three networks start from the same
weights with and without the domain classifier; one training step sends the *reversed* domain
gradient into the feature extractor (checked against a step computed by hand); and the script
runs end to end for a few steps on tiny data and writes its plots and numbers.
"""

from __future__ import annotations

import csv
import math
import re

import numpy as np
import pytest

from minigan.backend import to_device, to_numpy
from minigan.nn import BCEWithLogitsLoss
from tests.helpers import shared_data
from tests.other_uses import error_of, load_example, one_line_error, png_ok, run_example

dann = load_example("domain_adversarial")


def test_lambda_schedule_rises_from_zero_to_about_one():
    values = [dann.dann_schedule(p / 10) for p in range(11)]
    assert values[0] == 0.0
    assert values[-1] == pytest.approx(2 / (1 + math.exp(-10)) - 1) and values[-1] > 0.999
    assert all(a < b for a, b in zip(values, values[1:]))
    assert dann.dann_schedule(0.5, max_lambda=0.3) == pytest.approx(0.3 * values[5])


def test_to_grey_32_pads_and_converts():
    mnist_like = np.full((2, 1, 28, 28), 200, np.uint8)
    grey = dann.to_grey_32(mnist_like)
    assert grey.shape == (2, 1, 32, 32) and grey[:, :, 2:30, 2:30].min() == 200
    assert grey[:, :, :2].max() == 0
    colour = np.zeros((1, 3, 32, 32), np.uint8)
    colour[:, 1] = 100   # pure green 100 has luminance 58.7
    assert dann.to_grey_32(colour).shape == (1, 1, 32, 32)
    assert int(dann.to_grey_32(colour)[0, 0, 0, 0]) == 59


def test_the_domain_gradient_reaches_the_features_reversed():
    """Through F -> GradientReversal(lambda) -> D, the feature extractor's weight gradient from
    the domain loss is -lambda times what it would be with an ordinary connection, while the
    domain classifier's own gradient is the ordinary one."""
    nets = dann.make_networks(seed=0)
    F, D = nets["F"], nets["D"]
    x = to_device(np.random.default_rng(0).uniform(-1, 1, (4, 1, 32, 32)), np.float32)
    target = to_device(np.array([[0.0], [0.0], [1.0], [1.0]]), np.float32)
    bce = BCEWithLogitsLoss()

    def grads(reverse: bool):
        F.zero_grad()
        D.zero_grad()
        D[0].scale = 0.6
        # D's layers are GradientReversal, Linear, ReLU, Linear; without the first, the
        # features feed the domain head through an ordinary connection.
        layers = D.layers if reverse else D.layers[1:]
        y = F(x)
        for layer in layers:
            y = layer(y)
        bce(y, target)
        dy = bce.backward()
        for layer in reversed(layers):
            dy = layer.backward(dy)
        F.backward_params(dy)
        return to_numpy(F[0].weight.grad).copy(), to_numpy(D[1].weight.grad).copy()

    plain_f, plain_d = grads(reverse=False)
    reversed_f, reversed_d = grads(reverse=True)
    np.testing.assert_allclose(reversed_d, plain_d, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(reversed_f, -0.6 * plain_f, rtol=1e-4, atol=1e-8)
    assert np.abs(plain_f).max() > 0


def test_same_seed_same_initial_weights():
    a, b = dann.make_networks(seed=5), dann.make_networks(seed=5)
    for key in ("F", "C", "D"):
        for (name, pa), (_, pb) in zip(a[key].named_parameters(), b[key].named_parameters()):
            np.testing.assert_array_equal(to_numpy(pa.data), to_numpy(pb.data),
                                          err_msg=f"{key}.{name}")


def test_tiny_run_mnist_to_synthetic(tmp_path):
    data_dir = shared_data("mnist")
    out = tmp_path / "run"
    result = run_example("domain_adversarial.py", "--data-dir", data_dir, "--no-download",
                         "--epochs", 2, "--limit", 64, "--batch-size", 32, "--test-size", 40,
                         "--max-lambda", 0.5, "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    text = result.stdout
    assert "only MNIST's test files" in text and "synthetic house numbers drawn in grey" in text
    for name in ("domain_adversarial.png", "features.png"):
        assert png_ok(out / name), name
    rows = list(csv.DictReader(open(out / "accuracy.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for row in rows:
        for key in ("target_source_only", "target_with_domain_classifier", "source_source_only",
                    "source_with_domain_classifier", "domain_classifier_train_accuracy"):
            assert 0 <= float(row[key]) <= 1, key
    # lambda follows the schedule up to 0.5: the last steps of each epoch are steps 1 and 3 of
    # 0..3 (two batches of 32 an epoch)
    assert float(rows[0]["lambda"]) == pytest.approx(dann.dann_schedule(1 / 4, 0.5), abs=1e-4)
    assert float(rows[1]["lambda"]) == pytest.approx(dann.dann_schedule(3 / 4, 0.5), abs=1e-4)
    summary = (out / "summary.txt").read_text()
    for name in ("source only", "with domain classifier"):
        assert re.search(rf"{name}\s+\d\.\d{{4}}\s+\d\.\d{{4}}", summary), name


@pytest.mark.parametrize("args", [
    ["--source", "synthetic", "--target", "synthetic"],
    ["--epochs", "0"],
    ["--max-lambda", "-1"],
    ["--target", "cifar10"],
    ["--source", "mnist", "--data-dir", "{tmp}/nothing", "--no-download"],
], ids=["same-domain", "zero-epochs", "negative-lambda", "not-a-digit-domain", "missing-data"])
def test_bad_arguments_are_one_line(args, tmp_path, capsys):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    error_of(dann, [*args, "--limit", "40", "--test-size", "10", "--out", tmp_path / "run"],
             capsys)


def test_bad_argument_from_a_shell_is_one_line(tmp_path):
    result = run_example("domain_adversarial.py", "--lr", "0", "--out", tmp_path / "run")
    assert one_line_error(result), result.stderr
