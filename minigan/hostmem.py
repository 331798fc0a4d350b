"""Host-memory tuning for the NumPy backend: keep freed memory for reuse, as CuPy's pool does.

Every layer makes temporaries of a few MB per call (im2col's patches, batch norm's x_hat, ...).
By default the C allocator (glibc's malloc) gives each freed block above a threshold straight
back to the operating system, and the next array of that size gets fresh pages that the kernel
must map and zero one by one: measured here, that made a batch-norm forward pass 3 to 4 times
slower than its arithmetic. ``cache_host_memory`` raises the two thresholds, so that freed
blocks stay in the process's heap, where the next array of that size reuses them. The cost: the
process holds on to its peak memory.

``minigan.backend.use_backend("numpy")`` calls it, and so does building a ``GANTrainer`` on the
NumPy backend (a trainer built in Python without ``use_backend``, whose ``train_step`` may be
called without ``fit``): choosing the CPU backend, and training, are when it pays: a DCGAN step
(batch 128, conv_dim 32) makes about 16,000 page faults without it and none with it, and takes
some 15% longer (``benchmarks/bench_host_memory.py``; benchmarks/README.md has the numbers). It
changes no number, only where memory comes from.
"""

from __future__ import annotations

import sys

# glibc's mallopt parameters (malloc.h): M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_host_memory_cached = False


def cache_host_memory() -> bool:
    """Keep freed host memory for reuse (Linux with glibc; a no-op elsewhere).

    Returns True if the setting took effect. Safe to call more than once.
    """
    global _host_memory_cached
    if _host_memory_cached:
        return True
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        # Blocks up to 32 MiB (glibc's largest allowed mmap threshold on 64-bit) come from the
        # heap, and the heap is only shrunk when 1 GiB at its top is free.
        _host_memory_cached = bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)
                                   and libc.mallopt(_M_TRIM_THRESHOLD, 2**30))
    except (OSError, AttributeError):   # not glibc (musl, ...): keep the defaults
        return False
    return _host_memory_cached
