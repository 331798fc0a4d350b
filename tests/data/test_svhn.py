"""SVHN's MATLAB layout: X is (H, W, C, N) and the digit 0 is labelled 10.

We write small .mat files with scipy and check that the loader turns them into minigan's
(N, C, H, W) layout with labels 0..9 — pixel for pixel — and that a broken file is refused with
a one-line error instead of a traceback from inside scipy.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import savemat

from minigan.data import svhn
from minigan.data.download import DataError, md5_of


def _write_mat(path, n=6, seed=0, **overrides):
    rng = np.random.default_rng(seed)
    arrays = {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
              "y": rng.integers(1, 11, (n, 1)).astype(np.uint8)}
    arrays.update(overrides)
    savemat(path, arrays)
    return arrays


def test_layout_is_transposed_and_ten_means_zero(tmp_path):
    arrays = _write_mat(tmp_path / "a.mat", y=np.array([[10], [1], [2], [10], [9], [5]]))
    images, labels = svhn.read_svhn_mat(tmp_path / "a.mat")
    assert images.shape == (6, 3, 32, 32) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 2, 0, 9, 5]
    # image i, channel c, row h, column w  <->  X[h, w, c, i]
    assert images[4, 2, 7, 30] == arrays["X"][7, 30, 2, 4]
    np.testing.assert_array_equal(images[1].transpose(1, 2, 0), arrays["X"][..., 1])


def test_load_svhn_uses_a_checked_file_in_data_dir(tmp_path, monkeypatch):
    (tmp_path / "svhn").mkdir()
    path = tmp_path / "svhn" / "train_32x32.mat"
    _write_mat(path)
    monkeypatch.setitem(svhn.FILES, "train", ("train_32x32.mat", md5_of(path)))
    images, labels = svhn.load_svhn("train", data_dir=tmp_path, download=False)
    assert images.shape == (6, 3, 32, 32) and labels.min() >= 0 and labels.max() <= 9


def test_wrong_md5_is_refused_without_download(tmp_path):
    _write_mat(tmp_path / "test_32x32.mat")  # not the published file
    with pytest.raises(DataError, match="expected eb5a983be6a315427106f1b164d9cef3"):
        svhn.load_svhn("test", data_dir=tmp_path, download=False)


def test_missing_file_without_download_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError, match="extra_32x32.mat not found.*by hand"):
        svhn.load_svhn("extra", data_dir=tmp_path, download=False)


def test_unknown_split(tmp_path):
    with pytest.raises(DataError, match="unknown SVHN split 'valid'"):
        svhn.load_svhn("valid", data_dir=tmp_path)


@pytest.mark.parametrize("make", [
    lambda p: p.write_bytes(b"this is not a MATLAB file at all" * 10),
    lambda p: savemat(p, {"images": np.zeros((32, 32, 3, 2), np.uint8)}),  # no X / y
    lambda p: _write_mat(p, X=np.zeros((28, 28, 1, 6), np.uint8)),  # wrong image shape
    lambda p: _write_mat(p, y=np.ones((5, 1))),  # 6 images, 5 labels
], ids=["garbage", "no-X-y", "wrong-shape", "count-mismatch"])
def test_malformed_mat_is_a_one_line_data_error(tmp_path, make):
    path = tmp_path / "bad.mat"
    make(path)
    with pytest.raises(DataError) as info:
        svhn.read_svhn_mat(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
