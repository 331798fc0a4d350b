"""The first import of every command-line script: Ctrl-C (or SIGTERM) while Python is still
loading NumPy, SciPy and minigan -- the first second of every script -- ends the script with one
line and exit code 130, instead of a KeyboardInterrupt traceback from deep inside an import
(Ctrl-C) or a silent death (SIGTERM).

A script imports it before anything heavy, for its effect:

    import minigan.startup  # noqa: F401  (first: Ctrl-C while NumPy loads is one line)

    # isort: split
    import argparse
    ...

This module uses the standard library only, and ``minigan/__init__.py`` imports nothing heavy,
so the handlers are in place a few milliseconds after Python starts. Once the script's work
begins, ``minigan.scripts.run_script`` puts Python's usual handling back (Ctrl-C raises
KeyboardInterrupt, which the script turns into one line after cleaning up).

It changes signal handling only when the module importing it is the program itself
(``__main__``) and not an interactive IPython/Jupyter session: a library must never change the
signals of the process that imports it (Jupyter interrupts a kernel with SIGINT), and a test
that imports an example to call its functions keeps its own handlers.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

EXIT_INTERRUPTED = 130   # 128 + SIGINT, what shells report for a program stopped by Ctrl-C
SIGNALS = (signal.SIGINT, signal.SIGTERM)

# The handlers found before ours, to put back when the work begins ({} when not installed).
previous_handlers: dict[int, Any] = {}


def signal_name(signum: int) -> str:
    """"Ctrl-C" for SIGINT, else the signal's name ("SIGTERM")."""
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def stop_while_starting(signum: int, frame: Any) -> None:   # noqa: ARG001 -- a signal handler
    """Nothing has been done yet, so there is nothing to save or clean up: say so and exit."""
    message = f"\ninterrupted ({signal_name(signum)}) while starting: nothing was done\n"
    try:
        os.write(sys.stderr.fileno(), message.encode())
    except (OSError, ValueError, AttributeError):
        pass
    os._exit(EXIT_INTERRUPTED)   # not sys.exit: it would raise inside whatever import runs


def _importer_name() -> str:
    """``__name__`` of the module whose ``import minigan.startup`` runs this (skipping the
    frames of the import machinery)."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name != __name__ and not name.startswith(("importlib", "_frozen_importlib")):
            return name
        frame = frame.f_back
    return ""


def install() -> None:
    """Exit with one line on SIGINT or SIGTERM from now until ``hand_back`` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in SIGNALS:
        # An ignored signal stays ignored: a job started in the background (``cmd &``) or under
        # ``nohup`` was asked not to stop on it.
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous_handlers[signum] = signal.signal(signum, stop_while_starting)


def hand_back() -> None:
    """Put back the handlers ``install`` replaced; a no-op when it did not run."""
    while previous_handlers:
        signum, handler = previous_handlers.popitem()
        signal.signal(signum, handler)


if _importer_name() == "__main__" and "IPython" not in sys.modules:
    install()
