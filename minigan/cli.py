"""The command line behind ``examples/train_svhn.py`` and ``examples/train_cifar10.py``.

Read ``train`` from top to bottom: it is the whole recipe of a run (pick the backend, load the
data, build G and D, hand them to the trainer, report where the results are). Everything else
here is argument parsing and turning errors into one readable line.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy

from minigan.backend import backend_name, manual_seed, use_backend
from minigan.checkpoint import remove_orphaned_temporaries
from minigan.data import DATASETS, dataset_label
from minigan.data.download import default_data_dir
from minigan.data.loader import DataLoader
from minigan.data.sharded import ShardedLoader
from minigan.distributed import (
    SINGLE_PROCESS,
    World,
    abort_other_ranks,
    join_world,
    launched_on_this_machine,
)
from minigan.gan import dcgan, run_folder
from minigan.gan.run_lock import RunLock
from minigan.gan.trainer import GANTrainer, TrainConfig
from minigan.latent import LATENT_DISTRIBUTIONS
from minigan.launch import launch_this_script, usable_cores
from minigan.nn import Dropout
from minigan.nn.sync_batchnorm import convert_sync_batch_norm
from minigan.ops import fast_kernels_enabled, use_fast_kernels
from minigan.scripts import (
    DATASET_HELP,
    EXIT_INTERRUPTED,
    OneLineParser,
    add_backend_argument,
    add_data_dir_arguments,
    add_mirror_argument,
    apply_mirror,
    check_fits_in_memory,
    check_writable_folder,
    dataset_argument,
    finite_float,
    int_argument,
    print_error,
    quiet_unless_root,
    run_script,
    seed_argument,
)

# The settings of a run, as option destinations. All are recorded in config.json and in the
# checkpoint. On --resume, those in MUST_MATCH cannot change (they fix the networks' shapes,
# the data and the order of batches and random numbers): one given on the command line that
# differs from the checkpoint's is refused. Those in MAY_CHANGE are honoured and recorded.
# --max-steps is a limit of one invocation (a quick trial), never carried over.
MUST_MATCH = ("dataset", "split", "num_train", "image_size", "batch_size", "conv_dim",
              "z_size", "z_distribution", "dropout", "beta1", "seed")
MAY_CHANGE = ("epochs", "save_every", "keep_snapshots", "lr_d", "lr_g", "d_steps",
              "label_smoothing", "features", "metrics_every", "metrics_samples", "data_dir",
              "no_download")
NOT_RECORDED = ("resume", "overwrite", "out", "backend", "mirror")
# The scores in metrics.csv depend on these: once a run has scores, a resumed run may not change
# them (a score made another way would go on the same curve, its jump read as progress).
SCORED_WITH = ("features", "metrics_samples")


def build_parser(dataset: str, description: str) -> argparse.ArgumentParser:
    """The command line of the training scripts. Longer than 60 lines because it is a plain
    list of options, one ``add_argument`` each, in the order ``--help`` shows them."""
    p = OneLineParser(description=description)
    add_backend_argument(p)
    p.add_argument("--plain-kernels", action="store_true",
                   help="run the plain textbook kernels instead of their fast variants (same "
                        "numbers, slower; as MINIGAN_KERNELS=plain)")
    p.add_argument("--dataset", type=dataset_argument, default=dataset,
                   metavar="NAME|FILE.npz", help=DATASET_HELP + " (here: --image-size)")
    add_data_dir_arguments(p)     # --data-dir and --no-download, recorded for --resume
    add_mirror_argument(p)
    p.add_argument("--out", default=None,
                   help="run folder (default: runs/<dataset>; for my_images.npz, runs/my_images)")
    p.add_argument("--epochs", type=int_argument, default=10, help="passes over the training set")
    p.add_argument("--batch-size", type=int_argument, default=128,
                   help="images per training step")
    p.add_argument("--max-steps", type=int_argument, default=None,
                   help="stop after this many training steps in total (quick trials; not "
                        "carried over by --resume)")
    p.add_argument("--seed", type=seed_argument, default=0,
                   help="seeds weights, shuffling, latent vectors and dropout")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in the run folder; settings not given "
                        "are the checkpoint's")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in a run folder that holds an earlier run: its "
                        "checkpoint, snapshots, samples and logs are deleted first")
    p.add_argument("--save-every", type=int_argument, default=0, metavar="N",
                   help="also save the checkpoint every N steps (0: after each epoch only)")
    p.add_argument("--keep-snapshots", type=snapshots_argument, default=0, metavar="K|all",
                   help="keep a copy of each epoch's checkpoint as checkpoint_epoch_NNN.npz: "
                        "the last K of them, or all (0: none)")
    p.add_argument("--kernels", default=None, metavar="FOLDER",
                   help="train on your own code: a folder made by `python -m "
                        "minigan.exercises init`; its finished groups are graded first, and "
                        "unfinished ones stay minigan's")
    p.add_argument("--kernels-unchecked", action="store_true",
                   help="with --kernels, train even if the grader fails a group")
    g = p.add_argument_group("model")
    g.add_argument("--image-size", type=int_argument, default=32,
                   help="height and width of the images G makes and D reads: 32 as in the "
                        "course, 64 as in the DCGAN paper (4 * 2**k); a folder of pictures is "
                        "resized and center-cropped to it")
    g.add_argument("--conv-dim", type=int_argument, default=32, help="channels of D's first conv")
    g.add_argument("--z-size", type=int_argument, default=100,
                   help="length of the latent vector z")
    g.add_argument("--z-distribution", choices=LATENT_DISTRIBUTIONS, default="uniform",
                   help="uniform in [-1, 1] as in the course, or standard normal")
    g.add_argument("--dropout", type=finite_float, default=0.0,
                   help="dropout probability after each LeakyReLU of D (0 = none)")
    t = p.add_argument_group("training tricks")
    t.add_argument("--lr-d", type=finite_float, default=2e-4,
                   help="discriminator learning rate")
    t.add_argument("--lr-g", type=finite_float, default=2e-4, help="generator learning rate")
    t.add_argument("--beta1", type=finite_float, default=0.5,
                   help="Adam beta1 (DCGAN uses 0.5)")
    t.add_argument("--d-steps", type=int_argument, default=1,
                   help="discriminator updates per generator update (TTUR)")
    t.add_argument("--label-smoothing", type=finite_float, default=0.0, metavar="S",
                   help="one-sided label smoothing as in PyTorch: the target for real images "
                        "is 1 - S (0.1 gives 0.9); fake targets stay 0; S in [0, 0.5)")
    t.add_argument("--num-train", type=int_argument, default=None,
                   help="use only the first N training images (quick trials)")
    m = p.add_argument_group("scores during training")
    m.add_argument("--features", default=None, metavar="PATH",
                   help="a feature network from examples/train_classifier.py: compute FID and IS "
                        "with it every --metrics-every epochs ('inception': the FID "
                        "Inception-v3, slow on a CPU; see docs/inception.md)")
    m.add_argument("--metrics-every", type=int_argument, default=1, help="epochs between scores")
    m.add_argument("--metrics-samples", type=int_argument, default=10000,
                   help="generated images per score (below 2048 FID is biased)")
    t.add_argument("--split", choices=("train", "test", "extra"), default="train",
                   help="which split to train on (test: e.g. when only MNIST's test files are "
                        "at hand; extra: SVHN's 531,131 extra images; an .npz file has only "
                        "train)")
    d = p.add_argument_group("several processes (python -m minigan.launch -n N, or mpiexec -n N)")
    d.add_argument("--processes", type=int_argument, default=1,
                   help="train as N processes on this machine, each taking 1/N of every batch "
                        "(python -m minigan.launch -n N): NumPy uses one core per process for "
                        "most of a step, so on a CPU set N to its cores (2 cores: about 1.5x "
                        "faster, docs/distributed.md)")
    d.add_argument("--distributed", action="store_true",
                   help="data-parallel training over MPI (mpiexec -n N; needs the mpi extra): "
                        "each of the N processes takes --batch-size / N images of every batch. "
                        "Implied under python -m minigan.launch, which needs no MPI")
    d.add_argument("--sync-batch-norm", action=argparse.BooleanOptionalAction, default=True,
                   help="with --distributed: batch norm takes its statistics over the whole "
                        "batch, all processes together, as one process would")
    return p


def launch_processes(args: argparse.Namespace, argv: list[str]) -> int:
    """This script again, as ``--processes`` ranks of one run (``minigan/launch.py``)."""
    # The checks of --processes alone come first (in launch_this_script, for a bad count or
    # backend), then what a training run adds.
    counted = args.processes >= 1
    if counted and args.distributed:
        return print_error("--processes starts the processes itself; --distributed is for "
                           "processes started by mpiexec: give one of them")
    if counted and args.backend == "numpy" and args.batch_size % args.processes:
        return print_error(f"--batch-size {args.batch_size} must be a multiple of --processes "
                           f"{args.processes}")
    return launch_this_script(args.processes, args.backend, argv)


def snapshots_argument(value: str) -> int | None:
    """``--keep-snapshots``: a count, or ``all`` (None: keep every epoch's copy)."""
    if value.lower() == "all":
        return None
    count = int_argument(value)
    if count < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, or all; got {count}")
    return count


def given_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    """The destinations of the options written on the command line (not left at a default):
    on --resume, only those are compared with the checkpoint's settings. ``parser`` is a fresh
    copy (its defaults are removed here)."""
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse values that would train nothing or train nonsense, with a one-line reason."""
    for name in ("epochs", "batch_size", "conv_dim", "z_size", "d_steps", "metrics_every",
                 "metrics_samples", "max_steps", "num_train"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.features:   # the scores' module (and SciPy) is imported only then
        from minigan.metrics.inception_score import MIN_SCORED_SAMPLES

        if args.metrics_samples < MIN_SCORED_SAMPLES:
            raise ValueError(f"--metrics-samples must be at least {MIN_SCORED_SAMPLES} (IS uses "
                             f"10 splits), got {args.metrics_samples}")
    size = args.image_size
    if size < 8 or size & (size - 1):
        raise ValueError(f"--image-size must be 4 * 2**k (8, 16, 32, 64, ...), got {size}")
    if args.save_every < 0:
        raise ValueError(f"--save-every must be 0 or more, got {args.save_every}")
    if args.lr_d <= 0 or args.lr_g <= 0:
        raise ValueError(f"learning rates must be positive, got --lr-d {args.lr_d} "
                         f"--lr-g {args.lr_g}")
    if not 0 <= args.beta1 < 1:
        raise ValueError(f"--beta1 must be in [0, 1), got {args.beta1}")
    if not 0 <= args.dropout < 1:
        raise ValueError(f"--dropout must be in [0, 1), got {args.dropout}")
    if not 0 <= args.label_smoothing < 0.5:
        # Real target 1 - S against a fake target of 0: at S >= 0.5, D would be taught to
        # call fakes at least as real as real images, which silently inverts training.
        raise ValueError(f"--label-smoothing is the amount S taken off the real target (1 - S; "
                         f"0.1 is usual) and must be in [0, 0.5), got {args.label_smoothing}")
    if args.resume and args.overwrite:
        raise ValueError("--resume continues the run in the folder and --overwrite replaces "
                         "it: give one of them")
    if args.kernels_unchecked and args.kernels is None:
        raise ValueError("--kernels-unchecked goes with --kernels FOLDER: it trains on that "
                         "folder's code without grading it first")
    # --kernels FOLDER itself is checked first of all, by kernels_in_use.


def check_sizes(args: argparse.Namespace, channels: int = 3) -> None:
    """Sizes that cannot fit in memory are refused with the estimate (before allocating)."""
    # Parameters of G and D: dominated by G's first Linear (z_size x 16 * top channels) and the
    # 4x4 convolutions; each float32 value is held 4 times (weight, gradient, Adam's m and v).
    top = args.conv_dim * max(args.image_size // 8, 1)   # channels of the 4x4 maps
    params = 2 * (args.z_size + 1) * 16 * top + 2 * 16 * top * (top // 2) * 5 // 4
    check_fits_in_memory(params * 4 * 4, f"--conv-dim {args.conv_dim} (about {params:,} "
                                         f"parameters, with gradients and Adam's moments)")
    if args.num_train is not None and args.dataset == "synthetic":
        check_fits_in_memory(args.num_train * channels * args.image_size ** 2,
                             f"--num-train {args.num_train} synthetic images")


def default_out(args: argparse.Namespace) -> Path:
    """The run folder: --out, or runs/<dataset> (runs/my_images for my_images.npz)."""
    return Path(args.out or f"runs/{dataset_label(args.dataset)}")


def settle_resume(args: argparse.Namespace, given: set[str], path: Path,
                  processes: int = 1) -> list[str]:
    """Fill ``args`` from the checkpoint's settings; refuse a changed setting that cannot be
    honoured; return a description of each honoured change (``processes``, how many share the
    work now, is not a setting of its own but is one of them when it differs)."""
    saved = run_folder.saved_settings(path)
    check_the_folders_own(path, saved)
    changes = []
    if saved.get("processes", 1) != processes:
        changes.append(f"processes {saved.get('processes', 1)} -> {processes}")
    for name in MUST_MATCH + MAY_CHANGE:
        if name not in saved:
            continue
        value, old = getattr(args, name), saved[name]
        option = "--" + name.replace("_", "-")
        if name == "features" and name not in given and old and not Path(old).is_file():
            print(f"note: the feature network {old} of this run is gone; training goes on "
                  f"without scores (give --features to score again)")
            continue
        if name not in given:
            setattr(args, name, old)
        elif value != old and name in MUST_MATCH:
            raise ValueError(f"--resume: {option} {value} differs from the checkpoint's {old} "
                             f"({path}), and it cannot change in the middle of a run: drop "
                             f"{option}, or start a new run with another --out")
        elif value != old and name in SCORED_WITH and old and \
                (path.parent / "metrics.csv").is_file():
            raise ValueError(f"--resume: {option} {value} differs from the {old} that made the "
                             f"scores in {path.parent / 'metrics.csv'}, and scores made another "
                             f"way cannot go on the same curve: drop {option}, or start a new "
                             f"run with another --out")
        elif value != old:
            changes.append(f"{option} {old} -> {value}")
    return changes


def check_the_folders_own(path: Path, saved: dict[str, Any]) -> None:
    """The checkpoint belongs to the run that config.json describes: a run's settings that
    cannot change (MUST_MATCH) are the same in both. A checkpoint copied in from another run
    would otherwise take the folder over, its history replacing losses.csv and the grids."""
    config = run_folder.read_config(path.parent) or {}
    for name in MUST_MATCH:
        if name in config and name in saved and config[name] != saved[name]:
            raise ValueError(f"--resume: {path} is not the checkpoint of the run that "
                             f"{path.parent / run_folder.CONFIG} describes ({name} is "
                             f"{saved[name]} in the checkpoint, {config[name]} in "
                             f"config.json): resume it in the folder it came from, or start a "
                             f"new run")


def check_something_left(args: argparse.Namespace, progress: dict[str, int], out: Path) -> None:
    """--resume of a run that has done its --epochs (or reached --max-steps) would train
    nothing: refuse, saying what to give, before config.json records a smaller --epochs."""
    done = f"the run in {out} has done {progress['step']} steps"
    if args.max_steps is not None and progress["step"] >= args.max_steps:
        raise ValueError(f"--resume: {done}, and --max-steps is {args.max_steps}: nothing is "
                         f"left to train; give a larger --max-steps to go on")
    if progress["epoch"] >= args.epochs:
        epochs = f"{progress['epoch']} epoch" + ("s" if progress["epoch"] != 1 else "")
        raise ValueError(f"--resume: {done} in {epochs}, and --epochs is {args.epochs}: nothing "
                         f"is left to train; give --epochs {progress['epoch'] + 1} or more to "
                         f"go on")


def load_training_images(args: argparse.Namespace) -> numpy.ndarray:
    """(N, C, S, S) uint8 images of the chosen dataset, S = --image-size. A folder of pictures
    is resized and center-cropped to S; 28x28 images (MNIST's) are padded to 32x32; any other
    size that is not S is refused."""
    from minigan.data import is_image_folder, load_dataset

    size = args.image_size
    extra: dict[str, Any] = {}
    if args.dataset == "synthetic":
        extra["size"] = size               # rendered at the size asked for
        if args.num_train is not None:
            extra["n"] = args.num_train    # render only the images that will be used
    if args.dataset not in DATASETS and is_image_folder(args.dataset):
        extra["size"] = size
    images, _ = load_dataset(args.dataset, args.split, data_dir=args.data_dir,
                             download=not args.no_download, **extra)
    if args.num_train is not None:
        images = images[:args.num_train]
    if images.shape[-2:] == (28, 28) and size == 32:   # MNIST: 2 black pixels each side
        images = numpy.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)))
    if images.shape[-2:] != (size, size):
        height, width = images.shape[-2:]
        raise ValueError(f"{args.dataset} images are {height}x{width}, but --image-size is "
                         f"{size}: give --image-size {height} if that is 4 * 2**k, or resize "
                         f"them (a folder of pictures is resized for you)")
    return images


def prepare_run_folder(args: argparse.Namespace, given: set[str], lock: RunLock | None = None,
                       processes: int = 1) -> tuple[Path, list[str]]:
    """Check the run folder before any work: writable; held by no other run (``lock``, taken
    here, rank 0's); a fresh run never replaces an earlier run's files (``--overwrite`` deletes
    them first, so that none is left to be mistaken for the new run's); --resume
    reads the settings it continues with. Temporary files left by a checkpoint write that was
    killed are removed. Returns (folder, honoured changes)."""
    out = check_writable_folder(default_out(args), "--out")
    if lock is not None:
        lock.acquire()        # before anything in the folder is looked at or removed
    checkpoint = out / "checkpoint.npz"
    for orphan in remove_orphaned_temporaries(out, ("*.npz.*.tmp", "*.json.*.tmp",
                                                    "samples.tmp.gif")):
        print(f"removed {orphan}, left by a write that was cut short")
    changes: list[str] = []
    if args.resume:
        if not checkpoint.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint in {out}; start without --resume")
        changes = settle_resume(args, given, checkpoint, processes)
        check_something_left(args, run_folder.saved_progress(checkpoint), out)
    elif args.overwrite:
        removed = run_folder.remove_earlier_run(out)
        if removed:
            print(f"--overwrite: removed the {len(removed)} files of the earlier run in {out}")
    elif checkpoint.exists():
        raise FileExistsError(f"{out} already holds a run ({checkpoint}): continue it with "
                              f"--resume, start a new one with another --out, or replace it "
                              f"with --overwrite")
    elif earlier := run_folder.earlier_run_files(out):   # but no checkpoint
        if not run_folder.only_a_failed_start(out, earlier):
            raise FileExistsError(f"{out} holds files of an earlier run ({earlier[0]}, "
                                  f"{len(earlier)} in all) but no checkpoint to resume: start "
                                  f"with another --out, or replace them with --overwrite")
        for path in earlier:
            path.unlink()
        print(f"replaced {', '.join(p.name for p in earlier)} of an earlier run in {out} that "
              f"stopped before its first checkpoint")
    # Recorded resolved, so that `--resume --out RUN` finds the data from anywhere.
    args.data_dir = str(Path(args.data_dir or default_data_dir()).expanduser().resolve())
    return out, changes


def resume_command(args: argparse.Namespace, out: Path, world: World) -> str:
    """The command that continues this run: printed when Ctrl-C or SIGTERM stops it. Every
    other setting is in the checkpoint."""
    script = sys.argv[0] if sys.argv[0].endswith(".py") else "examples/train_svhn.py"
    words = ["python", script]
    if world.size > 1 and launched_on_this_machine():
        words = ["python", "-m", "minigan.launch", "-n", str(world.size), script]
    elif world.size > 1:
        words = ["mpiexec", "-n", str(world.size), *words, "--distributed"]
    if args.backend != "numpy":
        words += ["--backend", args.backend]
    if args.kernels is not None:
        words += ["--kernels", args.kernels]
    return shlex.join([*words, "--resume", "--out", str(out)])


def train(args: argparse.Namespace, given: set[str] = frozenset()) -> GANTrainer:
    """The whole recipe of a run: backend, run folder (locked while the run writes there),
    data, models, trainer, report."""
    use_backend(args.backend)
    # --plain-kernels, else $MINIGAN_KERNELS (read now, so a bad value is a one-line error).
    use_fast_kernels(False if args.plain_kernels else fast_kernels_enabled())
    apply_mirror(args)
    check_arguments(args)              # before the run folder is made; again after --resume
    # Several processes (minigan/distributed.py): each rank trains on its share of each batch.
    world = join_world() if args.distributed else SINGLE_PROCESS
    quiet_unless_root(world)
    # Rank 0 writes the files. Made before the run folder is: a run that fails before it writes
    # anything leaves no empty folder behind (RunLock.release).
    lock = RunLock(default_out(args)) if world.is_root else None
    try:
        # Rank 0 first: it makes the folder and clears leftovers before the others look at it.
        out, changes = world.root_first(lambda: prepare_run_folder(args, set(given), lock,
                                                                   world.size))
        check_arguments(args)
        check_sizes(args)
        manual_seed(args.seed)
        trainer = build_trainer(args, world, out)
        return run(trainer, args, changes)
    finally:
        if lock is not None:
            lock.release()


def build_trainer(args: argparse.Namespace, world: World, out: Path) -> GANTrainer:
    """The data, G and D, their TrainConfig and (with --features) the scores, in a trainer."""
    print(f"preparing the {args.split} images of {args.dataset}", flush=True)
    images = world.root_first(lambda: load_training_images(args))  # rank 0 downloads
    if args.distributed:   # each rank: its share of every batch (the same batches in all)
        loader = ShardedLoader(images, batch_size=args.batch_size, rank=world.rank,
                               size=world.size, seed=args.seed)
    else:
        loader = DataLoader(images, batch_size=args.batch_size, shuffle=True, drop_last=True,
                            seed=args.seed)
    if len(loader) == 0:
        raise ValueError(f"--batch-size {args.batch_size} is larger than the dataset "
                         f"({len(images)} images)")
    channels = images.shape[1]
    # dcgan.Generator, looked up now: the exercises can swap in a learner's own networks.
    G = dcgan.dcgan_init(dcgan.Generator(args.z_size, args.conv_dim, image_size=args.image_size,
                                         channels=channels, z_distribution=args.z_distribution))
    D = dcgan.dcgan_init(dcgan.Discriminator(args.conv_dim, image_size=args.image_size,
                                             channels=channels, dropout=args.dropout))
    if args.dropout > 0 and not any(isinstance(m, Dropout) for m in D.modules()):
        # a learner's Discriminator (--kernels) may leave dropout out: the grader uses 0, and
        # config.json would claim a dropout that the run never had
        raise ValueError(f"--dropout {args.dropout:g}: this Discriminator has no Dropout layer "
                         f"(yours ignores its dropout argument?): add Dropout after each "
                         f"LeakyReLU, or leave out --dropout")
    if args.distributed and args.sync_batch_norm:
        G, D = convert_sync_batch_norm(G, world), convert_sync_batch_norm(D, world)
    config = TrainConfig(epochs=args.epochs, lr_d=args.lr_d, lr_g=args.lr_g, beta1=args.beta1,
                         d_steps=args.d_steps, real_label=1.0 - args.label_smoothing,
                         z_size=args.z_size, z_distribution=args.z_distribution,
                         seed=args.seed, max_steps=args.max_steps,
                         metrics_every=args.metrics_every if args.features else 0,
                         save_every=args.save_every, keep_snapshots=args.keep_snapshots)
    settings = {k: v for k, v in vars(args).items() if k not in NOT_RECORDED}
    settings["processes"] = world.size
    trainer = GANTrainer(G, D, loader, config, out, evaluate=build_evaluator(args, images, world),
                         settings=settings, world=world)
    trainer.resume_command = resume_command(args, out, world)
    print(f"training a DCGAN on {len(images)} {args.dataset} images, {len(loader)} batches of "
          f"{args.batch_size} per epoch, backend {backend_name()}; run folder {out}")
    if args.distributed and world.size == 1:
        print("warning: --distributed, but this is the only process (not started by mpiexec -n "
              "N or python -m minigan.launch -n N): it trains alone", file=sys.stderr)
    elif args.distributed:
        norm = "synchronized" if args.sync_batch_norm else "per process"
        print(f"{world.size} processes, {args.batch_size // world.size} images of each batch "
              f"per process, batch norm {norm}")
    elif backend_name() == "numpy" and trainer.split_step.pays(
            G, D, numpy.zeros((args.batch_size, *images.shape[1:]), numpy.float32)):
        print("one process on two cores: each batch's two halves at once, a thread each "
              "(minigan/gan/split_step.py; --processes 2 is about as fast)")
    elif backend_name() == "numpy" and usable_cores() > 1:
        print(f"one process on a CPU with {usable_cores()} cores: --processes {usable_cores()} "
              f"trains on all of them, faster (docs/distributed.md)")
    return trainer


def build_evaluator(args: argparse.Namespace, images: numpy.ndarray, world: Any) -> Any:
    """With --features, the function that scores G (FID and IS); else None. Every process of
    ``world`` builds one: they share the reference statistics' first computation."""
    if args.features == "inception":   # the FID Inception-v3: published-style FID and IS
        from minigan.metrics.inception_eval import inception_evaluator
        return inception_evaluator(images, args.dataset, args.metrics_samples,
                                   args.z_distribution, data_dir=args.data_dir, world=world,
                                   download_missing=not args.no_download)
    if not args.features:
        return None
    from minigan.metrics import GANEvaluator
    evaluate = GANEvaluator(args.features, num_samples=args.metrics_samples,
                            z_distribution=args.z_distribution)
    scored, channels = (evaluate.net.channels, evaluate.net.image_size), images.shape[1]
    if scored != (channels, args.image_size):   # say so now, not after the first epoch
        size = args.image_size
        raise ValueError(f"--features {args.features} scores {scored[0]}-channel "
                         f"{scored[1]}x{scored[1]} images, but {args.dataset} images are "
                         f"{channels}-channel {size}x{size}: train a feature network on "
                         f"{args.dataset} with examples/train_classifier.py")
    return evaluate


def run(trainer: GANTrainer, args: argparse.Namespace, changes: list[str]) -> GANTrainer:
    """Resume (with --resume), train, and say how long it took and where the results are."""
    if args.resume:
        trainer.load_checkpoint()
        # The optimizers' saved state includes their learning rates: the run's (possibly
        # new) ones take their place, so that a changed --lr-g is really used.
        trainer.opt_d.lr, trainer.opt_g.lr = trainer.config.lr_d, trainer.config.lr_g
        print(f"resumed from {trainer.checkpoint_path} at epoch {trainer.epoch + 1}, "
              f"step {trainer.step}" + (f"; changed: {', '.join(changes)}" if changes else ""))
    started = time.perf_counter()
    steps_before = trainer.step
    trainer.fit(progress=trainer.world.is_root)
    seconds = time.perf_counter() - started
    steps = trainer.step - steps_before
    if steps:
        print(f"{steps} steps in {seconds:.1f} s ({1000 * seconds / steps:.0f} ms/step, the "
              f"saving of checkpoints and sample grids included)")
    report(trainer)
    return trainer


@contextmanager
def kernels_in_use(args: argparse.Namespace) -> Iterator[None]:
    """With ``--kernels``, grade the learner's finished groups quickly, refuse (one line) if
    one fails unless ``--kernels-unchecked``, then run the whole run (models, step, losses,
    layers, Adam) on their code: ``minigan.exercises.kernels_for_training``."""
    if args.kernels is None:
        yield
        return
    # Imported only with --kernels: the grader's modules are not needed to train otherwise.
    from minigan.exercises import kernels_for_training

    with kernels_for_training(args.kernels, args.kernels_unchecked, args.backend):
        yield


def report(trainer: GANTrainer) -> None:
    out = trainer.out_dir
    print("results:")
    for name, what in (("samples", "sample grids, one per epoch"),
                       ("samples.gif", "the grids animated"),
                       ("losses.png", "loss curves and D's outputs"),
                       ("losses.csv", "per-step losses"),
                       ("metrics.csv", "FID and IS per evaluation"),
                       ("real_samples.png", "real training images, for comparison"),
                       ("config.json", "every setting of the run"),
                       ("checkpoint.npz", "G, D, optimizers, RNG state (for --resume)")):
        if (out / name).exists():
            print(f"  {out / name}  ({what})")
    snapshots = sorted(out.glob("checkpoint_epoch_*.npz"))
    if snapshots:
        copies = f"{len(snapshots)} cop{'ies' if len(snapshots) > 1 else 'y'}"
        print(f"  {out}/checkpoint_epoch_*.npz  ({copies} of earlier epochs' checkpoints, the "
              f"last {snapshots[-1].name})")


def main(argv: list[str] | None = None, dataset: str = "svhn",
         description: str = "Train a DCGAN.") -> int:
    parser = build_parser(dataset, description)
    args = parser.parse_args(argv)
    given = given_options(build_parser(dataset, description), argv)
    # One of the ranks python -m minigan.launch started: it is a data-parallel run by definition
    # (without this, N processes would each train alone into the same folder).
    args.distributed = args.distributed or launched_on_this_machine()
    if args.processes != 1 and not launched_on_this_machine():
        return launch_processes(args, sys.argv[1:] if argv is None else argv)

    def work(args: argparse.Namespace) -> int:
        with kernels_in_use(args):   # around everything: the models are built inside
            trainer = train(args, given)
        return EXIT_INTERRUPTED if trainer.interrupted else 0

    code = run_script(work, args, several_processes=True)
    if args.distributed and code not in (0, EXIT_INTERRUPTED):
        abort_other_ranks(code)   # after an error here, the other ranks would wait forever
    return code
