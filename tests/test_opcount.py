"""Counting array operations: on a GPU each one is a kernel launch, so their number is what a
small model's step costs there. ``minigan.opcount`` counts them on NumPy; these tests hold it to
exact counts for short, known sequences, so that the benchmark's "array operations per step"
means what it says.
"""

import numpy as np
import pytest

from minigan import backend
from minigan.backend import fuse, to_device, to_numpy
from minigan.opcount import CountingArray, count_array_ops


@pytest.fixture(autouse=True)
def _numpy_backend():
    if backend.backend_name() != "numpy":
        pytest.skip("counts array operations on the NumPy backend only")


def test_a_known_sequence_is_counted_exactly():
    with count_array_ops() as counter:
        xp = backend.array_module()
        x = xp.zeros((4, 3), dtype=np.float32)      # 1: a memset on a GPU
        w = xp.ones((3, 2), dtype=np.float32)       # 2: a fill kernel
        y = x @ w                                   # 3: matmul
        y += 1                                      # 4: add, in place
        z = (y * 2 - 1).sum(axis=0)                 # 5, 6, 7: multiply, subtract, sum
        rows = y.T                                  # a view: free
        flat = y.reshape(-1)                        # a view of a contiguous array: free
        copied = xp.ascontiguousarray(rows)         # 8: a copy
        y[...] = 0                                  # 9: a fill
        m = y.mean()                                # 10: one reduction, not a sum and a divide
        empty = xp.empty((5,), dtype=np.float32)    # memory from the pool: no launch
    assert counter.by_name == {"zeros": 1, "ones": 1, "matmul": 1, "add": 1, "multiply": 1,
                               "subtract": 1, "sum": 1, "ascontiguousarray": 1, "setitem": 1,
                               "mean": 1}
    assert counter.total == 10
    assert counter.host_reads == 0
    for a in (x, w, y, z, rows, flat, copied, m, empty):
        assert isinstance(a, CountingArray)


def test_values_are_numpy_values():
    with count_array_ops():
        xp = backend.array_module()
        a = xp.asarray(np.arange(6, dtype=np.float64).reshape(2, 3))
        b = xp.exp(a) / (1 + a)
    expected = np.exp(np.arange(6.0).reshape(2, 3)) / (1 + np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(np.asarray(b), expected)
    assert b.dtype == np.float64


def test_copies_conversions_and_host_reads():
    with count_array_ops() as counter:
        host = np.arange(8, dtype=np.float32)
        a = to_device(host)                  # 1: host to device
        same = a.astype(np.float32, copy=False)      # same dtype, no copy: free
        b = a.astype(np.float64)             # 2: a conversion kernel
        picked = a[np.array([0, 2])]         # 3: a gather (advanced indexing copies)
        sliced = a[2:6]                      # a view: free
        strided = a.reshape(2, 4).T.reshape(-1)      # 4: this reshape must copy
        total = float(a.sum())               # 5: sum; and one host read
        back = to_numpy(b)                   # a second host read
    assert counter.by_name == {"to_device": 1, "astype": 1, "gather": 1, "reshape": 1, "sum": 1}
    assert counter.host_reads == 2
    assert total == 28.0 and same is a
    np.testing.assert_array_equal(picked, [0, 2])
    np.testing.assert_array_equal(sliced, [2, 3, 4, 5])
    np.testing.assert_array_equal(strided, [0, 4, 1, 5, 2, 6, 3, 7])
    assert type(back) is np.ndarray


@fuse
def _scale_shift(x, a, b):
    y = x * a
    y += b
    return y


def test_a_fused_function_counts_once_and_its_body_not_at_all():
    with count_array_ops() as counter:
        xp = backend.array_module()
        x = xp.ones((3, 4), dtype=np.float32)
        y = _scale_shift(x, np.float32(2), np.float32(1))
    assert counter.by_name == {"ones": 1, "_scale_shift": 1}
    np.testing.assert_array_equal(y, np.full((3, 4), 3.0, np.float32))


def test_reset_and_leaving_the_block_restore_plain_numpy():
    with count_array_ops() as counter:
        a = backend.array_module().ones(3)
        a = a + a
        counter.reset()
        assert counter.total == 0
        a * a
        assert counter.total == 1
    assert backend.array_module() is np
    assert backend.get_array_module(np.ones(2)) is np


def test_counting_is_not_reentrant():
    with count_array_ops():
        with pytest.raises(RuntimeError, match="already active"):
            with count_array_ops():
                pass
