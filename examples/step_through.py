"""Step through one Conv2d -> BatchNorm2d -> LeakyReLU block, forward and backward, shape by shape.

    python examples/step_through.py             # read the printout
    python -m pdb examples/step_through.py      # or step through it (try `b forward_pass`)

A batch of 2 tiny images (2, 3, 8, 8) in float64 goes through the three layers that make up
every hidden block of the DCGAN discriminator, with the *plain* kernels
(``minigan.ops.fast_kernels(False)``): the textbook bodies, no speed tricks, so that stepping
into ``conv.backward`` reaches col2im's loop. Each printed note names the kernel function that
computed the array. The script prints the shape of every array on the
way: the input, the convolution's output, batch norm's per-channel mean and variance, the
normalised x_hat, batch norm's output, the activation's output; then, on the way back, the
upstream gradient dy and every gradient the layers produce. Finally each layer is checked
against finite differences with ``minigan.gradcheck.check_module`` and reported PASS or FAIL.

Everything is float64 because gradient checks need it (float32 rounding is larger than the
finite-difference signal); training itself runs in float32.
"""

from __future__ import annotations

import minigan.startup  # noqa: F401  (first: Ctrl-C while NumPy loads is one line)

# isort: split
import sys
from typing import Any

import numpy

from minigan.backend import to_device, use_backend
from minigan.gradcheck import check_module
from minigan.nn import BatchNorm2d, Conv2d, LeakyReLU, Module
from minigan.ops import fast_kernels
from minigan.scripts import (
    USER_ERRORS,
    OneLineParser,
    add_backend_argument,
    print_error,
    seed_argument,
)

TOLERANCE = 1e-6  # a right backward pass gives ~1e-9 in float64; a wrong one ~1e-2 or more


def show(name: str, a: Any, note: str = "") -> None:
    """One line per array: its name, shape and dtype (and what it is)."""
    shape = str(tuple(a.shape))
    print(f"  {name:<22} {shape:<16} {a.dtype}" + (f"   {note}" if note else ""))


def build_layers(rng: numpy.random.Generator) -> tuple[Conv2d, BatchNorm2d, LeakyReLU]:
    """Conv 3x3 (3 -> 4 channels, padding 1, no bias: batch norm follows), BN, LeakyReLU(0.2)."""
    conv = Conv2d(3, 4, kernel_size=3, stride=1, padding=1, bias=False, rng=rng)
    bn = BatchNorm2d(4)
    act = LeakyReLU(0.2)
    for layer in (conv, bn, act):
        layer.to(dtype="float64")
    return conv, bn, act


def forward_pass(conv: Conv2d, bn: BatchNorm2d, act: LeakyReLU, x: Any) -> Any:
    print("forward")
    show("x", x, "input batch (N, C, H, W)")
    h = conv(x)
    show("h = conv(x)", h, "conv2d_forward: im2col(x) @ weight_matrix(w), H_out = 8")
    cols = conv.cache.cols  # what conv2d_forward kept for backward: the im2col matrix
    show("  im2col(x)", cols, "im2col's slice loop: (N*H_out*W_out, K*K*C), a row per pixel")
    z = bn(h)
    cache = bn.cache  # a BatchNormCache: a breakpoint here lets you look at every field
    show("  mu_B", cache.mean, "batch mean of each channel")
    show("  sigma2_B", cache.var, "biased batch variance of each channel")
    show("  x_hat", cache.x_hat, "(h - mu_B) / sqrt(sigma2_B + eps), rows (N*H*W, C)")
    mean = cache.x_hat.mean(axis=0)  # one row per pixel, one column per channel
    var = cache.x_hat.var(axis=0)
    print(f"  {'':<22} x_hat per channel: mean {numpy.abs(mean).max():.1e} (max |.|), "
          f"variance {var.min():.6f}..{var.max():.6f}")
    show("z = bn(h)", z, "batch_norm_forward: gamma * x_hat + beta")
    show("  running_mean", bn.running_mean, "update_running_stats: 0.9 * old + 0.1 * mu_B")
    y = act(z)
    show("y = leaky_relu(z)", y, "leaky_relu_forward: z where z > 0, 0.2 * z elsewhere")
    return y


def backward_pass(conv: Conv2d, bn: BatchNorm2d, act: LeakyReLU, dy: Any) -> Any:
    print("backward")
    show("dy", dy, "upstream gradient dL/dy, shaped like y")
    dz = act.backward(dy)
    show("dz = act.backward(dy)", dz, "leaky_relu_backward: dy * (1 or 0.2)")
    dh = bn.backward(dz)
    show("dh = bn.backward(dz)", dh, "batch_norm_backward: via dx_hat, dsigma2_B, dmu_B")
    show("  bn.weight.grad", bn.weight.grad, "dgamma = sum of dz * x_hat")
    show("  bn.bias.grad", bn.bias.grad, "dbeta  = sum of dz")
    dx = conv.backward(dh)
    show("dx = conv.backward(dh)", dx, "conv2d_input_grad: col2im(to_rows(dh) @ w_mat.T)")
    show("  conv.weight.grad", conv.weight.grad, "conv2d_weight_grad: cols.T @ to_rows(dh)")
    return dx


def gradient_checks(layers: dict[str, Module], inputs: dict[str, Any]) -> bool:
    """check_module on each layer at the input it saw in the forward pass."""
    print(f"gradient checks (float64, central differences, PASS if error < {TOLERANCE:g})")
    all_pass = True
    for name, layer in layers.items():
        x = inputs[name].copy()  # check_module perturbs its input in place
        err = check_module(layer, x)
        ok = err < TOLERANCE
        all_pass &= ok
        print(f"  {name:<12} relative error {err:.2e}  {'PASS' if ok else 'FAIL'}")
    return all_pass


def build_parser() -> OneLineParser:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=seed_argument, default=0,
                        help="seeds the input and the weights (default: 0)")
    add_backend_argument(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        use_backend(args.backend)
    except USER_ERRORS as error:
        return print_error(error)

    rng = numpy.random.default_rng(args.seed)
    conv, bn, act = build_layers(rng)
    x = to_device(rng.standard_normal((2, 3, 8, 8)))  # float64: NumPy's default

    with fast_kernels(False):  # the plain kernels: what the notes name is what runs
        y = forward_pass(conv, bn, act, x)
        dy = to_device(rng.standard_normal(y.shape))
        backward_pass(conv, bn, act, dy)

        # Each layer is checked at the input it actually received above.
        h = conv(x)
        z = bn(h)
        ok = gradient_checks({"Conv2d": conv, "BatchNorm2d": bn, "LeakyReLU": act},
                             {"Conv2d": x, "BatchNorm2d": h, "LeakyReLU": z})
    print("all layers PASS" if ok else "some layer FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
