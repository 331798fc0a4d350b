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
