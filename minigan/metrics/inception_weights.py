"""The FID Inception weights: download once, check SHA-256, convert to ``.npz`` once, load.

pytorch-fid publishes the 2015 TensorFlow Inception weights, ported to PyTorch, as one file,
``pt_inception-2015-12-05-6726825d.pth`` (about 91 MB) among its release assets. It is fetched
like the datasets: into ``<data dir>/inception/`` (``$MINIGAN_DATA``, else ``~/.cache/minigan``),
through a ``.part`` file renamed into place only once its SHA-256 matches, resumable by
re-running. Offline, the one-line error names the file and the folder to put it in by hand.

The ``.pth`` file is a pickle; ``minigan.pth.read_state_dict`` reads it without running any code
from it, and the arrays are saved once as ``pt_inception-2015-12-05-6726825d.npz`` beside it
(no pickles; loaded with ``allow_pickle=False``), which later runs read directly.

    net = load_fid_inception()             # FIDInceptionV3 in eval mode, float32, weights loaded
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy

from minigan.checkpoint import atomic_savez
from minigan.data.download import DataError, digest_of, download, resolve_data_dir
from minigan.metrics.inception import FIDInceptionV3
from minigan.pth import read_state_dict

__all__ = ["FID_WEIGHTS_FILE", "FID_WEIGHTS_SHA256", "FID_WEIGHTS_URL", "fid_state_dict",
           "fid_weights_path", "load_fid_inception", "load_fid_weights", "random_fid_weights"]

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   + FID_WEIGHTS_FILE)
FID_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
SUBDIR = "inception"
SOURCE_KEY = "__source_sha256__"   # in the .npz: the SHA-256 of the .pth it was converted from


def fid_weights_path(data_dir: str | os.PathLike | None = None, download_missing: bool = True,
                     url: str = FID_WEIGHTS_URL, sha256: str = FID_WEIGHTS_SHA256,
                     progress: bool = True) -> Path:
    """A checked copy of the ``.pth`` weights file: ``data_dir/inception/`` (or ``data_dir``).

    Downloaded from ``url`` when missing (and ``download_missing``); a copy whose SHA-256 is
    not ``sha256`` is never used. Raises ``DataError`` with a one-line message otherwise.
    """
    root = resolve_data_dir(data_dir)
    candidates = [root / FID_WEIGHTS_FILE, root / SUBDIR / FID_WEIGHTS_FILE]
    found = next((p for p in candidates if p.exists()), None)
    if download_missing:
        return download(url, found or candidates[1], sha256, progress=progress,
                        algorithm="sha256", otherwise="then run again")
    if found is None:
        raise DataError(f"{FID_WEIGHTS_FILE} not found: put it (sha256 {sha256}) in "
                        f"{root / SUBDIR} by hand, or allow downloading it")
    got = digest_of(found, "sha256")
    if got != sha256:
        raise DataError(f"{found} has sha256 {got}, expected {sha256} (incomplete or a "
                        f"different file): delete it and download it again")
    return found


def fid_state_dict(data_dir: str | os.PathLike | None = None, download_missing: bool = True,
                   url: str = FID_WEIGHTS_URL, sha256: str = FID_WEIGHTS_SHA256,
                   progress: bool = True) -> dict[str, numpy.ndarray]:
    """The weights as {name: array}: from the converted ``.npz`` if it is there and was made
    from the right ``.pth``; else the ``.pth`` is fetched, checked, read and converted."""
    root = resolve_data_dir(data_dir)
    for folder in (root, root / SUBDIR):
        state = _read_converted(folder / Path(FID_WEIGHTS_FILE).with_suffix(".npz").name,
                                sha256)
        if state is not None:
            return state
    pth = fid_weights_path(data_dir, download_missing, url, sha256, progress)
    state = read_state_dict(pth)
    atomic_savez(pth.with_suffix(".npz"), {**state, SOURCE_KEY: numpy.asarray(sha256)})
    return state


def _read_converted(path: Path, sha256: str) -> dict[str, numpy.ndarray] | None:
    """The arrays of a converted file, or None if it is missing, unreadable or from another
    source (then it is converted again)."""
    if not path.is_file():
        return None
    try:
        with numpy.load(path, allow_pickle=False) as data:
            if SOURCE_KEY not in data.files or str(data[SOURCE_KEY]) != sha256:
                return None
            return {key: data[key] for key in data.files if key != SOURCE_KEY}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        return None


def load_fid_weights(net: FIDInceptionV3, state: dict[str, Any]) -> FIDInceptionV3:
    """Copy a torchvision-named state dict into ``net``.

    Every parameter and running statistic must be there with its shape; batch norm's
    ``num_batches_tracked`` counters may be missing (files saved by older PyTorch lack them,
    and they play no part in evaluation).
    """
    expected = {name for name, _ in net.named_parameters()}
    expected |= {name for name, _ in net.named_buffers()
                 if not name.endswith("num_batches_tracked")}
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected - {n for n, _ in net.named_buffers()})
    if missing or unexpected:
        raise KeyError(f"these are not FID Inception weights: missing {missing[:5]}"
                       f"{' ...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                       f"{' ...' if len(unexpected) > 5 else ''}")
    net.load_state_dict(state, strict=False)
    return net


def load_fid_inception(data_dir: str | os.PathLike | None = None, dtype: Any = "float32",
                       download_missing: bool = True, progress: bool = True) -> FIDInceptionV3:
    """The FID Inception-v3 with pytorch-fid's weights, in eval mode, on the active backend."""
    net = FIDInceptionV3()
    load_fid_weights(net, fid_state_dict(data_dir, download_missing, progress=progress))
    return net.to(dtype=numpy.dtype(dtype)).eval()


def random_fid_weights(seed: int) -> dict[str, numpy.ndarray]:
    """Float64 weights for every parameter and buffer of the FID Inception, from uniform draws:
    for tests and timings, where the published weights may not be at hand. Drawn in the order
    of the state dict (parameters, then buffers) by ``draw_random_weights``;
    ``benchmarks/torch_inception.py`` draws the same over PyTorch's names."""
    return draw_random_weights(
        ((name, value.shape) for name, value in FIDInceptionV3().state_dict().items()), seed)


def draw_random_weights(names_and_shapes: Any, seed: int) -> dict[str, numpy.ndarray]:
    """{name: float64 array} for each (name, shape), drawn in that order from ``seed``, by what
    the name says the array is.

    Convolutions and fc: U(-b, b) with b = sqrt(6 / fan_in) (He's scale, so the activations
    neither vanish nor explode over 94 layers); batch norm: gamma in [0.5, 1.5], beta and the
    running mean in [-0.1, 0.1], running variance in [0.5, 1.5]. Uniform draws from NumPy's
    Generator are the most stable across NumPy versions.
    """
    rng = numpy.random.default_rng(seed)
    state = {}
    for name, shape in names_and_shapes:
        shape = tuple(shape)
        if name.endswith("num_batches_tracked"):
            state[name] = numpy.zeros((), dtype=numpy.int64)
        elif name.endswith("running_var") or name.endswith("bn.weight"):
            state[name] = rng.uniform(0.5, 1.5, shape)
        elif name.endswith("running_mean") or name.endswith("bias"):
            state[name] = rng.uniform(-0.1, 0.1, shape)
        else:
            bound = numpy.sqrt(6.0 / int(numpy.prod(shape[1:])))
            state[name] = rng.uniform(-bound, bound, shape)
    return state
