"""A time limit per case: what stops a learner's endless loop inside the grader's child process.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class CaseTimedOut(BaseException):
    """One case ran past its time limit. A BaseException, so that a learner's
    ``except Exception`` cannot swallow it."""


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise CaseTimedOut in this thread after ``seconds`` (None: no limit). Uses SIGALRM, so
    it needs the main thread of a POSIX process (the grader's child process is one)."""
    if not seconds or threading.current_thread() is not threading.main_thread() \
            or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise CaseTimedOut(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
