"""Mistakes a learner will make, and the messages they get.

A wrong input shape should fail at the layer, with the layer's name and the expected versus the
actual shape, rather than as an IndexError or a broadcasting error from deep inside a kernel.
"""

import numpy as np
import pytest

from minigan import nn
from minigan.backend import to_device


def batch(*shape, dtype=np.float32):
    return to_device(np.zeros(shape, dtype=dtype))


def test_conv2d_given_the_wrong_number_of_channels():
    with pytest.raises(nn.ShapeError) as error:
        nn.Conv2d(3, 32, 4)(batch(16, 1, 32, 32))
    message = str(error.value)
    assert "Conv2d(3, 32, kernel_size=4" in message
    assert "(N, 3, H, W)" in message and "(16, 1, 32, 32)" in message


def test_conv2d_given_a_3d_array():
    with pytest.raises(nn.ShapeError, match=r"expected input of shape \(N, 3, H, W\), "
                                            r"got \(3, 32, 32\)"):
        nn.Conv2d(3, 32, 4)(batch(3, 32, 32))


def test_conv2d_input_smaller_than_kernel():
    with pytest.raises(nn.ShapeError, match="smaller than the kernel"):
        nn.Conv2d(1, 1, 5)(batch(1, 1, 3, 3))


def test_conv2d_input_narrower_than_a_rectangular_kernel():
    """A 1 x 7 kernel fits a 3-row image, but not its 5 columns (even with padding (0, 0))."""
    with pytest.raises(nn.ShapeError, match=r"smaller than the kernel \(\(1, 7\)\)"):
        nn.Conv2d(1, 1, (1, 7))(batch(1, 1, 3, 5))
    assert nn.Conv2d(1, 1, (1, 7), padding=(0, 1))(batch(1, 1, 3, 5)).shape == (1, 1, 3, 1)


def test_linear_given_an_image_batch():
    with pytest.raises(nn.ShapeError, match=r"Linear\(in_features=2048.*got \(8, 128, 4, 4\)"):
        nn.Linear(2048, 1)(batch(8, 128, 4, 4))


def test_batchnorm_channel_mismatch_and_wrong_rank():
    with pytest.raises(nn.ShapeError, match=r"BatchNorm2d\(64.*\(N, 64, H, W\).*\(8, 32, 4, 4\)"):
        nn.BatchNorm2d(64)(batch(8, 32, 4, 4))
    with pytest.raises(nn.ShapeError, match=r"\(N, 10\)"):
        nn.BatchNorm1d(10)(batch(8, 10, 1, 1))


def test_batchnorm_training_on_a_single_value_per_channel():
    with pytest.raises(ValueError, match="more than one value per channel"):
        nn.BatchNorm1d(4)(batch(1, 4))


def test_dtype_mismatch_is_named():
    with pytest.raises(nn.ShapeError, match="dtype float32.*got float64"):
        nn.Linear(3, 2)(batch(4, 3, dtype=np.float64))


def test_a_list_instead_of_an_array():
    with pytest.raises(nn.ShapeError, match="expected an array"):
        nn.Linear(3, 2)([[1.0, 2.0, 3.0]])


def test_loss_target_shape_mismatch():
    with pytest.raises(ValueError, match=r"target shape \(4,\) does not match logits shape"):
        nn.BCEWithLogitsLoss()(batch(4, 1), batch(4))


def test_output_padding_must_be_smaller_than_stride():
    with pytest.raises(ValueError, match="output_padding"):
        nn.ConvTranspose2d(3, 3, 4, stride=1, output_padding=1)


def test_reshape_given_the_wrong_number_of_values():
    """The generator's Reshape after a Linear with the wrong out_features."""
    with pytest.raises(nn.ShapeError, match=r"Reshape\(128, 4, 4\): expected input of shape "
                                            r"\(N, 2048\).*got \(2, 100\)"):
        nn.Reshape(128, 4, 4)(batch(2, 100))


@pytest.mark.parametrize("layer, x", [
    (nn.Conv2d(3, 8, 4, stride=2, padding=1), batch(2, 3, 8, 8)),
    (nn.BatchNorm2d(3), batch(2, 3, 4, 4)),
    (nn.LeakyReLU(0.2), batch(2, 3, 4, 4)),
    (nn.Linear(6, 2), batch(2, 6)),
])
def test_backward_given_a_gradient_of_the_wrong_shape(layer, x):
    """dy must be shaped like the forward output; the error names the layer and both shapes."""
    y = layer(x)
    wrong = batch(*y.shape[:-1], y.shape[-1] + 1)
    with pytest.raises(nn.ShapeError) as error:
        layer.backward(wrong)
    message = str(error.value)
    assert repr(layer).split("(")[0] + "(" in message
    assert f"gradient has shape {tuple(wrong.shape)}" in message
    assert f"output of the last forward pass had shape {tuple(y.shape)}" in message


def test_backward_of_a_sequential_names_the_inner_layer():
    net = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    net(batch(3, 6))
    with pytest.raises(nn.ShapeError, match=r"Linear\(in_features=4, out_features=2.*\(3, 5\)"):
        net.backward(batch(3, 5))
