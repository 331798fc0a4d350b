"""The feature network behind FID and IS: what it outputs, and that a saved copy is the same net.

FID needs a feature vector per image and IS a probability vector per image, both from one fixed
network. "Fixed" is the point: the scores are only comparable when every image -- real or
generated, today or next week -- goes through exactly the same function. So these tests check
that scoring does not depend on how images are batched (batch norm runs on its running
statistics), that the probabilities are a proper softmax even for extreme logits, and that
save/load reproduces the outputs bit for bit.
"""

import subprocess
import sys

import numpy as np
import pytest

from minigan.backend import default_dtype, make_rng, set_default_dtype, to_device, to_numpy
from minigan.checkpoint import save_checkpoint
from minigan.classifier import random_shift, train_classifier
from minigan.data import make_synthetic_digits, scale_images
from minigan.metrics.features import FeatureNet, accuracy, pad_to, to_float_images
from minigan.nn import ShapeError


def some_images(n=12, channels=3, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, channels, size, size), dtype=np.uint8)


def small_net(channels=3, size=32, seed=0):
    net = FeatureNet(channels, width=4, feature_dim=16, image_size=size, rng=make_rng(seed))
    # Non-trivial running statistics, as after training, so eval mode is really exercised.
    for m in net.modules():
        if hasattr(m, "running_var"):
            m.running_mean = m.running_mean + 0.1
            m.running_var = m.running_var * 2.0
    return net


@pytest.mark.parametrize("channels, size", [(3, 32), (1, 32), (1, 28)])
def test_output_shapes(channels, size):
    net = small_net(channels, size)
    images = some_images(10, channels, size)
    features = to_numpy(net.features(images))
    probs = to_numpy(net.probabilities(images))
    assert features.shape == (10, 16) and features.dtype == np.float32
    assert probs.shape == (10, 10)
    assert (features >= 0).all()                       # the features come after a ReLU
    assert (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert net.predict(images).shape == (10,)


def test_uint8_and_float_input_give_the_same_features():
    net, images = small_net(), some_images()
    as_float = to_device(images.astype(np.float32) / 255 * 2 - 1)
    np.testing.assert_array_equal(to_numpy(net.features(images)),
                                  to_numpy(net.features(as_float)))


def test_scores_do_not_depend_on_the_batch_size():
    """Eval mode: batch norm uses running statistics, so each image is scored on its own."""
    net, images = small_net(), some_images(12)
    whole = to_numpy(net.features(images, batch_size=12))
    pieces = to_numpy(net.features(images, batch_size=5))
    np.testing.assert_allclose(pieces, whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(net.features(images[3:4])), whole[3:4],
                               rtol=1e-5, atol=1e-6)


def test_scoring_leaves_the_training_mode_alone():
    net = small_net().train()
    net.features(some_images(4))
    assert net.training and all(m.training for m in net.modules())


def test_probabilities_stay_finite_for_huge_logits():
    """softmax(z) = softmax(z - max z): without the shift exp(1000) would overflow to inf."""
    net = small_net()
    head = net.layers[-1]
    head.bias.data = to_device(np.array([1000.0, 990.0] + [-1000.0] * 8, dtype=np.float32))
    probs = to_numpy(net.probabilities(some_images(4)))
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    assert (probs[:, 0] > 0.99).all()                 # e^10 : 1 in favour of class 0


def test_wrong_input_shape_is_a_clear_error():
    net = small_net(channels=3, size=32)
    with pytest.raises(ShapeError, match="expected input of shape"):
        net.features(some_images(2, channels=1))
    with pytest.raises(ShapeError, match="expected input of shape"):
        net.features(some_images(2, size=28))


def test_save_and_load_reproduce_the_outputs_exactly(tmp_path):
    net, images = small_net(seed=3), some_images(8)
    path = net.save(tmp_path / "features.npz", dataset="synthetic", accuracy=0.75)
    loaded = FeatureNet.load(path)
    assert loaded.config() == net.config()
    assert loaded.fingerprint() == net.fingerprint()
    assert not loaded.training
    np.testing.assert_array_equal(to_numpy(loaded.features(images)),
                                  to_numpy(net.features(images)))
    np.testing.assert_array_equal(to_numpy(loaded.probabilities(images)),
                                  to_numpy(net.probabilities(images)))
    assert FeatureNet.load_info(path) == {"dataset": "synthetic", "accuracy": 0.75}
    with np.load(path, allow_pickle=False) as data:   # arrays and text only, no pickles
        assert "config/json" in data.files and "model/12.weight" in data.files


def test_the_fingerprint_changes_with_any_weight():
    net = small_net()
    before = net.fingerprint()
    net.layers[0].weight.data[0, 0, 0, 0] += 1e-3
    assert net.fingerprint() != before


def test_the_fingerprint_is_the_same_when_the_file_is_loaded_as_float64(tmp_path):
    """Real-data statistics record the fingerprint of the network that made them: loading the
    same file with float64 as the default dtype must not make them look like another
    network's (GANEvaluator would refuse them)."""
    net = small_net()
    path = net.save(tmp_path / "features.npz")
    before = default_dtype()
    set_default_dtype("float64")
    try:
        loaded = FeatureNet.load(path)
    finally:
        set_default_dtype(before)
    assert loaded.parameters()[0].dtype == np.float64 != net.parameters()[0].dtype
    assert loaded.fingerprint() == net.fingerprint()


def test_loading_something_else_is_a_clear_error(tmp_path):
    save_checkpoint(tmp_path / "other.npz", {"G": {"0.weight": np.zeros((2, 2))}})
    with pytest.raises(ValueError, match="not a feature network"):
        FeatureNet.load(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError, match="no feature network"):
        FeatureNet.load(tmp_path / "missing.npz")


def test_pixels_map_to_minus_one_and_one():
    x = to_numpy(to_float_images(np.array([0, 255], dtype=np.uint8)))
    np.testing.assert_array_equal(x, [-1.0, 1.0])


def test_pad_to_centres_mnist_digits_in_32x32():
    images = np.full((2, 1, 28, 28), 7, dtype=np.uint8)
    padded = pad_to(images, 32)
    assert padded.shape == (2, 1, 32, 32)
    assert (padded[:, :, 2:30, 2:30] == 7).all() and padded.sum() == 7 * 2 * 28 * 28
    with pytest.raises(ValueError):
        pad_to(images, 31)


def test_random_shift_moves_each_image_by_at_most_the_shift():
    x = np.zeros((50, 1, 9, 9), dtype=np.float32)
    x[:, :, 4, 4] = 1.0                               # one bright pixel in the middle
    shifted = to_numpy(random_shift(to_device(x), 1, np.random.default_rng(0)))
    assert shifted.shape == x.shape
    rows, cols = np.nonzero(shifted[:, 0].max(axis=2))[1], np.nonzero(shifted[:, 0].max(axis=1))[1]
    assert set(rows) <= {3, 4, 5} and set(cols) <= {3, 4, 5}
    assert len(set(zip(rows, cols))) > 1              # not all moved the same way
    np.testing.assert_array_equal(shifted.sum(axis=(1, 2, 3)), 1.0)   # moved, not lost


def test_training_is_reproducible_and_learns_something():
    images, labels = make_synthetic_digits(256, seed=0, size=16, channels=3)
    kwargs = dict(epochs=10, batch_size=16, seed=0, progress=False, width=8, feature_dim=16,
                  shift=0)
    a = train_classifier(images, labels, **kwargs)
    b = train_classifier(images, labels, **kwargs)
    assert a.fingerprint() == b.fingerprint()         # same seed, same network
    assert not a.training
    assert accuracy(a, images, labels) > 0.6          # chance is 0.1


def test_training_rejects_bad_labels():
    images, labels = make_synthetic_digits(32, seed=0, size=16, channels=3)
    with pytest.raises(ValueError, match="labels"):
        train_classifier(images, labels + 10, epochs=1, batch_size=16, progress=False)
    with pytest.raises(ValueError, match="uint8"):
        train_classifier(images.astype(np.float32), labels, epochs=1, progress=False)


def test_to_float_images_uses_the_loaders_formula():
    # metrics may not import the data package, so the formula is written out twice: same numbers.
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    np.testing.assert_array_equal(to_numpy(to_float_images(to_device(pixels))),
                                  to_numpy(scale_images(to_device(pixels))))


def test_metrics_import_neither_the_optimizer_nor_the_data_package():
    # DESIGN.md: scoring needs a trained network, not the means of training one.
    code = ("import sys, minigan.metrics; "
            "print(sorted(m for m in sys.modules if m in ('minigan.optim', 'minigan.data')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
