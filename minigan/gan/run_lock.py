"""One writer per run folder: a lock file that names the process and the host holding it.

Two runs writing into one folder would overwrite each other's checkpoint, and the folder would
silently hold only the last one; two ``--resume`` runs would both train from the same state.
So a run holds ``<folder>/run.lock`` for as long as it writes there:

    with RunLock(folder):          # RunFolderLocked if another live process holds it
        ...train, save...

The lock is an operating-system lock (``flock``) on that file, which the system releases when
the process ends, however it ends (Ctrl-C, an error, ``kill -9``, a crash). The file also holds
``pid`` and ``host`` as JSON, so that the refusal can say who holds the folder. A file left
behind by a process that is gone is taken over, with a line saying so; one that names another
host is refused instead, since this machine cannot see whether that process still runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Any

LOCK_NAME = "run.lock"

try:
    import fcntl
except ImportError:   # pragma: no cover - Windows: the file alone, its pid checked
    fcntl = None


class RunFolderLocked(RuntimeError):
    """Another process is writing into this run folder."""


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


class RunLock:
    """The lock on run folder ``folder``: ``acquire`` (or ``with``) takes it, ``release``
    gives it back and removes the file. ``took_over`` is the pid and host of a gone process
    whose lock file was found, if any."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.took_over: dict[str, Any] | None = None
        self._fd: int | None = None
        # The folders missing now, which acquire (or the run's own checks) will make: removed
        # again by release if the run leaves them empty.
        self.made_folders = _missing_folders(self.folder)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, or raise ``RunFolderLocked`` naming the process that holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        while self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if not _try_lock(fd):
                holder = _read_holder(fd)
                os.close(fd)
                raise RunFolderLocked(self._held_message(holder))
            # The holder before us may have removed the file between our open and our lock: a
            # lock on a file no longer at this path would keep no one out. Then try again.
            if not _same_file(fd, self.path):
                os.close(fd)
                continue
            self._claim(fd)

    def _claim(self, fd: int) -> None:
        """Ours now: refuse a file naming another host, say so if a gone process left it,
        and write our own pid and host into it."""
        previous = _read_holder(fd)
        if previous and previous.get("host") != socket.gethostname():
            os.close(fd)
            raise RunFolderLocked(self._held_message(previous, other_host=True))
        if previous and previous.get("pid") != os.getpid():
            if fcntl is None and _alive(previous.get("pid")):   # pragma: no cover - Windows
                os.close(fd)
                raise RunFolderLocked(self._held_message(previous))
            self.took_over = previous
            print(f"note: took over the lock of {self.folder} from process "
                  f"{previous.get('pid')}, which is gone", flush=True)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Remove the lock file and give the lock back (nothing if it is not held)."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)   # first, while still locked: see acquire
        os.close(self._fd)                  # closing releases the flock
        self._fd = None
        # A run refused or failed before it wrote anything leaves no empty folder behind.
        for folder in self.made_folders:            # the run folder first, then its parents
            with contextlib.suppress(OSError):      # not empty (the run wrote files): kept
                folder.rmdir()

    def _held_message(self, holder: dict[str, Any] | None, other_host: bool = False) -> str:
        who = (f"process {holder.get('pid')} on {holder.get('host')}" if holder
               else "another process")
        if other_host:
            return (f"{self.folder} is in use by {who} (this machine cannot see whether it "
                    f"still runs): wait for it, or delete {self.path} if it has stopped")
        return (f"{self.folder} is in use by {who}, which is training into it: wait for it to "
                f"finish, or choose another --out")


def _try_lock(fd: int) -> bool:
    """An exclusive lock on the open file ``fd`` without waiting: True if we got it."""
    if fcntl is None:   # pragma: no cover - Windows
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _read_holder(fd: int) -> dict[str, Any] | None:
    """The pid and host written in the lock file, or None (empty or unreadable)."""
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        holder = json.loads(os.read(fd, 4096).decode() or "null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return holder if isinstance(holder, dict) else None


def _alive(pid: Any) -> bool:  # pragma: no cover - only where there is no flock
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, TypeError, ValueError):
        return False
    except PermissionError:
        return True
    return True
