"""The fast conv2d forward: im2col's copy and the product, a chunk of images at a time.

``conv2d_forward_fast`` (``minigan/ops/conv2d.py``) writes the windows of a chunk of images into
its slice of ``cols`` and multiplies that slice at once, so that the product reads the windows
from the core's own cache. The tests show:

* with chunks of one image, of several, and uneven ones (the last chunk smaller), y and the
  cached cols are the plain kernel's, for every geometry drawn;
* the DCGAN's second convolution on 64 images (8 MiB of windows) makes 8 chunks of 1 MiB;
* counted as a GPU runs it (``minigan.opcount``), one chunk: the plain kernel's operations.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigan.ops.conv2d
from minigan.backend import array_module, is_cupy_array, to_numpy
from minigan.opcount import count_array_ops
from minigan.ops import fast_kernels
from minigan.ops.conv2d import conv2d_forward
from tests.helpers import conv_geometries, random_array


def plain_and_fast(x, w, b, stride, padding):
    with fast_kernels(False):
        plain = conv2d_forward(x, w, b, stride, padding)
    with fast_kernels(True):
        fast = conv2d_forward(x, w, b, stride, padding)
    return plain, fast


@given(conv_geometries(rectangular=True), st.booleans(), st.integers(1, 3))
def test_chunks_give_the_plain_kernels_y_and_cols(geometry, bias, images_per_chunk):
    rng = np.random.default_rng(geometry["seed"])
    N = geometry["x"][0] + 2                    # at least 3 images: uneven chunks of 2
    x = random_array(rng, (N, *geometry["x"][1:]))
    w = random_array(rng, geometry["w"])
    b = random_array(rng, geometry["w"][:1]) if bias else None
    (_, plain_cache), _ = plain_and_fast(x, w, b, geometry["stride"], geometry["padding"])
    per_image = plain_cache.cols.nbytes // N    # the windows of one image
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(minigan.ops.conv2d, "CHUNK_BYTES", per_image * images_per_chunk)
        (y_plain, plain_cache), (y, cache) = plain_and_fast(x, w, b, geometry["stride"],
                                                            geometry["padding"])
    np.testing.assert_allclose(to_numpy(y), to_numpy(y_plain), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(to_numpy(cache.cols), to_numpy(plain_cache.cols))
    assert y.transpose(0, 2, 3, 1).flags.c_contiguous          # channels-last, as the plain one's
    fields = ("x_shape", "stride", "padding", "has_bias")
    assert [getattr(cache, f) for f in fields] == [getattr(plain_cache, f) for f in fields]
    assert cache.w is w


def dcgan_second_convolution(dtype=np.float32):
    """D's conv 32 -> 64 of the course DCGAN, on 64 images of 16 x 16 (a split step's half)."""
    rng = np.random.default_rng(0)
    return random_array(rng, (64, 32, 16, 16), dtype=dtype), random_array(rng, (64, 32, 4, 4),
                                                                          dtype=dtype)


def test_the_dcgan_convolution_makes_chunks_of_one_mib(monkeypatch):
    x, w = dcgan_second_convolution()
    if is_cupy_array(x):
        pytest.skip("a GPU takes one chunk")
    products = []
    xp = array_module()
    original = xp.matmul
    monkeypatch.setattr(xp, "matmul",
                        lambda *a, **k: products.append(a[0].shape) or original(*a, **k))
    with fast_kernels(True):
        y, cache = conv2d_forward(x, w, None, 2, 1)
    assert cache.cols.nbytes == 8 * 2**20              # 64 * 8 * 8 windows of 4 * 4 * 32 floats
    assert products == [(512, 512)] * 8                 # 8 images (1 MiB of windows) a chunk
    with fast_kernels(False):
        y_plain, _ = conv2d_forward(x, w, None, 2, 1)
    np.testing.assert_allclose(to_numpy(y), to_numpy(y_plain), rtol=1e-5, atol=1e-5)


def test_counted_as_a_gpu_runs_it_one_chunk():
    x, w = dcgan_second_convolution()
    if is_cupy_array(x):
        pytest.skip("counts operations on the NumPy backend")
    with count_array_ops() as counter, fast_kernels(True):
        x_c, w_c = (array_module().asarray(a) for a in (x, w))
        conv2d_forward(x_c, w_c, None, 2, 1)        # makes the zero-bordered buffer
        counter.reset()
        conv2d_forward(x_c, w_c, None, 2, 1)
    # the padded copy, the window copy, the weight matrix (w is not stored as one) and the product
    assert counter.by_name == {"setitem": 2, "ascontiguousarray": 1, "matmul": 1}
