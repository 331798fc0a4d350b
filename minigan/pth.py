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

__all__ = ["LEGACY_MAGIC_NUMBER", "STORAGE_DTYPES", "UnsafePickleError", "read_state_dict"]

# The storage classes a state dict may name, and the dtype of their bytes (little-endian).
STORAGE_DTYPES = {
    "FloatStorage": numpy.float32, "DoubleStorage": numpy.float64,
    "HalfStorage": numpy.float16, "LongStorage": numpy.int64, "IntStorage": numpy.int32,
    "ShortStorage": numpy.int16, "CharStorage": numpy.int8, "ByteStorage": numpy.uint8,
    "BoolStorage": numpy.bool_,
}
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C   # the first pickle of a legacy torch.save file


class UnsafePickleError(pickle.UnpicklingError):
    """The file asked for something a state dict never needs; nothing was run."""


class _StorageType:
    """What the unpickler hands back for ``torch.FloatStorage`` etc.: just a dtype."""

    def __init__(self, name: str):
        self.name, self.dtype = name, numpy.dtype(STORAGE_DTYPES[name])


def _rebuild_tensor(storage: numpy.ndarray, offset: int, size: tuple[int, ...],
                    stride: tuple[int, ...], requires_grad: bool = False,
                    backward_hooks: Any = None, metadata: Any = None) -> numpy.ndarray:
    """Our answer to ``torch._utils._rebuild_tensor_v2``: the (size, stride) view of a storage,
    starting at element ``offset``, copied into a new C-ordered array."""
    if not isinstance(storage, numpy.ndarray):
        raise UnsafePickleError("a tensor was rebuilt from something that is not a storage")
    if backward_hooks:
        raise UnsafePickleError("a tensor carries backward hooks (code): refusing it")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size + stride):
        raise pickle.UnpicklingError(f"bad tensor geometry: size {size}, stride {stride}, "
                                     f"offset {offset}")
    if 0 in size:
        return numpy.zeros(size, dtype=storage.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.size:
        raise pickle.UnpicklingError(f"a tensor of size {size}, stride {stride} at offset "
                                     f"{offset} reaches past its storage of {storage.size} "
                                     f"elements")
    view = numpy.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=tuple(s * storage.itemsize for s in stride),
        writeable=False)
    return numpy.array(view, order="C")


class _StateDictUnpickler(pickle.Unpickler):
    """An unpickler that knows exactly three kinds of names and fetches storages by key."""

    def __init__(self, file: BinaryIO, load_storage: Any, source: str):
        super().__init__(file)
        self._load_storage = load_storage   # (key, dtype, numel) -> 1-d numpy array
        self._storages: dict[str, numpy.ndarray] = {}
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafePickleError(
            f"{self._source} asks to import {module}.{name}, which a state dict of tensors never "
            f"needs; refusing to load it (nothing was run). Only OrderedDict, "
            f"torch._utils._rebuild_tensor_v2 and torch.*Storage are allowed")

    def persistent_load(self, pid: Any) -> numpy.ndarray:
        # ('storage', storage_type, key, location, numel[, view_metadata (legacy format)])
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise UnsafePickleError(f"{self._source}: unexpected persistent id {pid!r:.80}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        if len(pid) == 6 and pid[5] is not None:
            raise pickle.UnpicklingError(f"{self._source}: storage views are not supported")
        if key not in self._storages:
            self._storages[key] = self._load_storage(key, storage_type.dtype, numel)
        return self._storages[key]


def read_state_dict(path: str | os.PathLike) -> dict[str, numpy.ndarray]:
    """Read a ``torch.save``-d state dict: {parameter name: NumPy array} (dtypes kept).

    Raises ``UnsafePickleError`` if the file names anything but an OrderedDict, tensors and
    storages, and ``ValueError`` if it is not a state dict file at all.
    """
    path = os.fspath(path)
    if zipfile.is_zipfile(path):
        state = _read_zip(path)
    else:
        state = _read_legacy(path)
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, numpy.ndarray) for k, v in state.items()):
        raise ValueError(f"{path} does not hold a state dict ({{name: tensor}}), but a "
                         f"{type(state).__name__}")
    return dict(state)


def _read_zip(path: str) -> Any:
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise ValueError(f"{path} is a zip file but not one written by torch.save "
                             f"(no single data.pkl inside)")
        prefix = pickles[0][:-len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in archive.namelist():
            byteorder = archive.read(prefix + "byteorder").decode().strip()

        def load_storage(key: str, dtype: numpy.dtype, numel: int) -> numpy.ndarray:
            raw = archive.read(f"{prefix}data/{key}")
            order = "<" if byteorder == "little" else ">"
            if len(raw) < numel * dtype.itemsize:
                raise pickle.UnpicklingError(f"{path}: storage {key} is shorter than {numel} "
                                             f"elements")
            return numpy.frombuffer(raw, dtype=dtype.newbyteorder(order), count=numel
                                    ).astype(dtype)

        with archive.open(pickles[0]) as f:
            return _StateDictUnpickler(io.BytesIO(f.read()), load_storage, path).load()


def _read_legacy(path: str) -> Any:
    with open(path, "rb") as f:
        kinds: dict[str, tuple[numpy.dtype, int]] = {}

        def note_storage(key: str, dtype: numpy.dtype, numel: int) -> numpy.ndarray:
            # The bytes come after the pickles. First pass: note what each storage is.
            kinds[key] = (dtype, numel)
            return numpy.zeros(numel, dtype=dtype)

        def next_pickle() -> Any:
            return _StateDictUnpickler(f, note_storage, path).load()

        try:
            magic = next_pickle()
        except (pickle.UnpicklingError, EOFError, ValueError) as error:
            if isinstance(error, UnsafePickleError):
                raise
            raise ValueError(f"{path} is neither a zip nor a legacy torch.save file "
                             f"({error})") from None
        if magic != LEGACY_MAGIC_NUMBER:
            raise ValueError(f"{path} is not a torch.save file (wrong magic number)")
        next_pickle()                              # protocol version
        sys_info = next_pickle()                   # {'little_endian': ..., 'type_sizes': ...}
        if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
            raise ValueError(f"{path} was written on a big-endian machine: not supported")
        state_start = f.tell()
        next_pickle()                              # first pass over the state dict
        keys = next_pickle()
        storages = {}
        for key in keys:
            dtype, numel = kinds[str(key)]
            (count,) = struct.unpack("<q", f.read(8))
            raw = f.read(count * dtype.itemsize)
            if count != numel or len(raw) != count * dtype.itemsize:
                raise pickle.UnpicklingError(f"{path}: storage {key} is truncated")
            storages[str(key)] = numpy.frombuffer(raw, dtype=dtype.newbyteorder("<")
                                                  ).astype(dtype)
        # Second pass: the same pickle again, now with the real numbers behind each key.
        f.seek(state_start)
        return _StateDictUnpickler(f, lambda key, dtype, numel: storages[key], path).load()
