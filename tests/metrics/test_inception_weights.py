"""The FID Inception weights file: fetched once, checked by SHA-256, converted once to .npz.

The real file (91 MB) is not fetched here: a local HTTP server on 127.0.0.1 (the one of
``tests/data/test_download.py``) serves a small state dict in its place, with its own SHA-256,
so we can watch the download land in ``<data dir>/inception/``, the .npz conversion be reused
without the network, a wrong checksum be refused, and the offline message say which file to put
where.
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import numpy as np
import pytest

from minigan.data.download import DataError
from minigan.metrics.inception_weights import (
    FID_WEIGHTS_FILE,
    FID_WEIGHTS_SHA256,
    fid_state_dict,
    fid_weights_path,
)
from tests.data.test_download import server  # noqa: F401 - the local HTTP server fixture

TINY = (Path(__file__).parents[1] / "fixtures" / "tiny_state_dict_zip.pth").read_bytes()
TINY_SHA256 = hashlib.sha256(TINY).hexdigest()


def test_the_published_checksum_is_the_one_in_the_file_name():
    assert FID_WEIGHTS_SHA256.startswith("6726825d") and "6726825d" in FID_WEIGHTS_FILE
    assert len(FID_WEIGHTS_SHA256) == 64


def test_download_checks_converts_once_and_then_needs_no_network(server, tmp_path):  # noqa: F811
    server.files["/w.pth"] = TINY
    state = fid_state_dict(tmp_path, url=server.url + "w.pth", sha256=TINY_SHA256,
                           progress=False)
    assert (tmp_path / "inception" / FID_WEIGHTS_FILE).read_bytes() == TINY
    converted = tmp_path / "inception" / FID_WEIGHTS_FILE.replace(".pth", ".npz")
    assert converted.is_file()
    np.testing.assert_array_equal(state["bn.running_var"], [0.5, 2.0])
    (tmp_path / "inception" / FID_WEIGHTS_FILE).unlink()   # the .npz is enough from now on
    again = fid_state_dict(tmp_path, url=server.url + "w.pth", sha256=TINY_SHA256)
    assert len(server.requests) == 1
    assert sorted(again) == sorted(state)
    # A converted file made from another source is not trusted: it is converted again.
    with pytest.raises(DataError):
        fid_state_dict(tmp_path, url=server.url + "missing.pth", sha256="0" * 64,
                       progress=False)


def test_a_wrong_checksum_is_refused_and_nothing_is_left(server, tmp_path):  # noqa: F811
    server.files["/w.pth"] = TINY
    with pytest.raises(DataError, match=f"checksum mismatch.*sha256.*{FID_WEIGHTS_SHA256}"):
        fid_weights_path(tmp_path, url=server.url + "w.pth", progress=False)
    assert not any((tmp_path / "inception").glob("*"))


def test_an_interrupted_download_resumes(server, tmp_path):  # noqa: F811
    server.files["/w.pth"] = TINY
    server.cut_after = 1000
    with pytest.raises(DataError, match="run again to resume"):
        fid_weights_path(tmp_path, url=server.url + "w.pth", sha256=TINY_SHA256, progress=False)
    server.cut_after = None
    path = fid_weights_path(tmp_path, url=server.url + "w.pth", sha256=TINY_SHA256,
                            progress=False)
    assert server.requests[-1] == ("/w.pth", "bytes=1000-") and path.read_bytes() == TINY


def test_offline_the_one_line_error_names_the_file_and_the_folder(tmp_path):
    with socket.socket() as s:   # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError) as info:
        fid_weights_path(tmp_path, url=f"http://127.0.0.1:{port}/{FID_WEIGHTS_FILE}",
                         progress=False)
    message = str(info.value)
    assert "\n" not in message and "could not reach" in message
    assert f"put {FID_WEIGHTS_FILE} (sha256 {FID_WEIGHTS_SHA256}) in {tmp_path / 'inception'}" \
        in message


def test_without_downloading_a_missing_file_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match=f"{FID_WEIGHTS_FILE} not found.*{tmp_path}") as info:
        fid_weights_path(tmp_path, download_missing=False)
    assert "\n" not in str(info.value)


def test_a_file_placed_by_hand_is_used_when_its_checksum_matches(tmp_path):
    (tmp_path / FID_WEIGHTS_FILE).write_bytes(TINY)
    assert fid_weights_path(tmp_path, download_missing=False, sha256=TINY_SHA256) == \
        tmp_path / FID_WEIGHTS_FILE
    with pytest.raises(DataError, match="delete it and download it again"):
        fid_weights_path(tmp_path, download_missing=False)   # the real checksum: not this file
