"""The pieces of data parallelism, in one process: how a batch is shared out, and why the
ranks' sums give what one process computes on the whole batch.

``ThreadWorld`` plays N ranks with N threads and a shared list instead of MPI, so these tests
run everywhere (no mpi4py needed) and a debugger can step through every rank's arithmetic;
``test_processes.py`` repeats the key claim with real processes.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from minigan import ops
from minigan.backend import array_module, manual_seed, to_device, to_numpy
from minigan.data import DataError, DataLoader, make_synthetic_digits
from minigan.data.sharded import ShardedLoader
from minigan.distributed import SINGLE_PROCESS, DistributedError, World, join_mpi_world
from minigan.gan.dcgan import Discriminator, Generator
from minigan.gradcheck import check_module
from minigan.nn import BatchNorm2d, Dropout, LeakyReLU, Parameter, Sequential
from minigan.nn.batch_groups import statistics_per_group
from minigan.nn.sync_batchnorm import SyncBatchNorm2d, convert_sync_batch_norm
from minigan.optim import SGD


class ThreadWorld(World):
    """Rank ``rank`` of ``size`` threads whose ``allreduce_sum`` adds up every thread's array
    (in rank order, as the sum of one process would run). Every other World method is the real
    one, built on ``allreduce_sum``."""

    def __init__(self, rank: int, size: int, shared: dict):
        super().__init__()
        self.rank, self.size, self.shared = rank, size, shared

    def allreduce_sum(self, a):
        box, barrier = self.shared.setdefault("box", [None] * self.size), self.shared["barrier"]
        box[self.rank] = a.copy()
        barrier.wait()                     # every rank has put its array in
        total = box[0].copy()
        for other in box[1:]:
            total += other
        barrier.wait()                     # every rank has read them all
        a[...] = total
        return a

    def barrier(self):
        self.shared["barrier"].wait()


def run_ranks(size: int, work):
    """Run ``work(world)`` on ``size`` ThreadWorld ranks at once; their results, by rank."""
    shared = {"barrier": threading.Barrier(size, timeout=30)}
    results, errors = [None] * size, []

    def rank_main(rank):
        try:
            results[rank] = work(ThreadWorld(rank, size, shared))
        except BaseException as error:  # noqa: B036 - reported by the test below
            errors.append(error)
            shared["barrier"].abort()

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


# ---------------------------------------------------------------------- sharing out the data
@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_the_shards_cover_each_epoch_once_as_one_process_would_batch_it(ranks):
    images, _ = make_synthetic_digits(50, seed=0, size=8, channels=1)
    whole = DataLoader(images, batch_size=12, seed=3)          # 4 batches; 2 images left over
    shards = [ShardedLoader(images, batch_size=12, rank=r, size=ranks, seed=3)
              for r in range(ranks)]
    for epoch in (0, 1):
        seen = np.concatenate([shard.indices(epoch, b) for shard in shards
                               for b in range(len(shard))])
        assert len(seen) == len(set(seen)) == 48                 # every image at most once
        assert set(seen) == set(whole.order(epoch)[:48])         # ... and all the full batches
        for b, (x, _) in enumerate(whole.epoch(epoch)):          # step b: the same images
            parts = [list(shard.epoch(epoch, start_batch=b))[0][0] for shard in shards]
            assert all(len(p) == 12 // ranks for p in parts)
            np.testing.assert_array_equal(to_numpy(np.concatenate(parts)), to_numpy(x))
    assert {len(shard) for shard in shards} == {4}               # the same number of steps


def test_rank_0_loads_the_data_first_so_a_download_happens_once():
    order = []

    def work(world):
        def load():
            if world.rank == 0:
                time.sleep(0.2)      # a slow download: the others must still wait for it
            order.append(world.rank)
            return f"images of rank {world.rank}"
        return world.root_first(load)

    assert run_ranks(3, work) == ["images of rank 0", "images of rank 1", "images of rank 2"]
    assert order[0] == 0 and sorted(order) == [0, 1, 2]


def test_a_batch_that_does_not_split_evenly_is_refused():
    images, _ = make_synthetic_digits(20, seed=0, size=8, channels=1)
    with pytest.raises(DataError, match="multiple of the number of processes, 3"):
        ShardedLoader(images, batch_size=8, rank=0, size=3)


def test_one_process_is_a_world_of_one_that_changes_nothing():
    assert (SINGLE_PROCESS.rank, SINGLE_PROCESS.size, SINGLE_PROCESS.is_root) == (0, 1, True)
    a = np.arange(6.0)
    assert SINGLE_PROCESS.allreduce_sum(a) is a and SINGLE_PROCESS.shard(a) is a
    assert SINGLE_PROCESS.mean([1.0, 2.5]) == [1.0, 2.5]
    assert SINGLE_PROCESS.any(True) and not SINGLE_PROCESS.any(False)
    optimizer, draw = SGD([Parameter(np.zeros(2))]), (lambda n: np.zeros((n, 3)))
    assert SINGLE_PROCESS.wrap_optimizer(optimizer) is optimizer       # nothing to average
    assert SINGLE_PROCESS.sharded_noise(draw) is draw


def test_the_step_is_reached_through_a_wrapped_optimizer_and_sharded_noise():
    """What the trainer hands the step on rank r of 3: an optimizer whose step() first averages
    the gradients over the ranks, and noise that keeps rank r's slice of the whole step's z."""
    def work(world):
        p = Parameter(np.zeros(2))
        p.grad[...] = [world.rank, 10.0 * world.rank]          # rank r's own gradient
        optimizer = world.wrap_optimizer(SGD([p], lr=1.0))
        optimizer.zero_grad()
        p.grad[...] = [world.rank, 10.0 * world.rank]
        optimizer.step()
        noise = world.sharded_noise(lambda n: np.arange(n * 2.0).reshape(n, 2))
        return p.data.copy(), noise(2)

    results = run_ranks(3, work)
    for rank, (weights, z) in enumerate(results):
        np.testing.assert_array_equal(weights, [-1.0, -10.0])  # minus the mean gradient (1, 10)
        np.testing.assert_array_equal(z, np.arange(12.0).reshape(6, 2)[2 * rank:2 * rank + 2])


# ---------------------------------------------------------------------- collectives
def test_gradients_are_averaged_over_the_ranks_in_one_message():
    calls = []

    def work(world):
        p = Parameter(np.zeros((2, 3)))
        q = Parameter(np.zeros(4))
        p.grad[...] = world.rank + 1              # rank 0: 1, rank 1: 2, rank 2: 3
        q.grad[...] = 10.0 * (world.rank + 1)
        original = world.allreduce_sum
        world.allreduce_sum = lambda a: (calls.append(a.shape), original(a))[1]
        world.average_gradients([p, q])
        return p.grad.copy(), q.grad.copy()

    results = run_ranks(3, work)
    for p_grad, q_grad in results:
        np.testing.assert_array_equal(p_grad, np.full((2, 3), 2.0))    # (1 + 2 + 3) / 3
        np.testing.assert_array_equal(q_grad, np.full(4, 20.0))
    assert calls == [(10,)] * 3                   # one flat buffer of 6 + 4 numbers per rank


def test_every_rank_starts_from_rank_0s_weights_and_agrees_on_stopping():
    def work(world):
        manual_seed(world.rank)                    # each rank draws different weights...
        D = Discriminator(conv_dim=4, image_size=8, channels=1)
        comm = FakeBcastComm(world)
        world.comm = comm
        world.broadcast_module(D)                  # ...then takes rank 0's
        return D.state_dict(), world.any(world.rank == 2), world.mean([world.rank, 1.0])

    results = run_ranks(3, work)
    for state, stop, mean in results:
        for name, value in results[0][0].items():
            np.testing.assert_array_equal(state[name], value)
        assert stop is True and mean == [1.0, 1.0]


class FakeBcastComm:
    """What ``broadcast_module`` needs of an mpi4py communicator: ``Bcast(array, root=0)``,
    played with the ThreadWorld's sum (rank 0 adds its array, the others zeros)."""

    def __init__(self, world):
        self.world = world

    def Bcast(self, a, root=0):  # noqa: N802 - mpi4py's name
        contribution = a if self.world.rank == root else np.zeros_like(a)
        a[...] = self.world.allreduce_sum(contribution.copy())


# ---------------------------------------------------------------------- synchronized batch norm
def close(a, b):
    np.testing.assert_allclose(to_numpy(a), to_numpy(b), atol=1e-12)


def joined(parts):
    """The ranks' parts of a batch, one after the other, on the host."""
    return np.concatenate([to_numpy(p) for p in parts])


def same_state(sync, bn):
    """A rank's SyncBatchNorm2d holds what one process's batch norm holds: gradients (after
    averaging) and running statistics."""
    for a, b in ((sync.weight.grad, bn.weight.grad), (sync.bias.grad, bn.bias.grad),
                 (sync.running_mean, bn.running_mean), (sync.running_var, bn.running_var)):
        close(a, b)


@pytest.mark.parametrize("fast", [True, False])
def test_sync_batch_norm_over_ranks_equals_batch_norm_over_the_whole_batch(fast, monkeypatch):
    """3 ranks with 2 images each normalise, and back-propagate, exactly as one BatchNorm2d
    with all 6 images: the same y, dx, dgamma, dbeta and running statistics; with the fast
    kernels and with the plain ones, both reached through ``minigan.ops``."""
    calls = []

    def counting(original):
        def counted(*args, **kwargs):
            calls.append(kwargs.get("across"))
            return original(*args, **kwargs)
        return counted

    for name in ("batch_norm_forward", "batch_norm_backward"):
        monkeypatch.setattr(ops, name, counting(getattr(ops, name)))
    rng = np.random.default_rng(0)
    x = to_device(rng.standard_normal((6, 4, 3, 3)) * 2 + 1)
    dy = to_device(rng.standard_normal((6, 4, 3, 3)))
    bn = BatchNorm2d(4).to(dtype="float64")
    bn.weight.data = to_device(rng.uniform(0.5, 1.5, 4))
    y = bn(x)
    dx = bn.backward(dy / 6)              # the gradient of a mean over 6 images

    def work(world):
        sync = SyncBatchNorm2d(4, world=world).to(dtype="float64")
        sync.weight.data = bn.weight.data.copy()
        mine = slice(2 * world.rank, 2 * world.rank + 2)
        y_r = sync(x[mine])
        dx_r = sync.backward(dy[mine] / 2)    # each rank: the mean over its own 2 images
        world.average_gradients(sync.parameters())
        return y_r, dx_r, sync

    with ops.fast_kernels(fast):
        results = run_ranks(3, work)
    # The whole-batch BatchNorm2d's 2 calls, and each rank's 2, all through the ops.
    assert len(calls) == 2 + 3 * 2 and calls[:2] == [None, None]
    assert all(isinstance(world, World) for world in calls[2:])
    close(joined(r[0] for r in results), y)
    # Each rank's loss is a mean over 2 images, 3 times the weight of the whole batch's mean:
    # dx comes out 3 times larger, and the averaging of the parameter gradients undoes it.
    close(joined(r[1] for r in results) / 3, dx)
    for _, _, sync in results:
        same_state(sync, bn)
        assert int(sync.num_batches_tracked) == int(bn.num_batches_tracked) == 1


@pytest.mark.parametrize("memory", ["channels_last", "cropped"])
def test_sync_batch_norm_and_its_activation_as_one_pair_across_ranks(memory):
    """With the fast kernels on, Sequential runs SyncBatchNorm2d and the LeakyReLU after it as
    one pair (BatchNorm.forward_with): its sums too go across the ranks, and the ranks get what
    one process gets with the whole batch, for either layout of the input (a crop takes the
    pair's einsum path)."""
    rng = np.random.default_rng(2)
    shape = (6, 4, 3, 3)

    def laid_out(a):       # channels-last, or the inside of a bigger channels-last image
        if memory == "channels_last":
            return to_device(np.ascontiguousarray(a.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
        big = np.zeros((6, 5, 5, 4))
        big[:, 1:4, 1:4] = a.transpose(0, 2, 3, 1)
        return to_device(big)[:, 1:4, 1:4].transpose(0, 3, 1, 2)

    x = laid_out(rng.standard_normal(shape) * 2 + 1)
    dy = laid_out(rng.standard_normal(shape))
    whole = Sequential(BatchNorm2d(4), LeakyReLU(0.2)).to(dtype="float64")
    whole[0].weight.data = to_device(rng.uniform(0.5, 1.5, 4))
    paired = []
    original = BatchNorm2d.forward_with

    def spy(self, *args):
        paired.append(type(self).__name__)
        return original(self, *args)

    def work(world):
        pair = Sequential(SyncBatchNorm2d(4, world=world), LeakyReLU(0.2)).to(dtype="float64")
        pair[0].weight.data = whole[0].weight.data.copy()
        mine = slice(2 * world.rank, 2 * world.rank + 2)
        y_r = pair(x[mine])
        dx_r = pair.backward(dy[mine] / 2)
        world.average_gradients(pair.parameters())
        return y_r, dx_r, pair[0]

    with ops.fast_kernels(True):
        y = whole(x)
        dx = whole.backward(dy / 6)
        BatchNorm2d.forward_with = spy
        try:
            results = run_ranks(3, work)
        finally:
            BatchNorm2d.forward_with = original
    assert paired == ["SyncBatchNorm2d"] * 3
    close(joined(r[0] for r in results), y)
    close(joined(r[1] for r in results) / 3, dx)
    for _, _, sync in results:
        same_state(sync, whole[0])


def test_sync_batch_norm_pairs_keep_statistics_per_group_across_ranks():
    """Each rank holds its share of a real and of a fake batch, one after the other, and runs
    them as one batch with statistics per group (minigan/gan/one_pass.py under --processes):
    the ranks get what one process gets running the whole real batch, then the whole fake
    batch, through the pair. (On the active backend: a GPU with MINIGAN_BACKEND=cupy.)"""
    rng = np.random.default_rng(4)
    xp = array_module()

    def channels_last(a):     # (N, C, H, W) on the device, laid out as a convolution's output
        return to_device(np.ascontiguousarray(a.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)

    shape = (6, 4, 3, 3)
    real, fake = (channels_last(rng.standard_normal(shape) * s + s) for s in (1, 2))
    dy_real, dy_fake = (channels_last(rng.standard_normal(shape)) for _ in range(2))
    whole = Sequential(BatchNorm2d(4), LeakyReLU(0.2)).to(dtype="float64")
    whole[0].weight.data[...] = to_device(rng.uniform(0.5, 1.5, 4))

    def work(world):
        pair = Sequential(SyncBatchNorm2d(4, world=world), LeakyReLU(0.2)).to(dtype="float64")
        pair[0].weight.data[...] = whole[0].weight.data
        mine = slice(2 * world.rank, 2 * world.rank + 2)
        with statistics_per_group(pair, 2):
            y_r = pair(xp.concatenate([real[mine], fake[mine]]))
        dx_r = pair.backward(xp.concatenate([dy_real[mine], dy_fake[mine]]) / 2)
        world.average_gradients(pair.parameters())
        return y_r, dx_r, pair[0]

    with ops.fast_kernels(True):
        y_real = whole(real)
        dx_real = whole.backward(dy_real / 6)
        y_fake = whole(fake)
        dx_fake = whole.backward(dy_fake / 6)
        results = run_ranks(3, work)

    for rank, (y_r, dx_r, sync) in enumerate(results):
        mine = slice(2 * rank, 2 * rank + 2)
        close(y_r, xp.concatenate([y_real[mine], y_fake[mine]]))
        close(dx_r / 3, xp.concatenate([dx_real[mine], dx_fake[mine]]))
        for name in ("weight", "bias"):
            close(getattr(sync, name).grad, getattr(whole[0], name).grad)
        close(sync.running_mean, whole[0].running_mean)
        close(sync.running_var, whole[0].running_var)
        assert int(sync.num_batches_tracked) == 2


def test_sync_batch_norm_in_one_process_passes_a_gradient_check():
    rng = np.random.default_rng(1)
    sync = SyncBatchNorm2d(3).to(dtype="float64")
    sync.weight.data = to_device(rng.uniform(0.5, 1.5, 3))
    x = to_device(rng.standard_normal((4, 3, 2, 2)))
    assert check_module(sync, x) < 1e-6
    sync.eval()                              # running statistics: BatchNorm2d's own path
    assert check_module(sync, x) < 1e-6


def test_convert_sync_batch_norm_keeps_the_parameters_the_optimizer_holds():
    G = Generator(z_size=4, conv_dim=4, image_size=16)
    before = G.parameters()
    norms = [m for m in G.modules() if isinstance(m, BatchNorm2d)]
    world = ThreadWorld(0, 2, {})
    convert_sync_batch_norm(G, world)
    synced = [m for m in G.modules() if isinstance(m, BatchNorm2d)]
    assert len(synced) == len(norms) == 1 and isinstance(synced[0], SyncBatchNorm2d)
    assert synced[0].world is world
    assert all(a is b for a, b in zip(G.parameters(), before))    # the same Parameter objects
    assert list(G.state_dict()) == list(Generator(4, 4, 16).state_dict())   # checkpoints fit


# ---------------------------------------------------------------------- dropout, MPI missing
def test_each_rank_drops_its_own_units_and_rank_0s_state_recovers_them_all():
    layers = [Dropout(0.5, rng=np.random.default_rng(7)) for _ in range(3)]
    ThreadWorld(0, 3, {}).own_dropout_streams(layers[:1])
    ThreadWorld(1, 3, {}).own_dropout_streams(layers[1:2])
    ThreadWorld(2, 3, {}).own_dropout_streams(layers[2:])
    draws = [layer.rng.random(1000) for layer in layers]   # one "step" of masks each
    assert not np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[1], draws[2])
    # A checkpoint keeps rank 0's generator; after loading it, rank 2 jumps it twice and is
    # exactly where its own generator is now.
    saved = np.random.default_rng(7)
    saved.bit_generator.state = layers[0].rng.bit_generator.state
    resumed = Dropout(0.5, rng=saved)
    ThreadWorld(2, 3, {}).own_dropout_streams([resumed])
    np.testing.assert_array_equal(resumed.rng.random(5), layers[2].rng.random(5))


def test_without_mpi4py_distributed_says_what_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, "mpi4py", None)   # import mpi4py fails
    with pytest.raises(DistributedError, match=r'pip install -e "\.\[mpi\]"'):
        join_mpi_world()
    from minigan import cli

    code = cli.main(["--distributed", "--dataset", "synthetic", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: --distributed needs mpi4py") and err.count("\n") == 1


def test_a_batch_norm_kernel_that_ignores_across_is_refused(monkeypatch):
    """A learner's kernel written for one process would normalise each rank with its own
    statistics: SyncBatchNorm2d sees it in the cache's count and says so."""
    mine = ops.batch_norm_forward
    monkeypatch.setattr(ops, "batch_norm_forward",
                        lambda x, gamma, beta, eps=1e-5, across=None: mine(x, gamma, beta, eps))
    x = to_device(np.random.default_rng(2).standard_normal((4, 3, 2, 2)))

    def work(world):
        sync = SyncBatchNorm2d(3, world=world).to(dtype="float64")
        return sync(x[2 * world.rank:2 * world.rank + 2])

    with pytest.raises(RuntimeError, match="ignores `across`"):
        run_ranks(2, work)


def test_a_ctrl_c_that_reaches_one_rank_after_an_epochs_last_step_stops_every_rank_there(
        tmp_path, monkeypatch):
    """The ranks agree on Ctrl-C after every step; one that comes after the epoch's last
    agreement (to rank 1 only, as a signal sent to the process group can) must not make rank 1
    stop at the epoch's end while rank 0 goes on and waits for it in the next step."""
    from minigan.backend import set_default_dtype
    from minigan.gan import trainer as trainer_module
    from tests.distributed.tiny_run import make_trainer

    made = {}

    class Noted(trainer_module._FinishStepOnCtrlC):
        def __init__(self):
            super().__init__()
            made[threading.current_thread()] = self

    monkeypatch.setattr(trainer_module, "_FinishStepOnCtrlC", Noted)

    def work(world):
        world.comm = FakeBcastComm(world)   # for the trainer's first broadcast of the weights
        trainer = make_trainer(tmp_path / f"rank{world.rank}", world, epochs=3)
        if world.rank == 1:
            whole_epoch = trainer.loader.epoch

            def epoch(e, start_batch=0):
                yield from whole_epoch(e, start_batch)
                made[threading.current_thread()].requested = True   # after the last step

            trainer.loader.epoch = epoch
        trainer.fit(progress=False)
        return trainer.step, trainer.interrupted

    try:
        assert run_ranks(2, work) == [(3, True), (3, True)]   # both stop after epoch 1's 3
    finally:
        set_default_dtype(np.float32)
    assert (tmp_path / "rank0" / "checkpoint.npz").is_file()
