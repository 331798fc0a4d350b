"""Exercises: write minigan's kernels yourself, have the test machinery grade them, train on them.

    python -m minigan.exercises init my_kernels/     # copy the stubs into a folder of your own
    python -m minigan.exercises check my_kernels/    # grade: passed / failed / not started
    python examples/train_svhn.py --kernels my_kernels/ --dataset synthetic   # and train

The stubs (``minigan/exercises/stubs/``) keep the signatures and docstrings of minigan's own
kernels (shapes, formulas, output-size rules), add hints, and raise NotImplementedError. The
pieces:

* ``kernels``: loading a learner's folder (``load_kernels``), minigan's own kernels as the
  solutions (``minigan_kernels``), and ``use_kernels(folder)``, which swaps a learner's
  functions into ``minigan.ops`` and ``minigan.optim`` for the length of a ``with`` block;
* ``checks``: one function per exercise that takes the implementation under test and one case
  and raises ``KernelCheckFailed`` with a plain sentence when the kernel is wrong;
* ``cases``: the hypothesis strategies that draw those cases;
* ``grader``: runs each check over drawn cases, shrinks a failure to the smallest failing case,
  and prints the table.
"""

from minigan.exercises.checks import KernelCheckFailed
from minigan.exercises.grader import EXERCISES, grade, grade_and_report
from minigan.exercises.kernels import (
    KERNEL_NAMES,
    init_folder,
    load_kernels,
    minigan_kernels,
    use_kernels,
)

__all__ = ["EXERCISES", "KERNEL_NAMES", "KernelCheckFailed", "grade", "grade_and_report",
           "init_folder", "load_kernels", "minigan_kernels", "use_kernels"]
