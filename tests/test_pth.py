"""Reading a PyTorch ``.pth`` state dict without torch, and without running code from the file.

A ``.pth`` file is a pickle, and a pickle can name any function for the unpickler to call.
``minigan.pth.read_state_dict`` allows only the names a state dict needs (an OrderedDict, a
tensor-rebuilding call, storage types). These tests show that:

* state dicts written by ``torch.save`` (zip and legacy formats; float32, float64 and int64
  tensors, a 0-d one, a transposed one) read back exactly: from two tiny files recorded once
  (``tests/fixtures/``, so the check runs without torch) and, when torch is installed, from
  files ``torch.save`` writes during the test;
* a pickle that would call ``os.system``, or that imports any other class or function, is
  refused with an error naming what it asked for, and nothing is run.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from minigan.pth import UnsafePickleError, read_state_dict

FIXTURES = Path(__file__).parent / "fixtures"

# The tensors inside the two recorded files (see the test below that re-creates them).
EXPECTED = {
    "conv.weight": (np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) / 8),
    "bn.running_var": np.array([0.5, 2.0]),
    "bn.num_batches_tracked": np.array(7, dtype=np.int64),
    "fc.weight": (np.arange(6, dtype=np.float64).reshape(2, 3) - 2.5).T,
}


def assert_same_state(state, expected):
    assert list(state) == list(expected)
    for name, value in expected.items():
        assert state[name].dtype == value.dtype, name
        assert state[name].shape == value.shape, name
        np.testing.assert_array_equal(state[name], value)


@pytest.mark.parametrize("name", ["tiny_state_dict_zip.pth", "tiny_state_dict_legacy.pth"])
def test_recorded_files_read_back_exactly(name):
    assert_same_state(read_state_dict(FIXTURES / name), EXPECTED)


@pytest.mark.parametrize("legacy", [False, True])
def test_what_torch_save_writes_reads_back_exactly(tmp_path, legacy):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    state = collections.OrderedDict(
        w32=torch.from_numpy(rng.standard_normal((4, 3, 2, 5)).astype(np.float32)),
        w64=torch.from_numpy(rng.standard_normal((7,))),
        steps=torch.tensor(3),
        strided=torch.from_numpy(rng.standard_normal((3, 4))).t()[1:],  # a view with an offset
    )
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
    state.update(model.state_dict())   # a real module's state dict, with its _metadata
    path = tmp_path / "state.pth"
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    assert_same_state(read_state_dict(path), {k: v.numpy() for k, v in state.items()})


def test_the_recorded_files_hold_what_torch_reads_back():
    """The fixtures are what ``torch.load`` makes of EXPECTED (checked when torch is here)."""
    torch = pytest.importorskip("torch")
    for name in ["tiny_state_dict_zip.pth", "tiny_state_dict_legacy.pth"]:
        loaded = torch.load(FIXTURES / name)
        assert_same_state({k: v.numpy() for k, v in loaded.items()}, EXPECTED)


class RunsACommand:
    """What an attacker would pickle: unpickling it calls os.system(...)."""

    def __init__(self, flag: Path):
        self.flag = flag

    def __reduce__(self):
        return (os.system, (f"touch {self.flag}",))


def zip_with_pickle(path: Path, payload: bytes) -> Path:
    """A zip laid out like torch.save's, whose data.pkl is ``payload``."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/version", "3\n")
    return path


def test_a_pickle_that_runs_a_command_is_refused_and_runs_nothing(tmp_path):
    flag = tmp_path / "PWNED"
    evil = pickle.dumps({"weight": RunsACommand(flag)}, protocol=2)
    legacy = tmp_path / "evil_legacy.pth"
    legacy.write_bytes(evil)                # the legacy layout starts with a bare pickle
    for path in [zip_with_pickle(tmp_path / "evil.pth", evil), legacy]:
        with pytest.raises(UnsafePickleError, match=r"system.*refusing") as info:
            read_state_dict(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert not flag.exists()


@pytest.mark.parametrize("module,name", [
    ("builtins", "eval"),
    ("torch.nn.modules.conv", "Conv2d"),     # a whole module object, not a state dict
    ("collections", "Counter"),
    ("torch._utils", "_rebuild_parameter"),  # close to what is allowed, but not it
    ("numpy.core.multiarray", "_reconstruct"),
])
def test_any_other_import_is_refused_by_name(tmp_path, module, name):
    payload = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R."   # GLOBAL, (), REDUCE
    path = zip_with_pickle(tmp_path / "other.pth", payload)
    with pytest.raises(UnsafePickleError, match=f"{module}.{name}"):
        read_state_dict(path)


def test_a_storage_reference_of_the_wrong_form_is_refused(tmp_path):
    class Pid(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", "not a storage type", "0", "cpu", 1) if obj == "x" else None

    buffer = io.BytesIO()
    Pid(buffer, protocol=2).dump({"w": "x"})
    with pytest.raises(UnsafePickleError, match="persistent id"):
        read_state_dict(zip_with_pickle(tmp_path / "pid.pth", buffer.getvalue()))


def test_files_that_are_not_state_dicts_are_clear_errors(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="neither a zip nor a legacy torch.save file"):
        read_state_dict(tmp_path / "junk.pth")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="not one written by torch.save"):
        read_state_dict(tmp_path / "other.zip")
    plain = zip_with_pickle(tmp_path / "list.pth", pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(ValueError, match="does not hold a state dict"):
        read_state_dict(plain)


# ------------------------------------------------------------------ bounded reading (issue 22)
# Crafted files, written by hand as pickle opcodes so that each fault is exactly one thing.
# Every one must end in one PthError line naming the file, never in TypeError, KeyError,
# struct.error, BadZipFile or MemoryError, and never by allocating what the file asks for.

def p(value) -> bytes:
    """The opcodes that push ``value`` (an int or a str), without PROTO and STOP."""
    return pickle.dumps(value, protocol=2)[2:-1]


def glob(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def tensor_pickle(numel=4, size=(2, 2), stride=(2, 1), offset=0, key="0", name="w",
                  storage="FloatStorage") -> bytes:
    """A state dict {name: a float tensor} as torch.save pickles it (protocol 2)."""
    pid = (b"(" + p("storage") + glob("torch", storage) + p(key) + p("cpu") + p(numel)
           + b"tQ")                                                     # BINPERSID
    shape = b"(" + b"".join(p(s) for s in size) + b"t" if isinstance(size, tuple) else p(size)
    strides = b"(" + b"".join(p(s) for s in stride) + b"t"
    rebuild = (glob("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + p(offset) + shape
               + strides + b"\x89" + glob("collections", "OrderedDict") + b")R" + b"tR")
    return (b"\x80\x02" + glob("collections", "OrderedDict") + b")R" + p(name) + rebuild
            + b"s.")


def torch_zip(path: Path, data_pkl: bytes, storages: dict[str, bytes],
              byteorder: str | None = None, compress: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compress) as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        if byteorder is not None:
            archive.writestr("archive/byteorder", byteorder)
        for key, raw in storages.items():
            archive.writestr(f"archive/data/{key}", raw)
    return path


def legacy_file(path: Path, state_pkl: bytes, keys: list, storages: bytes) -> Path:
    from minigan.pth import LEGACY_MAGIC_NUMBER

    sys_info = {"protocol_version": 1001, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    path.write_bytes(pickle.dumps(LEGACY_MAGIC_NUMBER, 2) + pickle.dumps(1001, 2)
                     + pickle.dumps(sys_info, 2) + state_pkl + pickle.dumps(keys, 2)
                     + storages)
    return path


FOUR_FLOATS = np.arange(4, dtype="<f4").tobytes()


def assert_one_line(error, path, *words):
    from minigan.pth import PthError

    assert isinstance(error, PthError) and isinstance(error, ValueError)
    message = str(error)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    for word in words:
        assert word in message, message


def test_the_hand_written_pickles_read_back_when_nothing_is_wrong(tmp_path):
    """The crafting helpers make valid files: each fault below is the only one."""
    expected = {"w": np.arange(4, dtype=np.float32).reshape(2, 2)}
    zipped = torch_zip(tmp_path / "ok.pth", tensor_pickle(), {"0": FOUR_FLOATS}, "little")
    assert_same_state(read_state_dict(zipped), expected)
    legacy = legacy_file(tmp_path / "ok_legacy.pth", tensor_pickle(), ["0"],
                         struct.pack("<q", 4) + FOUR_FLOATS)
    assert_same_state(read_state_dict(legacy), expected)
    big = torch_zip(tmp_path / "big.pth", tensor_pickle(),
                    {"0": np.arange(4, dtype=">f4").tobytes()}, "big")
    assert_same_state(read_state_dict(big), expected)


def test_a_zip_bomb_is_refused_before_it_is_expanded(tmp_path):
    """Issue 22: a 1 MB zip took 2 GB and 34 s. Here 32 MiB of zeros deflate to 32 KB."""
    numel = 2 ** 23
    path = torch_zip(tmp_path / "bomb.pth", tensor_pickle(numel=numel, size=(numel,),
                                                          stride=(1,)),
                     {"0": bytes(4 * numel)}, compress=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 100_000
    with pytest.raises(ValueError) as info:
        read_state_dict(path)
    assert_one_line(info.value, path, "storage 0", "more than a file of this size can hold")


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_a_400_byte_file_asking_for_gigabytes_is_refused_before_allocating(tmp_path, layout):
    """Issue 22: a 400-byte file asked for 8-13 GiB. Here a storage of 2**31 floats."""
    numel = 2 ** 31
    state = tensor_pickle(numel=numel, size=(numel,), stride=(1,))
    if layout == "zip":
        path = torch_zip(tmp_path / "huge.pth", state, {"0": FOUR_FLOATS})
    else:
        path = legacy_file(tmp_path / "huge.pth", state, ["0"], struct.pack("<q", numel))
    assert path.stat().st_size < 1000
    with pytest.raises(ValueError) as info:
        read_state_dict(path)
    assert_one_line(info.value, path, "storage 0")


def test_a_memo_index_of_four_billion_costs_nothing(tmp_path):
    """13 bytes with LONG_BINPUT 2**32-1: the C unpickler first grows its memo to that size
    (64 GB; 2**27 already took 2 GB and 14 s here). The pure-Python one uses a dict."""
    payload = b"\x80\x02N" + b"r" + struct.pack("<I", 2 ** 32 - 1) + b"."
    path = torch_zip(tmp_path / "memo.pth", payload, {})
    with pytest.raises(ValueError) as info:
        read_state_dict(path)
    assert_one_line(info.value, path, "does not hold a state dict")


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_a_pickle_longer_than_the_limit_is_refused(tmp_path, layout):
    """Issue 22: a 512 MiB pickle ran past two minutes. Here 2 MiB of list-and-pop ops."""
    endless = b"\x80\x02" + b"]0" * 2 ** 20 + b"N."
    if layout == "zip":
        path = torch_zip(tmp_path / "long.pth", endless, {})
    else:
        path = legacy_file(tmp_path / "long.pth", endless, [], b"")
    with pytest.raises(ValueError) as info:
        read_state_dict(path)
    assert_one_line(info.value, path, "longer than")


@pytest.mark.parametrize("opcodes", [
    b"\x80\x05\x96" + struct.pack("<Q", 2 ** 40) + b".",   # BYTEARRAY8 of 1 TiB
    b"\x80\x04\x8d" + struct.pack("<Q", 2 ** 40) + b".",   # BINUNICODE8 of 1 TiB
    b"\x80\x04\x8e" + struct.pack("<Q", 2 ** 40) + b".",   # BINBYTES8 of 1 TiB
    b"\x80\x04\x95" + struct.pack("<Q", 2 ** 40) + b".",   # FRAME of 1 TiB
], ids=["bytearray8", "binunicode8", "binbytes8", "frame"])
def test_an_opcode_that_announces_a_terabyte_is_refused_before_allocating(tmp_path, opcodes):
    path = torch_zip(tmp_path / "tera.pth", opcodes, {})
    with pytest.raises(ValueError) as info:
        read_state_dict(path)
    assert_one_line(info.value, path)


def test_a_byte_order_other_than_little_or_big_is_refused(tmp_path):
    """Issue 22: "middle" was read as big-endian."""
    path = torch_zip(tmp_path / "middle.pth", tensor_pickle(), {"0": FOUR_FLOATS}, "middle")
    with pytest.raises(ValueError) as info:
        read_state_dict(path)
    assert_one_line(info.value, path, "byte order 'middle'")


def crc_damaged(tmp_path: Path) -> Path:
    path = torch_zip(tmp_path / "crc.pth", tensor_pickle(), {"0": FOUR_FLOATS})
    raw = bytearray(path.read_bytes())
    at = raw.index(b"_rebuild_tensor_v2")
    raw[at] ^= 0x20                               # one flipped bit inside data.pkl
    path.write_bytes(bytes(raw))
    return path


# Each was a traceback of its own before (the exception it raised is in the id).
CRAFTED = {
    "TypeError-size-not-a-tuple": lambda d: torch_zip(
        d / "f.pth", tensor_pickle(size=5), {"0": FOUR_FLOATS}),
    "TypeError-numel-a-string": lambda d: torch_zip(
        d / "f.pth", tensor_pickle(numel="four"), {"0": FOUR_FLOATS}),
    "negative-numel": lambda d: torch_zip(
        d / "f.pth", tensor_pickle(numel=-4), {"0": FOUR_FLOATS}),
    "KeyError-storage-missing-from-zip": lambda d: torch_zip(
        d / "f.pth", tensor_pickle(), {}),
    "KeyError-unknown-storage-key-legacy": lambda d: legacy_file(
        d / "f.pth", tensor_pickle(), ["7"], struct.pack("<q", 4) + FOUR_FLOATS),
    "struct.error-legacy-cut-before-the-count": lambda d: legacy_file(
        d / "f.pth", tensor_pickle(), ["0"], b"\x04\x00"),
    "legacy-storage-cut-short": lambda d: legacy_file(
        d / "f.pth", tensor_pickle(), ["0"], struct.pack("<q", 4) + FOUR_FLOATS[:6]),
    "legacy-count-differs": lambda d: legacy_file(
        d / "f.pth", tensor_pickle(), ["0"], struct.pack("<q", 3) + FOUR_FLOATS),
    "BadZipFile-bad-crc": crc_damaged,
    "zip-member-shorter-than-storage": lambda d: torch_zip(
        d / "f.pth", tensor_pickle(), {"0": FOUR_FLOATS[:8]}),
    "tensor-past-its-storage": lambda d: torch_zip(
        d / "f.pth", tensor_pickle(size=(3, 2)), {"0": FOUR_FLOATS}),
    "MemoryError-stride-0-tensor-of-a-billion": lambda d: torch_zip(
        d / "f.pth", tensor_pickle(size=(2 ** 30,), stride=(0,)), {"0": FOUR_FLOATS}),
    "empty-file": lambda d: (d / "f.pth").write_bytes(b"") and d / "f.pth" or d / "f.pth",
    "truncated-zip": lambda d: (d / "f.pth").write_bytes(
        (FIXTURES / "tiny_state_dict_zip.pth").read_bytes()[:-30]) and d / "f.pth",
    "truncated-legacy": lambda d: (d / "f.pth").write_bytes(
        (FIXTURES / "tiny_state_dict_legacy.pth").read_bytes()[:300]) and d / "f.pth",
    "a-folder": lambda d: d,
    "keys-not-a-list-legacy": lambda d: legacy_file(
        d / "f.pth", tensor_pickle(), "0", struct.pack("<q", 4) + FOUR_FLOATS),
}


@pytest.mark.parametrize("make", CRAFTED.values(), ids=CRAFTED.keys())
def test_every_crafted_fault_is_one_pth_error_line_naming_the_file(tmp_path, make):
    path = make(tmp_path)
    with pytest.raises(ValueError) as info:
        read_state_dict(path)
    assert_one_line(info.value, path)
