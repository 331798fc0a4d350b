"""Checked downloads: fetch a file once, verify its MD5 (or SHA-256), and never use a broken copy.

The rules every dataset in minigan follows:

* files are cached in ``default_data_dir()`` (``$MINIGAN_DATA``, else ``~/.cache/minigan``);
* a download streams into ``<file>.part`` and is renamed into place only after its MD5 matches
  the published sum, so a file with the final name is always complete;
* re-running an interrupted download resumes it (an HTTP ``Range`` request) or, if the server
  cannot resume, starts it again from the beginning;
* offline, the error says which file to fetch by hand and where to put it;
* a mirror (``use_mirror(url)``, ``--mirror`` or ``$MINIGAN_MIRROR``) replaces the datasets'
  own servers: a file ``svhn/train_32x32.mat`` of the cache is fetched from
  ``<mirror>/svhn/train_32x32.mat`` (the cache's own layout, so a copy of a filled cache folder
  served over HTTP, or a ``file://`` folder, is a mirror). The MD5 sums are checked all the same.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tarfile
import urllib.error
import urllib.request
import warnings
from pathlib import Path

from tqdm import tqdm

CHUNK = 1 << 20  # read and hash 1 MiB at a time: large files never sit in memory
TIMEOUT = 30  # seconds to wait for the server before calling it unreachable


class DataError(RuntimeError):
    """A dataset could not be fetched, checked or read; the one-line message says what to do."""


MIRROR_SCHEMES = ("http://", "https://", "file://")
_mirror: str | None = None   # set by use_mirror; else $MINIGAN_MIRROR is read at each download


def use_mirror(url: str | None) -> None:
    """Fetch every dataset file from ``url`` (``<url>/<dataset>/<file>``) instead of its own
    server; None goes back to ``$MINIGAN_MIRROR`` or the datasets' servers."""
    if url is not None and not url.lower().startswith(MIRROR_SCHEMES):
        raise DataError(f"mirror {url!r} must start with {', '.join(MIRROR_SCHEMES)}")
    global _mirror
    _mirror = url


def mirror_url() -> str | None:
    """The mirror in use: ``use_mirror``'s, else ``$MINIGAN_MIRROR``, else None."""
    url = _mirror or os.environ.get("MINIGAN_MIRROR") or None
    if url is not None and not url.lower().startswith(MIRROR_SCHEMES):
        raise DataError(f"MINIGAN_MIRROR={url!r} must start with {', '.join(MIRROR_SCHEMES)}")
    return url


def default_data_dir() -> Path:
    """Where datasets are cached: ``$MINIGAN_DATA`` if set, else ``~/.cache/minigan``."""
    env = os.environ.get("MINIGAN_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "minigan"


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """``data_dir`` as a Path, with ``None`` meaning ``default_data_dir()``."""
    return default_data_dir() if data_dir is None else Path(data_dir).expanduser()


def md5_of(path: str | os.PathLike) -> str:
    """The MD5 hex digest of a file, read in chunks."""
    return digest_of(path, "md5")


def digest_of(path: str | os.PathLike, algorithm: str = "md5") -> str:
    """The hex digest of a file ("md5" or "sha256"), read in chunks."""
    # MD5 here detects truncated or corrupted files; it is not a security check.
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _one_line(error: BaseException) -> str:
    text = str(getattr(error, "reason", None) or error) or type(error).__name__
    return " ".join(text.split())


# What a failed download suggests instead, on the command line and in a notebook alike.
SYNTHETIC_INSTEAD = 'or use the synthetic digits (`--dataset synthetic`; "synthetic" in Python)'


def _by_hand(path: Path, md5: str, algorithm: str = "md5", otherwise: str = SYNTHETIC_INSTEAD,
             ) -> str:
    return f"put {path.name} ({algorithm} {md5}) in {path.parent} by hand, {otherwise}"


def download(url: str, path: str | os.PathLike, md5: str, *, progress: bool = True,
             algorithm: str = "md5", otherwise: str = SYNTHETIC_INSTEAD) -> Path:
    """Download ``url`` to ``path`` and check it against ``md5``; return ``path``.

    ``algorithm="sha256"`` checks a SHA-256 digest instead (given as ``md5``), and ``otherwise``
    is the alternative the offline message offers beside placing the file by hand.

    * ``path`` already there with the right MD5: nothing is downloaded.
    * ``path`` there with a wrong MD5: it is not used; the file is downloaded again and replaces
      it only once the new copy checks out (a warning says so). If the download fails, the
      error says that the copy there is bad.
    * ``path + ".part"`` there (an earlier run was interrupted): ask the server for the rest
      (``Range``); a server that answers with the whole file (200) makes us start again.
    * the complete file has the wrong MD5: the ``.part`` is deleted and ``DataError`` raised.
    * the server cannot be reached: ``DataError`` saying where to put the file by hand.
    """
    path = Path(path)
    bad_copy = ""   # what is wrong with a copy already there, to say so if we cannot replace it
    if path.exists():
        got = digest_of(path, algorithm)
        if got == md5:
            return path
        bad_copy = (f"{path} is damaged or a different file ({algorithm} {got}, expected "
                    f"{md5})")
    part = path.with_suffix(path.suffix + ".part")
    created_folder = not path.parent.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"cannot create {path.parent} ({_one_line(error)}): "
                        f"{_by_hand(path, md5, algorithm, otherwise)}") from None

    try:
        _fetch_to_part(url, part, _by_hand(path, md5, algorithm, otherwise), progress)
    except DataError as error:
        if created_folder and not any(path.parent.iterdir()):
            path.parent.rmdir()   # leave no empty folder behind an offline attempt
        raise DataError(f"{bad_copy}; {error}" if bad_copy else str(error)) from None
    got = digest_of(part, algorithm)
    if got != md5:
        part.unlink()
        raise DataError(f"checksum mismatch for {url}: got {algorithm} {got}, expected {md5}; the "
                        f"download was deleted, run again or put {path.name} in {path.parent} "
                        "by hand")
    os.replace(part, path)  # atomic: the final name only ever holds a checked file
    if bad_copy:
        warnings.warn(f"{bad_copy}: replaced it with a fresh, checked download", stacklevel=2)
    return path


def _fetch_to_part(url: str, part: Path, by_hand: str, progress: bool) -> None:
    """Stream ``url`` into ``part``, resuming from what ``part`` already holds.

    ``by_hand`` ends the offline messages: where to put the file by hand."""
    final = part.with_suffix("")  # the name the user will see in messages
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url)
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            # "Range not satisfiable": the .part is already whole (or longer than the file).
            # download() checks its MD5; a bad one is deleted, so the next run starts afresh.
            return
        raise DataError(f"could not download {url} (HTTP {error.code} {_one_line(error)}): "
                        f"{by_hand}") from None
    except (OSError, http.client.HTTPException) as error:  # URLError, refused, timeout, ...
        raise DataError(f"could not reach {url} ({_one_line(error)}): "
                        f"{by_hand}") from None

    with response:
        if response.status != 206:  # the server sent the whole file: start again cleanly
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        received = offset
        try:
            out = open(part, "ab" if offset else "wb")
        except OSError as error:
            raise DataError(f"cannot write {part} ({_one_line(error)}): choose a writable "
                            "data folder ($MINIGAN_DATA or --data-dir)") from None
        with out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=final.name, disable=not progress, leave=False,
        ) as bar:
            try:
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as error:
                raise DataError(f"download of {url} was interrupted after {received} bytes "
                                f"({_one_line(error)}): run again to resume it") from None
    if total is not None and received < total:
        raise DataError(f"download of {url} was interrupted after {received} of {total} bytes: "
                        "run again to resume it")


def find_or_download(filename: str, base_url: str, md5: str, data_dir: str | os.PathLike | None,
                     subdir: str, download_missing: bool = True) -> Path:
    """Return a checked copy of ``filename``, downloading it into ``data_dir/subdir`` if needed.

    A file already in ``data_dir`` itself or in ``data_dir/subdir`` is used when its MD5 is
    right, so ``data_dir`` may point straight at a folder that holds the files.
    """
    root = resolve_data_dir(data_dir)
    candidates = [root / filename, root / subdir / filename]
    found = next((p for p in candidates if p.exists()), None)
    if download_missing:
        mirror = mirror_url()
        url = (f"{mirror.rstrip('/')}/{subdir}/{filename}" if mirror else
               base_url.rstrip("/") + "/" + filename)
        return download(url, found or candidates[1], md5)
    if found is None:
        raise DataError(f"{filename} not found in {root} or {root / subdir}: put it there "
                        f"(md5 {md5}) by hand, or allow downloading (leave out --no-download; "
                        f"download=True in Python)")
    got = md5_of(found)
    if got != md5:
        raise DataError(f"{found} has md5 {got}, expected {md5} (incomplete or corrupted): "
                        "delete it and download it again")
    return found


def _is_within(root: Path, target: Path) -> bool:
    root, target = root.resolve(), target.resolve()
    return target == root or root in target.parents


def extract_tar(archive: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Extract a tar archive into ``dest``, refusing anything that could land outside it.

    A hostile archive can name members ``/etc/x`` or ``../x``, or hold a link that points out of
    the folder and then a file written "through" it. Dataset archives hold only plain files and
    folders, so we accept only those, check every path ourselves (this works on any Python), and
    also pass ``filter="data"`` where tarfile has it (Python >= 3.10.12 / 3.11.4).
    """
    dest = Path(dest)
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for m in members:
            if not (m.isfile() or m.isdir()):
                raise DataError(f"refusing to extract {archive}: member {m.name!r} is a link or "
                                "special file; delete the archive and download it again")
            name = Path(m.name)
            if name.is_absolute() or ".." in name.parts or not _is_within(dest, dest / name):
                raise DataError(f"refusing to extract {archive}: member {m.name!r} would land "
                                f"outside {dest}; delete the archive and download it again")
        dest.mkdir(parents=True, exist_ok=True)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:  # older Python: our own checks above are the protection
            tar.extractall(dest, members=members)
