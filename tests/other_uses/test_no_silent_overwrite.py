"""Every script that writes results follows train_svhn.py's rule: a run never replaces the
results of an earlier one unless ``--overwrite`` is given, and it refuses before any work.

Issue 22's cases: ``train_classifier.py`` replaced an existing feature network without a word
(and with it the FID of every run scored with it), ``adversarial.py`` a run's
``classifier.npz``, and ``semi_supervised.py``, ``domain_adversarial.py`` and
``batch_norm_mnist.py`` their results. Each case runs the real script in a fresh process.
"""

from __future__ import annotations

import argparse

import pytest

from minigan.scripts import check_no_earlier_results, prepare_results_folder
from tests.other_uses import one_line_error, run_example

# (script, the file of an earlier run that must survive, the arguments, with {out}). The
# data options point at a folder that does not exist: were the check not made first, the
# run would fail later with another message (or download), and the test would fail.
CASES = [
    ("train_classifier.py", "features.npz",
     ["--dataset", "mnist", "--data-dir", "{out}/no_data", "--no-download",
      "--out", "{out}/features.npz"]),
    ("train_classifier.py", "features_stats.npz",
     ["--dataset", "mnist", "--data-dir", "{out}/no_data", "--no-download",
      "--out", "{out}/features.npz"]),
    ("adversarial.py", "classifier.npz",
     ["--data-dir", "{out}/no_data", "--no-download", "--out", "{out}"]),
    ("adversarial.py", "summary.txt",
     ["--data-dir", "{out}/no_data", "--no-download", "--out", "{out}"]),
    ("semi_supervised.py", "accuracy.csv",
     ["--data-dir", "{out}/no_data", "--no-download", "--out", "{out}"]),
    ("domain_adversarial.py", "summary.txt",
     ["--data-dir", "{out}/no_data", "--no-download", "--out", "{out}"]),
    ("batch_norm_mnist.py", "losses.csv",
     ["--data-dir", "{out}/no_data", "--no-download", "--out", "{out}"]),
]


@pytest.mark.parametrize("script, earlier, args", CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_an_earlier_result_is_refused_in_one_line_and_kept(tmp_path, script, earlier, args):
    kept = tmp_path / earlier
    kept.write_bytes(b"the result of an earlier run")
    result = run_example(script, *(a.format(out=tmp_path) for a in args), timeout=120)
    assert one_line_error(result), result.stderr
    line = result.stderr.strip()
    assert str(kept) in line and "--overwrite" in line and "another --out" in line, line
    assert kept.read_bytes() == b"the result of an earlier run"


def test_with_overwrite_the_check_passes_and_the_run_goes_on_to_its_work(tmp_path):
    (tmp_path / "losses.csv").write_text("earlier")
    result = run_example("batch_norm_mnist.py", "--data-dir", tmp_path / "no_data",
                         "--no-download", "--out", tmp_path, "--overwrite", timeout=120)
    # It got past the guard: now it fails on the missing data, as it should here.
    assert one_line_error(result), result.stderr
    assert "already exists" not in result.stderr and "train-images" in result.stderr, \
        result.stderr


def test_the_helper_names_the_first_existing_result(tmp_path):
    (tmp_path / "b.csv").write_text("x")
    with pytest.raises(FileExistsError, match=r"b\.csv already exists.*--overwrite"):
        prepare_results_folder(tmp_path, ["a.png", "b.csv"], overwrite=False)
    assert prepare_results_folder(tmp_path, ["a.png", "b.csv"], overwrite=True) == tmp_path
    check_no_earlier_results([tmp_path / "a.png"], overwrite=False)   # nothing there: fine
    new = prepare_results_folder(tmp_path / "new" / "run", ["a.png"], overwrite=False)
    assert new.is_dir()


@pytest.mark.parametrize("script", ["train_classifier", "adversarial", "semi_supervised",
                                    "domain_adversarial", "batch_norm_mnist"])
def test_every_script_that_writes_results_has_the_same_overwrite_option(script):
    from tests.other_uses import load_example

    parser = load_example(script).build_parser()
    options = {o: a for a in parser._actions for o in a.option_strings}
    assert isinstance(options["--overwrite"], argparse._StoreTrueAction)
    assert "replace the results of an earlier run" in options["--overwrite"].help
