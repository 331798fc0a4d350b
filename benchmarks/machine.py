"""What machine a benchmark ran on: the CPU model, its widest vector instructions, the BLAS
kernels NumPy picked, and the environment variables that change them.

Timings from two CPUs say little side by side unless each says what it ran on: the same DCGAN
step was 1.03-1.14x PyTorch's on AVX2 machines and about 1.6x on an AVX-512 one, because
OpenBLAS and PyTorch's oneDNN choose different kernels for each. Used by bench_step.py,
bench_layers.py and bench_inception.py; `python benchmarks/machine.py` prints the same lines.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys

# Environment variables that choose kernels (OpenBLAS's, oneDNN's), and threads.
KERNEL_VARIABLES = ("OPENBLAS_CORETYPE", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def cpu_model_and_flags() -> tuple[str, set[str]]:
    """The CPU's model name and its feature flags, from /proc/cpuinfo (Linux); elsewhere
    platform's description and no flags."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())   # the first core's
    except OSError:
        return platform.processor() or platform.machine(), set()
    # Under a hypervisor the name can be as vague as "Intel(R) Xeon(R) Processor": the vendor,
    # family and model numbers still tell the generation.
    model = (f"{fields.get('model name', '?')} ({fields.get('vendor_id', '?')} family "
             f"{fields.get('cpu family', '?')} model {fields.get('model', '?')})")
    return model, set(fields.get("flags", "").split())


def vector_instructions(flags: set[str]) -> str:
    """The widest x86 vector instruction set the CPU reports: what BLAS and oneDNN pick
    their kernels by."""
    if "avx512f" in flags:
        return "AVX-512" + (" (with avx512_bf16)" if "avx512_bf16" in flags else "")
    if "avx2" in flags:
        return "AVX2"
    if flags:
        return "neither AVX2 nor AVX-512"
    return "unknown (no /proc/cpuinfo)"


def numpy_blas() -> str:
    """The BLAS NumPy calls and the kernels it chose at run time, e.g. 'openblas 0.3.31,
    SkylakeX kernels, 2 threads', asked of threadpoolctl (a dependency of minigan: the split
    step sets BLAS's threads through it); else NumPy's build configuration, which names the
    build target, not the kernels chosen at run time."""
    import numpy
    from threadpoolctl import threadpool_info

    numpy.ones((2, 2)) @ numpy.ones((2, 2))   # make sure the BLAS library is loaded
    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            return (f"{lib['internal_api']} {lib.get('version')}, "
                    f"{lib.get('architecture')} kernels, {lib.get('num_threads')} threads "
                    f"(threadpoolctl)")
    try:
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return (f"{blas.get('name')} {blas.get('version')} (build configuration: "
                f"{blas.get('openblas configuration', '?')}; run-time kernels unknown)")
    except Exception:   # show_config's layout differs between NumPy versions
        return "unknown"


def torch_installed() -> bool:
    """Whether PyTorch can be imported, without importing it (which would load its libraries
    and threads into this process)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):   # a broken install, or torch blocked in sys.modules
        return False


def output_of(command: list[str], what: str, env: dict[str, str] | None = None) -> str:
    """The standard output of ``command``, run to its end in a process of its own (the
    benchmarks time each side alone, as users run it); RuntimeError naming ``what`` and the
    last line of its errors if it fails."""
    done = subprocess.run(command, capture_output=True, text=True,
                          env=os.environ.copy() if env is None else env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{what} failed: {last}")
    return done.stdout


def last_json_line(output: str) -> dict:
    """The JSON object on the last line of a benchmark's output."""
    return json.loads(output.strip().splitlines()[-1])


def torch_description() -> str:
    """PyTorch's version and the CPU kernels it picks, asked in a separate process (importing it
    here would put its libraries and threads into the process that times minigan)."""
    code = ("import torch; print(f'PyTorch {torch.__version__}, CPU capability '"
            "f'{torch.backends.cpu.get_cpu_capability()}, oneDNN '"
            "f'{torch.backends.mkldnn.is_available()}')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return done.stdout.strip() or "PyTorch: installed, but importing it failed"


def describe(with_torch: bool = False) -> list[str]:
    """Lines that say what the machine and its libraries are (PyTorch's too, if asked)."""
    import numpy

    model, flags = cpu_model_and_flags()
    lines = [f"CPU: {model}, {os.cpu_count()} logical cores, {vector_instructions(flags)}",
             f"NumPy {numpy.__version__}, BLAS: {numpy_blas()}"]
    if with_torch:
        lines.append(torch_description())
    kernels = [f"{name}={os.environ[name]}" for name in KERNEL_VARIABLES if name in os.environ]
    threads = [f"{name}={os.environ[name]}" for name in THREAD_VARIABLES if name in os.environ]
    lines.append("kernel variables: " + (", ".join(kernels) if kernels else
                                         "none set (OPENBLAS_CORETYPE unset: OpenBLAS chose)")
                 + "; threads: " + (", ".join(threads) if threads else "library defaults"))
    return lines


if __name__ == "__main__":
    print("\n".join(describe()))
