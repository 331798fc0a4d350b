"""Domain-specific FID and IS on real MNIST digits, with a feature network minigan trains itself.

The idea: a classifier that has learnt to tell digits apart has, in its last hidden layer, a
description of "what a digit looks like". FID compares two image sets through that description:
two random halves of the MNIST test set look alike to it (small FID), while uniform noise or
photos of objects (CIFAR-10, turned grey and framed like MNIST digits) do not (FIDs many times
larger). IS reads the classifier's confidence: real digits get confident, varied labels (an IS
close to the number of classes, 10), noise does not.

The classifier is trained once for the whole module, on 8000 of the 10,000 test digits (the
files the test data holds), and checked on the other 2000. Everything is padded to 32x32, the
size a DCGAN generates. Training it takes minutes on two CPU cores, so the module is marked
``slow``: ``python -m pytest -m "not slow"`` skips it.
"""

import numpy as np
import pytest

from minigan.backend import to_numpy
from minigan.classifier import train_classifier
from minigan.data import load_mnist
from minigan.metrics.features import accuracy, pad_to
from minigan.metrics.frechet import frechet_distance
from minigan.metrics.inception_score import inception_score
from minigan.metrics.statistics import feature_statistics
from tests.helpers import shared_data

pytestmark = pytest.mark.slow   # the module fixture trains a classifier for minutes


@pytest.fixture(scope="module")
def mnist():
    shared_data("mnist", "t10k-labels-idx1-ubyte.gz")
    folder = shared_data("mnist", "t10k-images-idx3-ubyte.gz").parent
    images, labels = load_mnist("test", data_dir=folder, download=False)
    images = pad_to(images, 32)                                    # (10000, 1, 32, 32)
    order = np.random.default_rng(0).permutation(len(images))
    train, held = order[:8000], order[8000:]
    net = train_classifier(images[train], labels[train], epochs=8, batch_size=64, lr=2e-3,
                           seed=0, progress=False)
    return {"net": net, "images": images, "labels": labels, "order": order, "held": held}


def stats(net, images):
    return feature_statistics(net.features(images))


def cifar_as_mnist(n):
    """CIFAR-10 photos made to look like MNIST's format: grey, 28x28 centre, black frame."""
    rgb = np.load(shared_data("cifar10-sample", "cifar10_sample.npz"))["images"][:n]
    grey = rgb.astype(np.float64).transpose(0, 2, 3, 1) @ [0.299, 0.587, 0.114]   # ITU-R 601
    grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)[:, None, 2:30, 2:30]
    return pad_to(grey, 32)


def test_the_classifier_reads_held_out_digits(mnist):
    held = mnist["held"]
    assert accuracy(mnist["net"], mnist["images"][held], mnist["labels"][held]) > 0.98


def test_fid_is_small_between_real_halves_and_large_against_other_images(mnist):
    net, images, order = mnist["net"], mnist["images"], mnist["order"]
    half_a, half_b = images[order[:5000]], images[order[5000:]]
    mu_a, sigma_a = stats(net, half_a)
    mu_b, sigma_b = stats(net, half_b)
    noise = np.random.default_rng(1).integers(0, 256, (5000, 1, 32, 32), dtype=np.uint8)
    mu_n, sigma_n = stats(net, noise)
    mu_c, sigma_c = stats(net, cifar_as_mnist(5000))

    fid_halves = frechet_distance(mu_a, sigma_a, mu_b, sigma_b)
    fid_noise = frechet_distance(mu_a, sigma_a, mu_n, sigma_n)
    fid_cifar = frechet_distance(mu_a, sigma_a, mu_c, sigma_c)
    assert abs(frechet_distance(mu_a, sigma_a, mu_a, sigma_a)) < 1e-6 * fid_noise
    assert 0 < fid_halves < fid_noise / 10
    assert fid_halves < fid_cifar / 10


def test_inception_score_of_real_digits_is_near_the_number_of_classes(mnist):
    net, images = mnist["net"], mnist["images"]
    real_is, _ = inception_score(to_numpy(net.probabilities(images[mnist["held"]])))
    noise = np.random.default_rng(2).integers(0, 256, (2000, 1, 32, 32), dtype=np.uint8)
    noise_is, _ = inception_score(to_numpy(net.probabilities(noise)))
    assert real_is > 8.5          # confident (p(y|x) peaked) and balanced (p(y) flat)
    assert noise_is < real_is / 2
