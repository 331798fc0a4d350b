"""Inception-v3 keeps its convolution weights in the layout of their weight matrices.

``store_conv_weights_as_matrices`` (called by ``pool3``) lays each Conv2d weight (F, C, KH, KW)
out in memory as (KH, KW, C, F): the values and shapes stay, the kernels' ``weight_matrix`` is
then a view instead of a copy of every weight in every pass, and the outputs are the same.
"""

import numpy as np

from minigan import nn
from minigan.backend import to_device, to_numpy
from minigan.metrics.inception import FIDInceptionV3, store_conv_weights_as_matrices
from minigan.ops.conv2d import weight_matrix


def test_weights_keep_their_values_and_outputs_and_become_matrix_views():
    rng = np.random.default_rng(0)
    net = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1, bias=False), nn.ReLU(),
                        nn.Conv2d(5, 4, (1, 3), padding=(0, 1))).to(dtype="float64")
    x = to_device(rng.standard_normal((2, 3, 6, 6)))
    before = [to_numpy(p.data).copy() for p in net.parameters()]
    y_before = to_numpy(net(x)).copy()
    store_conv_weights_as_matrices(net)
    for p, value in zip(net.parameters(), before):
        np.testing.assert_array_equal(to_numpy(p.data), value)
        assert p.data.shape == value.shape
    for conv in (net.layers[0], net.layers[2]):
        w = conv.weight.data
        assert w.transpose(2, 3, 1, 0).flags.c_contiguous and not w.flags.c_contiguous
        assert np.shares_memory(weight_matrix(w), w)
    np.testing.assert_array_equal(to_numpy(net(x)), y_before)
    data = [p.data for p in net.parameters()]
    store_conv_weights_as_matrices(net)               # already laid out: left alone
    assert all(p.data is d for p, d in zip(net.parameters(), data))


def test_pool3_lays_the_weights_out():
    net = FIDInceptionV3(resize_input=False)
    assert net.Mixed_7c.branch1x1.conv.weight.data.flags.c_contiguous
    net.pool3(to_device(np.zeros((1, 3, 75, 75), dtype=np.float32)), keep_caches=False)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            assert m.weight.data.transpose(2, 3, 1, 0).flags.c_contiguous
