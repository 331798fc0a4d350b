"""examples/adversarial.py: the fast gradient sign method, x + epsilon * sign(dL/dx).

The input gradient it uses is the one every backward pass already ends with, so it is first
checked against finite differences. Then the attack itself: at epsilon 0 it changes nothing;
no pixel moves by more than epsilon (of the pixel range) or leaves the range; a small step in
the sign direction raises the loss; and on a trained classifier a larger epsilon lowers the
accuracy. Last, the script runs end to end on a tiny file and writes its plots and numbers.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from minigan.backend import set_default_dtype, to_device, to_numpy
from minigan.classifier import train_classifier
from minigan.data import scale_images
from minigan.gradcheck import gradcheck
from minigan.metrics.features import FeatureNet
from minigan.nn import CrossEntropyLoss
from tests.helpers import random_array
from tests.other_uses import (
    error_of,
    load_example,
    one_line_error,
    png_ok,
    run_example,
    tiny_digits_npz,
)

adversarial = load_example("adversarial")


def small_net(seed: int = 0) -> FeatureNet:
    return FeatureNet(1, width=4, feature_dim=16, image_size=8,
                      rng=np.random.default_rng(seed)).eval()


def test_input_gradient_matches_finite_differences():
    set_default_dtype(np.float64)
    net = small_net()
    x = random_array(np.random.default_rng(1), (3, 1, 8, 8))
    labels = to_device(np.array([0, 3, 9]))
    criterion = CrossEntropyLoss()

    def loss():
        return np.asarray(criterion(net(x), labels))

    def backward(dloss):
        _, dx = adversarial.input_gradient(net, x, labels)
        return [dx * float(dloss)]

    assert gradcheck(loss, backward, [x], mode="elementwise") < 1e-6


def test_epsilon_zero_changes_nothing():
    net = small_net()
    x = to_device(np.random.default_rng(2).uniform(-1, 1, (4, 1, 8, 8)).astype(np.float32))
    labels = to_device(np.array([1, 2, 3, 4]))
    x_adv = adversarial.fgsm(net, x, labels, 0.0)
    assert x_adv.dtype == x.dtype
    np.testing.assert_array_equal(to_numpy(x_adv), to_numpy(x))


@pytest.mark.parametrize("epsilon", [0.01, 0.1, 0.25])
def test_each_pixel_moves_by_epsilon_at_most_and_stays_in_range(epsilon):
    net = small_net()
    x = to_device(np.random.default_rng(3).uniform(-1, 1, (4, 1, 8, 8)).astype(np.float32))
    labels = to_device(np.array([5, 6, 7, 8]))
    x_adv = to_numpy(adversarial.fgsm(net, x, labels, epsilon))
    change = np.abs(x_adv - to_numpy(x))
    # On the [-1, 1] scale a pixel range fraction epsilon is 2 * epsilon.
    assert change.max() <= 2 * epsilon + 1e-6
    assert x_adv.min() >= -1 and x_adv.max() <= 1
    # Pixels that no clipping can touch, and where the gradient is not exactly 0 (sign(0) = 0:
    # a pixel the loss does not depend on, behind a dead ReLU, is left alone), move by exactly
    # that much, in the direction of the gradient.
    _, grad = adversarial.input_gradient(net, x, labels)
    grad = to_numpy(grad)
    free = (np.abs(to_numpy(x)) < 1 - 2 * epsilon) & (grad != 0)
    assert free.any()
    np.testing.assert_allclose((x_adv - to_numpy(x))[free], 2 * epsilon * np.sign(grad[free]),
                               rtol=1e-5)


def test_a_small_step_along_the_sign_raises_the_loss():
    """First order: L(x + e sign(g)) - L(x) ~ e * sum|g| > 0 (a random network will do)."""
    set_default_dtype(np.float64)
    net = small_net(seed=4)
    # Images inside the pixel range, so that the step is not clipped.
    x = to_device(np.random.default_rng(4).uniform(-0.9, 0.9, (6, 1, 8, 8)))
    labels = to_device(np.arange(6))
    criterion = CrossEntropyLoss()
    before = criterion(net(x), labels)
    after = criterion(net(adversarial.fgsm(net, x, labels, 1e-3)), labels)
    _, grad = adversarial.input_gradient(net, x, labels)
    predicted = 2e-3 * float(np.abs(to_numpy(grad)).sum())
    assert after > before
    assert after - before == pytest.approx(predicted, rel=0.05)


def bars(n: int, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Grey (n, 1, size, size) uint8 images: class k is a bright bar at row k + 3 over noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 80, size=(n, 1, size, size)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 0, k + 3, 2:size - 2] = 255
    return images, labels


def test_larger_epsilon_lowers_the_accuracy_of_a_trained_classifier():
    images, labels = bars(400)
    net = train_classifier(images[:300], labels[:300], epochs=3, batch_size=20, seed=0,
                           progress=False, width=8, feature_dim=32, shift=0)
    net.requires_grad_(False)
    test_x, test_y = images[300:], labels[300:]
    accuracy = [adversarial.accuracy_under_attack(net, test_x, test_y, eps)
                for eps in (0.0, 0.05, 0.3)]
    assert accuracy[0] >= 0.9                      # the classifier did learn the bars
    assert accuracy[2] < accuracy[0] - 0.3         # and a large epsilon breaks it
    assert accuracy[2] <= accuracy[1] <= accuracy[0]


def test_accuracy_under_attack_at_epsilon_zero_is_the_plain_accuracy():
    images, labels = bars(60, seed=1)
    net = FeatureNet(1, width=4, feature_dim=16, image_size=16,
                     rng=np.random.default_rng(0)).eval()
    predicted = to_numpy(net(scale_images(to_device(images))).argmax(axis=1))
    assert adversarial.accuracy_under_attack(net, images, labels, 0.0) == \
        float((predicted == labels).mean())


def test_tiny_run_on_an_npz_file(tmp_path, capsys):
    data = tiny_digits_npz(tmp_path / "bars.npz", n=200)
    out = tmp_path / "run"
    result = run_example("adversarial.py", "--dataset", data, "--epochs", 1, "--attack-size", 30,
                         "--epsilons", 0, 0.1, 0.3, "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the classifier trains on the first 160 images, the rest are attacked" \
        in result.stdout
    for name in ("fgsm_accuracy.png", "fgsm_examples.png"):
        assert png_ok(out / name), name
    rows = list(csv.DictReader(open(out / "accuracy.csv")))
    assert [r["epsilon"] for r in rows] == ["0", "0.1", "0.3"]
    assert all(0 <= float(r["accuracy"]) <= 1 for r in rows)
    assert (out / "classifier.npz").is_file() and (out / "summary.txt").is_file()
    assert f"the classifier: {out / 'classifier.npz'}" in result.stdout   # every file listed
    assert str(out / "accuracy.csv") in result.stdout

    # The saved classifier can be attacked again without training (--classifier).
    # (In this process, to save starting another Python.)
    assert adversarial.main(["--dataset", str(data), "--classifier", str(out / "classifier.npz"),
                             "--attack-size", "30", "--epsilons", "0", "0.1", "0.3",
                             "--out", str(tmp_path / "again")]) == 0
    assert list(csv.DictReader(open(tmp_path / "again" / "accuracy.csv"))) == rows
    assert "warning" not in capsys.readouterr().err    # it never saw the attacked images

    # A network of train_classifier.py trained on 90% of the same file: said.
    net = FeatureNet.load(out / "classifier.npz")
    net.save(tmp_path / "features.npz", dataset=str(data), split="train", held_out=20)
    assert adversarial.main(["--dataset", str(data), "--classifier",
                             str(tmp_path / "features.npz"), "--attack-size", "30",
                             "--epsilons", "0", "--out", str(tmp_path / "seen")]) == 0
    assert "which this script attacks too: it has seen most of them" in \
        capsys.readouterr().err


@pytest.mark.parametrize("args", [
    ["--epsilons", "-0.1"],
    ["--epsilons", "2"],
    ["--show-epsilon", "7"],
    ["--epochs", "0"],
    ["--classifier", "{tmp}/missing.npz"],
    ["--dataset", "{tmp}/missing.npz"],
], ids=["negative-epsilon", "epsilon-above-1", "shown-epsilon-above-1", "zero-epochs",
        "missing-classifier", "missing-data"])
def test_bad_arguments_are_one_line(args, tmp_path, capsys):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--dataset" not in args:
        args += ["--dataset", str(tiny_digits_npz(tmp_path / "bars.npz", n=100))]
    error_of(adversarial, [*args, "--out", tmp_path / "run"], capsys)


def test_bad_argument_from_a_shell_is_one_line(tmp_path):
    result = run_example("adversarial.py", "--attack-size", "0", "--out", tmp_path / "run")
    assert one_line_error(result), result.stderr
