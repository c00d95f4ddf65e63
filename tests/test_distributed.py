"""anyrnn.distributed in one process: the no-op Sync, the minibatch schedule, the choice
of transport and the GPU transports' calls (with fakes: no MPI, no GPU needed).

The runs over real ranks are in test_mpi.py.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import anyrnn
from anyrnn.distributed import Shards, Sync, choose_transport
from anyrnn.distributed import transport as tr

# --------------------------------------------------------------------------- no-op Sync


def test_null_sync_is_a_no_op():
    sync = Sync.create(None)
    assert (sync.rank, sync.size, sync.is_root) == (0, 1, True)
    assert Sync.create(sync) is sync
    a = np.arange(5)
    assert sync.concat(a) is a
    assert sync.sum(0.1) == 0.1 and sync.any(0) is False and sync.agree(3, "x") == 3
    assert sync.allgather("x") == ["x"]
    assert sync.shards(7).local(a) is a and sync.shards(7).rows(a) is a
    assert sync.mean(0.25, 3) == 0.25
    rng_a, rng_b = sync.rng(5), np.random.default_rng(5)
    assert rng_a.integers(1 << 30) == rng_b.integers(1 << 30)
    y = ["a", "b"]
    joined, shards = sync.gather_rows(y, 2)
    assert joined is y and (shards.n_global, shards.offset) == (2, 0)


def test_null_sync_leaves_gradients_alone():
    rnn = anyrnn.SimpleRNN(2, 3, dtype="float64", random_state=0)
    rnn.backward(np.ones_like(rnn.forward(np.ones((4, 5, 2)))))
    before = rnn.grads
    assert Sync.create(None).allreduce_grads([rnn], 4) == 4.0
    assert all(rnn.grads[k] is before[k] for k in before)
    with pytest.raises(ValueError, match="n must be None or a non-negative int"):
        Sync.create(None).allreduce_grads([rnn], -1)


def test_null_sync_guard_and_together_raise_as_usual():
    sync = Sync.create(None)
    with pytest.raises(KeyError), sync.guard(), sync.together():
        raise KeyError("x")


def test_plain_layers_opens_containers():
    from anyrnn.distributed import plain_layers

    inner = anyrnn.Bidirectional(anyrnn.GRU(2, 3, return_sequences=True))
    stacked = anyrnn.Stacked([inner, anyrnn.LSTM(6, 4)])
    dense = anyrnn.Dense(4, 1)
    layers = plain_layers([stacked, dense])
    assert len(layers) == 4 and layers[-1] is dense
    assert all(hasattr(layer, "_params") for layer in layers)


def test_fit_with_comm_none_is_the_plain_fit():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4, 2)), rng.integers(0, 2, 20)
    a = anyrnn.RNNClassifier(n_nodes=4, epochs=2, batch_size=6, random_state=0).fit(X, y)
    b = anyrnn.RNNClassifier(n_nodes=4, epochs=2, batch_size=6, random_state=0)
    b.fit(X, y, comm=None)
    for la, lb in zip(a.network_.layers, b.network_.layers):
        for k in la.params:
            np.testing.assert_array_equal(la.params[k], lb.params[k])
    assert a.loss_curve_ == b.loss_curve_


# --------------------------------------------------------------------------- schedule


@pytest.mark.parametrize("sizes", [(40,), (20, 20), (13, 27), (3, 22, 15), (1, 0, 9, 30)])
@pytest.mark.parametrize("batch_size", [1, 7, 8, 64])
def test_global_minibatches_are_the_one_process_minibatches(sizes, batch_size):
    """Each rank's local batches, put back together, are the one-process batches."""
    n = sum(sizes)
    expected = list(Shards((n,), 0).minibatches(np.random.default_rng(3), batch_size))
    per_rank = [
        list(Shards(sizes, r).minibatches(np.random.default_rng(3), batch_size))
        for r in range(len(sizes))
    ]
    assert all(len(steps) == len(expected) == -(-n // batch_size) for steps in per_rank)
    offsets = np.cumsum((0,) + sizes)
    for step, (global_idx, global_n) in enumerate(expected):
        assert global_n == global_idx.shape[0]
        parts = []
        for r in range(len(sizes)):
            local, n_batch = per_rank[r][step]
            assert n_batch == global_n
            assert np.all((local >= 0) & (local < sizes[r]))
            parts.append(local + offsets[r])
        joined = np.concatenate(parts)
        # the same samples; within a rank in the global permutation's order
        np.testing.assert_array_equal(np.sort(joined), np.sort(global_idx))
        for r in range(len(sizes)):
            mine = global_idx[(global_idx >= offsets[r]) & (global_idx < offsets[r + 1])]
            np.testing.assert_array_equal(parts[r], mine)


def test_shards_local_keeps_order_and_offsets():
    s = Shards((3, 4, 5), 1)
    assert (s.offset, s.n_local, s.n_global) == (3, 4, 12)
    np.testing.assert_array_equal(s.local(np.array([11, 6, 0, 3, 5, 7])), [3, 0, 2])


# --------------------------------------------------------------------------- errors


def test_comm_without_mpi4py_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py -> ImportError
    with pytest.raises(ImportError, match=r"anyrnn\[mpi\]"):
        Sync.create(object())
    X, y = np.zeros((4, 3, 2)), np.array([0, 1, 0, 1])
    est = anyrnn.RNNClassifier(n_nodes=2, epochs=1)
    with pytest.raises(ImportError, match=r"pip install 'anyrnn\[mpi\]'"):
        est.fit(X, y, comm=object())
    assert not hasattr(est, "network_")


class _FakeIntracomm:
    def __init__(self, rank=0, size=2):
        self.rank, self.size, self.calls = rank, size, []

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.size

    def bcast(self, obj, root=0):
        self.calls.append(("bcast", obj, root))
        return obj

    def Allreduce(self, sendbuf, recvbuf, op=None):
        self.calls.append(("Allreduce", sendbuf, recvbuf, op))

    def Bcast(self, buf, root=0):
        self.calls.append(("Bcast", buf, root))


@pytest.fixture
def fake_mpi(monkeypatch):
    """A stand-in ``mpi4py.MPI`` (no MPI is initialised in the test process)."""
    mpi = types.SimpleNamespace(
        Intracomm=_FakeIntracomm, IN_PLACE="IN_PLACE", SUM="SUM", Comm=_FakeIntracomm
    )
    pkg = types.ModuleType("mpi4py")
    pkg.MPI = mpi
    monkeypatch.setitem(sys.modules, "mpi4py", pkg)
    monkeypatch.setitem(sys.modules, "mpi4py.MPI", mpi)
    return mpi


def test_comm_of_the_wrong_type(fake_mpi):
    with pytest.raises(TypeError, match="mpi4py intra-communicator"):
        Sync.create("COMM_WORLD")
    sync = Sync.create(_FakeIntracomm(rank=1, size=3))
    assert (sync.rank, sync.size, sync.is_root) == (1, 3, False)


# --------------------------------------------------------------------------- transports


@pytest.mark.parametrize(
    ("backend", "gpu", "cuda_aware", "nccl", "expected"),
    [
        ("numpy", "auto", True, True, "numpy"),
        ("numpy", "nccl", False, False, "numpy"),
        ("torch", "auto", True, True, "host"),
        ("jax", "auto", False, False, "host"),
        ("array_api_strict", "mpi", True, True, "host"),
        ("cupy", "auto", True, True, "nccl"),
        ("cupy", "auto", True, False, "mpi"),
        ("cupy", "auto", False, False, "host"),
        ("cupy", "host", True, True, "host"),
        ("cupy", "mpi", False, False, "mpi"),
        ("cupy", "nccl", False, True, "nccl"),
    ],
)
def test_choose_transport(backend, gpu, cuda_aware, nccl, expected):
    assert choose_transport(backend, gpu, cuda_aware=cuda_aware, nccl=nccl) == expected


def test_choose_transport_refuses():
    with pytest.raises(RuntimeError, match="cupy.cuda.nccl is not available"):
        choose_transport("cupy", "nccl", cuda_aware=True, nccl=False)
    with pytest.raises(ValueError, match="gpu must be one of"):
        choose_transport("cupy", "gloo", cuda_aware=True, nccl=True)


def test_cuda_aware_environment_override(monkeypatch):
    monkeypatch.setenv("ANYRNN_MPI_CUDA_AWARE", "1")
    assert tr.cuda_aware_mpi() is True
    monkeypatch.setenv("ANYRNN_MPI_CUDA_AWARE", "no")
    assert tr.cuda_aware_mpi() is False


def test_no_nccl_without_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert tr.nccl_available() is False


class _FakeDeviceArray:
    """What the GPU transports touch of a CuPy array: data.ptr, size, dtype."""

    def __init__(self, values):
        self.values = np.asarray(values)
        self.size, self.dtype = self.values.size, self.values.dtype
        self.data = types.SimpleNamespace(ptr=id(self))


class _FakeNcclComm:
    def __init__(self, ndev, uid, rank):
        self.init, self.calls = (ndev, uid, rank), []

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):  # noqa: N802
        self.calls.append(("allReduce", sendbuf, recvbuf, count, datatype, op, stream))

    def bcast(self, buff, count, datatype, root, stream):
        self.calls.append(("bcast", buff, count, datatype, root, stream))


@pytest.fixture
def fake_cupy(monkeypatch):
    stream = types.SimpleNamespace(ptr=4242, synced=0)
    stream.synchronize = lambda: setattr(stream, "synced", stream.synced + 1)
    nccl = types.SimpleNamespace(
        available=True,
        get_unique_id=lambda: ("uid",),
        NcclCommunicator=_FakeNcclComm,
        NCCL_FLOAT32=7,
        NCCL_FLOAT64=8,
        NCCL_SUM=0,
    )
    cuda = types.SimpleNamespace(nccl=nccl, get_current_stream=lambda: stream)
    cupy = types.ModuleType("cupy")
    cupy.cuda = cuda
    cupy.ascontiguousarray = lambda a: a
    cuda_mod = types.ModuleType("cupy.cuda")
    cuda_mod.nccl = nccl
    cuda_mod.get_current_stream = cuda.get_current_stream
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupy.cuda", cuda_mod)
    monkeypatch.setitem(sys.modules, "cupy.cuda.nccl", nccl)
    return types.SimpleNamespace(stream=stream, nccl=nccl)


class _FakeGPUBackend:
    name, dtype_name = "cupy", "float32"

    def __init__(self):
        self.device, self.entered = self, 0

    def __enter__(self):
        self.entered += 1

    def __exit__(self, *exc):
        return False


def test_nccl_transport_calls(fake_cupy, fake_mpi):
    assert tr.nccl_available() is True
    comm, backend = _FakeIntracomm(rank=1, size=4), _FakeGPUBackend()
    t = tr.make_transport("nccl", comm, backend)
    assert comm.calls == [("bcast", None, 0)]  # rank 1 receives rank 0's unique id
    assert t._nccl.init == (4, None, 1) and backend.entered == 1
    buf = _FakeDeviceArray(np.zeros(10, np.float32))
    assert t.allreduce(buf) is buf
    assert t._nccl.calls[-1] == ("allReduce", id(buf), id(buf), 10, 7, 0, 4242)
    buf64 = _FakeDeviceArray(np.zeros(3, np.float64))
    t.bcast(buf64, 0)
    assert t._nccl.calls[-1] == ("bcast", id(buf64), 3, 8, 0, 4242)

    root = tr.make_transport("nccl", _FakeIntracomm(rank=0, size=4), backend)
    assert root._nccl.init == (4, ("uid",), 0)


def test_cuda_aware_mpi_transport_calls(fake_cupy, fake_mpi):
    comm = _FakeIntracomm()
    t = tr.make_transport("mpi", comm, _FakeGPUBackend())
    buf = _FakeDeviceArray(np.zeros(5))
    assert t.allreduce(buf) is buf
    assert comm.calls[-1] == ("Allreduce", "IN_PLACE", buf, "SUM")
    t.bcast(buf, 1)
    assert comm.calls[-1] == ("Bcast", buf, 1)
    assert fake_cupy.stream.synced == 2  # MPI reads device memory only after the stream


def test_sync_picks_the_transport_per_backend(fake_mpi, monkeypatch):
    monkeypatch.setattr(tr, "cuda_aware_mpi", lambda: True)
    from anyrnn.distributed import sync as sync_mod

    monkeypatch.setattr(sync_mod, "cuda_aware_mpi", lambda: False)
    monkeypatch.setattr(sync_mod, "nccl_available", lambda: False)
    sync = Sync.create(_FakeIntracomm())
    assert sync.transport_name([anyrnn.Dense(2, 2)]) == "numpy"
    assert sync.transport_name([anyrnn.Dense(2, 2, backend="array_api_strict")]) == "host"


def test_unknown_transport():
    with pytest.raises(ValueError, match="transport must be one of"):
        tr.make_transport("gloo", None, None)
