"""The collectives of a hand-written loop, as functions of a communicator.

:func:`broadcast_params`, :func:`allreduce_grads` and :func:`check_replicas` call the
:class:`~anyrnn.distributed.Sync` of ``comm``, made once per live communicator.
"""

from __future__ import annotations

import weakref
from typing import Any

from .sync import Sync

__all__ = ["allreduce_grads", "broadcast_params", "check_replicas"]

#: one Sync per live communicator, so that a GPU transport (an NCCL communicator) is
#: made once, not at every step of a hand-written loop
_SYNCS: dict[int, Sync] = {}


def _sync_for(comm: Any, gpu: str | None) -> Sync:
    if comm is None or isinstance(comm, Sync):
        return Sync.create(comm, gpu=gpu)
    key = id(comm)
    sync = _SYNCS.get(key)
    if sync is None or sync.comm is not comm or (gpu is not None and sync.gpu != gpu):
        sync = Sync.create(comm, gpu=gpu)
        _SYNCS[key] = sync
        weakref.finalize(comm, _SYNCS.pop, key, None)
    return sync


def broadcast_params(layers: Any, comm: Any, root: int = 0, *, gpu: str | None = None) -> None:
    """Give every rank of ``comm`` the parameters of rank ``root``.

    Call it once after building the layers, before training, on every rank.

    Parameters
    ----------
    layers : layer, container or list of them
    comm : mpi4py.MPI.Intracomm, Sync or None (None: nothing to do)
    root : int
    gpu : {"auto", "nccl", "mpi", "host"} or None
        How CuPy buffers travel.
    """
    _sync_for(comm, gpu).broadcast_params(layers, root)


def allreduce_grads(
    layers: Any, comm: Any, n: int | None = None, *, gpu: str | None = None
) -> float:
    """Average the gradients of ``layers`` over the ranks of ``comm``, weighted by ``n``.

    Call it on every rank after ``backward`` and before the optimizer step. ``n`` is the
    number of samples this rank's gradients are a mean over (0 for an empty batch: its
    gradients are not read); with it the result is the mean gradient of all the ranks'
    samples. ``n=None`` gives each rank weight 1. One all-reduce of one flat buffer.

    Returns
    -------
    float
        The total weight (the global batch size when ``n`` counts samples).
    """
    return _sync_for(comm, gpu).allreduce_grads(layers, n)


def check_replicas(layers: Any, comm: Any) -> None:
    """Raise ``RuntimeError`` on every rank unless all ranks' parameters are bit-identical."""
    _sync_for(comm, None).check_replicas(layers)
