"""A wrong answer never passes: a learner's file cannot rebind minigan's answers, and a
kernel that changes its inputs in place fails with that said (minigan/exercises/guards.py)."""

from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

import minigan.gan.step
from minigan.backend import to_device
from minigan.exercises import check_folder, find, init_folder
from minigan.exercises.checks import KernelCheckFailed
from minigan.exercises.guards import minigan_read_only, untouched_inputs


@pytest.fixture
def folder(tmp_path) -> Path:
    init_folder(tmp_path / "kernels")
    return tmp_path / "kernels"


def grade(folder: Path, name: str):
    result, = check_folder(folder, max_examples=3, seconds=20, exercises=[find(name)])
    return result


def test_a_file_that_rebinds_minigans_model_is_not_compared_with_itself(folder):
    # A D without batch norm, made "minigan's" by the last line: without the guard, the check
    # built its reference from this class and passed it.
    (folder / "models.py").write_text(
        "from minigan.gan import dcgan\n"
        "from minigan.nn import Conv2d, Flatten, LeakyReLU, Linear, Sequential\n\n\n"
        "def Discriminator(conv_dim=32, image_size=32, channels=3, dropout=0.0):\n"
        "    layers, size, c = [], image_size, channels\n"
        "    while size > 4:\n"
        "        d = conv_dim if c == channels else 2 * c\n"
        "        layers += [Conv2d(c, d, 4, stride=2, padding=1), LeakyReLU(0.2)]\n"
        "        c, size = d, size // 2\n"
        "    return Sequential(*layers, Flatten(), Linear(c * 16, 1))\n\n\n"
        "dcgan.Discriminator = Discriminator\n")
    result = grade(folder, "discriminator")
    assert result.status == "failed"
    assert "minigan.gan.dcgan.Discriminator cannot be changed by a kernel file" \
        in result.sentence


# Right values written into x: before the guard the expected value was computed from the
# changed x, and a right answer got a wrong "should be". A metric that makes its inputs agree
# passed.
IN_PLACE = {
    "leaky_relu": ("activations.py",
                   "def leaky_relu_forward(x, negative_slope=0.01):  # noqa: F811\n"
                   "    slope = (x > 0) + negative_slope * (x <= 0)\n"
                   "    x *= slope\n"
                   "    return x, LeakyReluCache(slope)\n",
                   "leaky_relu_forward changed its argument x in place"),
    "frechet_distance": ("metrics.py",
                         "def frechet_distance(mu1, sigma1, mu2, sigma2):  # noqa: F811\n"
                         "    mu2[...] = mu1\n"
                         "    sigma2[...] = sigma1\n"
                         "    return 0.0\n",
                         "frechet_distance changed its argument mu2 in place"),
}


@pytest.mark.parametrize("name", sorted(IN_PLACE))
def test_a_kernel_that_changes_its_input_fails_saying_so(folder, name):
    file, code, sentence = IN_PLACE[name]
    with open(folder / file, "a") as f:
        f.write("\n\n" + code)
    result = grade(folder, name)
    assert result.status == "failed" and result.sentence.startswith(sentence), result.sentence


def test_untouched_inputs_names_the_array_that_changed_even_inside_a_cache():
    Cache = namedtuple("Cache", ["x_hat", "scale"])
    x = to_device(np.array([1.0, np.nan, 3.0]))
    cache = Cache(to_device(np.ones(3)), 2.0)

    def reads(dy, cache):
        return dy * cache.x_hat

    def writes_the_cache(dy, cache):
        cache.x_hat[0] = 5.0
        return dy

    assert np.isnan(untouched_inputs("reads", reads)(x, cache)[1])   # NaN kept is unchanged
    with pytest.raises(KernelCheckFailed, match="writes_the_cache changed its argument "
                                                "cache.x_hat in place"):
        untouched_inputs("writes_the_cache", writes_the_cache)(x, cache)
    with pytest.raises(KernelCheckFailed, match=r"changed its argument pair\[1\] in place"):
        untouched_inputs("f", lambda pair: pair[1].fill(0))((x, to_device(np.ones(2))))


def test_minigan_is_read_only_only_inside_the_block():
    original = minigan.gan.step.d_step
    with minigan_read_only():
        with pytest.raises(AttributeError, match="cannot be changed by a kernel file"):
            minigan.gan.step.d_step = len
        minigan.gan.step.a_new_name = 1           # new names (and submodules) stay allowed
    assert minigan.gan.step.d_step is original
    del minigan.gan.step.a_new_name
    minigan.gan.step.d_step = len                 # outside the block: an ordinary module
    minigan.gan.step.d_step = original
