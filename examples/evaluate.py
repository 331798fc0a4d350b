"""Score a trained DCGAN generator with FID and IS, using a feature network trained by minigan.

    python examples/train_classifier.py --dataset svhn          # once per dataset
    python examples/evaluate.py --checkpoint runs/svhn/checkpoint.npz \\
        --features runs/features_svhn.npz --num-samples 10000

The generator is rebuilt from the trainer's checkpoint (its settings are saved in it), draws
--num-samples images from fixed latent vectors (--seed), and
``minigan.metrics.gan_eval.GANEvaluator`` compares them with the real images' cached feature
statistics (FID, lower is better) and scores their class probabilities (IS, higher is better).

These are domain-specific FID and IS: comparable between runs scored with the same feature
network file, not with published Inception-v3 numbers. For those, score with the FID
Inception-v3 (pytorch-fid's weights, fetched once; see docs/inception.md):

    python examples/evaluate.py --checkpoint runs/svhn/checkpoint.npz --features inception \\
        --dataset svhn --export-samples runs/svhn/scored

``--export-samples DIR`` writes the scored samples as PNG files, which pytorch-fid or clean-fid
can score too; the scores printed are then those of exactly these 8-bit images.

On a CPU with several cores, ``--processes N`` scores with N processes (one per core), each
taking 1/N of the samples, as training's ``--processes`` does (docs/distributed.md): the same
scores in about 1/N of the time.
"""

from __future__ import annotations

import minigan.startup  # noqa: F401  (first: Ctrl-C while NumPy loads is one line)

# isort: split
import argparse
import sys
from pathlib import Path
from typing import Any

from minigan.backend import backend_name, use_backend
from minigan.checkpoint import load_checkpoint
from minigan.data import dataset_label, is_npz_path, load_dataset
from minigan.data.folder import EXTENSIONS
from minigan.data.loader import unscale_images
from minigan.distributed import (
    SINGLE_PROCESS,
    World,
    abort_other_ranks,
    join_world,
    launched_on_this_machine,
)
from minigan.gan import run_folder
from minigan.gan.dcgan import Generator
from minigan.launch import launch_this_script
from minigan.metrics.features import FeatureNet
from minigan.metrics.gan_eval import MIN_RELIABLE_SAMPLES, GANEvaluator, statistics_path
from minigan.metrics.inception_eval import (
    InceptionEvaluator,
    InceptionScorer,
    export_samples,
    save_inception_statistics,
)
from minigan.metrics.inception_score import MIN_SCORED_SAMPLES
from minigan.metrics.statistics import load_statistics_meta
from minigan.scripts import (
    EXIT_INTERRUPTED,
    OneLineParser,
    add_backend_argument,
    add_data_dir_arguments,
    add_overwrite_argument,
    check_no_earlier_results,
    check_writable_folder,
    dataset_argument,
    quiet_unless_root,
    run_script,
    seed_argument,
)

CHANNELS = {"svhn": 3, "cifar10": 3, "mnist": 1, "synthetic": 3}


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True,
                   help="a trainer checkpoint, e.g. runs/svhn/checkpoint.npz")
    p.add_argument("--features", default=None,
                   help="the feature network from train_classifier.py "
                        "(default: runs/features_<dataset>.npz; for my_images.npz, "
                        "runs/features_my_images.npz), or 'inception' for the FID Inception-v3 "
                        "(published-style FID and IS)")
    p.add_argument("--reference-stats", default=None, metavar="FILE.npz",
                   help="with --features inception: the real images' pool3 statistics (mu, "
                        "sigma; a pytorch-fid --save-stats file works). Default: "
                        "runs/inception_stats_<dataset>.npz, computed from --dataset's training "
                        "images if it is not there")
    p.add_argument("--reference-count", type=int, default=10000,
                   help="with --features inception: real images for new reference statistics")
    p.add_argument("--export-samples", default=None, metavar="DIR",
                   help="write the scored samples as PNG files in DIR (for pytorch-fid or "
                        "clean-fid); the scores are then those of these 8-bit images")
    add_overwrite_argument(p, "--export-samples")
    add_data_dir_arguments(p, whose="the datasets' and the Inception weights'")
    p.add_argument("--dataset", type=dataset_argument, default=None, metavar="NAME|FILE.npz",
                   help="the dataset G was trained on (svhn, cifar10, mnist, synthetic or an "
                        ".npz file), to check it against the feature network (default: the "
                        "one the checkpoint's run recorded)")
    p.add_argument("--num-samples", type=int, default=10000,
                   help=f"images to generate (fewer than {MIN_RELIABLE_SAMPLES} bias FID)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images generated and scored at a time (default: 500, or 50 with "
                        "--features inception)")
    p.add_argument("--seed", type=seed_argument, default=0, help="seed of the latent vectors")
    p.add_argument("--processes", type=int, default=1,
                   help="score with N processes on this machine, each taking 1/N of the "
                        "samples (python -m minigan.launch -n N; CPU only): on a CPU, set N to "
                        "its cores")
    add_backend_argument(p)
    return p


def load_generator(path: str | Path) -> tuple[Generator, dict[str, Any], dict[str, Any]]:
    """Rebuild G from a trainer checkpoint; returns (G in eval mode, its settings, where the run
    was: ``{"epoch": ..., "step": ...}`` or empty).

    G's settings are saved in the checkpoint (``Generator.config()``) and read back by
    ``minigan.gan.run_folder.load_generator``, which names the file and the fault when it is
    damaged.
    """
    G = run_folder.load_generator(path)
    progress = load_checkpoint(path, what="trainer checkpoint").get("progress", {})
    where = {}
    if "epoch" in progress and "step" in progress:
        where = {"epoch": int(progress["epoch"]), "step": int(progress["step"])}
    return G, G.config(), where


def check_export_folder(args: argparse.Namespace) -> None:
    """--export-samples DIR: writable, holding no other pictures (a tool that scores the
    folder, pytorch-fid say, would score them too: a run's sample grids, if DIR is its
    samples/), and no samples of an earlier export (they would mix with these), unless
    --overwrite, which removes those first. Checked before any work."""
    if not args.export_samples:
        return
    folder = check_writable_folder(args.export_samples, "--export-samples")
    earlier = sorted(folder.glob("[0-9]" * 6 + ".png"))   # the names export_samples writes
    others = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS
                    and p not in earlier)
    if others:
        raise FileExistsError(f"--export-samples {folder} holds other pictures ({others[0].name}"
                              f", {len(others)} in all), which a tool scoring the folder would "
                              f"score with the samples: give an empty folder of its own")
    check_no_earlier_results(earlier[:1], args.overwrite, "--export-samples")
    for path in earlier:
        path.unlink()


def run(args: argparse.Namespace) -> dict[str, float]:
    use_backend(args.backend)
    args.world.root_first(lambda: check_export_folder(args))   # one process clears it
    if args.dataset is None and Path(args.checkpoint).is_file():
        # the run's own, so that the feature network is checked against it
        args.dataset = run_folder.saved_settings(args.checkpoint).get("dataset")
        if args.dataset is not None:
            print(f"dataset: {args.dataset} (the checkpoint's run trained on it)")
    if args.features == "inception":
        return run_inception(args)
    if args.reference_stats is not None:
        raise ValueError("--reference-stats is for --features inception")
    if not Path(args.checkpoint).is_file():   # its own error before asking for --features:
        run_folder.load_generator(args.checkpoint)   # none there, or a run folder
    if args.features is None and args.dataset is None:
        raise ValueError("give --features (the file from train_classifier.py) or --dataset")
    features = Path(args.features or f"runs/features_{dataset_label(args.dataset)}.npz")
    G, sizes, where = load_generator(args.checkpoint)
    info = FeatureNet.load_info(features)

    trained_on = info.get("dataset")
    # An .npz file is compared by its name without folder or suffix: the same file may be
    # given by another path here than it was to train_classifier.py.
    if args.dataset and trained_on and dataset_label(trained_on) != dataset_label(args.dataset):
        raise ValueError(f"{features} was trained on {trained_on}, not {args.dataset}: train "
                         f"one with examples/train_classifier.py --dataset {args.dataset}")
    # The channels of a file of one's own are not known without reading it; the check of G
    # against the feature network below still catches a mismatch.
    if args.dataset and not is_npz_path(args.dataset) and \
            CHANNELS[args.dataset] != sizes["channels"]:
        raise ValueError(f"{args.dataset} images have {CHANNELS[args.dataset]} channel(s) but "
                         f"this G makes {sizes['channels']}: was it trained on another dataset?")

    evaluate = GANEvaluator(features, num_samples=args.num_samples,
                            batch_size=args.batch_size, seed=args.seed,
                            z_distribution=G.z_distribution,
                            progress=True)
    share_the_work(evaluate, args.world)
    if evaluate.net.channels != sizes["channels"] or \
            evaluate.net.image_size != sizes["image_size"]:
        raise ValueError(
            f"G makes {sizes['channels']}x{sizes['image_size']}x{sizes['image_size']} images "
            f"but {features} scores {evaluate.net.channels}x{evaluate.net.image_size}x"
            f"{evaluate.net.image_size} ones ({trained_on or 'another dataset'})")

    where = (f" (after {where['step']} steps, {where['epoch']} "
             f"epoch{'' if where['epoch'] == 1 else 's'} done)" if where else "")
    print(f"generator: {args.checkpoint}{where}: z_size {sizes['z_size']}, conv_dim "
          f"{sizes['conv_dim']}, {sizes['channels']}x{sizes['image_size']}x"
          f"{sizes['image_size']} images, z ~ {evaluate.z_distribution}")
    accuracy = info.get("accuracy")
    acc_text = f", held-out accuracy {accuracy:.4f}" if accuracy is not None else ""
    count = load_statistics_meta(evaluate.stats_path).get("count", "?")
    print(f"feature network: {features} (trained on {trained_on or '?'}{acc_text}); real "
          f"statistics: {statistics_path(features)} ({count} images)")
    scores = generate_and_score(evaluate, G, args)
    print(f"settings: feature network {features}, {args.num_samples} samples, seed {args.seed}. "
          f"Domain-specific scores: compare only with scores from this same feature network, "
          f"not with published Inception-v3 FID/IS.")
    return scores


def run_inception(args: argparse.Namespace) -> dict[str, float]:
    """FID and IS with the FID Inception-v3, against reference statistics of real images."""
    from minigan.metrics.inception_weights import load_fid_inception

    if args.reference_stats is None and args.dataset is None:
        raise ValueError("--features inception needs --reference-stats FILE.npz or --dataset")
    G, sizes, _ = load_generator(args.checkpoint)
    if sizes["channels"] not in (1, 3):
        raise ValueError(f"Inception scores 1- or 3-channel images, G makes {sizes['channels']}")
    stats = Path(args.reference_stats or
                 f"runs/inception_stats_{dataset_label(args.dataset)}.npz")
    # With several processes, rank 0 downloads the weights, and the others then find them
    # where it left them; each computes its share of new reference statistics.
    net = args.world.root_first(
        lambda: load_fid_inception(args.data_dir, download_missing=not args.no_download))
    reference_statistics(args, stats, net)
    evaluate = InceptionEvaluator(stats, net, num_samples=args.num_samples,
                                  batch_size=args.batch_size, seed=args.seed,
                                  z_distribution=G.z_distribution,
                                  progress=True)
    share_the_work(evaluate, args.world)
    meta = load_statistics_meta(stats)
    print(f"generator: {args.checkpoint}: {sizes['channels']}x{sizes['image_size']}x"
          f"{sizes['image_size']} images, z ~ {evaluate.z_distribution}")
    print(f"feature network: FID Inception-v3 (pytorch-fid weights), images resized to 299x299; "
          f"reference statistics: {stats} ({meta.get('count', '?')} images of "
          f"{meta.get('dataset', '?')})")
    scores = generate_and_score(evaluate, G, args)
    print(f"settings: FID Inception-v3 pool3 (2048-d), {args.num_samples} samples, seed "
          f"{args.seed}, reference statistics {stats}; IS from the 1008-way softmax without the "
          f"last layer's bias, as the original code. Comparable with pytorch-fid on the same "
          f"images and statistics; papers use 10,000-50,000 samples.")
    return scores


def reference_statistics(args: argparse.Namespace, stats: Path, net: Any) -> None:
    """Compute and save the real images' pool3 statistics at ``stats``, unless already there:
    each process its share of the images (rank 0 downloads them first and writes the file)."""
    if stats.is_file():
        return
    if args.reference_stats is not None:
        raise ValueError(f"no reference statistics at {stats}")
    if args.reference_count < 2:
        raise ValueError("--reference-count must be at least 2")
    images, _ = args.world.root_first(lambda: load_dataset(
        args.dataset, "train", args.data_dir, download=not args.no_download))
    images = images[:args.reference_count]
    print(f"reference statistics: Inception pool3 of {len(images)} {args.dataset} training "
          f"images -> {stats} (once; slow on a CPU)")
    save_inception_statistics(InceptionScorer(net, args.batch_size), images, stats,
                              progress=True, world=args.world, dataset=str(args.dataset),
                              split="train")


def share_the_work(evaluate: Any, world: World) -> None:
    """Each of several processes scores its share of the samples (GANEvaluator.on_shares)."""
    if world.size > 1:
        evaluate.share_with(world)
        print(f"{world.size} processes, each scoring 1/{world.size} of the samples")


def generate_and_score(evaluate: Any, G: Generator, args: argparse.Namespace) -> dict[str, float]:
    """Draw the samples, write them as PNG files if asked, score them and print FID and IS."""
    print(f"generating and scoring {args.num_samples} samples (seed {args.seed}, backend "
          f"{backend_name()})")
    images = evaluate.generate(G)
    if args.export_samples:
        images = unscale_images(images)   # score exactly the 8-bit images written out
        if args.world.is_root:            # every process has the same images: one writes them
            export_samples(images, args.export_samples)
            print(f"wrote {len(images)} PNG files to {args.export_samples}")
    scores = evaluate.score_images(images)
    print(f"FID {scores['fid']:.3f}")
    print(f"IS  {scores['inception_score']:.3f} ± {scores['inception_score_std']:.3f} "
          f"(10 splits)")
    return scores


def check_and_run(args: argparse.Namespace) -> None:
    # One of the processes of --processes N: each scores its share; rank 0 alone prints.
    args.world = join_world() if launched_on_this_machine() else SINGLE_PROCESS
    quiet_unless_root(args.world)
    if args.num_samples < MIN_SCORED_SAMPLES:
        raise ValueError(f"--num-samples must be at least {MIN_SCORED_SAMPLES} (IS uses 10 "
                         f"splits), got {args.num_samples}")
    if args.batch_size is None:
        args.batch_size = 50 if args.features == "inception" else 500
    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    run(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.processes != 1 and not launched_on_this_machine():
        return launch_this_script(args.processes, args.backend,
                                  sys.argv[1:] if argv is None else argv)
    # One-line warnings (e.g. the small-sample FID warning), errors and Ctrl-C: run_script.
    code = run_script(check_and_run, args, several_processes=True)
    if code not in (0, EXIT_INTERRUPTED):
        abort_other_ranks(code)   # with --processes, the others may be waiting for this one
    return code


if __name__ == "__main__":
    sys.exit(main())
