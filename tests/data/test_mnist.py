"""MNIST's IDX format: a four-byte magic number, the sizes, then raw big-endian elements.

We write IDX files by hand (with ``struct``), read them back, and check that a damaged header or
a truncated file is refused. When the real MNIST test files are available beside the repository
we also load them and check what every MNIST user knows: 10,000 digits of 28x28, labels 0..9.
"""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from minigan.data import mnist
from minigan.data.download import DataError, md5_of
from tests.helpers import shared_data


def _idx(array: np.ndarray, code: int) -> bytes:
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                    *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def test_read_idx_round_trip_gzip_and_plain(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.idx").write_bytes(_idx(a, 0x08))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(_idx(a, 0x08)))
    np.testing.assert_array_equal(mnist.read_idx(tmp_path / "a.idx"), a)
    np.testing.assert_array_equal(mnist.read_idx(tmp_path / "a.idx.gz"), a)


def test_read_idx_big_endian_types_come_back_native(tmp_path):
    a = np.array([[1, -2, 300000]], dtype=np.int32)
    (tmp_path / "a.idx").write_bytes(_idx(a, 0x0C))
    got = mnist.read_idx(tmp_path / "a.idx")
    assert got.dtype == np.int32 and got.dtype.isnative and got.tolist() == a.tolist()


@pytest.mark.parametrize("data, message", [
    (b"\x08\x03\x00\x00" + b"\0" * 20, "bad magic"),
    (b"\0\0\x42\x01" + b"\0" * 8, "bad magic"),  # unknown element type
    (b"\0\0\x08\x03\0\0\0\x02", "truncated inside its header"),
    (_idx(np.zeros((2, 4, 4), np.uint8), 0x08)[:-3], "truncated"),
    (b"\x1f\x8b\x08\0garbage", "cannot read"),  # a gzip header and no gzip stream
], ids=["magic", "type", "header", "data", "gzip"])
def test_read_idx_rejects_damaged_files(tmp_path, data, message):
    (tmp_path / "bad.idx").write_bytes(data)
    with pytest.raises(DataError, match=message) as info:
        mnist.read_idx(tmp_path / "bad.idx")
    assert "\n" not in str(info.value)


def test_load_mnist_from_files_written_here(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 7, dtype=np.uint8)
    for name, array in [("t10k-images-idx3-ubyte.gz", images), ("t10k-labels-idx1-ubyte.gz",
                                                                 labels)]:
        (tmp_path / name).write_bytes(gzip.compress(_idx(array, 0x08)))
        monkeypatch.setitem(mnist.FILES, name, md5_of(tmp_path / name))
    x, y = mnist.load_mnist("test", data_dir=tmp_path, download=False)
    assert x.shape == (7, 1, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(x[:, 0], images)
    assert y.tolist() == labels.tolist()


def test_real_mnist_test_set():
    folder = shared_data("mnist", "t10k-images-idx3-ubyte.gz").parent
    images, labels = mnist.load_mnist("test", data_dir=folder, download=False)
    assert images.shape == (10000, 1, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.int64
    assert sorted(set(labels.tolist())) == list(range(10))
    assert np.bincount(labels).min() > 800  # every digit is well represented
    # mostly black background with white strokes: a dark mean, a full range
    assert images.min() == 0 and images.max() == 255 and 20 < images.mean() < 50
    assert (images[:, :, 0, :] == 0).mean() > 0.9  # the top row is almost always empty
