"""The collective operations of a data-parallel fit, behind one small object.

A fit loop asks a :class:`Sync` at a few named points; with ``comm=None`` (or a
communicator of one process) every call is a no-op that returns its input, so the
single-process fit is unchanged bit for bit.

:mod:`.shards` says how the global minibatches are formed, :mod:`.faults` what happens
when a rank fails; :mod:`.functions` holds the same collectives as functions of a
communicator, for hand-written loops.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np

from ..backend import to_numpy
from .faults import Faults
from .shards import Shards
from .transport import choose_transport, cuda_aware_mpi, make_transport, nccl_available

__all__ = ["MPI_EXTRA_HINT", "Sync", "plain_layers"]

MPI_EXTRA_HINT = (
    "pip install 'anyrnn[mpi]' (mpi4py and the MPICH library from PyPI), or on a cluster "
    "mpi4py built against the cluster's MPI"
)


def plain_layers(layers: Any) -> list:
    """The plain layers (those holding ``_params``) inside ``layers``, in order.

    Containers (:class:`~anyrnn.Stacked`, :class:`~anyrnn.Bidirectional`, an estimator's
    ``network_``) are opened, as an optimizer's ``step`` does.
    """
    if hasattr(layers, "_params"):
        return [layers]
    if hasattr(layers, "layers") and not isinstance(layers, list | tuple):
        layers = layers.layers
    out: list = []
    for layer in layers:
        out.extend(plain_layers(layer))
    return out


class Sync(Faults):
    """Collective operations of a data-parallel fit over an mpi4py communicator.

    Build it with :meth:`create`: ``Sync.create(None)`` is the no-op object of a
    one-process fit. The same object serves the estimators' fit loop and hand-written
    loops (:meth:`broadcast_params`, :meth:`allreduce_grads`).

    Parameters
    ----------
    comm : mpi4py.MPI.Intracomm or None
    gpu : {"auto", "nccl", "mpi", "host"} or None
        How CuPy buffers travel (see :mod:`anyrnn.distributed.transport`); None reads
        the environment variable ``ANYRNN_GPU_TRANSPORT``, default ``"auto"``.
    """

    def __init__(self, comm: Any = None, *, gpu: str | None = None):
        self.comm = comm
        self.rank = 0 if comm is None else int(comm.Get_rank())
        self.size = 1 if comm is None else int(comm.Get_size())
        self.gpu = gpu if gpu is not None else os.environ.get("ANYRNN_GPU_TRANSPORT", "auto")
        self._transports: dict[Any, Any] = {}

    @classmethod
    def create(cls, comm: Any = None, *, gpu: str | None = None) -> Sync:
        """A :class:`Sync` for ``comm`` (None: the no-op one; a Sync: itself).

        Raises
        ------
        ImportError
            ``comm`` is given but mpi4py is not installed (the message names the extra).
        TypeError
            ``comm`` is not an mpi4py intra-communicator.
        """
        if comm is None or isinstance(comm, Sync):
            return comm if comm is not None else cls(None, gpu=gpu)
        try:
            from mpi4py import MPI
        except ImportError as exc:
            raise ImportError(
                f"comm= needs mpi4py and an MPI library, which are not installed: "
                f"{MPI_EXTRA_HINT}. Without comm= the fit runs in this process alone."
            ) from exc
        if not isinstance(comm, MPI.Intracomm):
            raise TypeError(
                "comm must be an mpi4py intra-communicator such as mpi4py.MPI.COMM_WORLD; "
                f"got {type(comm).__module__}.{type(comm).__name__} {comm!r:.60}"
            )
        return cls(comm, gpu=gpu)

    def __repr__(self) -> str:
        return f"Sync(rank={self.rank}, size={self.size}, gpu={self.gpu!r})"

    @property
    def is_root(self) -> bool:
        """Rank 0: the one that shows progress bars and writes plots and files."""
        return self.rank == 0

    # ------------------------------------------------------------- small collectives
    def allgather(self, obj: Any) -> list:
        """Every rank's ``obj`` (picklable), in rank order."""
        return [obj] if self.size == 1 else self.comm.allgather(obj)

    def sum(self, value: float) -> float:
        """The sum over ranks of a float, added in rank order (the same on every rank)."""
        if self.size == 1:
            return value
        total = 0.0
        for v in self.allgather(float(value)):
            total += v
        return total

    def mean(self, value: float, n: int) -> float:
        """The mean over every rank's samples, from this rank's mean ``value`` over its ``n``.

        ``Σ value_r n_r / Σ n_r``, added in rank order (the same on every rank); a rank
        with ``n=0`` adds nothing. With one rank, ``value`` itself.
        """
        if self.size == 1:
            return value
        total = count = 0.0
        for v, k in self.allgather((float(value) if n else 0.0, int(n))):
            total, count = total + v * k, count + k
        return total / count if count else float("nan")

    def any(self, flag: Any) -> bool:
        """True on every rank when ``flag`` is true on any: a stop that no rank misses."""
        return bool(flag) if self.size == 1 else any(self.allgather(bool(flag)))

    def agree(self, value: Any, what: str) -> Any:
        """``value``, after checking that every rank holds an equal one.

        Raises ``ValueError`` on every rank, naming ``what`` and the ranks' values,
        when they differ.
        """
        if self.size == 1:
            return value
        values = self.allgather(value)
        if any(v != values[0] for v in values[1:]):
            if all(isinstance(v, dict) for v in values):  # name only the keys that differ
                keys = [k for k in values[0] if any(v.get(k) != values[0][k] for v in values)]
                values = [{k: v.get(k) for k in keys} for v in values]
            shown = ", ".join(f"rank {r}: {v!r:.120}" for r, v in enumerate(values))
            raise self.collective(ValueError(f"the ranks disagree on {what}: {shown}"))
        return value

    def concat(self, a: Any) -> np.ndarray:
        """Host arrays of every rank joined along the first axis, in rank order."""
        a = np.asarray(a)
        if self.size == 1:
            return a
        return np.concatenate(self.allgather(a), axis=0)

    def shards(self, n_local: int) -> Shards:
        """How the ranks' ``n_local`` samples number globally (one allgather)."""
        return Shards(tuple(self.allgather(int(n_local))), self.rank)

    def gather_rows(self, a: Any, n_local: int, name: str = "y") -> tuple[Any, Shards]:
        """Every rank's ``a`` (one row per sample) on the host, joined in rank order.

        For reading every rank's targets as one, as one process reads them all (a
        classifier's ``classes_``); :meth:`Shards.rows` of the returned shards takes this
        rank's rows back out of what is computed from them. First checks that ``a`` has
        ``n_local`` rows on every rank. Errors are raised on every rank. With one rank,
        ``a`` as given, unchecked.
        """
        if self.size == 1:
            return a, Shards((n_local,), 0)
        with self.together():
            a = np.asarray(a)
            if a.ndim == 0 or a.shape[0] != n_local:
                got = "a scalar" if a.ndim == 0 else f"{a.shape[0]} rows"
                raise ValueError(
                    f"X and {name} have different numbers of samples on rank {self.rank}: "
                    f"X has {n_local}, {name} has {got}"
                )
        shards = self.shards(n_local)
        with self.together():  # every rank reaches the allgather; joining may fail on all
            joined = self.concat(a)
        return joined, shards

    def rng(self, random_state: Any) -> np.random.Generator:
        """``np.random.default_rng(random_state)``, continuing rank 0's stream on every rank.

        Rank 0 draws from (and advances) the generator it was given; the other ranks get
        a copy of its state, so weights, splits and permutations are drawn alike everywhere
        also for ``random_state=None``.
        """
        rng = np.random.default_rng(random_state)
        if self.size == 1:
            return rng
        state = self.comm.bcast(rng.bit_generator.state if self.is_root else None, root=0)
        if not self.is_root:
            rng = np.random.Generator(getattr(np.random, state["bit_generator"])())
            rng.bit_generator.state = state
        return rng

    # ------------------------------------------------------------- parameters, gradients
    def _transport(self, backend: Any) -> Any:
        key = (backend.name, backend.dtype_name, str(backend.device))
        if key not in self._transports:
            name = choose_transport(
                backend.name,
                self.gpu,
                cuda_aware=backend.name == "cupy" and cuda_aware_mpi(),
                nccl=backend.name == "cupy" and nccl_available(),
            )
            self._transports[key] = make_transport(name, self.comm, backend)
        return self._transports[key]

    def transport_name(self, layers: Any) -> str:
        """Which transport the buffers of ``layers`` take (``"numpy"``, ``"host"``, ...)."""
        if self.size == 1:
            return "none"
        return self._transport(plain_layers(layers)[0]._backend).name

    def broadcast_params(self, layers: Any, root: int = 0) -> None:
        """Give every rank ``root``'s parameters (one broadcast of one flat buffer).

        First checks that all ranks hold the same architecture (parameter names, shapes
        and dtypes), raising ``ValueError`` on every rank otherwise.
        """
        plain = plain_layers(layers)
        layout = [
            (type(layer).__name__, [(k, tuple(v.shape), str(v.dtype)) for k, v in _named(layer)])
            for layer in plain
        ]
        self.agree(layout, "the layers' parameters (class, names, shapes, dtypes)")
        if self.size == 1 or not plain:
            return
        backend = plain[0]._backend
        xp = backend.xp
        flat = _flatten(xp, [v for layer in plain for _, v in _named(layer)])
        flat = self._transport(backend).bcast(flat, root)
        offset = 0
        for layer in plain:
            new = {}
            for name, v in _named(layer):
                size = _size(v)
                new[name] = xp.asarray(
                    xp.reshape(flat[offset : offset + size], tuple(v.shape)), copy=True
                )
                offset += size
            layer._params = {**layer._params, **new}

    def allreduce_grads(self, layers: Any, n: int | None = None) -> float:
        """Replace every rank's gradients by their weighted mean over the ranks.

        One all-reduce of one flat buffer: each rank's gradients times its weight ``n``
        (the number of samples its gradients are a mean over), with ``n`` itself as the
        last element; the sum is divided by the total weight. With each rank's loss a
        mean over its local batch, the result is the mean gradient of the union of the
        batches. A rank with ``n=0`` sends zeros (its gradients are not read; they may
        be missing) and still takes part. ``n=None``: weight 1 (the plain mean over
        ranks).

        Returns
        -------
        float
            The total weight (the global batch size when ``n`` counts samples).
        """
        weight = 1 if n is None else n
        if not (isinstance(weight, int | np.integer) and weight >= 0):
            raise ValueError(f"n must be None or a non-negative int; got n={n!r}")
        if self.size == 1:
            return float(weight)
        plain = plain_layers(layers)
        backend = plain[0]._backend
        xp = backend.xp
        parts = []
        for layer in plain:
            for name, v in _named(layer):
                if weight == 0:
                    parts.append(backend.zeros((_size(v),)))
                    continue
                g = layer._grads.get(name)
                if g is None:
                    raise RuntimeError(
                        f"{type(layer).__name__} has no gradient for {name} on rank "
                        f"{self.rank}: call backward() before allreduce_grads (or pass n=0)"
                    )
                parts.append(xp.reshape(g, (-1,)) * weight if weight != 1 else g)
        parts.append(backend.from_host(np.asarray([weight], dtype=np.float64)))
        flat = self._transport(backend).allreduce(_flatten(xp, parts))
        total = float(flat[-1])
        if total == 0:
            raise self.collective(
                ValueError("allreduce_grads: no rank had samples (every n was 0)")
            )
        mean = flat[:-1] / flat[-1]
        offset = 0
        for layer in plain:
            grads = {}
            for name, v in _named(layer):
                size = _size(v)
                grads[name] = xp.reshape(mean[offset : offset + size], tuple(v.shape))
                offset += size
            layer._grads = grads
        return total

    def check_replicas(self, layers: Any) -> None:
        """Raise ``RuntimeError`` on every rank unless all hold bit-identical parameters."""
        if self.size == 1:
            return
        digests = []
        for i, layer in enumerate(plain_layers(layers)):
            for name, v in _named(layer):
                host = np.ascontiguousarray(to_numpy(v))
                digests.append((i, name, hashlib.sha256(host.tobytes()).hexdigest()))
        every = self.allgather(digests)
        for r, theirs in enumerate(every):
            if theirs != every[0]:
                bad = [d[:2] for d, e in zip(theirs, every[0]) if d != e]
                raise self.collective(
                    RuntimeError(
                        f"the replicas differ: rank {r}'s parameters {bad[:4]} "
                        "(layer index, name) are not bit-identical to rank 0's"
                    )
                )


def _named(layer: Any) -> list[tuple[str, Any]]:
    return list(layer.params.items())


def _size(v: Any) -> int:
    n = 1
    for d in v.shape:
        n *= int(d)
    return n


def _flatten(xp: Any, arrays: list) -> Any:
    return xp.concat([xp.reshape(a, (-1,)) for a in arrays], axis=0)
