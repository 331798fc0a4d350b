"""The fast input gradient of a convolution: two ways to the same sums, and which a shape takes.

The plain kernel, ``conv2d_input_grad`` in ``conv2d.py`` (and so every transposed convolution,
``conv_transpose2d.py``), computes

    dcols = to_rows(dy) @ w_mat.T     (N*H_out*W_out, KH*KW*C): each window's gradient
    dx    = col2im(dcols)             KH*KW overlapping adds, then a copy back to NCHW

With the fast kernels on, ``conv2d_input_grad_fast`` below takes one of two variants:

* ``conv2d_input_grad_subpixel`` (``subpixel.py``): no overlapping adds at all. S_h*S_w
  stride-1 convolutions in one matrix product, then one copy (the pixel shuffle).
* ``conv2d_input_grad_blocked`` (below): the plain product, then col2im's adds S_h x S_w
  offsets at a time (ceil(KH/S_h) * ceil(KW/S_w) adds, as ``col2im_fast`` makes them), into an
  image that starts as the bias (or zero) and stays channels-last: no copy back to NCHW.

Neither is faster everywhere on a CPU, for reasons of shape:

* the sub-pixel product does more arithmetic than the plain one: its border blocks (Q*R blocks
  where H_out*W_out would do, Q = H_out + T_h - 1) and, where S does not divide K, taps past K.
  For the DCGAN's K = 4, S = 2: 1.56x on a 4 x 4 gradient, 1.27x on 8 x 8, 1.13x on 16 x 16;
* its product has only S_h*S_w*C columns, and BLAS runs far below its peak on a narrow product:
  for an RGB image, 12 columns, 28-43 GFLOP/s where a wide one reaches 100 on one AVX-512 core;
* the blocked product is exact and KH*KW*C columns wide, but only F deep (dy's channels), and
  its adds are T_h*T_w more passes over memory, which weigh more the fewer channels dy has.

``subpixel_pays`` is the rule the measurements gave (batch 64, the DCGAN's kernels and others;
``benchmarks/README.md``): the blocked way where dy has at least 32 channels and the sub-pixel
product would waste more than half its arithmetic while dy has at least twice the channels of
dx, or would have fewer than 32 columns while BLAS runs on one thread (on two, BLAS shares the
narrow product out and the blocked way's adds stay on one core: the RGB layers alone measured
4-9% slower blocked at two threads; at one, G's 12% faster and D's within 2%). A rule of thumb, like
``SPLIT_FROM`` in ``minigan/gan/split_step.py``: both ways give the same numbers up to
rounding, so a wrong choice costs time, never correctness. In the DCGAN it takes the blocked
way for the 4 x 4 -> 8 x 8 layers (G's first transposed convolution, D's last convolution's
input gradient), and for the RGB layers inside the split step (whose halves run BLAS at one
thread each), and the sub-pixel way for the 8 x 8 -> 16 x 16 ones.

On a GPU the sub-pixel way always: a product's shape matters less there than the number of
kernel launches, and it makes one copy where the blocked way makes a fill and T_h*T_w adds (and
a copy to rows where dy is not channels-last). So does ``minigan/opcount.py``'s count, which
models a GPU (``backend.launches_dominate``): it stays the GPU's number of launches.
"""

from __future__ import annotations

from typing import Any

from minigan.backend import get_array_module, launches_dominate
from minigan.blas import blas_threads
from minigan.ops.im2col import IntOrPair, add_windows_in_blocks, pair
from minigan.ops.layout import to_rows
from minigan.ops.subpixel import check_dy_shape, conv2d_input_grad_subpixel

Array = Any

BLOCKED_FROM_CHANNELS = 32   # dy's channels: the blocked product's depth
NARROW_COLUMNS = 32          # a sub-pixel product narrower than this runs far below peak
WASTE_LIMIT = 1.5            # sub-pixel arithmetic / the plain product's


def conv2d_input_grad_fast(dy: Array, w: Array, x_shape: tuple[int, ...], stride: IntOrPair,
                           padding: IntOrPair, bias: Array | None = None) -> Array:
    """``conv2d_input_grad``'s sums (plus ``bias``, if given, at every pixel), by whichever of
    the two fast ways suits the shape (the module's text says how it chooses).

    dy: (N, F, H_out, W_out), w: (F, C, KH, KW) -> dx: x_shape = (N, C, H, W), with
    channels-last memory (see ``channels_last_view``)."""
    if subpixel_pays(dy, w, x_shape, stride):
        return conv2d_input_grad_subpixel(dy, w, x_shape, stride, padding, bias)
    return conv2d_input_grad_blocked(dy, w, x_shape, stride, padding, bias)


def subpixel_pays(dy: Array, w: Array, x_shape: tuple[int, ...], stride: IntOrPair) -> bool:
    """Whether to take the sub-pixel way: always on a GPU; on a CPU unless dy has enough
    channels for the blocked product and the sub-pixel product would be narrow or wasteful (the
    module's text)."""
    F, C, KH, KW = w.shape
    (SH, SW) = pair(stride)
    TH, TW = -(-KH // SH), -(-KW // SW)
    H_out, W_out = dy.shape[2:]
    border = (H_out + TH - 1) * (W_out + TW - 1) / (H_out * W_out)
    waste = border * (TH * SH * TW * SW) / (KH * KW)       # taps past K count too
    # A narrow product costs most on one thread: on several, BLAS shares it out, while the
    # blocked way's adds stay on one core.
    narrow = SH * SW * C < NARROW_COLUMNS and blas_threads() == 1
    blocked = F >= BLOCKED_FROM_CHANNELS and (narrow or (waste > WASTE_LIMIT and F >= 2 * C))
    return not blocked or launches_dominate(dy)


def conv2d_input_grad_blocked(dy: Array, w: Array, x_shape: tuple[int, ...], stride: IntOrPair,
                              padding: IntOrPair, bias: Array | None = None) -> Array:
    """The plain kernel's product and col2im, with col2im's adds made S_h x S_w kernel offsets at
    a time into a channels-last image that starts as ``bias`` (or zero).

    What it buys over the plain body: ceil(KH/S_h) * ceil(KW/S_w) adds instead of KH*KW (as
    ``col2im_fast``), a bias added by the fill instead of a pass of its own, and no copy back
    to NCHW (the crop is a view with channels-last rows, as the sub-pixel way returns it)."""
    xp = get_array_module(dy)
    check_dy_shape(dy, w, x_shape, stride, padding)
    N, C, H, W = x_shape
    F, _, KH, KW = w.shape
    (PH, PW) = pair(padding)
    H_out, W_out = dy.shape[2:]
    # conv2d.py imports this module, so its weight_matrix is imported here, when first called
    from minigan.ops.conv2d import weight_matrix

    dcols = xp.matmul(to_rows(dy), weight_matrix(w).T)     # (N*H_out*W_out, KH*KW*C)
    x_pad = xp.empty((N, H + 2 * PH, W + 2 * PW, C), dtype=dcols.dtype)
    x_pad[...] = 0 if bias is None else bias               # the border is cropped below
    add_windows_in_blocks(x_pad, dcols.reshape(N, H_out, W_out, KH, KW, C), stride)
    # Rows of W*C contiguous numbers: the next element-wise kernel reads it at full speed.
    return x_pad[:, PH:PH + H, PW:PW + W, :].transpose(0, 3, 1, 2)
