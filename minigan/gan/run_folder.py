"""Everything a training run writes into its folder, and reads back from it.

    config.json                 every setting of the run                   write_config
    checkpoint.npz              G, D, both Adams, random states, progress  save_training_state,
                                and history (``--resume`` continues it)    load_training_state
    checkpoint_epoch_NNN.npz    copies of earlier epochs' checkpoints      save_snapshot
    real_samples.png            a grid of real training images             save_real_samples
    samples/*.png, samples.gif  G(fixed z) after each epoch, animated      save_sample_grid
    losses.csv, metrics.csv,    the loss history, the scores, their plot   write_logs
    losses.png
    samples.png,                G's pictures, written by examples/generate.py
    interpolation.png

The functions take plain data (arrays, dicts, modules, optimizers, paths), never the trainer:
the trainer decides *when* to save, this module *what* and *how*. A checkpoint is written
atomically (``minigan.checkpoint``); reading one back checks every part and turns any damage
into one ``DamagedFileError`` naming the file. ``load_generator`` rebuilds a trained G for
``examples/generate.py`` and ``examples/evaluate.py``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy

from minigan.checkpoint import (
    DamagedFileError,
    atomic_write_text,
    check_arrays,
    load_checkpoint,
    load_module_state,
    read_json,
    require,
    rng_state,
    save_checkpoint,
    text_array,
)
from minigan.gan import dcgan
from minigan.viz import plot_losses, save_gif, save_image_grid

CHECKPOINT = "checkpoint.npz"
CONFIG = "config.json"
HISTORY_COLUMNS = ("step", "epoch", "d_loss", "g_loss", "d_real", "d_fake")
PROGRESS_COUNTERS = ("epoch", "step", "batch_in_epoch")
TRAINING_SECTIONS = ("G", "D", "opt_g", "opt_d", "rng", "progress", "history")
# Every file a training run writes into its folder, as glob patterns, and the two pictures that
# examples/generate.py writes beside the checkpoint by default. Left in place under a new run,
# any of them would be taken for the new run's (an earlier run's metrics.csv or snapshots).
TRAINING_FILES = (CONFIG, CHECKPOINT, "checkpoint_epoch_*.npz", "real_samples.png",
                  "samples/epoch_*.png", "samples/step_*.png", "samples.gif", "losses.csv",
                  "metrics.csv", "losses.png")
GENERATED_FILES = ("samples.png", "interpolation.png")
# What a run writes before its first checkpoint: all that a run that failed early leaves.
STARTUP_FILES = (CONFIG, "real_samples.png")


# ---------------------------------------------------------------------- config.json
def write_config(folder: str | Path, config: dict[str, Any]) -> Path:
    """``config.json``: the run's settings, as JSON (written atomically)."""
    return atomic_write_text(Path(folder) / CONFIG, json.dumps(config, indent=2) + "\n")


def read_config(folder: str | Path) -> dict[str, Any] | None:
    """The settings in ``folder/config.json``, or None if there is none. A file that is not a
    JSON object raises ``DamagedFileError`` naming it."""
    path = Path(folder) / CONFIG
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DamagedFileError(path, f"not readable as JSON ({error})") from None
    if not isinstance(config, dict):
        raise DamagedFileError(path, "should hold a JSON object of settings")
    return config


def earlier_run_files(folder: str | Path, patterns: tuple[str, ...] = TRAINING_FILES,
                      ) -> list[Path]:
    """The files in ``folder`` that match ``patterns`` (by default, those a training run
    writes): an earlier run's, sorted."""
    folder = Path(folder)
    return sorted(path for pattern in patterns for path in folder.glob(pattern)
                  if path.is_file())


def only_a_failed_start(folder: str | Path, files: list[Path]) -> bool:
    """Whether ``files`` (an earlier run's, in ``folder``) are only what a run writes before its
    first checkpoint: a run that stopped early (an error, a learner's crashing kernel) left
    nothing worth keeping, and the same command run again should simply start afresh."""
    return all(path.parent == Path(folder) and path.name in STARTUP_FILES for path in files)


def remove_earlier_run(folder: str | Path) -> list[Path]:
    """Delete an earlier run's files from ``folder`` (``TRAINING_FILES`` and
    ``GENERATED_FILES``), so that a new run there (``--overwrite``) leaves nothing of the old
    one behind; anything else in the folder is kept. Returns what was deleted."""
    removed = earlier_run_files(folder, TRAINING_FILES + GENERATED_FILES)
    for path in removed:
        path.unlink()
    return removed


# ---------------------------------------------------------------------- pictures and logs
def save_real_samples(images: Any, folder: str | Path, name: str = "real_samples.png") -> Path:
    """A grid of real training images (N, C, H, W) in [-1, 1], as PyTorch's DCGAN example saves
    at the start: what the generator's grids should come to look like."""
    return save_image_grid(images, Path(folder) / name)


def save_sample_grid(images: Any, folder: str | Path, name: str, frames: list[str]) -> Path:
    """``samples/<name>.png`` from images (N, C, H, W) in [-1, 1]; its name is appended to
    ``frames`` and ``samples.gif`` is made again from all of them."""
    folder = Path(folder)
    path = save_image_grid(images, folder / "samples" / f"{name}.png")
    frames.append(f"samples/{name}.png")   # relative: the run folder can move
    # The GIF is a convenience: frames deleted or damaged since (a moved checkpoint, a cleaned
    # samples/ folder) are left out rather than stopping the run.
    save_gif([folder / f for f in frames], folder / "samples.gif", skip_unreadable=True)
    return path


def write_logs(folder: str | Path, history: dict[str, list[float]],
               metrics: dict[str, list[float]]) -> None:
    """losses.csv (a row per step, ``HISTORY_COLUMNS``), metrics.csv (a row per evaluation)
    and losses.png."""
    folder = Path(folder)
    with open(folder / "losses.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HISTORY_COLUMNS)
        writer.writerows((int(step), int(epoch), *losses) for step, epoch, *losses in zip(
            *(history[c] for c in HISTORY_COLUMNS)))
    if metrics:
        keys = list(metrics)
        with open(folder / "metrics.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(keys)
            for row in zip(*(metrics[k] for k in keys)):
                writer.writerow([int(v) if k == "epoch" else v for k, v in zip(keys, row)])
    if history["step"]:
        plot_losses(history, folder / "losses.png", metrics)


# ---------------------------------------------------------------------- checkpoints
def save_snapshot(folder: str | Path, epoch: int, keep: int | None) -> Path | None:
    """Copy the checkpoint to ``checkpoint_epoch_NNN.npz`` (if ``keep`` is not 0) and delete
    the oldest copies beyond the last ``keep`` (None: keep all). A late mode collapse can then
    be undone: generate from, or resume (copied to checkpoint.npz), an earlier epoch."""
    if keep == 0:
        return None
    folder = Path(folder)
    path = folder / f"checkpoint_epoch_{epoch:03d}.npz"
    tmp = path.with_name(path.name + ".copy.tmp")   # a *.npz.*.tmp name: see cli's cleanup
    shutil.copyfile(folder / CHECKPOINT, tmp)
    os.replace(tmp, path)         # atomic, like the checkpoint itself
    if keep is not None:
        for old in sorted(folder.glob("checkpoint_epoch_*.npz"))[:-keep]:
            old.unlink()
    return path


def save_training_state(path: str | Path, G: Any, D: Any, opt_g: Any, opt_d: Any,
                        rngs: dict[str, numpy.random.Generator], progress: dict[str, Any],
                        history: dict[str, list[float]], metrics: dict[str, list[float]],
                        train_config: dict[str, Any], run_config: dict[str, Any]) -> Path:
    """Write everything a resumed run needs into one checkpoint (atomically).

    ``rngs``: the random generators by name ("z", "dropout0", ...); ``progress``: the counters
    ``epoch``, ``step``, ``batch_in_epoch`` and the list ``sample_frames``; ``history``: the
    ``HISTORY_COLUMNS``; ``train_config``: the TrainConfig as a dict; ``run_config``: every
    setting of the run (config.json's)."""
    sections = {
        "G": G.state_dict(), "D": D.state_dict(),
        "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
        "rng": {name: rng_state(rng) for name, rng in rngs.items()},
        "progress": {**{k: numpy.asarray(progress[k]) for k in PROGRESS_COUNTERS},
                     "sample_frames": text_array(progress["sample_frames"])},
        "history": {k: numpy.asarray(v) for k, v in history.items()},
        "metrics": {k: numpy.asarray(v) for k, v in metrics.items()},
        "config": {"json": text_array(train_config), "run": text_array(run_config)},
    }
    if hasattr(G, "config"):
        sections["generator"] = {"json": text_array(G.config())}
    return save_checkpoint(path, sections)


def load_training_state(path: str | Path, G: Any, D: Any, opt_g: Any, opt_d: Any,
                        rngs: dict[str, numpy.random.Generator]) -> dict[str, Any]:
    """Restore what ``save_training_state`` wrote into G, D, the optimizers and the random
    generators (in place), and return the rest: ``progress`` (the counters and
    ``sample_frames``), ``history`` and ``metrics``.

    Every part is checked before anything is changed; any damage, a missing part, or weights
    that do not fit these networks raise one ``DamagedFileError`` naming the file.
    """
    sections = load_checkpoint(path, TRAINING_SECTIONS, what="trainer checkpoint")
    progress, states = _checked_progress_and_rng_states(sections, path, list(rngs))
    load_module_state(G, sections["G"], path, "G")
    load_module_state(D, sections["D"], path, "D")
    for name, optimizer in (("opt_g", opt_g), ("opt_d", opt_d)):
        try:
            optimizer.load_state_dict(sections[name])
        except (KeyError, ValueError) as error:
            raise DamagedFileError(path, f"the saved {name} state does not fit "
                                         f"({error})") from None
    try:
        for name, rng in rngs.items():
            rng.bit_generator.state = states[name]
    except (KeyError, TypeError, ValueError) as error:
        raise DamagedFileError(path, f"a random generator state is damaged ({error})") from None
    history = {k: [float(v) for v in sections["history"][k]] for k in HISTORY_COLUMNS}
    metrics = {k: [float(v) for v in a] for k, a in sections.get("metrics", {}).items()}
    return {"progress": progress, "history": history, "metrics": metrics}


def _checked_progress_and_rng_states(sections: dict[str, dict[str, numpy.ndarray]],
                                     path: str | Path, rng_names: list[str],
                                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The progress (counters as ints, sample frames as a list) and the random generators'
    states of a checkpoint, every part checked."""
    for name in ("opt_g", "opt_d"):
        check_arrays(sections[name], path, f"{name} state")
    rngs = sections["rng"]
    require(rngs, path, rng_names, what="random generator")
    progress = sections["progress"]
    require(progress, path, ["sample_frames"], what="progress entry")
    checked: dict[str, Any] = _checked_counters(progress, path)
    require(sections["history"], path, HISTORY_COLUMNS, what="history column")
    # Losses may be anything finite; a NaN run stops before it saves, so none are NaN.
    check_arrays(sections["history"], path, "history")
    frames = read_json(progress["sample_frames"], path, "the sample frames", kind=list)
    states = {name: read_json(rngs[name], path, f"the {name} generator state")
              for name in rngs}
    checked["sample_frames"] = [str(f) for f in frames]
    return checked, states


def _checked_counters(progress: dict[str, numpy.ndarray], path: str | Path) -> dict[str, int]:
    """The ``PROGRESS_COUNTERS`` of a checkpoint's progress section, as checked ints."""
    require(progress, path, PROGRESS_COUNTERS, what="progress entry")
    counters = {k: progress[k] for k in PROGRESS_COUNTERS}
    check_arrays(counters, path, "progress")
    if any(v.shape != () or v < 0 for v in counters.values()):
        raise DamagedFileError(path, f"the progress counters are damaged ({counters})")
    return {k: int(v) for k, v in counters.items()}


def saved_progress(path: str | Path) -> dict[str, int]:
    """The progress counters of a trainer checkpoint: ``epoch`` (epochs done), ``step`` and
    ``batch_in_epoch``, checked (only that part of the file is read)."""
    return _checked_counters(load_checkpoint(path, ["progress"], what="trainer checkpoint")
                             ["progress"], path)


def saved_settings(path: str | Path) -> dict[str, Any]:
    """The run settings recorded in a checkpoint (older checkpoints: their TrainConfig)."""
    sections = load_checkpoint(path, ["config"], what="trainer checkpoint")
    config = sections["config"]
    if "run" in config:
        return read_json(config["run"], path, "the run's settings")
    if "json" in config:   # written before the run's settings were saved
        train = read_json(config["json"], path, "the run's config")
        return {k: train[k] for k in ("z_size", "z_distribution", "seed", "d_steps", "lr_d",
                                      "lr_g", "beta1", "epochs") if k in train}
    raise DamagedFileError(path, "the run's settings are missing")


# ---------------------------------------------------------------------- the trained generator
def load_generator(path: str | Path) -> dcgan.Generator:
    """Rebuild the generator saved in a trainer checkpoint (``checkpoint.npz``), in eval mode.

    Its settings (``Generator.config()``) are read from the checkpoint's ``generator`` section;
    checkpoints written before that section existed give them through their weight shapes (see
    ``_config_from_weights``) and the run's config (``z_distribution``). Any damage, a missing
    part or weights that do not fit raise one ``DamagedFileError`` naming the file.
    """
    sections = load_checkpoint(path, sections=["G"], what="trainer checkpoint")
    state = sections["G"]
    check_arrays(state, path, "G")
    if "generator" in sections:
        require(sections["generator"], path, ["json"], what="generator setting")
        config = read_json(sections["generator"]["json"], path, "the generator's settings")
    else:
        config = _config_from_weights(state, path)
        if "config" in sections and "json" in sections["config"]:
            run = read_json(sections["config"]["json"], path, "the run's config")
            config["z_distribution"] = run.get("z_distribution", "uniform")
    try:
        G = dcgan.Generator.from_config(config)
    except (TypeError, ValueError) as error:
        raise DamagedFileError(path, f"the generator's settings are not usable ({error})") \
            from None
    load_module_state(G, state, path, "G")
    return G.eval()


def _config_from_weights(state: dict[str, numpy.ndarray], path: str | Path) -> dict[str, Any]:
    """Generator settings read off the weight shapes of an older checkpoint: the first Linear
    is (16 * top, z_size), each ConvTranspose2d (in, out, 4, 4), the last one's ``out`` the
    image channels."""
    convs = [state[k] for k in sorted((k for k in state if state[k].ndim == 4),
                                      key=lambda k: int(k.split(".")[0]))]
    linear = state.get("0.weight")
    if linear is None or linear.ndim != 2 or not convs:
        raise DamagedFileError(path, "the G weights are not those of a minigan DCGAN generator")
    top = linear.shape[0] // 16
    return {"z_size": int(linear.shape[1]), "conv_dim": int(top // 2 ** (len(convs) - 1)),
            "image_size": 4 * 2 ** len(convs), "channels": int(convs[-1].shape[1]),
            "z_distribution": "uniform"}
