"""Checkpoints as ``.npz`` files: arrays only, never pickles, written atomically.

A checkpoint is a dict of *sections* (``"G"``, ``"D"``, ``"opt_g"``, ...), each a dict of
arrays; in the file, a key ``"G/0.weight"`` is the array ``0.weight`` of section ``G``. Text
(a JSON config, a random generator's state) is stored as a 0-d string array, which ``np.load``
reads back with ``allow_pickle=False``. The file is written to a temporary name in the same
folder and renamed into place, so a crash or Ctrl-C in the middle of saving never leaves a
half-written checkpoint where the last good one was.

Every ``.npz`` file minigan reads (checkpoints, feature networks, statistics, datasets) goes
through ``read_npz``, and its parts through ``require``, ``read_json`` and ``check_arrays``:
whatever is wrong with a file (cut short, a flipped bit, a missing or unexpected part, a part
that is not an array, the wrong dtype or shape, NaN where a weight should be, a negative step
count, bad JSON) becomes one ``DamagedFileError`` whose message names the file and the fault,
never a traceback from deep inside ``zipfile`` or from the first training step.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy


class DamagedFileError(ValueError):
    """A file minigan reads is damaged or is not what it should be; the message names it."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = Path(path), problem


def _reason(error: BaseException) -> str:
    """A library's error text as a short reason, without advice that does not apply here."""
    text = " ".join(str(error).split()) or type(error).__name__
    if "pickle" in text:
        # NumPy's message suggests loading the file with allow_pickle=True: never do that with
        # a file you did not write yourself (unpickling runs code). minigan never writes one.
        return "it is not an .npz archive of plain arrays (it holds Python objects or garbage)"
    if isinstance(error, zipfile.BadZipFile) and "not a zip file" in text.lower():
        return "it is not a complete .npz (zip) archive: cut short or not an .npz file at all"
    if isinstance(error, zipfile.BadZipFile) and "crc" in text.lower():
        return f"its contents are corrupted ({text}): a damaged copy"
    return text


def read_npz(path: str | Path, what: str = "file") -> dict[str, numpy.ndarray]:
    """Every array of the ``.npz`` file ``path``, read in full and with ``allow_pickle=False``.

    Any damage (truncated archive, bad CRC, a ``.npy`` or random bytes under an ``.npz`` name,
    object arrays, an empty file) raises ``DamagedFileError`` naming the file; ``what``
    ("trainer checkpoint", "feature network file", ...) says what the file should have been. A
    missing file raises ``FileNotFoundError``.
    """
    path = Path(path)
    if path.is_dir() and (path / "checkpoint.npz").is_file():   # a run folder, given for its file
        raise FileNotFoundError(f"{path} is a run folder: give its {path / 'checkpoint.npz'}")
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}" if what != "file" else
                                f"no such file: {path}")
    if path.stat().st_size == 0:
        raise DamagedFileError(path, f"not a readable {what} (the file is empty)")
    try:
        # Opened here rather than by np.load: the file is closed even when reading fails halfway.
        with open(path, "rb") as f:
            data = numpy.load(f, allow_pickle=False)
            if not isinstance(data, numpy.lib.npyio.NpzFile):
                raise ValueError("it is a single .npy array, not an .npz archive")
            with data:
                arrays = {key: data[key] for key in data.files}
    except Exception as error:   # noqa: BLE001 -- any damage at all becomes one named line
        raise DamagedFileError(path, f"not a readable {what} ({_reason(error)})") from None
    for key, value in arrays.items():
        # NumPy hands back the raw bytes of a zip member that is not a .npy file.
        if not isinstance(value, numpy.ndarray):
            raise DamagedFileError(path, f"not a readable {what}: its part {key!r:.60} is not "
                                         f"an array (.npy) but {type(value).__name__}")
    return arrays


def require(arrays: dict[str, Any], path: str | Path, names: Iterable[str],
            what: str = "", file_kind: str = "") -> None:
    """Raise ``DamagedFileError`` unless every one of ``names`` is a key of ``arrays``.
    ``what`` names the parts ("section"), ``file_kind`` the file ("feature network file")."""
    missing = [n for n in names if n not in arrays]
    if missing:
        kind = f"{what} " if what else ""
        file = f"not a {file_kind}, or a damaged one" if file_kind else \
            "a damaged file, or another kind of file"
        raise DamagedFileError(path, f"{kind}{', '.join(repr(m) for m in missing)} missing "
                                     f"({file})")


def read_json(array: Any, path: str | Path, name: str, kind: type = dict) -> Any:
    """Decode a text array written by ``text_array``; its value must be a ``kind``."""
    if not isinstance(array, numpy.ndarray) or array.dtype.kind != "U" or array.ndim != 0:
        raise DamagedFileError(path, f"{name} should be JSON text, not an array of "
                                     f"{getattr(array, 'dtype', type(array).__name__)}")
    try:
        value = json.loads(str(array))
    except json.JSONDecodeError as error:
        raise DamagedFileError(path, f"{name}: not valid JSON ({error})") from None
    if not isinstance(value, kind):
        raise DamagedFileError(path, f"{name} should be a JSON {kind.__name__}, "
                                     f"got {type(value).__name__}")
    return value


def check_arrays(arrays: dict[str, numpy.ndarray], path: str | Path, what: str,
                 finite: bool = True) -> None:
    """Each array must hold numbers (not text), and with ``finite``, no NaN or infinity: the
    weights, moments and statistics minigan saves never do, so such a file is damaged."""
    for name, value in arrays.items():
        if value.dtype.kind not in "biuf":
            raise DamagedFileError(path, f"{what} {name} holds {value.dtype} values, not numbers")
        if finite and value.dtype.kind == "f" and not numpy.isfinite(value).all():
            raise DamagedFileError(path, f"{what} {name} holds NaN or infinite values")


def load_module_state(module: Any, state: dict[str, numpy.ndarray], path: str | Path,
                      what: str) -> None:
    """``module.load_state_dict(state)``, with numbers checked and any mismatch (a missing or
    unexpected name, a wrong shape) reported as a ``DamagedFileError`` naming the file."""
    check_arrays(state, path, what)
    try:
        module.load_state_dict(state)
    except (KeyError, ValueError) as error:
        raise DamagedFileError(path, f"the saved {what} does not fit ({_reason(error)})") \
            from None


def remove_orphaned_temporaries(folder: str | Path,
                                patterns: Iterable[str] = ("*.npz.*.tmp", "*.json.*.tmp"),
                                ) -> list[Path]:
    """Delete the temporary files that atomic writes killed halfway left in ``folder`` (they
    are never a complete file: the rename that would finish them did not happen). The default
    patterns match ``atomic_savez`` and ``atomic_write_text`` of .npz and .json files. Returns
    the files removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    orphans = sorted({p for pattern in patterns for p in folder.glob(pattern) if p.is_file()})
    for orphan in orphans:
        orphan.unlink(missing_ok=True)
    return orphans


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


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(path: str | Path, sections: dict[str, dict[str, Any]]) -> Path:
    """Save ``{section: {name: array}}`` to ``path`` (an .npz file)."""
    flat = {}
    for section, arrays in sections.items():
        for name, value in arrays.items():
            flat[f"{section}/{name}"] = numpy.asarray(value)
    return atomic_savez(path, flat)


def load_checkpoint(path: str | Path, sections: Iterable[str] = (),
                    what: str = "minigan checkpoint") -> dict[str, dict[str, numpy.ndarray]]:
    """Read a file written by ``save_checkpoint`` back into ``{section: {name: array}}``.

    ``sections`` names those that must be there; a damaged file or a missing section raises
    ``DamagedFileError`` naming the file.
    """
    result: dict[str, dict[str, numpy.ndarray]] = {}
    for key, value in read_npz(path, what).items():
        section, _, name = key.partition("/")
        result.setdefault(section, {})[name] = value
    require(result, path, sections, what="section", file_kind=what)
    # A step count (an optimizer's "opt_*/step", a run's "progress/step") is checked here, where
    # every checkpoint is read; "history/step" is a column of steps, not a count.
    for section, arrays in result.items():
        step = arrays.get("step")
        if step is not None and (step.ndim == 0 or section.startswith("opt")):
            check_step_count(step, path, f"{section} step")
    return result


def check_step_count(value: numpy.ndarray, path: str | Path, what: str) -> int:
    """A saved step count (an optimizer's, a run's) is one whole number, 0 or more; return it.

    A negative one would make Adam's bias correction 1 - beta**t divide by zero (or worse,
    silently scale the first updates) when training resumes.
    """
    if value.shape != () or value.dtype.kind not in "iu" or int(value) < 0:
        shown = value if value.size < 5 else f"{value.dtype} array of shape {value.shape}"
        raise DamagedFileError(path, f"{what} must be a whole number, 0 or more, not {shown}")
    return int(value)


def text_array(obj: Any) -> numpy.ndarray:
    """Anything JSON can write, as a 0-d string array (npz-safe, no pickle)."""
    return numpy.asarray(json.dumps(obj))


def rng_state(rng: numpy.random.Generator) -> numpy.ndarray:
    """A generator's complete state as text, so a resumed run draws the same numbers."""
    return text_array(rng.bit_generator.state)
