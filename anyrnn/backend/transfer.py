"""Moving arrays between array libraries and devices: :func:`to_numpy`, :func:`to_backend`.

Moves are explicit: a layer refuses another library's array rather than copy it
silently. :func:`to_backend` tries DLPack first (zero-copy where the libraries share a
device, torch/JAX CUDA arrays into CuPy on their own GPU) and falls back to a copy
through host memory.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from .core import _native, array_library, refuse_masked
from .resolve import resolve_backend

__all__ = ["to_backend", "to_numpy"]


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy of any supported array (NumPy, CuPy, torch, JAX, array-api-strict).

    Always a new, writable array that shares no memory with ``x``: writing into it
    never changes ``x`` (nor the layer ``x`` belongs to), and later changes to ``x``
    do not show in it. NumPy masked arrays raise ``TypeError`` (the mask would be lost).
    """
    refuse_masked(x, None)
    if isinstance(x, np.ndarray):
        return np.array(x, copy=True, subok=False)
    lib = array_library(x)
    if lib == "cupy":
        return x.get()  # a host copy
    if lib == "torch":
        t = x.detach()
        return t.numpy().copy() if t.device.type == "cpu" else t.cpu().numpy()
    try:
        host = np.from_dlpack(x, device="cpu")  # a view where it can be (JAX: read-only)
    except (TypeError, BufferError, RuntimeError, ValueError, AttributeError):
        host = x
    return np.array(host, copy=True)


def _on_gpu(x: Any) -> bool:
    """Whether ``x`` is a torch or JAX array in CUDA memory (a candidate for DLPack)."""
    lib = array_library(x)
    if lib == "torch":
        return x.device.type == "cuda"
    if lib == "jax":
        return any(d.platform == "gpu" for d in x.devices())
    return False


def _cupy_from_dlpack(x: Any) -> Any:
    import cupy

    if array_library(x) == "torch":
        x = x.detach()  # torch refuses to export a tensor that requires grad
    return cupy.from_dlpack(x)


def to_backend(x: Any, backend: Any, device: Any = None) -> Any:
    """Move ``x`` to another array library (and device), keeping its dtype.

    DLPack is tried first; a copy through host memory is the fallback.

    Parameters
    ----------
    x : array of any supported library, or a NumPy array / sequence
    backend : str or namespace
        Target backend, as in :func:`resolve_backend`.
    device : optional
        Target device (default: the backend's default device).
    """
    target = resolve_backend(backend, device)  # the float dtype is unused: x keeps its own
    xp = target.xp
    refuse_masked(x, None)
    if isinstance(x, np.ndarray) and target.name != "numpy":
        x = _native(x)  # DLPack refuses other byte orders; torch aborts on negative strides
    elif array_library(x) == "cupy" and any(s < 0 for s in x.strides):
        x = x.copy()  # C-contiguous, positive strides
    if target.owns(x):
        if array_api_compat.device(x) != target.device:
            return array_api_compat.to_device(x, target.device)
        return x
    if target.name != "cupy":
        try:
            moved = xp.from_dlpack(x, device=target.device)
            if array_api_compat.device(moved) == target.device:
                return moved
        except Exception:  # noqa: BLE001 - any DLPack failure falls back to a host copy
            pass
    elif _on_gpu(x):  # a torch/JAX CUDA array: zero-copy through DLPack, on its own GPU
        try:
            moved = target.run(_cupy_from_dlpack, x)
            if moved.device.id != target.device.id:
                moved = array_api_compat.to_device(moved, target.device)
            return moved
        except Exception:  # noqa: BLE001 - a DLPack refusal falls back to a host copy
            pass
    host = to_numpy(x) if not isinstance(x, list | tuple) else np.asarray(x)
    if target.name == "numpy":
        return host
    return target.from_host(host, dtype=getattr(xp, host.dtype.name))
