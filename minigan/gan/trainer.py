"""The GAN training loop around one step: epochs, Ctrl-C, the loss history, and when to save.

The step itself, the part that reads like the math, is ``minigan/gan/step.py``; everything a run
writes into its folder and reads back (checkpoint, logs, sample grids, snapshots, config.json) is
``minigan/gan/run_folder.py``. The trainer ties them together: it calls ``step.train_step`` for
each batch of the loader, keeps the numbers, and says when to save.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy

from minigan import __version__, hostmem
from minigan.backend import backend_name, get_array_module, make_rng, to_numpy
from minigan.distributed import SINGLE_PROCESS, World
from minigan.gan import run_folder, step
from minigan.gan.run_folder import HISTORY_COLUMNS
from minigan.gan.split_step import SplitStep
from minigan.gan.step import StepResult, TrainConfig
from minigan.latent import sample_z
from minigan.nn import Dropout, Module
from minigan.optim import FlatAdam

# How often the training loop reads the losses back to the host (and refreshes the progress
# bar): each read makes the host wait until the GPU has finished every step queued so far.
READ_EVERY_SECONDS = 0.25


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class History:
    """Per-step records, kept in memory and in the checkpoint (so resume keeps them).

    ``append`` keeps a step's numbers where they are (device arrays on a GPU); ``read`` copies
    every step appended since the last read to the host at once, into ``columns``.
    """

    columns: dict[str, list[float]] = field(
        default_factory=lambda: {c: [] for c in HISTORY_COLUMNS})
    pending: list[tuple[int, int, StepResult]] = field(default_factory=list)

    def append(self, step: int, epoch: int, result: StepResult) -> None:
        self.pending.append((step, epoch, result))

    def read(self) -> None:
        """Move the pending steps into ``columns``: one stack and one copy to the host."""
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        numbers = [getattr(r, key) for _, _, r in pending for key in HISTORY_COLUMNS[2:]]
        xp = get_array_module(*numbers)
        rows = to_numpy(xp.stack([xp.asarray(v) for v in numbers])).astype(numpy.float64)
        rows = rows.reshape(len(pending), len(HISTORY_COLUMNS) - 2).tolist()
        for (number, epoch, _), row in zip(pending, rows):
            for key, value in zip(HISTORY_COLUMNS, [number, epoch, *row]):
                self.columns[key].append(float(value))

    def __len__(self) -> int:
        return len(self.columns["step"]) + len(self.pending)


class _StopRequested(Exception):
    """Ctrl-C was pressed and the step in progress has finished."""


class _FinishStepOnCtrlC:
    """While active, the first Ctrl-C (SIGINT) or SIGTERM (what a job scheduler sends before
    it kills a job) only sets ``requested``; the training loop checks it between steps.
    Stopping in the middle of a step would leave D updated and G not, and a checkpoint of that
    state would not resume exactly. A second Ctrl-C stops at once.
    Signal handlers can only be set from the main thread; elsewhere Ctrl-C acts as usual."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    # A SIGTERM sent to a whole process group (`timeout`, `kill -- -PGID`, a job scheduler)
    # reaches each rank of `--processes N` twice: directly, and passed on by the launcher. A
    # second SIGTERM this soon after the first is that same one, not a request to stop now.
    SAME_SIGTERM_SECONDS = 1.0

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}
        self._sigterm_at: float | None = None

    def __enter__(self) -> _FinishStepOnCtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        now = time.monotonic()
        if signum == signal.SIGTERM:
            first_sigterm, self._sigterm_at = self._sigterm_at, now
            if first_sigterm is not None and now - first_sigterm < self.SAME_SIGTERM_SECONDS:
                return
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(f"\n{name}: finishing this step, then saving a checkpoint (Ctrl-C again: stop "
              f"now, without saving)", flush=True)

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


class GANTrainer:
    """Trains a generator G against a discriminator D.

    G: z (N, z_size) -> images (N, C, H, W) in [-1, 1];  D: images -> logits (N, 1).
    ``loader`` yields ``(images, labels)`` batches (``minigan.data.DataLoader``); its
    ``epoch(e, start_batch)`` method lets a resumed run continue exactly where it stopped.
    ``out_dir`` receives samples/, losses.csv, losses.png, checkpoint.npz and config.json.
    ``evaluate`` (optional) maps G to a dict such as ``{"fid": ..., "inception_score": ...}``.
    ``settings`` (optional) are the rest of the run's choices (dataset, batch size, ...), written
    with the config into config.json and the checkpoint, so a run folder says how it was made.
    After ``fit``, ``interrupted`` says whether Ctrl-C or SIGTERM ended it early.
    ``world`` (optional): the ranks of a data-parallel run (``minigan/distributed.py``); each
    rank gets its own share of every batch from ``loader`` (a ``ShardedLoader``).
    """

    def __init__(self, G: Module, D: Module, loader: Any, config: TrainConfig,
                 out_dir: str | Path, evaluate: Callable[[Module], dict[str, float]] | None = None,
                 settings: dict[str, Any] | None = None, world: World = SINGLE_PROCESS):
        self.G, self.D, self.loader, self.config = G, D, loader, config
        # Also for a trainer built without use_backend("numpy") whose train_step is called
        # directly, not through fit: the step 15-20% faster (minigan/hostmem.py).
        if backend_name() == "numpy":
            hostmem.cache_host_memory()
        # Data parallelism: every rank starts from rank 0's weights (a no-op in one process).
        self.world = world
        world.broadcast_module(G)
        world.broadcast_module(D)
        world.own_dropout_streams(self._dropout_layers())
        self.out_dir = Path(out_dir)
        self.evaluate = evaluate
        # An evaluator that can share its scoring (GANEvaluator) is run on every rank, each
        # scoring its share of the images; any other is run by rank 0 alone.
        self._evaluate_on_every_rank = world.size > 1 and hasattr(evaluate, "share_with")
        if self._evaluate_on_every_rank:
            evaluate.share_with(world)
        self.settings = dict(settings or {})
        self.interrupted = False
        # What continues the run, for the message when Ctrl-C or SIGTERM stops it (the
        # command line sets the whole command: examples/train_svhn.py --resume --out RUN).
        self.resume_command = "--resume"
        # FlatAdam is Adam's arithmetic on one flat array per model: constructing it rebinds
        # every p.data and p.grad into views of that array, so a step is one update call
        # (one kernel launch on a GPU) instead of one per parameter (minigan/optim.py).
        self.opt_d = FlatAdam(D.parameters(), lr=config.lr_d, betas=(config.beta1, config.beta2))
        self.opt_g = FlatAdam(G.parameters(), lr=config.lr_g, betas=(config.beta1, config.beta2))
        # Data parallelism reaches the step from outside, as PyTorch's DDP does: these
        # optimizers average the gradients over the ranks before they step (in one process
        # they are opt_d and opt_g themselves), and training_z gives each rank its share of z.
        self._step_opt_d = world.wrap_optimizer(self.opt_d)
        self._step_opt_g = world.wrap_optimizer(self.opt_g)
        self.z_rng = make_rng([config.seed, 1])  # the latent vectors of training steps
        self.training_z = world.sharded_noise(self.sample_z)
        self.split_step = SplitStep()
        # A fixed set of latent vectors: the same points in latent space every epoch, so the
        # sample grids show how G's picture of each point develops.
        self.fixed_z = self.sample_z(config.num_samples, make_rng([config.seed, 2]))
        self.history = History()
        self.metrics: dict[str, list[float]] = {}
        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.sample_frames: list[str] = []

    # ------------------------------------------------------------------ the step
    def sample_z(self, n: int, rng: numpy.random.Generator | None = None) -> Any:
        """n latent vectors (n, z_size) from the run's distribution (``latent.sample_z``)."""
        return sample_z(n, self.config.z_size, self.config.z_distribution, rng or self.z_rng)

    def train_step(self, real: Any) -> StepResult:
        """One step of ``minigan/gan/step.py`` on this rank's share ``real`` of the batch.

        With several ranks, the numbers are the whole batch's: the mean over the ranks' shares,
        as host numbers, the same on every rank (one process gets its device arrays back)."""
        # Fast, where BLAS has two threads: the same step on each half of the batch at once, a
        # thread per core, about 1.35x faster on two cores (split_step.py).
        if self.world.size == 1 and self.split_step.pays(self.G, self.D, real):
            return self.split_step.train_step(self.G, self.D, self.opt_g, self.opt_d, real,
                                              self.training_z, self.config)
        result = step.train_step(self.G, self.D, self._step_opt_g, self._step_opt_d, real,
                                 self.training_z, self.config)
        return StepResult(*self.world.mean([result.d_loss, result.g_loss, result.d_real,
                                            result.d_fake]))

    # ------------------------------------------------------------------ the loop
    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / run_folder.CHECKPOINT

    def fit(self, progress: bool = True) -> History:
        """Train until ``config.epochs`` (or ``config.max_steps``).

        Ctrl-C (or SIGTERM) lets the current step finish, then saves a checkpoint and returns
        with ``interrupted`` set, so that ``--resume`` continues exactly. A second Ctrl-C stops
        at once, without saving (the step was cut in half), keeping the last checkpoint.
        """
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.world.is_root:   # rank 0 alone writes files
            self.write_config()
            if self.step == 0:
                self.save_real_samples()
        self.G.train()
        self.D.train()
        ctrl_c = _FinishStepOnCtrlC()
        try:
            with ctrl_c:
                self._train_epochs(progress, ctrl_c)
        except _StopRequested:
            self.interrupted = True
            self.save_checkpoint()
            print(f"interrupted: saved a checkpoint at step {self.step} to "
                  f"{self.checkpoint_path}; continue with: {self.resume_command}")
        except KeyboardInterrupt:
            self.interrupted = True
            resume = (f"; continue from it with: {self.resume_command}"
                      if self.checkpoint_path.is_file() else "")
            print(f"\nstopped in the middle of step {self.step + 1}: not saved; "
                  f"{self._last_checkpoint_text()}{resume}")
        return self.history

    def run_config(self) -> dict[str, Any]:
        """Every setting of the run: the TrainConfig, the caller's settings, G's settings (if
        it has them) and minigan's version. Written to config.json and into the checkpoint."""
        # The caller's settings come last: where both name a value (metrics_every is 0 in the
        # TrainConfig of a run without --features), the command line's is the one to record.
        config = {**asdict(self.config), **self.settings, "minigan_version": __version__}
        if hasattr(self.G, "config"):
            config["generator"] = self.G.config()
        return config

    def write_config(self) -> Path:
        return run_folder.write_config(self.out_dir, self.run_config())

    def _last_checkpoint_text(self) -> str:
        if self.checkpoint_path.is_file():
            return f"the last good checkpoint, {self.checkpoint_path}, is kept"
        return "no checkpoint was written yet"

    def _train_epochs(self, progress: bool, ctrl_c: _FinishStepOnCtrlC) -> None:
        from minigan.progress import tqdm

        while self.epoch < self.config.epochs and not self._reached_max_steps():
            bar = tqdm(total=len(self.loader), initial=self.batch_in_epoch,
                       desc=f"epoch {self.epoch + 1}/{self.config.epochs}",
                       disable=not progress, unit="batch", dynamic_ncols=True)
            # The bar is closed however the epoch ends (an error, divergence, Ctrl-C), so that
            # whatever is printed next starts on a line of its own.
            with bar:
                self._train_batches(bar, ctrl_c)
            # The ranks agreed after the last step; a Ctrl-C since then may have reached some
            # of them only: agree again, or one would stop here while another waits for it in
            # the next epoch's first step.
            if self.world.any(ctrl_c.requested):
                raise _StopRequested
            if self.batch_in_epoch >= len(self.loader):  # a whole epoch is done
                self.epoch += 1
                self.batch_in_epoch = 0
                self.end_of_epoch()
        if self.batch_in_epoch:  # stopped inside an epoch by max_steps
            self.save_samples(f"step_{self.step:06d}")
            self.save_checkpoint()

    def _train_batches(self, bar: Any, ctrl_c: _FinishStepOnCtrlC) -> None:
        started, images = time.perf_counter(), 0
        last_read = started
        for real, _ in self.loader.epoch(self.epoch, start_batch=self.batch_in_epoch):
            result = self.train_step(real)
            self.step += 1
            self.batch_in_epoch += 1
            self.history.append(self.step, self.epoch + 1, result)
            images += len(real) * self.world.size   # all ranks together
            bar.update(1)
            # Several ranks read every step (their losses are host numbers already), so that
            # all of them stop at the same step if one diverges.
            if time.perf_counter() - last_read >= READ_EVERY_SECONDS or self.world.size > 1:
                self.read_history(bar, images / (time.perf_counter() - started))
                last_read = time.perf_counter()
            # Each rank sees Ctrl-C at its own moment: they agree, so all stop after this step.
            ctrl_c.requested = self.world.any(ctrl_c.requested)
            if ctrl_c.requested or self._reached_max_steps():
                break
            if self.config.save_every and self.step % self.config.save_every == 0:
                self.save_checkpoint()
        self.read_history(bar, images / max(time.perf_counter() - started, 1e-9))

    def read_history(self, bar: Any = None, images_per_second: float = 0.0) -> None:
        """Bring the losses of the steps since the last read to the host, show the latest on
        the progress bar, and stop if a loss is NaN or infinite (before any checkpoint of the
        diverged weights is written)."""
        first = len(self.history.columns["step"])
        self.history.read()
        columns = self.history.columns
        for i in range(first, len(columns["step"])):
            d_loss, g_loss = columns["d_loss"][i], columns["g_loss"][i]
            if not numpy.isfinite([d_loss, g_loss]).all():
                raise TrainingDiverged(
                    f"training diverged at step {int(columns['step'][i])}: d_loss={d_loss}, "
                    f"g_loss={g_loss}; {self._last_checkpoint_text()} (try a lower learning "
                    f"rate or label smoothing)")
        if bar is not None and len(columns["step"]) > first:
            bar.set_postfix(d_loss=f"{columns['d_loss'][-1]:.3f}",
                            g_loss=f"{columns['g_loss'][-1]:.3f}",
                            img_s=f"{images_per_second:.0f}")

    def _reached_max_steps(self) -> bool:
        return self.config.max_steps is not None and self.step >= self.config.max_steps

    def end_of_epoch(self) -> None:
        """Samples, the GIF, metrics every K epochs, the loss plot and a checkpoint."""
        self.save_samples(f"epoch_{self.epoch:03d}")
        every = self.config.metrics_every
        if self.evaluate is not None and every and self.epoch % every == 0 \
                and (self.world.is_root or self._evaluate_on_every_rank):
            scores = self.evaluate(self.G)
            if self.world.is_root:   # scores are written by rank 0 alone
                print(f"epoch {self.epoch}: "
                      + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
                self.metrics.setdefault("epoch", []).append(float(self.epoch))
                for key, value in scores.items():
                    self.metrics.setdefault(key, []).append(float(value))
        self.save_checkpoint()
        self.save_snapshot()

    def save_snapshot(self) -> Path | None:
        """``checkpoint_epoch_NNN.npz``, if ``config.keep_snapshots`` (see run_folder)."""
        if not self.world.is_root:   # rank 0 alone writes files
            return None
        return run_folder.save_snapshot(self.out_dir, self.epoch, self.config.keep_snapshots)

    def save_real_samples(self, name: str = "real_samples.png") -> Path:
        """A grid of the first real training images: what G's grids should come to look like."""
        real, _ = next(iter(self.loader.epoch(0)))
        return run_folder.save_real_samples(real[:self.config.num_samples], self.out_dir, name)

    def save_samples(self, name: str) -> Path:
        """A grid of G(fixed_z) in eval mode (batch norm uses its running statistics)."""
        if not self.world.is_root:   # rank 0 alone writes files
            return self.out_dir / "samples" / f"{name}.png"
        self.G.eval()
        try:
            images = self.G(self.fixed_z)
        finally:
            self.G.train()
        return run_folder.save_sample_grid(images, self.out_dir, name, self.sample_frames)

    # ------------------------------------------------------------------ saving and resuming
    def write_logs(self) -> None:
        """losses.csv, metrics.csv and losses.png from the in-memory history."""
        run_folder.write_logs(self.out_dir, self.history.columns, self.metrics)

    def _dropout_layers(self) -> list[Dropout]:
        return [m for net in (self.G, self.D) for m in net.modules() if isinstance(m, Dropout)]

    def _random_generators(self) -> dict[str, numpy.random.Generator]:
        """The generators a resumed run must continue: z's, and each Dropout layer's."""
        rngs = {"z": self.z_rng}
        rngs.update({f"dropout{i}": m.rng for i, m in enumerate(self._dropout_layers())})
        return rngs

    def save_checkpoint(self) -> Path:
        """Write checkpoint.npz (atomically), then the logs: the checkpoint comes first, so a
        log file that cannot be written never costs the training state. The steps not read yet
        are read first, and a diverged one stops here, before its weights are saved."""
        if not self.world.is_root:   # rank 0 alone writes files
            return self.checkpoint_path
        self.read_history()
        progress = {"epoch": self.epoch, "step": self.step, "batch_in_epoch": self.batch_in_epoch,
                    "sample_frames": self.sample_frames}
        path = run_folder.save_training_state(
            self.checkpoint_path, self.G, self.D, self.opt_g, self.opt_d,
            self._random_generators(), progress, self.history.columns, self.metrics,
            asdict(self.config), self.run_config())
        self.write_logs()
        return path

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        """Restore everything ``save_checkpoint`` wrote, so that training continues exactly.

        Any damage (see ``minigan.checkpoint``), a missing part, or weights that do not fit
        these networks raise one ``DamagedFileError`` naming the file.
        """
        state = run_folder.load_training_state(Path(path or self.checkpoint_path), self.G,
                                                self.D, self.opt_g, self.opt_d,
                                                self._random_generators())
        progress = state["progress"]
        self.epoch, self.step = progress["epoch"], progress["step"]
        self.batch_in_epoch = progress["batch_in_epoch"]
        self.sample_frames = progress["sample_frames"]
        self.history.columns = state["history"]
        self.metrics = state["metrics"]
        self.world.own_dropout_streams(self._dropout_layers())  # rank 0's state was saved
