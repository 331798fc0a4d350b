"""Read a PyTorch state dict (a ``.pth`` file) into NumPy arrays, without torch and without
running whatever code the file might ask for.

A ``.pth`` file written by ``torch.save(model.state_dict(), path)`` is a pickle. Unpickling is
not reading: a pickle is a small program for a stack machine, and its GLOBAL instruction can name
*any* importable function (``os.system``, say) that a later REDUCE instruction then calls with
arguments from the file. ``pickle.load`` on a file from the internet therefore runs the file's
author's code. This module never calls ``pickle.load`` in general; its unpickler answers GLOBAL
with only what a state dict needs and refuses every other name:

* ``collections.OrderedDict``: the dict itself (and its ``_metadata`` attribute);
* ``torch._utils._rebuild_tensor_v2``: "make a tensor of this shape and stride out of that
  storage", answered here by a function that builds a NumPy array;
* ``torch.FloatStorage``, ``torch.DoubleStorage``, ``torch.LongStorage``, ...: names of storage
  types, which only say which dtype the raw bytes have.

The raw numbers of each tensor are not in the pickle: the pickle refers to them by a key (its
"persistent id"), and they are stored beside it, as little-endian bytes. Two layouts exist:

* the zip format (PyTorch >= 1.6): ``<name>/data.pkl`` is the pickle, ``<name>/data/<key>`` the
  bytes of each storage;
* the legacy format: five pickles in a row (a magic number, a protocol version, facts about the
  machine, the state dict, the list of storage keys), then each storage as an 8-byte element
  count and its bytes.

Reading is bounded as well as safe: a file of a few hundred bytes must not be able to ask for
gigabytes. Before anything is allocated, each storage must fit in the bytes the file really
holds (for a compressed zip, in ``MAX_EXPANSION`` times the file's size), the pickle must be
shorter than ``MAX_PICKLE_BYTES``, and only as many bytes are decompressed as the storage
needs. The pickle is read by Python's own pure-Python unpickler, whose memo is a dict: the C
one grows its memo table to the largest index a file names (13 bytes asking for index 2**27
made it allocate 2 GB). Whatever is wrong with a file -- cut short, crafted, not a state dict
-- raises ``PthError``, one line naming the file and the fault.

    state = read_state_dict("pt_inception-2015-12-05-6726825d.pth")   # {name: numpy array}
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any, BinaryIO

import numpy

__all__ = ["LEGACY_MAGIC_NUMBER", "MAX_EXPANSION", "MAX_PICKLE_BYTES", "PthError",
           "STORAGE_DTYPES", "UnsafePickleError", "read_state_dict"]

# The storage classes a state dict may name, and the dtype of their bytes (little-endian).
STORAGE_DTYPES = {
    "FloatStorage": numpy.float32, "DoubleStorage": numpy.float64,
    "HalfStorage": numpy.float16, "LongStorage": numpy.int64, "IntStorage": numpy.int32,
    "ShortStorage": numpy.int16, "CharStorage": numpy.int8, "ByteStorage": numpy.uint8,
    "BoolStorage": numpy.bool_,
}
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C   # the first pickle of a legacy torch.save file

# The pickle of a state dict holds only names and shapes (about 150 bytes a tensor: 100 KB for
# Inception-v3); the numbers are stored beside it. 1 MiB is ten times what the largest model
# here needs, and keeps the pure-Python unpickler's worst case to seconds.
MAX_PICKLE_BYTES = 2 ** 20
# torch.save stores storages uncompressed: their numbers take as many bytes in memory as in the
# file. A zip recompressed by hand may expand, but never by more than this factor overall (a
# "zip bomb" expands 1000-fold); every array made is counted against it.
MAX_EXPANSION = 16


class PthError(ValueError):
    """A ``.pth`` file that is not a state dict minigan can read, within bounds: damaged, cut
    short, crafted, or of another kind. The message is one line: ``<file>: <the fault>``."""

    def __init__(self, path: str | os.PathLike, problem: str):
        super().__init__(f"{os.fspath(path)}: {' '.join(str(problem).split())}")
        self.path, self.problem = os.fspath(path), problem


class UnsafePickleError(PthError, pickle.UnpicklingError):
    """The file asked for something a state dict never needs; nothing was run."""


class _StorageType:
    """What the unpickler hands back for ``torch.FloatStorage`` etc.: just a dtype."""

    def __init__(self, name: str):
        self.name, self.dtype = name, numpy.dtype(STORAGE_DTYPES[name])


class _Budget:
    """The bytes the arrays of one file may take in all; each is counted before it is made."""

    def __init__(self, path: str, file_size: int, max_expansion: float):
        self.path, self.left = path, int(max_expansion * file_size) + 2 ** 16

    def spend(self, nbytes: int, what: str) -> None:
        if nbytes > self.left:
            raise PthError(self.path, f"{what} would take {nbytes:,} bytes, more than a file of "
                                      f"this size can hold: refusing to allocate it")
        self.left -= nbytes


class _BoundedReader:
    """The file as the unpickler sees it: at most ``limit`` bytes may be read through it, and a
    read is refused *before* a buffer of the size asked for is allocated."""

    def __init__(self, file: BinaryIO, limit: int, path: str):
        self._file, self._left, self._path = file, limit, path

    def _take(self, n: int) -> None:
        if n > self._left:
            raise PthError(self._path, f"the pickle is longer than the {MAX_PICKLE_BYTES:,} "
                                       f"bytes a state dict needs (or asks for a {n:,}-byte "
                                       f"string): refusing to read it")

    def read(self, n: int) -> bytes:
        self._take(n if n >= 0 else self._left + 1)
        data = self._file.read(n)
        self._left -= len(data)
        return data

    def readline(self) -> bytes:
        line = self._file.readline(self._left + 1)
        self._take(len(line))
        self._left -= len(line)
        return line


class _StateDictUnpickler(pickle._Unpickler):
    """An unpickler that knows exactly three kinds of names and fetches storages by key.

    Python's pure-Python unpickler (``pickle._Unpickler``) rather than the C one: its memo is
    a dict, so a file naming memo index 4e9 costs nothing, where the C unpickler first grows
    a table to that size (32 GB). BYTEARRAY8 is refused: it allocates the size the file gives
    before reading a byte, and state dicts never hold byte arrays.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: BinaryIO, load_storage: Any, path: str, budget: _Budget,
                 copy_tensors: bool = True, max_pickle_bytes: int = MAX_PICKLE_BYTES):
        super().__init__(_BoundedReader(file, max_pickle_bytes, path))
        self._load_storage = load_storage   # (key, dtype, numel) -> 1-d numpy array
        self._storages: dict[str, numpy.ndarray] = {}
        self._path, self._budget, self._copy_tensors = path, budget, copy_tensors

    def _refuse_bytearray(self) -> None:
        raise UnsafePickleError(self._path, "the pickle holds a bytearray, which a state dict "
                                            "never does")

    dispatch[pickle.BYTEARRAY8[0]] = _refuse_bytearray

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self._rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafePickleError(
            self._path, f"asks to import {module}.{name}, which a state dict of tensors never "
                        f"needs; refusing to load it (nothing was run). Only OrderedDict, "
                        f"torch._utils._rebuild_tensor_v2 and torch.*Storage are allowed")

    def persistent_load(self, pid: Any) -> numpy.ndarray:
        # ('storage', storage_type, key, location, numel[, view_metadata (legacy format)])
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise UnsafePickleError(self._path, f"unexpected persistent id {pid!r:.80}")
        storage_type, key, numel = pid[1], str(pid[2]), pid[4]
        if len(pid) == 6 and pid[5] is not None:
            raise PthError(self._path, "storage views are not supported")
        if not isinstance(numel, int) or numel < 0:
            raise PthError(self._path, f"storage {key} has {numel!r:.40} elements")
        if key not in self._storages:
            self._storages[key] = self._load_storage(key, storage_type.dtype, numel)
        elif self._storages[key].size != numel or self._storages[key].dtype != storage_type.dtype:
            raise PthError(self._path, f"storage {key} is named twice with different sizes")
        return self._storages[key]

    def _rebuild_tensor(self, storage: Any, offset: Any, size: Any, stride: Any,
                        requires_grad: Any = False, backward_hooks: Any = None,
                        metadata: Any = None) -> numpy.ndarray:
        """Our answer to ``torch._utils._rebuild_tensor_v2``: the (size, stride) view of a
        storage, starting at element ``offset``, copied into a new C-ordered array."""
        if not isinstance(storage, numpy.ndarray):
            raise UnsafePickleError(self._path, "a tensor was rebuilt from something that is "
                                                "not a storage")
        if backward_hooks:
            raise UnsafePickleError(self._path, "a tensor carries backward hooks (code): "
                                                "refusing it")
        if not (isinstance(offset, int) and isinstance(size, tuple | list)
                and isinstance(stride, tuple | list)
                and all(isinstance(s, int) for s in (*size, *stride))):
            raise PthError(self._path, f"bad tensor geometry: size {size!r:.60}, stride "
                                       f"{stride!r:.60}, offset {offset!r:.20}")
        size, stride = tuple(size), tuple(stride)
        if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size + stride):
            raise PthError(self._path, f"bad tensor geometry: size {size}, stride {stride}, "
                                       f"offset {offset}")
        count = 1
        for n in size:
            count *= n
        if count and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= storage.size:
            raise PthError(self._path, f"a tensor of size {size}, stride {stride} at offset "
                                       f"{offset} reaches past its storage of {storage.size} "
                                       f"elements")
        if not self._copy_tensors:
            return storage      # the first pass over a legacy file: only the keys matter
        self._budget.spend(count * storage.itemsize, f"a tensor of size {size}")
        if count == 0:
            return numpy.zeros(size, dtype=storage.dtype)
        view = numpy.lib.stride_tricks.as_strided(
            storage[offset:], shape=size, strides=tuple(s * storage.itemsize for s in stride),
            writeable=False)
        return numpy.array(view, order="C")


def read_state_dict(path: str | os.PathLike, max_pickle_bytes: int = MAX_PICKLE_BYTES,
                    max_expansion: float = MAX_EXPANSION) -> dict[str, numpy.ndarray]:
    """Read a ``torch.save``-d state dict: {parameter name: NumPy array} (dtypes kept).

    Raises ``PthError`` (a ValueError), one line naming the file and the fault, for anything
    wrong with the file: ``UnsafePickleError`` (a PthError) if it names anything but an
    OrderedDict, tensors and storages; a plain PthError if it is damaged, cut short, not a
    state dict, or asks for more memory than its size allows (see ``MAX_PICKLE_BYTES`` and
    ``MAX_EXPANSION``). A file that cannot be opened raises the usual ``OSError``.
    """
    path = os.fspath(path)
    file_size = os.path.getsize(path)      # FileNotFoundError, PermissionError: as usual
    if os.path.isdir(path):
        raise PthError(path, "a folder, not a .pth file")
    budget = _Budget(path, file_size, max_expansion)
    try:
        if zipfile.is_zipfile(path):
            state = _read_zip(path, budget, max_pickle_bytes)
        else:
            state = _read_legacy(path, budget, max_pickle_bytes)
    except PthError:
        raise
    except MemoryError:
        raise PthError(path, "reading it needs more memory than this machine has") from None
    except Exception as error:   # noqa: BLE001 -- any other fault of a file: one named line
        reason = " ".join(str(error).split()) or "no details"
        raise PthError(path, f"damaged or not a torch.save file ({type(error).__name__}: "
                             f"{reason:.200})") from None
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, numpy.ndarray) for k, v in state.items()):
        raise PthError(path, f"does not hold a state dict ({{name: tensor}}), but a "
                             f"{type(state).__name__}")
    return dict(state)


def _read_member(archive: zipfile.ZipFile, name: str, nbytes: int, path: str) -> bytes:
    """The first ``nbytes`` bytes of a zip member, decompressing no more than that."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise PthError(path, f"{name} is missing from the zip") from None
    if info.file_size < nbytes:
        raise PthError(path, f"{name} holds {info.file_size:,} bytes, fewer than the "
                             f"{nbytes:,} its tensors need")
    with archive.open(info) as member:
        data = member.read(nbytes)
    if len(data) < nbytes:
        raise PthError(path, f"{name} is cut short ({len(data):,} of {nbytes:,} bytes)")
    return data


def _read_zip(path: str, budget: _Budget, max_pickle_bytes: int) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise PthError(path, "a zip file but not one written by torch.save (no single "
                                 "data.pkl inside)")
        prefix = pickles[0][:-len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            with archive.open(prefix + "byteorder") as member:
                raw = member.read(16)      # "little" or "big": a few bytes, whatever it claims
            byteorder = raw.decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                raise PthError(path, f"byte order {byteorder!r:.20}: only 'little' and 'big' "
                                     f"exist")
        order = "<" if byteorder == "little" else ">"

        def load_storage(key: str, dtype: numpy.dtype, numel: int) -> numpy.ndarray:
            nbytes = numel * dtype.itemsize
            budget.spend(nbytes, f"storage {key} ({numel:,} elements)")
            raw = _read_member(archive, f"{prefix}data/{key}", nbytes, path)
            return numpy.frombuffer(raw, dtype=dtype.newbyteorder(order)).astype(dtype)

        info = archive.getinfo(pickles[0])
        with archive.open(info) as f:
            data = f.read(max_pickle_bytes + 1)
        if len(data) > max_pickle_bytes:
            raise PthError(path, f"its pickle is longer than the {max_pickle_bytes:,} bytes "
                                 f"a state dict needs: refusing to read it")
        return _StateDictUnpickler(io.BytesIO(data), load_storage, path, budget,
                                   max_pickle_bytes=max_pickle_bytes).load()


def _read_legacy(path: str, budget: _Budget, max_pickle_bytes: int) -> Any:
    file_size = os.path.getsize(path)
    with open(path, "rb") as f:
        kinds: dict[str, tuple[numpy.dtype, int]] = {}

        def note_storage(key: str, dtype: numpy.dtype, numel: int) -> numpy.ndarray:
            # The bytes come after the pickles. First pass: note what each storage is, and
            # refuse one the file is too short to hold, before anything is allocated.
            if numel * dtype.itemsize > file_size:
                raise PthError(path, f"storage {key} claims {numel:,} elements "
                                     f"({numel * dtype.itemsize:,} bytes), more than the whole "
                                     f"file ({file_size:,} bytes)")
            kinds[key] = (dtype, numel)
            # A stand-in that allocates nothing: the first pass only checks the geometry.
            return numpy.lib.stride_tricks.as_strided(numpy.zeros(1, dtype), (numel,), (0,))

        def next_pickle(copy_tensors: bool = False) -> Any:
            return _StateDictUnpickler(f, note_storage, path, budget, copy_tensors,
                                       max_pickle_bytes).load()

        try:
            magic = next_pickle()
        except (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError) as error:
            if isinstance(error, PthError):
                raise
            raise PthError(path, "neither a zip nor a legacy torch.save file") from None
        if magic != LEGACY_MAGIC_NUMBER:
            raise PthError(path, "not a torch.save file (wrong magic number)")
        next_pickle()                              # protocol version
        sys_info = next_pickle()                   # {'little_endian': ..., 'type_sizes': ...}
        if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
            raise PthError(path, "written on a big-endian machine: not supported")
        state_start = f.tell()
        next_pickle()                              # first pass over the state dict
        keys = next_pickle()
        if not isinstance(keys, list):
            raise PthError(path, "the list of storage keys is missing")
        storages = {}
        for key in keys:
            if str(key) not in kinds:
                raise PthError(path, f"storage {key!r:.40} is listed but no tensor uses it")
            dtype, numel = kinds[str(key)]
            (count,) = struct.unpack("<q", f.read(8))
            if count != numel:
                raise PthError(path, f"storage {key} has {count:,} elements, its tensors "
                                     f"{numel:,}")
            budget.spend(numel * dtype.itemsize, f"storage {key} ({numel:,} elements)")
            raw = f.read(numel * dtype.itemsize)
            if len(raw) != numel * dtype.itemsize:
                raise PthError(path, f"storage {key} is cut short")
            storages[str(key)] = numpy.frombuffer(raw, dtype=dtype.newbyteorder("<")
                                                  ).astype(dtype)
        # Second pass: the same pickle again, now with the real numbers behind each key.
        f.seek(state_start)
        return _StateDictUnpickler(f, lambda key, dtype, numel: storages[key], path, budget,
                                   max_pickle_bytes=max_pickle_bytes).load()
