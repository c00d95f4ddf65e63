"""How one flat buffer of a backend crosses the ranks: the transports and their choice.

A data-parallel step sends one 1-D buffer (every gradient, flattened and concatenated)
through one all-reduce; a fit broadcasts one such buffer of parameters once. Where that
buffer lives decides how it travels:

========== ========================================================================
``numpy``  NumPy buffers go to MPI as they are (mpi4py reads the buffer protocol).
``nccl``   CuPy buffers through NCCL (``cupy.cuda.nccl``), GPU to GPU, on the current
           CUDA stream. The NCCL communicator is made once per :class:`~.Sync`, from a
           unique id that rank 0 draws and broadcasts over MPI.
``mpi``    CuPy buffers handed to MPI directly: needs a CUDA-aware MPI (mpi4py passes
           device pointers through ``__cuda_array_interface__``/DLPack).
``host``   A NumPy copy goes through MPI and the result comes back to the backend:
           torch, JAX, array-api-strict, and CuPy when neither of the above is there.
========== ========================================================================

:func:`choose_transport` is the pure rule (tested with fakes); :func:`cuda_aware_mpi`
and :func:`nccl_available` look at this machine. The ``nccl`` and ``mpi`` transports
have not run on GPU hardware: the project's CI machine has none.
"""

from __future__ import annotations

import ctypes
import functools
import os
from typing import Any

import numpy as np

from ..backend import to_numpy

__all__ = [
    "GPU_TRANSPORTS",
    "TRANSPORTS",
    "Transport",
    "choose_transport",
    "cuda_aware_mpi",
    "make_transport",
    "nccl_available",
]

#: every transport, see the module docstring
TRANSPORTS = ("numpy", "nccl", "mpi", "host")
#: what ``gpu=`` takes: ``"auto"`` picks NCCL, else CUDA-aware MPI, else the host
GPU_TRANSPORTS = ("auto", "nccl", "mpi", "host")

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def choose_transport(backend_name: str, gpu: str = "auto", *, cuda_aware: bool, nccl: bool) -> str:
    """The transport for buffers of ``backend_name`` (a pure rule, no probing).

    Parameters
    ----------
    backend_name : str
        ``"numpy"``, ``"cupy"``, ``"torch"``, ...
    gpu : {"auto", "nccl", "mpi", "host"}
        For CuPy: ``"auto"`` takes NCCL when available, else CUDA-aware MPI when the MPI
        is CUDA-aware, else the host. The others force that transport (``"nccl"`` raises
        when NCCL is missing; ``"mpi"`` trusts you that the MPI is CUDA-aware).
        Ignored by the other backends.
    cuda_aware, nccl : bool
        What :func:`cuda_aware_mpi` and :func:`nccl_available` say here.
    """
    if gpu not in GPU_TRANSPORTS:
        raise ValueError(f"gpu must be one of {list(GPU_TRANSPORTS)}; got gpu={gpu!r}")
    if backend_name == "numpy":
        return "numpy"
    if backend_name != "cupy":
        return "host"
    if gpu == "nccl" and not nccl:
        raise RuntimeError(
            "gpu='nccl' was asked for, but cupy.cuda.nccl is not available: install NCCL "
            "for CuPy (e.g. pip install nvidia-nccl-cu12), or use gpu='auto'"
        )
    if gpu != "auto":
        return gpu
    if nccl:
        return "nccl"
    return "mpi" if cuda_aware else "host"


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def _loaded_libmpi() -> str | None:
    """Path of the MPI library this process has loaded (Linux), or None."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libmpi" in line}
    except OSError:
        return None
    paths = sorted(p for p in paths if p.startswith("/") and "libmpi" in os.path.basename(p))
    return paths[0] if paths else None


def cuda_aware_mpi() -> bool:
    """Whether the MPI that mpi4py runs on takes CUDA device buffers.

    In order: the environment variable ``ANYRNN_MPI_CUDA_AWARE`` (``1``/``0``) decides
    when set; else mpi4py's ``MPI.Query_cuda_support()`` where mpi4py has it; else the
    MPI library's own ``MPIX_Query_cuda_support()`` (Open MPI ≥ 2, MPICH ≥ 4), called
    through ctypes; else False (the safe answer: the host transport works everywhere).
    """
    forced = _env_flag("ANYRNN_MPI_CUDA_AWARE")
    if forced is not None:
        return forced
    return _probe_cuda_aware()


@functools.cache
def _probe_cuda_aware() -> bool:
    try:
        from mpi4py import MPI
    except ImportError:
        return False
    query = getattr(MPI, "Query_cuda_support", None)
    if query is not None:
        try:
            return bool(query())
        except Exception:  # noqa: BLE001 - an MPI without the extension
            return False
    path = _loaded_libmpi()
    if path is None:
        return False
    try:
        fn = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL).MPIX_Query_cuda_support
    except (OSError, AttributeError):
        return False
    fn.restype, fn.argtypes = ctypes.c_int, []
    return bool(fn())


def nccl_available() -> bool:
    """Whether ``cupy.cuda.nccl`` can be used here (CuPy built with, and finding, NCCL)."""
    try:
        from cupy.cuda import nccl
    except Exception:  # noqa: BLE001 - no CuPy, or no CUDA
        return False
    return bool(getattr(nccl, "available", False))


# --------------------------------------------------------------------------- transports


class Transport:
    """Sum-all-reduce and broadcast of a 1-D buffer of one backend, over one communicator.

    ``allreduce(flat)`` and ``bcast(flat, root)`` return the result as an array of the
    same backend (possibly ``flat`` itself, written in place).
    """

    name = ""

    def __init__(self, comm: Any, backend: Any):
        self.comm, self.backend = comm, backend

    def allreduce(self, flat: Any) -> Any:
        raise NotImplementedError

    def bcast(self, flat: Any, root: int) -> Any:
        raise NotImplementedError


class NumpyTransport(Transport):
    """NumPy buffers straight to MPI."""

    name = "numpy"

    def allreduce(self, flat: np.ndarray) -> np.ndarray:
        from mpi4py import MPI

        flat = np.ascontiguousarray(flat)
        self.comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        return flat

    def bcast(self, flat: np.ndarray, root: int) -> np.ndarray:
        flat = np.ascontiguousarray(flat)
        self.comm.Bcast(flat, root=root)
        return flat


class HostTransport(NumpyTransport):
    """Through a NumPy copy on the host, for any backend."""

    name = "host"

    def allreduce(self, flat: Any) -> Any:
        host = np.array(to_numpy(flat), copy=True)  # writable, contiguous, ours
        return self.backend.from_host(super().allreduce(host), dtype=flat.dtype)

    def bcast(self, flat: Any, root: int) -> Any:
        host = np.array(to_numpy(flat), copy=True)
        return self.backend.from_host(super().bcast(host, root), dtype=flat.dtype)


class CudaAwareMPITransport(Transport):
    """CuPy device buffers handed to a CUDA-aware MPI (not run on hardware here)."""

    name = "mpi"

    def _ready(self, flat: Any) -> Any:
        import cupy

        flat = cupy.ascontiguousarray(flat)
        cupy.cuda.get_current_stream().synchronize()  # MPI reads the memory now
        return flat

    def allreduce(self, flat: Any) -> Any:
        from mpi4py import MPI

        flat = self._ready(flat)
        self.comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        return flat

    def bcast(self, flat: Any, root: int) -> Any:
        flat = self._ready(flat)
        self.comm.Bcast(flat, root=root)
        return flat


class NcclTransport(Transport):
    """CuPy device buffers through NCCL on the current stream (not run on hardware here).

    Each rank must compute on its own GPU (NCCL refuses two ranks on one device): build
    the model with ``device=local_rank % n_gpus``.
    """

    name = "nccl"

    def __init__(self, comm: Any, backend: Any):
        super().__init__(comm, backend)
        from cupy.cuda import nccl

        self._nccl_mod = nccl
        uid = comm.bcast(nccl.get_unique_id() if comm.Get_rank() == 0 else None, root=0)
        with backend.device:
            self._nccl = nccl.NcclCommunicator(comm.Get_size(), uid, comm.Get_rank())

    def _args(self, flat: Any) -> tuple[Any, int, int]:
        import cupy

        codes = {
            np.dtype(np.float32): self._nccl_mod.NCCL_FLOAT32,
            np.dtype(np.float64): self._nccl_mod.NCCL_FLOAT64,
        }
        flat = cupy.ascontiguousarray(flat)
        return flat, codes[np.dtype(flat.dtype)], cupy.cuda.get_current_stream().ptr

    def allreduce(self, flat: Any) -> Any:
        flat, code, stream = self._args(flat)
        ptr = flat.data.ptr
        self._nccl.allReduce(ptr, ptr, flat.size, code, self._nccl_mod.NCCL_SUM, stream)
        return flat

    def bcast(self, flat: Any, root: int) -> Any:
        flat, code, stream = self._args(flat)
        self._nccl.bcast(flat.data.ptr, flat.size, code, root, stream)
        return flat


_CLASSES = {
    "numpy": NumpyTransport,
    "host": HostTransport,
    "mpi": CudaAwareMPITransport,
    "nccl": NcclTransport,
}


def make_transport(name: str, comm: Any, backend: Any) -> Transport:
    """The transport ``name`` (one of :data:`TRANSPORTS`) for ``backend`` over ``comm``."""
    if name not in _CLASSES:
        raise ValueError(f"transport must be one of {list(TRANSPORTS)}; got {name!r}")
    return _CLASSES[name](comm, backend)
