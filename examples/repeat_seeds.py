"""Run one of the experiment scripts for several seeds and print each result as mean ± spread.

    python examples/repeat_seeds.py semi_supervised -- --data-dir ../shared/data/mnist --no-download
    python examples/repeat_seeds.py adversarial --seeds 0 1 2 3 4 -- --data-dir ../shared/data/mnist
    python examples/repeat_seeds.py batch_norm_mnist --threads 1 -- --data-dir ../shared/data/mnist
    python examples/repeat_seeds.py train_svhn -- --dataset mnist --features runs/features.npz
    python examples/repeat_seeds.py domain_adversarial -- --data-dir ../shared/data/mnist

One run's number is not a result: the same script with another seed (other initial weights,
other batches, other labelled images) or another number of BLAS threads (other rounding) gives
another number. This script runs ``examples/<experiment>.py --seed S --out <folder>/seed_S``
for each seed, one child process after another (or ``--jobs`` at once), each limited to
``--threads`` BLAS threads; reads the numbers the run wrote into its folder (its CSV files and
``summary.txt``: the experiment scripts are not changed for this); and prints, for each number,
the mean, the sample standard deviation (n - 1 in the denominator), the smallest and the largest
value and every seed's own value. The same table goes to ``<folder>/repeat_seeds.csv``.

Everything after ``--`` is passed to the experiment script unchanged (except ``--seed`` and
``--out``, which this script sets).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

# Run as a file (python examples/repeat_seeds.py): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minigan.scripts import (  # noqa: E402
    OneLineParser,
    add_overwrite_argument,
    check_no_earlier_results,
    int_argument,
    run_script,
)

EXAMPLES = Path(__file__).resolve().parent


# ------------------------------------------------------------------ reading one run's numbers
# Each reader takes a run folder and returns {name of the number: value}, in the order to print.

def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise ValueError(f"the run wrote no {path.name} in {path.parent}")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def semi_supervised_numbers(folder: Path) -> dict[str, float]:
    """The last epoch's held-out accuracies of both classifiers, and the gain between them."""
    last = read_csv(folder / "accuracy.csv")[-1]
    semi, base = float(last["acc_semi_supervised"]), float(last["acc_baseline"])
    return {"semi-supervised GAN accuracy": semi, "baseline (labels only) accuracy": base,
            "gain (points)": 100 * (semi - base)}


def adversarial_numbers(folder: Path) -> dict[str, float]:
    """Accuracy under FGSM at each epsilon (epsilon 0: the unperturbed images)."""
    return {f"accuracy at epsilon {row['epsilon']}": float(row["accuracy"])
            for row in read_csv(folder / "accuracy.csv")}


def batch_norm_numbers(folder: Path) -> dict[str, float]:
    """Final held-out accuracy of both nets, the first step each reached 0.9, and the batch-norm
    net's accuracy in eval mode and in train mode (from the table in ``summary.txt``)."""
    curve = read_csv(folder / "heldout_accuracy.csv")
    numbers = {"final accuracy, plain": float(curve[-1]["acc_plain"]),
               "final accuracy, batch norm": float(curve[-1]["acc_batch_norm"])}
    for column, name in (("acc_plain", "plain"), ("acc_batch_norm", "batch norm")):
        reached = [int(row["step"]) for row in curve if float(row[column]) >= 0.9]
        # A run that never reached 0.9 has no such step: leave it out rather than invent one.
        if reached:
            numbers[f"first step with acc >= 0.9, {name}"] = reached[0]
    summary = (folder / "summary.txt").read_text()
    for mode, stats, acc in re.findall(r"^\s+(eval mode|train mode)\s+(.+?)\s+([01]\.\d+)$",
                                       summary, flags=re.MULTILINE):
        numbers[f"batch-norm net, {mode} ({stats})"] = float(acc)
    return numbers


def gan_numbers(folder: Path) -> dict[str, float]:
    """FID and IS after the first and the last scored epoch (``metrics.csv`` of a run given
    ``--features``)."""
    if not (folder / "metrics.csv").is_file():
        raise ValueError(f"the run wrote no metrics.csv in {folder}: give train_svhn.py "
                         f"--features, so that it scores the generator")
    rows = read_csv(folder / "metrics.csv")
    numbers = {}
    for row in (rows[0], rows[-1]):
        epoch = int(row["epoch"])
        numbers[f"FID after epoch {epoch}"] = float(row["fid"])
        numbers[f"IS after epoch {epoch}"] = float(row["inception_score"])
    return numbers


def domain_adversarial_numbers(folder: Path) -> dict[str, float]:
    """The last epoch's held-out accuracies of both networks on both domains, the gain on the
    target, and how often the domain classifier told the domains apart."""
    last = read_csv(folder / "accuracy.csv")[-1]
    plain, dann = float(last["target_source_only"]), float(last["target_with_domain_classifier"])
    return {"target accuracy, source only": plain,
            "target accuracy, with domain classifier": dann,
            "target gain (points)": 100 * (dann - plain),
            "source accuracy, source only": float(last["source_source_only"]),
            "source accuracy, with domain classifier": float(last["source_with_domain_classifier"]),
            "domain classifier's training accuracy": float(
                last["domain_classifier_train_accuracy"])}


EXPERIMENTS: dict[str, Callable[[Path], dict[str, float]]] = {
    "train_svhn": gan_numbers,
    "domain_adversarial": domain_adversarial_numbers,
    "semi_supervised": semi_supervised_numbers,
    "adversarial": adversarial_numbers,
    "batch_norm_mnist": batch_norm_numbers,
}


# ------------------------------------------------------------------ mean and spread

def summarize(per_seed: dict[int, dict[str, float]]) -> list[dict[str, object]]:
    """One row per number: its mean, sample std, min, max and each seed's value.

    A number missing from some seeds' runs (e.g. a step never reached) is summarized over the
    seeds that have it, and its row says how many that was.
    """
    names: list[str] = []
    for numbers in per_seed.values():
        names += [n for n in numbers if n not in names]
    rows = []
    for name in names:
        values = {seed: numbers[name] for seed, numbers in per_seed.items() if name in numbers}
        v = list(values.values())
        rows.append({"number": name, "n": len(v), "mean": statistics.fmean(v),
                     "std": statistics.stdev(v) if len(v) > 1 else float("nan"),
                     "min": min(v), "max": max(v), "values": values})
    return rows


def format_table(rows: list[dict[str, object]], seeds: list[int]) -> str:
    width = max(len(str(r["number"])) for r in rows)

    lines = [f"{'':<{width}}  {'mean':>8} {'± std':>8} {'min':>8} {'max':>8}   "
             + " ".join(f"{'seed ' + str(s):>8}" for s in seeds)]
    for r in rows:
        values = r["values"]
        # Fractions (accuracies) get 4 decimals, other numbers below 10 (an Inception Score, a
        # gain of a few points) 2, larger ones (counts, FIDs) 1: the same for a whole row.
        largest = max(abs(v) for v in values.values())
        decimals = 4 if largest <= 1 else 2 if largest < 10 else 1

        def fmt(x: float, decimals: int = decimals) -> str:
            return f"{x:.{decimals}f}"

        lines.append(f"{r['number']:<{width}}  {fmt(r['mean']):>8} {fmt(r['std']):>8} "
                     f"{fmt(r['min']):>8} {fmt(r['max']):>8}   "
                     + " ".join(f"{fmt(values[s]) if s in values else '-':>8}" for s in seeds))
    return "\n".join(lines)


def write_table(rows: list[dict[str, object]], seeds: list[int], path: Path) -> None:
    """The table as CSV, written to a temporary file and renamed (never half a file)."""
    part = path.with_name(path.name + ".part")
    with open(part, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["number", "n", "mean", "std", "min", "max",
                         *(f"seed_{s}" for s in seeds)])
        for r in rows:
            writer.writerow([r["number"], r["n"], *(f"{r[k]:.6g}" for k in
                                                    ("mean", "std", "min", "max")),
                             *(f"{r['values'][s]:.6g}" if s in r["values"] else ""
                               for s in seeds)])
    os.replace(part, path)


# ------------------------------------------------------------------ running the seeds

def child_environment(threads: int) -> dict[str, str]:
    """This environment, with every BLAS/OpenMP library held to ``threads`` threads and the
    repository importable (so the children run this copy of minigan)."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    root = str(EXAMPLES.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


class Runs:
    """The seeds' child processes, so that all of them stop when one fails or when this script
    is stopped (Ctrl-C, SIGTERM): no run goes on, or starts, after this script said it ended."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: list[subprocess.Popen] = []
        self.stopping = False

    def run(self, command: list[str], log: Any, env: dict[str, str]) -> int | None:
        """The child's exit code; None when the runs were stopped before it could start."""
        with self._lock:
            if self.stopping:
                return None
            child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            self._running.append(child)
        try:
            return child.wait()
        finally:
            with self._lock:
                self._running.remove(child)

    def stop_all(self) -> None:
        """Start no more runs; ask the running ones to stop (SIGTERM: each saves what it can
        and exits), and wait for them."""
        with self._lock:
            self.stopping = True
            running = list(self._running)
        for child in running:
            if child.poll() is None:
                child.terminate()
        for child in running:
            try:
                child.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()


STOP_SECONDS = 30   # how long a stopped run may take to save and exit before it is killed


def run_one(experiment: str, seed: int, folder: Path, script_args: list[str],
            threads: int, runs: Runs) -> dict[str, float] | None:
    """Run the experiment once with ``seed`` into ``folder``; its numbers (None: the runs were
    stopped before this one started)."""
    if runs.stopping:   # another seed failed, or Ctrl-C: leave no empty folder behind
        return None
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(EXAMPLES / f"{experiment}.py"), *script_args,
               "--seed", str(seed), "--out", str(folder)]
    with open(folder / "log.txt", "w") as log:
        code = runs.run(command, log, child_environment(threads))
    if code is None or (code != 0 and runs.stopping):   # not started, or stopped by us
        return None
    if code != 0:
        runs.stopping = True   # at once: this pool's next seed must not start
        lines = (folder / "log.txt").read_text().strip().splitlines()
        raise RuntimeError(f"seed {seed} failed (exit {code}): "
                           f"{lines[-1] if lines else 'no output'} (log: {folder / 'log.txt'})")
    return EXPERIMENTS[experiment](folder)


def earlier_results(folder: Path) -> list[Path]:
    """A seed's earlier log, when its run left more than the log: a run that failed before
    writing anything (a mistyped option) left only its log, and the corrected command may
    replace it."""
    log = folder / "log.txt"
    others = [p for p in folder.iterdir() if p != log] if folder.is_dir() else []
    return [log] if log.exists() and others else []


class ParserWithScriptArguments(OneLineParser):
    """This script's options before ``--``; the experiment script's arguments after it, as
    ``script_args``."""

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        args = sys.argv[1:] if args is None else list(args)
        cut = args.index("--") if "--" in args else len(args)
        parsed = super().parse_args(args[:cut], namespace)
        parsed.script_args = args[cut + 1:]
        return parsed


def build_parser() -> OneLineParser:
    p = ParserWithScriptArguments(description=__doc__.split("\n\n")[0])
    p.add_argument("experiment", choices=sorted(EXPERIMENTS),
                   help="which script of examples/ to repeat")
    p.add_argument("--seeds", type=int_argument, nargs="+", default=[0, 1, 2],
                   help="the seeds to run (at least 3: a spread needs them)")
    p.add_argument("--threads", type=int_argument, default=1,
                   help="BLAS threads of each run (the number changes the rounding, so quote it)")
    p.add_argument("--jobs", type=int_argument, default=1, help="runs at the same time")
    p.add_argument("--out", default=None,
                   help="folder for the runs and the table (default: runs/repeat_<experiment>)")
    add_overwrite_argument(p, "--out (the table, and each seed's run: passed on to them)")
    p.epilog = "Arguments after -- go to the experiment script."
    return p


def check_and_run(args: argparse.Namespace) -> None:
    from minigan.progress import tqdm

    seeds = list(dict.fromkeys(args.seeds))
    if len(seeds) < 3:
        raise ValueError(f"--seeds needs at least 3 different seeds for a spread, got {seeds}")
    if any(s < 0 for s in seeds):
        raise ValueError(f"--seeds must be 0 or more, got {seeds}")
    for name in ("threads", "jobs"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}")
    taken = {"--seed", "--out"} & {a.split("=")[0] for a in args.script_args}
    if taken:
        raise ValueError(f"{', '.join(sorted(taken))} after -- is set by this script per run")
    out = Path(args.out or f"runs/repeat_{args.experiment}")
    # The table, and each seed's log (a child refused later would already have replaced it).
    check_no_earlier_results([out / "repeat_seeds.csv",
                              *(p for s in seeds for p in earlier_results(out / f"seed_{s}"))],
                             args.overwrite)
    if args.overwrite and "--overwrite" not in args.script_args:
        args.script_args = [*args.script_args, "--overwrite"]   # each seed's run replaces its own
    print(f"{args.experiment}: seeds {seeds}, {args.threads} BLAS thread(s) per run, "
          f"{args.jobs} at a time; runs in {out}/seed_<S>")
    per_seed: dict[int, dict[str, float]] = {}
    runs = Runs()
    with ThreadPoolExecutor(args.jobs) as pool, \
            tqdm(total=len(seeds), unit="run", desc=args.experiment) as bar:
        futures = {pool.submit(run_one, args.experiment, s, out / f"seed_{s}",
                               args.script_args, args.threads, runs): s for s in seeds}
        try:
            for future in as_completed(futures):   # the first failure as soon as it happens
                per_seed[futures[future]] = future.result()
                bar.update(1)
        except BaseException:   # a seed failed, Ctrl-C or SIGTERM: stop every run, then say it
            runs.stop_all()
            raise
    rows = summarize(per_seed)
    write_table(rows, seeds, out / "repeat_seeds.csv")
    command = " ".join(["python examples/repeat_seeds.py", args.experiment,
                        "--seeds", *map(str, seeds), "--threads", str(args.threads),
                        *(["--", *args.script_args] if args.script_args else [])])
    print(f"\n{command}\n{format_table(rows, seeds)}\ntable: {out / 'repeat_seeds.csv'}")


def main(argv: list[str] | None = None) -> int:
    return run_script(check_and_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
