"""Checkpoints as ``.npz`` files: arrays only, never pickles, written atomically.

A checkpoint is a dict of *sections* (``"G"``, ``"D"``, ``"opt_g"``, ...), each a dict of
arrays; in the file, a key ``"G/0.weight"`` is the array ``0.weight`` of section ``G``. Text
(a JSON config, a random generator's state) is stored as a 0-d string array, which ``np.load``
reads back with ``allow_pickle=False``. The file is written to a temporary name in the same
folder and renamed into place, so a crash or Ctrl-C in the middle of saving never leaves a
half-written checkpoint where the last good one was.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy


def atomic_savez(path: str | Path, arrays: dict[str, Any]) -> Path:
    """``numpy.savez`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    # mkstemp makes the file private (0600); give it the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, "wb") as f:
            numpy.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(path: str | Path, sections: dict[str, dict[str, Any]]) -> Path:
    """Save ``{section: {name: array}}`` to ``path`` (an .npz file)."""
    flat = {}
    for section, arrays in sections.items():
        for name, value in arrays.items():
            flat[f"{section}/{name}"] = numpy.asarray(value)
    return atomic_savez(path, flat)


def load_checkpoint(path: str | Path) -> dict[str, dict[str, numpy.ndarray]]:
    """Read a file written by ``save_checkpoint`` back into ``{section: {name: array}}``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    sections: dict[str, dict[str, numpy.ndarray]] = {}
    try:
        with numpy.load(path, allow_pickle=False) as data:
            for key in data.files:
                section, _, name = key.partition("/")
                sections.setdefault(section, {})[name] = data[key]
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path} is not a readable minigan checkpoint ({error})") from None
    return sections


def text_array(obj: Any) -> numpy.ndarray:
    """Anything JSON can write, as a 0-d string array (npz-safe, no pickle)."""
    return numpy.asarray(json.dumps(obj))


def from_text_array(array: numpy.ndarray) -> Any:
    return json.loads(str(array))


def rng_state(rng: numpy.random.Generator) -> numpy.ndarray:
    """A generator's complete state as text, so a resumed run draws the same numbers."""
    return text_array(rng.bit_generator.state)


def set_rng_state(rng: numpy.random.Generator, state: numpy.ndarray) -> None:
    rng.bit_generator.state = from_text_array(state)
