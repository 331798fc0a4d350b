"""Exercises: write minigan's kernels and the course's tasks yourself, have them graded, train.

    python -m minigan.exercises init my_kernels/      # copy the stubs into a folder of your own
    python -m minigan.exercises check my_kernels/     # grade: passed / failed / not started
    python -m minigan.exercises check --hint im2col   # the next hint for one exercise
    python examples/train_svhn.py --kernels my_kernels/ --dataset synthetic   # and train

The stubs (``minigan/exercises/stubs/``) keep the signatures and docstrings of minigan's own
functions (shapes, formulas, output-size rules), add a first hint, and raise
NotImplementedError. In the course's order: ``scale`` (pixels to [-1, 1]), ``conv2d_naive``
(the seven loops), im2col, the convolutions, batch norm, the activations, the BCE loss, Adam's
update, the ``Discriminator`` and ``Generator``, ``real_loss`` / ``fake_loss``, the training
step (``d_step``, ``g_step``, ``train_step``), ``inception_score`` and ``frechet_distance``.

The public API (what notebooks call):

* ``init_folder(folder)``: copy the stubs into a new folder (never overwrites);
* ``check_folder(folder, max_examples=50, seed=0, seconds=10.0, exercises=EXERCISES)``: grade
  a folder (None: minigan's own solutions), each group in a child process with a time limit
  per case; returns one ``Result`` per exercise (``.status``: "passed" / "failed" /
  "not started", ``.sentence``, ``.detail``); ``check_and_report`` also formats the table;
* ``check_lines(folder, "scale", ...)``: the same for a few exercises, one line each
  ("scale pixels: passed"), what a notebook's check cell prints;
* ``grade(kernels, ...)`` / ``grade_one(exercise, kernels, ...)``: the same checks in this
  process, on ``load_kernels(folder)`` or ``minigan_kernels()`` (for debugging one's code);
* ``find(name)``: an exercise's record by name ("conv2d_backward", "generator", ...);
  ``hint(name, tier=2)``: its hints after the stub's own;
* ``use_kernels(folder)``: swap the learner's finished groups into minigan for a ``with``
  block; ``check_before_training(folder)``: the quick check ``--kernels`` runs first;
  ``kernels_for_training(folder, unchecked)``: both, as the training scripts' ``--kernels``.

The pieces: ``records`` (one record per exercise: stub file, functions, solutions, check,
cases, hints, swap group), ``checks`` and ``course_checks`` (one check per exercise),
``cases`` (the hypothesis strategies), ``hints``, ``folder`` (init and load), ``grader`` (one
process), ``isolation`` and ``child`` (a child process per group), ``swap`` (training on it).
"""

from minigan.exercises.checks import KernelCheckFailed
from minigan.exercises.folder import init_folder, load_kernels, minigan_kernels
from minigan.exercises.grader import FAILED, NOT_STARTED, PASSED, Result, grade, grade_one
from minigan.exercises.hint import hint
from minigan.exercises.isolation import check_and_report, check_folder, check_lines
from minigan.exercises.records import EXERCISES, FUNCTION_NAMES, STUB_FILES, Exercise, find
from minigan.exercises.swap import (
    KernelsFailGrader,
    check_before_training,
    kernels_for_training,
    use_kernels,
)

__all__ = ["EXERCISES", "FAILED", "FUNCTION_NAMES", "NOT_STARTED", "PASSED", "STUB_FILES",
           "Exercise", "KernelCheckFailed", "KernelsFailGrader", "Result", "check_and_report",
           "check_lines",
           "check_before_training", "check_folder", "find", "grade", "grade_one", "hint",
           "init_folder", "kernels_for_training", "load_kernels", "minigan_kernels",
           "use_kernels"]
