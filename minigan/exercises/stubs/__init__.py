"""Your kernels: fill in each function that raises NotImplementedError, then grade them.

    python -m minigan.exercises check my_kernels/      # the table: passed / failed / not started
    python examples/train_svhn.py --kernels my_kernels/ # train a DCGAN on what you wrote

A suggested order: activations.py (leaky ReLU, tanh), losses.py, adam.py, im2col.py, conv2d.py,
conv_transpose2d.py, batchnorm.py. Each file keeps the signatures and docstrings of minigan's
own kernels (minigan/ops/), which are the solutions: peek only when you are stuck.
The files import each other relatively (``from .im2col import im2col``), so your conv2d uses
your im2col; the grader and ``--kernels`` load this folder as a package.
"""
