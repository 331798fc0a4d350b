"""Your code: fill in each function that raises NotImplementedError, then grade it.

    python -m minigan.exercises check my_kernels/          # passed / failed / not started
    python -m minigan.exercises check --hint conv2d_naive   # the next hint for one exercise
    python examples/train_svhn.py --kernels my_kernels/     # train a DCGAN on what you wrote

The course's order: scale.py, conv2d_naive.py, im2col.py, conv2d.py, conv_transpose2d.py,
batchnorm.py, activations.py (leaky ReLU, tanh), losses.py (BCE), adam.py, models.py (D and G),
gan_losses.py, step.py, metrics.py (IS and FID). Each file keeps the signatures and docstrings
of minigan's own functions, which are the solutions: peek only when you are stuck.
The files import each other relatively (``from .im2col import im2col``), so your conv2d uses
your im2col; the grader and ``--kernels`` load this folder as a package.
"""
