"""Checked downloads: a file is used only once its MD5 matches, and no failure leaves junk behind.

Every test here talks to a tiny HTTP server on 127.0.0.1 (started in a thread), which can be
told to ignore ``Range`` requests or to hang up half way, so we can watch ``download`` resume
an interrupted transfer, restart one the server cannot resume, refuse a file whose checksum is
wrong, and explain what to do when the network is not there.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.io import savemat

from minigan.data import svhn
from minigan.data.download import DataError, default_data_dir, download, md5_of

PAYLOAD = bytes(range(256)) * 200  # 51,200 bytes: several reads, but instant
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    state: SimpleNamespace  # set per server: files, requests, honour_range, cut_after

    def do_GET(self):  # noqa: N802 - the name http.server looks for
        state = self.state
        rng = self.headers.get("Range")
        state.requests.append((self.path, rng))
        data = state.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = int(rng.split("=")[1].split("-")[0]) if rng and state.honour_range else 0
        if start >= len(data) > 0 and rng:
            self.send_error(416)
            return
        body = data[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if state.cut_after is not None:  # promise the whole body, then hang up half way
            self.wfile.write(body[:state.cut_after])
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def server(monkeypatch):
    """A local HTTP server; put bytes in ``server.files["/name"]`` and fetch ``server.url``."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")  # never send local traffic to a proxy
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    state = SimpleNamespace(files={}, requests=[], honour_range=True, cut_after=None)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Handler,), {"state": state}))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_port}/"
    yield state
    httpd.shutdown()
    httpd.server_close()


def test_good_file_lands_with_the_right_md5(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    path = download(server.url + "f.bin", tmp_path / "sub" / "f.bin", PAYLOAD_MD5, progress=False)
    assert path == tmp_path / "sub" / "f.bin"
    assert path.read_bytes() == PAYLOAD and md5_of(path) == PAYLOAD_MD5
    assert not (tmp_path / "sub" / "f.bin.part").exists()


def test_a_checked_file_is_not_downloaded_again(server, tmp_path):
    (tmp_path / "f.bin").write_bytes(PAYLOAD)
    download(server.url + "f.bin", tmp_path / "f.bin", PAYLOAD_MD5, progress=False)
    assert server.requests == []


def test_a_file_with_the_wrong_md5_is_replaced_not_used(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    (tmp_path / "f.bin").write_bytes(b"corrupted")
    with pytest.warns(UserWarning, match="replaced it with a fresh, checked download"):
        download(server.url + "f.bin", tmp_path / "f.bin", PAYLOAD_MD5, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_checksum_mismatch_raises_and_leaves_nothing_behind(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD[:-1] + b"X"  # one byte wrong
    with pytest.raises(DataError, match=f"checksum mismatch.*expected {PAYLOAD_MD5}") as info:
        download(server.url + "f.bin", tmp_path / "f.bin", PAYLOAD_MD5, progress=False)
    assert "\n" not in str(info.value) and "by hand" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # neither f.bin nor f.bin.part


def test_interrupted_download_is_resumed_with_range(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    half = len(PAYLOAD) // 2
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:half])
    download(server.url + "f.bin", tmp_path / "f.bin", PAYLOAD_MD5, progress=False)
    assert server.requests == [("/f.bin", f"bytes={half}-")]  # asked only for the rest
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_server_without_range_support_restarts_cleanly(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.honour_range = False  # answers 200 with the whole file
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:1000])
    download(server.url + "f.bin", tmp_path / "f.bin", PAYLOAD_MD5, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD  # not the old 1000 bytes + the file


def test_a_complete_part_file_is_finished_without_downloading(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD)  # the server will answer 416
    download(server.url + "f.bin", tmp_path / "f.bin", PAYLOAD_MD5, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_a_dropped_connection_keeps_the_part_and_rerunning_resumes(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.cut_after = 20_000
    with pytest.raises(DataError, match="interrupted.*run again to resume"):
        download(server.url + "f.bin", tmp_path / "f.bin", PAYLOAD_MD5, progress=False)
    assert not (tmp_path / "f.bin").exists()
    assert (tmp_path / "f.bin.part").read_bytes() == PAYLOAD[:20_000]
    server.cut_after = None
    download(server.url + "f.bin", tmp_path / "f.bin", PAYLOAD_MD5, progress=False)
    assert server.requests[-1] == ("/f.bin", "bytes=20000-")
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_offline_error_says_where_to_put_the_file(tmp_path):
    with socket.socket() as s:  # find a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError) as info:
        download(f"http://127.0.0.1:{port}/f.bin", tmp_path / "f.bin", PAYLOAD_MD5,
                 progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert "could not reach" in message and f"put f.bin (md5 {PAYLOAD_MD5}) in {tmp_path}" \
        in message and "--dataset synthetic" in message
    assert list(tmp_path.iterdir()) == []


def test_offline_with_a_bad_copy_says_the_copy_is_bad_in_one_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "f.bin").write_bytes(b"corrupted")
    with pytest.raises(DataError) as info:
        download(f"http://127.0.0.1:{port}/f.bin", tmp_path / "f.bin", PAYLOAD_MD5,
                 progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert f"{tmp_path / 'f.bin'} is damaged" in message and f"expected {PAYLOAD_MD5}" in message
    assert "could not reach" in message
    assert (tmp_path / "f.bin").read_bytes() == b"corrupted"   # never used, never deleted


def test_an_offline_attempt_leaves_no_empty_folder(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError):
        download(f"http://127.0.0.1:{port}/f.bin", tmp_path / "svhn" / "f.bin", PAYLOAD_MD5,
                 progress=False)
    assert not (tmp_path / "svhn").exists()


def test_missing_file_on_the_server_is_a_one_line_error(server, tmp_path):
    with pytest.raises(DataError, match="HTTP 404.*by hand"):
        download(server.url + "nope.bin", tmp_path / "nope.bin", PAYLOAD_MD5, progress=False)


def test_data_dir_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MINIGAN_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("MINIGAN_DATA")
    assert default_data_dir().parts[-2:] == (".cache", "minigan")


def test_load_svhn_downloads_checks_and_caches(server, tmp_path, monkeypatch):
    """End to end: the loader fetches the .mat from base_url into data_dir/svhn, then reuses it."""
    x = np.random.default_rng(0).integers(0, 256, (32, 32, 3, 5), dtype=np.uint8)
    savemat(tmp_path / "made.mat", {"X": x, "y": np.array([[1], [10], [3], [10], [9]])})
    data = (tmp_path / "made.mat").read_bytes()
    server.files["/test_32x32.mat"] = data
    monkeypatch.setitem(svhn.FILES, "test", ("test_32x32.mat", hashlib.md5(data).hexdigest()))
    images, labels = svhn.load_svhn("test", data_dir=tmp_path / "cache", base_url=server.url)
    assert (tmp_path / "cache" / "svhn" / "test_32x32.mat").exists()
    assert images.shape == (5, 3, 32, 32) and labels.tolist() == [1, 0, 3, 0, 9]
    svhn.load_svhn("test", data_dir=tmp_path / "cache", base_url=server.url)
    assert len(server.requests) == 1  # the second call used the cached, checked file


# ---------------------------------------------------------------------------------- mirrors
@pytest.fixture
def mirror_folder(tmp_path):
    """A mirror in the cache's layout (<mirror>/<dataset>/<file>), reached by a file:// URL."""
    from minigan.data.download import use_mirror

    (tmp_path / "mirror" / "svhn").mkdir(parents=True)
    (tmp_path / "mirror" / "svhn" / "data.bin").write_bytes(PAYLOAD)
    yield tmp_path / "mirror"
    use_mirror(None)


def test_a_mirror_replaces_the_datasets_server(tmp_path, mirror_folder):
    from minigan.data.download import find_or_download, use_mirror

    use_mirror(mirror_folder.as_uri())
    # The dataset's own server (port 9: nothing listens) is never asked.
    path = find_or_download("data.bin", "http://127.0.0.1:9/", PAYLOAD_MD5, tmp_path / "cache",
                            "svhn")
    assert path == tmp_path / "cache" / "svhn" / "data.bin" and path.read_bytes() == PAYLOAD


def test_minigan_mirror_variable_and_a_bad_mirror(tmp_path, mirror_folder, monkeypatch):
    from minigan.data.download import find_or_download, use_mirror

    monkeypatch.setenv("MINIGAN_MIRROR", mirror_folder.as_uri())
    assert find_or_download("data.bin", "http://127.0.0.1:9/", PAYLOAD_MD5, tmp_path / "c",
                            "svhn").is_file()
    with pytest.raises(DataError, match="must start with http://, https://, file://"):
        use_mirror("ftp.example/minigan")
    monkeypatch.setenv("MINIGAN_MIRROR", mirror_folder.as_uri() + "/nothing_here")
    with pytest.raises(DataError, match=r"nothing_here/svhn/data.bin"):
        find_or_download("data.bin", "http://127.0.0.1:9/", PAYLOAD_MD5, tmp_path / "d", "svhn")


def test_ctrl_c_during_a_download_keeps_the_part_file_and_the_next_run_resumes(
        server, tmp_path, monkeypatch):
    import minigan.data.download as download_module

    server.files["/f.bin"] = PAYLOAD
    monkeypatch.setattr(download_module, "CHUNK", 4096)       # several reads for 51,200 bytes
    real_tqdm = download_module.tqdm

    class CtrlCAfterFirstChunk(real_tqdm):
        def update(self, n=1):
            super().update(n)
            raise KeyboardInterrupt                            # the user presses Ctrl-C

    monkeypatch.setattr(download_module, "tqdm", CtrlCAfterFirstChunk)
    with pytest.raises(KeyboardInterrupt):
        download(server.url + "f.bin", tmp_path / "f.bin", PAYLOAD_MD5, progress=False)
    part = tmp_path / "f.bin.part"
    assert part.stat().st_size == 4096 and not (tmp_path / "f.bin").exists()

    monkeypatch.setattr(download_module, "tqdm", real_tqdm)
    download(server.url + "f.bin", tmp_path / "f.bin", PAYLOAD_MD5, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD and not part.exists()
    assert server.requests[-1] == ("/f.bin", "bytes=4096-")    # resumed, not started again
