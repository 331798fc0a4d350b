"""A training step that is cheap to launch: few array operations, and no waits for the GPU.

On a GPU every array operation is a kernel launch, and every read of a value on the host
(``float(loss)``) waits until all queued launches have run. For a model as small as the SVHN
DCGAN those two costs, not the arithmetic, set the step time. ``minigan.opcount`` counts both on
NumPy, so these tests hold the line on a machine without a GPU.
"""

import numpy as np
import pytest

from minigan import backend
from minigan.backend import manual_seed, to_device, to_numpy
from minigan.gan.dcgan import Discriminator, Generator, dcgan_init
from minigan.gan.one_pass import one_pass_step
from minigan.gan.trainer import GANTrainer, History, StepResult, TrainConfig
from minigan.opcount import count_array_ops
from minigan.ops import fast_kernels
from minigan.ops.losses import bce_with_logits_backward, bce_with_logits_forward

# Array operations in one train_step of the SVHN DCGAN's layer structure, as measured: 690
# before the flat optimizer arrays, the fused BCE and batch norm variants and device-side
# logging; 471 after them; 356 after the second round (padded-image buffer, no zero-tap kernel
# copy, weight gradients as views, num_batches_tracked on the host, ...); in the third round
# 347 with the sub-pixel crop a view, 337 with the running statistics in the variance
# kernel, 329 with batch norm's backward counted on the path the CPU takes (einsum), 317 with
# conv weights stored as their weight matrix in the flat buffer, 315 with a transposed conv's
# bias added by the pixel shuffle, 312 with leaky ReLU's backward laid out like its input;
# 294 with each batch norm and its activation run as one pair (BatchNorm.forward_with),
# 290 with such a pair reading a transposed convolution's cropped output without a copy.
# 284 with a batch norm's gamma and beta gradients added in one kernel. That is the step on
# the CPU. A GPU runs each network once where the lesson runs it on several batches
# (minigan/gan/one_pass.py): D once on its real and fake batch, 237; their two losses as one
# BCE, 230; G once for all the step's fake batches, 211; two groups' running statistics in one
# kernel and the gradient adds as above, 195.
# The count does not depend on the batch size or conv_dim. Lower it when you cut more.
MAX_OPS_PER_STEP = {"the lesson's step (CPU)": 284, "one pass (GPU)": 195}


@pytest.fixture(autouse=True)
def _numpy_backend():
    if backend.backend_name() != "numpy":
        pytest.skip("counts array operations on the NumPy backend only")


@pytest.mark.parametrize("way", list(MAX_OPS_PER_STEP))
def test_a_training_step_makes_no_host_reads_and_few_operations(tmp_path, way):
    with count_array_ops() as counter, one_pass_step(way.startswith("one")):
        manual_seed(0)
        G = dcgan_init(Generator(z_size=8, conv_dim=4))          # 32x32 images: SVHN's layers
        D = dcgan_init(Discriminator(conv_dim=4))
        trainer = GANTrainer(G, D, None, TrainConfig(z_size=8), tmp_path)
        real = to_device(np.random.default_rng(0).uniform(-1, 1, (4, 3, 32, 32)), np.float32)
        trainer.train_step(real)
        counter.reset()
        result = trainer.train_step(real)
        assert counter.host_reads == 0          # nothing waits for the GPU inside a step
        assert counter.total <= MAX_OPS_PER_STEP[way]
        assert counter.by_name["adam_update"] == 2       # one per optimizer, not per parameter
    for value in (result.d_loss, result.g_loss, result.d_real, result.d_fake):
        assert np.isfinite(float(to_numpy(value)))
    assert 0 < float(to_numpy(result.d_real)) < 1


def test_history_reads_pending_steps_in_one_go():
    history = History()
    values = [(0.5, 1.5, 0.25, 0.75), (0.4, 1.4, 0.2, 0.7)]
    for step, row in enumerate(values, start=1):
        history.append(step, 1, StepResult(*(to_device(np.float32(v)) for v in row)))
    assert len(history) == 2 and history.columns["d_loss"] == []   # not read yet
    with count_array_ops() as counter:
        history.read()
    assert counter.host_reads == 1           # one copy for all the steps
    assert history.pending == []
    assert history.columns["step"] == [1.0, 2.0]
    for key, column in zip(("d_loss", "g_loss", "d_real", "d_fake"), zip(*values)):
        np.testing.assert_allclose(history.columns[key], column, rtol=1e-7)


def test_bce_with_a_number_as_target_equals_an_array_of_it():
    rng = np.random.default_rng(0)
    x = to_device(rng.standard_normal((16, 1)).astype(np.float32) * 5)
    loss_n, cache_n = bce_with_logits_forward(x, 0.9)
    loss_a, cache_a = bce_with_logits_forward(x, to_device(np.full((16, 1), 0.9, np.float32)))
    assert loss_n.dtype == np.float32
    np.testing.assert_array_equal(to_numpy(loss_n), to_numpy(loss_a))
    np.testing.assert_array_equal(to_numpy(bce_with_logits_backward(1.0, cache_n)),
                                  to_numpy(bce_with_logits_backward(1.0, cache_a)))


@pytest.mark.parametrize("target", [0.9, "array"])
@pytest.mark.parametrize("dloss", [1.0, np.array(2.0)])
def test_bce_fast_variant_equals_the_plain_lines(target, dloss):
    x = np.array([[1000.0], [-1000.0], [30.0], [-30.0], [0.0], [1e-3], [-2.5], [4.0]])
    x = to_device(x.astype(np.float32))
    if target == "array":
        target = to_device(np.array([[0.0], [1.0], [0.0], [1.0], [0.5], [1.0], [0.0], [0.9]]))
    results = {}
    for fast in (False, True):
        with fast_kernels(fast):
            loss, cache = bce_with_logits_forward(x, target)
            results[fast] = to_numpy(loss), to_numpy(bce_with_logits_backward(dloss, cache))
    with fast_kernels(True):   # a cache from the plain forward, which holds no exp(-|x|)
        cache = bce_with_logits_forward(x, target)[1]._replace(exp_neg_abs=None)
        results["fast, plain cache"] = (results[True][0],
                                        to_numpy(bce_with_logits_backward(dloss, cache)))
    for other in (True, "fast, plain cache"):
        for plain, fast in zip(results[False], results[other]):
            assert plain.dtype == fast.dtype == np.float32
            np.testing.assert_allclose(fast, plain, rtol=1e-6, atol=1e-9)


def test_bce_forward_and_backward_launch_counts():
    with count_array_ops() as counter, fast_kernels(True):
        x = backend.array_module().ones((16, 1), dtype=np.float32)
        counter.reset()
        loss, cache = bce_with_logits_forward(x, 1.0)
        # the fused -|x|, exp, log1p, the fused terms, mean
        assert counter.total == 5
        counter.reset()
        bce_with_logits_backward(1.0, cache)
        assert counter.total == 1           # the fused gradient, from the kept exp(-|x|)
    np.testing.assert_allclose(float(loss), np.log1p(np.exp(-1.0)), rtol=1e-6)


def test_batch_norm_fast_variants_equal_the_plain_lines_in_few_operations():
    from minigan.ops.batchnorm import (
        batch_norm_backward,
        batch_norm_forward,
        update_running_stats,
    )

    rng = np.random.default_rng(3)

    def channels_last(a):   # (N, H, W, C) in memory, as a convolution's output is: no copies
        return to_device(a).transpose(0, 3, 1, 2)

    x = channels_last(rng.standard_normal((4, 5, 5, 3)) * 3 + 1)       # float64: m = 100
    dy = channels_last(rng.standard_normal((4, 5, 5, 3)))
    gamma, beta = to_device(rng.standard_normal(3)), to_device(rng.standard_normal(3))
    running = to_device(rng.standard_normal(3)), to_device(rng.uniform(0.5, 2, 3))
    results = {}
    for fast in (False, True):
        with fast_kernels(fast):
            y, cache = batch_norm_forward(x, gamma, beta)
            results[fast] = [y, *batch_norm_backward(dy, cache),
                             *update_running_stats(*running, cache, momentum=0.1)]
    for plain, fast in zip(results[False], results[True]):
        np.testing.assert_allclose(to_numpy(fast), to_numpy(plain), rtol=1e-12, atol=1e-12)

    with count_array_ops() as counter, fast_kernels(True):
        x, dy = (channels_last(to_numpy(a).transpose(0, 2, 3, 1)) for a in (x, dy))
        gamma, beta, *running = (to_device(to_numpy(a)) for a in (gamma, beta, *running))
        # A first call makes the vectors of 1/m and of ones for the column means and sums.
        batch_norm_backward(dy, batch_norm_forward(x, gamma, beta)[1])
        counter.reset()
        y, cache = batch_norm_forward(x, gamma, beta)
        assert counter.total == 5              # a column mean, a subtraction, an einsum, 2 fused
        counter.reset()
        grads = batch_norm_backward(dy, cache)
        assert counter.total == 3              # a column sum, an einsum, a fused kernel
        counter.reset()
        stats = update_running_stats(*running, cache)
        assert counter.by_name == {"blend_running_stats": 1}
    # Counting takes the same (host) path as the uncounted calls: the same numbers again.
    for plain, counted_path in zip(results[False], [y, *grads, *stats]):
        np.testing.assert_allclose(np.asarray(counted_path), to_numpy(plain), rtol=1e-12,
                                   atol=1e-12)


def test_fit_reads_the_losses_a_fixed_number_of_times_however_many_steps(tmp_path, monkeypatch):
    """The loop copies losses to the host when it logs, not after every step: with the read
    interval longer than the run, 3 steps and 9 steps make the same number of host reads."""
    import minigan.gan.trainer as trainer_module
    from minigan.data import DataLoader, make_synthetic_digits

    monkeypatch.setattr(trainer_module, "READ_EVERY_SECONDS", 1e9)
    images, _ = make_synthetic_digits(96, seed=0, size=16, channels=3)

    def host_reads_of_a_run(steps):
        with count_array_ops() as counter:
            manual_seed(0)
            G = dcgan_init(Generator(z_size=8, conv_dim=4, image_size=16))
            D = dcgan_init(Discriminator(conv_dim=4, image_size=16))
            config = TrainConfig(epochs=1, z_size=8, num_samples=4, max_steps=steps)
            trainer = GANTrainer(G, D, DataLoader(images, batch_size=8, seed=0), config,
                                 tmp_path / str(steps))
            counter.reset()
            history = trainer.fit(progress=False)
        assert len(history.columns["d_loss"]) == steps and history.pending == []
        return counter.host_reads

    assert host_reads_of_a_run(3) == host_reads_of_a_run(9) > 0


@pytest.mark.parametrize("buffer_dtype", [np.float64, np.float32])
def test_batch_norm_layer_blends_running_stats_in_the_variance_kernel(buffer_dtype):
    """Fast: batch_norm_forward_with_running_stats_fast, one launch fewer than the forward and
    update_running_stats one after the other, with the same output, cache and running statistics
    as the plain layer (float64 input; float32 buffers take the two-step path, still equal)."""
    from minigan import nn

    rng = np.random.default_rng(5)
    # (N, H, W, C) in memory, as a convolution's output: to_rows is then a view, not a copy
    x = to_device(rng.standard_normal((4, 5, 5, 3)) * 2 + 1).transpose(0, 3, 1, 2)
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    running = rng.standard_normal(3), rng.uniform(0.5, 2, 3)

    def train_forward(fast):
        layer = nn.BatchNorm2d(3).to(dtype="float64")
        layer.weight.data[...], layer.bias.data[...] = to_device(gamma), to_device(beta)
        layer.running_mean = to_device(running[0].astype(buffer_dtype))
        layer.running_var = to_device(running[1].astype(buffer_dtype))
        with fast_kernels(fast):
            y = layer(x)
        assert layer.num_batches_tracked == 1
        return [y, layer.cache.x_hat, layer.cache.inv_std, layer.cache.mean, layer.cache.var,
                layer.running_mean, layer.running_var]

    for plain, fast in zip(train_forward(False), train_forward(True)):
        assert to_numpy(fast).dtype == to_numpy(plain).dtype
        np.testing.assert_allclose(to_numpy(fast), to_numpy(plain), rtol=1e-12, atol=1e-12)

    with count_array_ops() as counter, fast_kernels(True):
        layer = nn.BatchNorm2d(3).to(dtype="float64")
        layer.running_mean = layer.running_mean.astype(buffer_dtype)
        layer.running_var = layer.running_var.astype(buffer_dtype)
        x = to_device(to_numpy(x).transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        layer(x)
        counter.reset()
        layer(x)
        blended = buffer_dtype == np.float64
        # a column mean, a column sum, the fused squares, the variance with the blend, the
        # normalisation; with float32 buffers, the forward's 5, two conversions and the blend
        assert counter.total == (5 if blended else 8)
        assert counter.by_name["variance_inv_std_and_running_stats"] == int(blended)


def test_flat_buffer_stores_conv_weights_as_their_weight_matrix():
    """In FlatAdam's flat buffer a conv weight (F, C, KH, KW) lies in memory as (KH, KW, C, F)
    (``Parameter.memory_order``): its weight matrix is then a view, not a copy, in every call,
    and the weight gradient arrives in the same layout. Values, state and updates are Adam's."""
    from minigan import nn
    from minigan.ops.conv2d import weight_matrix
    from minigan.optim import Adam, FlatAdam

    rng = np.random.default_rng(2)
    layers = [nn.Conv2d(3, 4, 4, stride=2, padding=1).to(dtype="float64"),
              nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1).to(dtype="float64")]
    twins = [nn.Conv2d(3, 4, 4, stride=2, padding=1).to(dtype="float64"),
             nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1).to(dtype="float64")]
    for layer, twin in zip(layers, twins):
        twin.load_state_dict(layer.state_dict())
    params = [p for layer in layers for p in layer.parameters()]
    flat = FlatAdam(params, lr=0.01)
    plain = Adam([p for twin in twins for p in twin.parameters()], lr=0.01)
    for layer in layers:
        w = layer.weight.data
        assert w.shape == layer.weight.shape and not w.flags.c_contiguous
        assert w.transpose(2, 3, 1, 0).flags.c_contiguous      # (KH, KW, C, F) in memory
        assert layer.weight.grad.transpose(2, 3, 1, 0).flags.c_contiguous
        assert np.shares_memory(weight_matrix(w), w)             # a view: nothing copied
    x = to_device(rng.standard_normal((2, 3, 8, 8)))
    for _ in range(2):
        for net, opt in ((layers, flat), (twins, plain)):
            opt.zero_grad()
            y = net[1](net[0](x))
            net[0].backward(net[1].backward(to_device(np.cos(to_numpy(y)))))
            opt.step()
    for layer, twin in zip(layers, twins):
        for p, q in zip(layer.parameters(), twin.parameters()):
            np.testing.assert_array_equal(to_numpy(p.grad), to_numpy(q.grad))
            np.testing.assert_array_equal(to_numpy(p.data), to_numpy(q.data))   # bit for bit
    for key, value in plain.state_dict().items():
        np.testing.assert_array_equal(flat.state_dict()[key], value)

    with count_array_ops() as counter, fast_kernels(True):
        x = to_device(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))
        for in_flat_buffer in (False, True):
            conv = nn.Conv2d(3, 4, 4, stride=2, padding=1, bias=False)
            if in_flat_buffer:
                FlatAdam(conv.parameters())
            conv(x)
            counter.reset()
            conv(x)
            # the padded copy and the window copy (conv2d_forward_fast writes the windows into
            # its cols), the weight matrix (unless a view), the product
            expected = {"setitem": 2, "ascontiguousarray": 1, "matmul": 1}
            if in_flat_buffer:
                del expected["ascontiguousarray"]
            assert counter.by_name == expected


def test_batch_norm_train_forward_runs_swapped_in_kernels(monkeypatch):
    """With a learner's batch_norm_forward in minigan.ops (an exercise), the layer's training
    forward calls it even with the fast kernels on; a functools.wraps wrapper around the library's
    own (a timer) keeps the fused path."""
    import functools

    from minigan import nn, ops

    calls = []
    library = ops.batch_norm_forward

    def learners(x, gamma, beta, eps=1e-5):
        calls.append("learner")
        return library(x, gamma, beta, eps)

    @functools.wraps(library)
    def timer(*args, **kwargs):
        calls.append("timer")
        return library(*args, **kwargs)

    x = to_device(np.random.default_rng(0).standard_normal((4, 3, 2, 2)))
    with fast_kernels(True):
        monkeypatch.setattr(ops, "batch_norm_forward", learners)
        nn.BatchNorm2d(3).to(dtype="float64")(x)
        monkeypatch.setattr(ops, "batch_norm_forward", timer)
        nn.BatchNorm2d(3).to(dtype="float64")(x)
    assert calls == ["learner"]          # the timer's library function was fused away


@pytest.mark.parametrize("padding, output_padding", [(1, 0), (0, 1)])
def test_transposed_conv_bias_is_added_by_the_pixel_shuffle(padding, output_padding):
    """conv_transpose2d_forward_fast adds the bias in the sub-pixel shuffle's one copy when the
    pixels cover the output (no launch more than without a bias), and after the crop when they
    do not (padding 0 and output_padding 1 leave the last row and column to the bias alone):
    the plain kernel's numbers either way."""
    from minigan.ops.conv_transpose2d import conv_transpose2d_forward

    rng = np.random.default_rng(4)
    x = to_device(rng.standard_normal((2, 5, 5, 4))).transpose(0, 3, 1, 2)   # channels-last
    w, b = to_device(rng.standard_normal((4, 3, 4, 4))), to_device(rng.standard_normal(3))
    outputs = {}
    for fast in (False, True):
        with fast_kernels(fast):
            outputs[fast] = conv_transpose2d_forward(x, w, b, stride=2, padding=padding,
                                                     output_padding=output_padding)[0]
    np.testing.assert_allclose(to_numpy(outputs[True]), to_numpy(outputs[False]), rtol=1e-13,
                               atol=1e-13)
    with count_array_ops() as counter, fast_kernels(True):
        x, w, b = (to_device(to_numpy(a)) for a in (x, w, b))
        x = x.transpose(0, 2, 3, 1).copy().transpose(0, 3, 1, 2)
        totals = {}
        for bias in (None, b):
            conv_transpose2d_forward(x, w, bias, stride=2, padding=padding,
                                     output_padding=output_padding)
            counter.reset()
            conv_transpose2d_forward(x, w, bias, stride=2, padding=padding,
                                     output_padding=output_padding)
            totals[bias is None] = counter.total
        assert totals[False] - totals[True] == output_padding
