"""Data-parallel training over MPI (mpi4py): many processes, many machines.

Each process (rank) holds a shard of the data and a replica of the model. Rank 0's
initial weights are broadcast once; each step every rank computes the gradient of its
share of a global minibatch, one all-reduce over one flat buffer averages them
(weighted by the ranks' sample counts), and every rank applies the same update, so the
replicas stay bit-identical. :mod:`anyrnn.distributed.shards` says how the global
minibatches are formed, :mod:`anyrnn.distributed.faults` what happens when a rank fails.

Estimators: ``clf.fit(X_shard, y_shard, comm=MPI.COMM_WORLD)``. Hand-written loops::

    broadcast_params(layers, comm)               # once, after building the layers
    ...backward...
    allreduce_grads(layers, comm, n=batch_size)  # every step, before optimizer.step

mpi4py is optional: ``pip install 'anyrnn[mpi]'``. Nothing here imports it until a
communicator is used.
"""

from .functions import allreduce_grads, broadcast_params, check_replicas
from .shards import Shards
from .sync import MPI_EXTRA_HINT, Sync, plain_layers
from .transport import (
    GPU_TRANSPORTS,
    TRANSPORTS,
    choose_transport,
    cuda_aware_mpi,
    nccl_available,
)

__all__ = [
    "GPU_TRANSPORTS",
    "MPI_EXTRA_HINT",
    "TRANSPORTS",
    "Shards",
    "Sync",
    "allreduce_grads",
    "broadcast_params",
    "check_replicas",
    "choose_transport",
    "cuda_aware_mpi",
    "nccl_available",
    "plain_layers",
]
