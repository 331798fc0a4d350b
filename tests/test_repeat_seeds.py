"""examples/repeat_seeds.py: an experiment over several seeds, summarized as mean ± std.

The subprocess machinery runs a stand-in for an experiment script (a few lines that write the
result file the real script writes), so the test takes a second; the readers are checked on
result files written the way the real scripts write them.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import statistics
import sys
import textwrap
import threading
import time

import pytest

from tests.helpers import REPO_ROOT


def load_repeat_seeds():
    spec = importlib.util.spec_from_file_location("repeat_seeds",
                                                  REPO_ROOT / "examples" / "repeat_seeds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


repeat_seeds = load_repeat_seeds()

# A stand-in for examples/adversarial.py: its accuracy.csv, with numbers made from the seed.
FAKE_ADVERSARIAL = textwrap.dedent("""
    import argparse, pathlib
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int)
    p.add_argument("--out")
    p.add_argument("--epochs", type=int)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args()
    if (pathlib.Path(args.out) / "accuracy.csv").exists() and not args.overwrite:
        raise SystemExit("error: accuracy.csv already exists: use --overwrite")
    out = pathlib.Path(args.out)
    (out / "accuracy.csv").write_text(
        "epsilon,accuracy\\n0,%.4f\\n0.1,%.4f\\n" % (0.9 + args.seed / 100, args.epochs / 10))
""")


def test_each_seed_runs_and_the_table_gives_mean_and_sample_std(tmp_path, monkeypatch, capsys):
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "adversarial.py").write_text(FAKE_ADVERSARIAL)
    monkeypatch.setattr(repeat_seeds, "EXAMPLES", examples)
    out = tmp_path / "runs"
    code = repeat_seeds.main(["adversarial", "--seeds", "0", "1", "5", "--out", str(out),
                              "--", "--epochs", "3"])
    assert code == 0
    rows = {r["number"]: r for r in repeat_seeds.read_csv(out / "repeat_seeds.csv")}
    clean = rows["accuracy at epsilon 0"]
    assert [float(clean[f"seed_{s}"]) for s in (0, 1, 5)] == [0.90, 0.91, 0.95]
    assert float(clean["mean"]) == pytest.approx(statistics.fmean([0.90, 0.91, 0.95]))
    assert float(clean["std"]) == pytest.approx(statistics.stdev([0.90, 0.91, 0.95]), rel=1e-5)
    attacked = rows["accuracy at epsilon 0.1"]          # --epochs 3 reached every run
    assert float(attacked["mean"]) == pytest.approx(0.3) and float(attacked["std"]) == 0
    printed = capsys.readouterr().out
    assert "accuracy at epsilon 0 " in printed and "seed 5" in printed
    assert "-- --epochs 3" in printed                    # the command that made the numbers


def test_an_earlier_table_is_kept_unless_overwrite_which_each_run_gets_too(
        tmp_path, monkeypatch, capsys):
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "adversarial.py").write_text(FAKE_ADVERSARIAL)
    monkeypatch.setattr(repeat_seeds, "EXAMPLES", examples)
    argv = ["adversarial", "--out", str(tmp_path / "runs"), "--", "--epochs", "3"]
    assert repeat_seeds.main(argv) == 0
    table = (tmp_path / "runs" / "repeat_seeds.csv").read_text()
    capsys.readouterr()
    assert repeat_seeds.main(argv) == 2
    assert "repeat_seeds.csv already exists" in capsys.readouterr().err
    assert repeat_seeds.main(["adversarial", "--overwrite", *argv[1:]]) == 0   # runs replaced
    assert (tmp_path / "runs" / "repeat_seeds.csv").read_text() == table
    # Without the table, a seed's earlier run is still kept: refused before any run starts.
    (tmp_path / "runs" / "repeat_seeds.csv").unlink()
    log = (tmp_path / "runs" / "seed_0" / "log.txt").read_text()
    capsys.readouterr()
    assert repeat_seeds.main(argv) == 2
    assert "seed_0/log.txt already exists" in capsys.readouterr().err
    assert (tmp_path / "runs" / "seed_0" / "log.txt").read_text() == log


def test_a_failing_run_is_one_line_naming_the_seed(tmp_path, monkeypatch, capsys):
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "adversarial.py").write_text("raise SystemExit('error: no data here')\n")
    monkeypatch.setattr(repeat_seeds, "EXAMPLES", examples)
    assert repeat_seeds.main(["adversarial", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: seed 0 failed (exit 1): error: no data here")
    # The other seeds never started; the failed run's lone log does not block the mended
    # command (it left no results to keep).
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["seed_0"]
    (examples / "adversarial.py").write_text(FAKE_ADVERSARIAL)
    assert repeat_seeds.main(["adversarial", "--out", str(tmp_path / "runs"), "--",
                              "--epochs", "3"]) == 0


def test_stopping_ends_the_running_seeds_and_starts_no_more(tmp_path):
    """Ctrl-C, SIGTERM or a failed seed: the runs under way are asked to stop (SIGTERM) and
    waited for, and none starts after that."""
    runs = repeat_seeds.Runs()
    codes = []
    with open(tmp_path / "log.txt", "w") as log:
        waiting = threading.Thread(target=lambda: codes.append(runs.run(
            [sys.executable, "-c", "import time; time.sleep(60)"], log, dict(os.environ))))
        waiting.start()
        deadline = time.monotonic() + 30
        while not runs._running and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        runs.stop_all()
        waiting.join(timeout=30)
        assert time.monotonic() - started < 10 and codes == [-signal.SIGTERM]
        assert runs.run([sys.executable, "-c", "pass"], log, dict(os.environ)) is None


@pytest.mark.parametrize("argv, message", [
    (["batch_norm_mnist", "--seeds", "0", "1"], "at least 3 different seeds"),
    (["batch_norm_mnist", "--seeds", "0", "0", "1"], "at least 3 different seeds"),
    (["batch_norm_mnist", "--", "--seed", "4"], "--seed after -- is set by this script"),
    (["batch_norm_mnist", "--threads", "0"], "--threads must be at least 1"),
])
def test_bad_arguments_are_refused_in_one_line(argv, message, capsys):
    assert repeat_seeds.main(argv) == 2
    assert message in capsys.readouterr().err


def test_readers_take_the_numbers_the_scripts_write(tmp_path):
    (tmp_path / "accuracy.csv").write_text(
        "epoch,acc_semi_supervised,acc_baseline,loss_labelled_semi\n1,0.5000,0.4000,1.0\n"
        "2,0.8680,0.7415,0.5\n")
    numbers = repeat_seeds.semi_supervised_numbers(tmp_path)
    assert numbers["semi-supervised GAN accuracy"] == 0.868
    assert numbers["baseline (labels only) accuracy"] == 0.7415
    assert numbers["gain (points)"] == pytest.approx(12.65)

    (tmp_path / "heldout_accuracy.csv").write_text(
        "step,acc_plain,acc_batch_norm\n0,0.1,0.1\n25,0.5,0.92\n50,0.91,0.95\n75,0.93,0.96\n")
    (tmp_path / "summary.txt").write_text(
        "batch-norm net on the 2000 held-out images:\n"
        "  mode        normalised with         accuracy\n"
        "  eval mode   running statistics        0.9580\n"
        "  train mode  each batch of 8           0.9195\n")
    numbers = repeat_seeds.batch_norm_numbers(tmp_path)
    assert numbers == {"final accuracy, plain": 0.93, "final accuracy, batch norm": 0.96,
                       "first step with acc >= 0.9, plain": 50,
                       "first step with acc >= 0.9, batch norm": 25,
                       "batch-norm net, eval mode (running statistics)": 0.958,
                       "batch-norm net, train mode (each batch of 8)": 0.9195}


def test_the_gan_reader_takes_the_first_and_last_scores_and_says_what_a_run_lacks(tmp_path):
    with pytest.raises(ValueError, match="give train_svhn.py --features"):
        repeat_seeds.gan_numbers(tmp_path)
    (tmp_path / "metrics.csv").write_text(   # as write_logs writes it: epoch an int
        "epoch,fid,inception_score,inception_score_std\n2,871.5,1.9,0.1\n4,120.25,5.5,0.2\n"
        "6,86.75,6.25,0.1\n")
    assert repeat_seeds.gan_numbers(tmp_path) == {
        "FID after epoch 2": 871.5, "IS after epoch 2": 1.9,
        "FID after epoch 6": 86.75, "IS after epoch 6": 6.25}


def test_the_domain_adversarial_reader_takes_the_last_epoch(tmp_path):
    (tmp_path / "accuracy.csv").write_text(   # as examples/domain_adversarial.py writes it
        "epoch,target_source_only,target_with_domain_classifier,source_source_only,"
        "source_with_domain_classifier,domain_classifier_train_accuracy,lambda\n"
        "1,0.1000,0.1200,0.9000,0.8800,0.6000,0.1000\n"
        "2,0.1945,0.1675,0.9755,0.9585,0.7640,0.2900\n")
    numbers = repeat_seeds.domain_adversarial_numbers(tmp_path)
    assert numbers == pytest.approx({
        "target accuracy, source only": 0.1945, "target accuracy, with domain classifier": 0.1675,
        "target gain (points)": -2.7, "source accuracy, source only": 0.9755,
        "source accuracy, with domain classifier": 0.9585,
        "domain classifier's training accuracy": 0.764})


def test_a_number_some_runs_lack_is_summarized_over_the_others():
    rows = repeat_seeds.summarize({0: {"a": 1.0, "b": 10}, 1: {"a": 3.0}, 2: {"a": 5.0,
                                                                          "b": 20}})
    a, b = rows
    assert (a["n"], a["mean"], a["std"]) == (3, 3.0, 2.0)
    assert (b["n"], b["mean"], b["values"]) == (2, 15, {0: 10, 2: 20})


def test_each_row_of_the_table_keeps_one_number_of_decimals():
    rows = repeat_seeds.summarize({0: {"accuracy": 0.9, "gain (points)": 16.6, "IS": 6.34},
                                   1: {"accuracy": 0.91, "gain (points)": 5.75, "IS": 6.12},
                                   2: {"accuracy": 0.88, "gain (points)": 13.3, "IS": 6.04}})
    accuracy, gain, score = repeat_seeds.format_table(rows, [0, 1, 2]).splitlines()[1:]
    assert accuracy.split()[1:] == ["0.8967", "0.0153", "0.8800", "0.9100",
                                    "0.9000", "0.9100", "0.8800"]
    assert gain.split()[2:] == ["11.9", "5.6", "5.8", "16.6", "16.6", "5.8", "13.3"]
    assert score.split()[1:] == ["6.17", "0.16", "6.04", "6.34", "6.34", "6.12", "6.04"]
