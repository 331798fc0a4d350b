"""CIFAR-10's binary records, and extracting an archive without trusting it.

A record is one label byte followed by 3072 pixel bytes already in (3, 32, 32) order, so
reading a batch is a single reshape. The archive is extracted only after every member has been
checked: a tar can name files like ``../evil`` or ``/etc/x``, or carry links that point out of
the target folder, and extracting such an archive naively writes wherever it likes.
"""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest

from minigan.data import cifar10
from minigan.data.download import DataError, extract_tar, md5_of


def _records(rng, n):
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    return np.column_stack([labels, pixels]).tobytes(), labels, pixels


def _add(tar, name, data=b"", kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, len(data)
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


@pytest.fixture
def cifar_dir(tmp_path, monkeypatch):
    """A data_dir holding a small, fake CIFAR-10 archive (3 images per batch), and its content."""
    rng = np.random.default_rng(0)
    (tmp_path / "cifar10").mkdir()
    archive = tmp_path / "cifar10" / cifar10.ARCHIVE
    content = {}
    with tarfile.open(archive, "w:gz") as tar:
        for name in cifar10.SPLITS["train"] + cifar10.SPLITS["test"]:
            data, labels, pixels = _records(rng, 3)
            _add(tar, f"{cifar10.FOLDER}/{name}", data)
            content[name] = (labels, pixels)
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", md5_of(archive))
    return tmp_path, content


def test_records_are_label_byte_then_chw_pixels(cifar_dir):
    data_dir, content = cifar_dir
    images, labels = cifar10.load_cifar10("test", data_dir=data_dir, download=False)
    want_labels, want_pixels = content["test_batch.bin"]
    assert images.shape == (3, 3, 32, 32) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.tolist() == want_labels.tolist()
    # byte 1 + c*1024 + h*32 + w of a record is pixel (c, h, w)
    assert images[2, 1, 5, 9] == want_pixels[2, 1 * 1024 + 5 * 32 + 9]


def test_train_is_five_batches_in_order_and_extraction_happens_once(cifar_dir):
    data_dir, content = cifar_dir
    images, labels = cifar10.load_cifar10("train", data_dir=data_dir, download=False)
    assert images.shape == (15, 3, 32, 32)
    assert labels.tolist() == [int(v) for i in range(1, 6)
                               for v in content[f"data_batch_{i}.bin"][0]]
    (data_dir / "cifar10" / cifar10.ARCHIVE).unlink()  # the extracted files are enough now
    again, _ = cifar10.load_cifar10("train", data_dir=data_dir, download=False)
    np.testing.assert_array_equal(again, images)


def test_a_truncated_batch_is_refused(tmp_path):
    (tmp_path / "b.bin").write_bytes(b"\0" * (cifar10.RECORD + 5))
    with pytest.raises(DataError, match="not a whole number"):
        cifar10.read_cifar_batch(tmp_path / "b.bin")


@pytest.mark.parametrize("evil", [
    dict(name="../evil"),
    dict(name="cifar-10-batches-bin/../../evil"),
    dict(name="/tmp/minigan-evil-absolute"),
    dict(name="cifar-10-batches-bin/link", kind=tarfile.SYMTYPE, linkname="/etc"),
    dict(name="cifar-10-batches-bin/up", kind=tarfile.SYMTYPE, linkname="../../.."),
    dict(name="cifar-10-batches-bin/hard", kind=tarfile.LNKTYPE, linkname="../evil"),
], ids=["dotdot", "nested-dotdot", "absolute", "symlink-abs", "symlink-up", "hardlink"])
def test_members_that_escape_the_folder_are_rejected(tmp_path, evil):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "cifar-10-batches-bin/test_batch.bin", b"\0" * cifar10.RECORD)
        _add(tar, **evil)
    dest = tmp_path / "out" / "deep"
    with pytest.raises(DataError, match="refusing to extract"):
        extract_tar(archive, dest)
    assert not dest.exists()  # rejected before anything was written
    assert not (tmp_path / "out" / "evil").exists() and not (tmp_path / "evil").exists()


def test_the_loader_refuses_an_evil_archive(tmp_path, monkeypatch):
    (tmp_path / "cifar10").mkdir()
    archive = tmp_path / "cifar10" / cifar10.ARCHIVE
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "../evil", b"gotcha")
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", md5_of(archive))
    with pytest.raises(DataError, match=r"'\.\./evil' would land outside"):
        cifar10.load_cifar10("test", data_dir=tmp_path, download=False)
    assert not (tmp_path / "evil").exists()
    assert [p.name for p in (tmp_path / "cifar10").iterdir()] == [cifar10.ARCHIVE]


def test_an_archive_without_the_batches_folder_is_refused(tmp_path, monkeypatch):
    (tmp_path / "cifar10").mkdir()
    archive = tmp_path / "cifar10" / cifar10.ARCHIVE
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "something-else/readme.txt", b"hello")
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", md5_of(archive))
    with pytest.raises(DataError, match="not the CIFAR-10 binary archive"):
        cifar10.load_cifar10("test", data_dir=tmp_path, download=False)


def test_our_own_checks_protect_pythons_without_the_data_filter(tmp_path, monkeypatch):
    """Before Python 3.10.12 / 3.11.4 tarfile has no ``filter="data"``: we must not need it."""
    monkeypatch.delattr(tarfile, "data_filter")
    good, evil = tmp_path / "good.tar", tmp_path / "evil.tar"
    with tarfile.open(good, "w") as tar:
        _add(tar, "cifar-10-batches-bin/test_batch.bin", b"\1" * cifar10.RECORD)
    with tarfile.open(evil, "w") as tar:
        _add(tar, "../evil", b"gotcha")
    extract_tar(good, tmp_path / "out")
    assert (tmp_path / "out" / "cifar-10-batches-bin" / "test_batch.bin").stat().st_size == \
        cifar10.RECORD
    with pytest.raises(DataError, match="would land outside"):
        extract_tar(evil, tmp_path / "out")
    assert not (tmp_path / "evil").exists()
