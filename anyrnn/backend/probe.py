"""Which backends run on this machine: guarded, cached probes, and CuPy advice.

NumPy, torch, JAX and array-api-strict count as usable when they import. CuPy counts
only when a GPU really runs: a device count, a small matmul (cuBLAS), the probes other
modules register with :func:`register_probe` (the engine registers a run of one of
anyrnn's own CUDA kernels, NVRTC) and a copy back. :func:`cupy_advice` turns a CuPy
failure into the missing piece and the command that installs it.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

import numpy as np

from .core import BACKEND_NAMES, Backend

__all__ = ["available_backends", "cupy_advice", "register_probe"]

#: checks a backend must also pass, registered by the modules that know them (the
#: engine registers a run of one of anyrnn's own CUDA kernels for CuPy)
_PROBES: dict[str, list] = {}


def register_probe(name: str, probe: Any) -> None:
    """Make ``probe(backend) -> None | reason`` part of backend ``name``'s probe."""
    _PROBES.setdefault(name, []).append(probe)
    _cupy_status.cache_clear()


def cupy_advice(exc: BaseException, cuda_major: int | None = None) -> str:
    """What failed in a CuPy set-up, naming the missing piece and the command that fixes it."""
    text = f"{type(exc).__name__}: {exc}"
    low = text.lower()
    major = cuda_major or 12
    extra = f"'anyrnn[cuda{major}]'"
    suffix = "-cu12" if major == 12 else ""
    if "nvrtc" in low:
        return (
            f"NVRTC, CUDA's runtime compiler, was not found ({text}). Install it with "
            f"pip install {extra} (CuPy's ctk extra) or pip install nvidia-cuda-nvrtc{suffix}"
        )
    if "cublas" in low:
        return (
            f"cuBLAS was not found ({text}). Install it with pip install {extra} "
            f"or pip install nvidia-cublas{suffix}"
        )
    if "cuda headers" in low or "cuda_path" in low:
        return (
            f"the CUDA headers were not found ({text}). Install them with pip install {extra} "
            f"or pip install nvidia-cuda-runtime{suffix}"
        )
    if "insufficientdriver" in low or "driver version is insufficient" in low:
        return (
            f"the NVIDIA driver is missing or older than this CuPy's CUDA {major} needs ({text}). "
            "Install or upgrade the driver, or install the CuPy of the CUDA major version your "
            "driver supports ('anyrnn[cuda12]' or 'anyrnn[cuda13]')"
        )
    if "nodevice" in low or "no cuda-capable device" in low:
        return f"no CUDA GPU was found ({text})"
    return f"no usable CUDA GPU ({text})"


@functools.cache
def _cupy_status(device: int | None = None) -> tuple[bool, str]:
    """Whether CuPy runs here, on ``device`` (None: the current one), and why not: it
    counts devices, runs a small matmul (cuBLAS) and the registered probes (anyrnn's own
    compiled kernel, NVRTC), and copies back. Guarded and cached."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA install
        return False, f"CuPy is not installed or failed to import ({exc})"
    major = None
    try:
        major = cupy.cuda.runtime.runtimeGetVersion() // 1000
        count = cupy.cuda.runtime.getDeviceCount()
        if count < 1:
            return False, "no CUDA GPU was found"
        index = cupy.cuda.Device().id if device is None else device
        if not 0 <= index < count:
            return False, f"there is no GPU {index}: this machine has GPUs 0..{count - 1}"
        with cupy.cuda.Device(index):
            a = cupy.asarray(np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32))
            if (a @ a).get().tolist() != [[7.0, 10.0], [15.0, 22.0]]:
                return False, "a test matmul on the GPU returned wrong numbers"
            xp = importlib.import_module("array_api_compat.cupy")
            backend = Backend("cupy", xp, cupy.cuda.Device(index), "float32", xp.__name__)
            for probe in _PROBES.get("cupy", []):
                why = probe(backend)
                if why is not None:
                    return False, why
    except Exception as exc:  # no driver, no device, a missing CUDA library, ...
        return False, cupy_advice(exc, major)
    return True, ""


@functools.cache
def _import_status(module: str) -> tuple[bool, str]:
    try:
        importlib.import_module(module)
    except Exception as exc:
        return False, f"{module} is not installed or failed to import ({exc})"
    return True, ""


def _status(name: str) -> tuple[bool, str]:
    if name == "cupy":
        return _cupy_status()
    return _import_status(name)


def available_backends() -> list[str]:
    """Names of the backends that can run on this machine.

    CuPy is listed only when a GPU really runs a kernel (import, device count, a
    tiny kernel and a copy back, all guarded and cached).

    Returns
    -------
    list of str
        A subset of ``("numpy", "cupy", "torch", "jax", "array_api_strict")``.
    """
    return [name for name in BACKEND_NAMES if _status(name)[0]]
