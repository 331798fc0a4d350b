"""How many threads NumPy's matrix products run on, and running them on one for a while.

NumPy hands every matrix product to the BLAS library it was built with (OpenBLAS in NumPy's
wheels), which runs it on as many threads as it was given (``OMP_NUM_THREADS`` or
``OPENBLAS_NUM_THREADS``, else one per core); everything else NumPy does runs on one core.
Two places ask: the split step (``minigan/gan/split_step.py``), which runs each half of a batch
in a thread of its own with BLAS at one thread, and the fast input gradient of a convolution
(``minigan/ops/input_grad_fast.py``), whose choice of way depends on whether its product has the
cores to itself. ``threadpoolctl`` finds the library and asks it.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager, nullcontext
from typing import Any


@functools.lru_cache(maxsize=1)
def _blas() -> Any:
    """threadpoolctl's handle on the BLAS libraries NumPy loaded (None if it finds none)."""
    from threadpoolctl import ThreadpoolController

    blas = ThreadpoolController().select(user_api="blas")
    return blas if blas.lib_controllers else None


def blas_threads() -> int:
    """How many threads NumPy's matrix products run on now (1 if no BLAS library was found)."""
    blas = _blas()
    return 1 if blas is None else min(lib.num_threads for lib in blas.lib_controllers)


def one_blas_thread() -> AbstractContextManager:
    """BLAS at one thread inside a ``with`` block, as before after it."""
    blas = _blas()
    return nullcontext() if blas is None else blas.limit(limits=1)
