"""Resolution of ``backend``/``device``/``dtype`` arguments into a :class:`Backend`.

:func:`resolve_backend` takes a name, a namespace module or a resolved
:class:`Backend`, loads the namespace (or raises :class:`BackendUnavailableError` saying
why it cannot run here and how to get it), finds the concrete device and checks the
dtype. The NumPy backend uses the ``numpy`` module itself: NumPy >= 2.1 implements the
Array API standard in its main namespace, and skipping the array-api-compat wrapper
saves a Python call per operation in the time loop. CuPy and PyTorch go through
array-api-compat's wrappers, JAX through ``jax.numpy`` and array-api-strict as it is.

A :class:`Backend` pickles by name, as a call to :func:`resolve_backend` (registered
here with :mod:`copyreg`, since this module sits above :mod:`.core`): the module is
re-imported and the device found again on load.
"""

from __future__ import annotations

import copyreg
import functools
import importlib
import numbers
from types import ModuleType
from typing import Any

import numpy as np

from .core import BACKEND_NAMES, DTYPE_NAMES, Backend, namespace_name
from .probe import _cupy_status, _status, available_backends

__all__ = ["BackendUnavailableError", "resolve_backend"]

_INSTALL_HINT = {
    "cupy": "pip install 'anyrnn[cuda12]' (or 'anyrnn[cuda13]' for CUDA 13) on a machine "
    "with an NVIDIA GPU",
    "torch": "pip install 'anyrnn[torch]'",
    "jax": "pip install 'anyrnn[jax]'",
    "array_api_strict": "pip install array-api-strict",
    "numpy": "pip install numpy",
}


class BackendUnavailableError(RuntimeError):
    """A backend was asked for that cannot run on this machine.

    The message says which backend, why, and how to get it.
    """


# --------------------------------------------------------------------------- names


def _load_namespace(name: str) -> ModuleType:
    ok, why = _status(name)
    if not ok:
        raise BackendUnavailableError(
            f"backend {name!r} cannot be used on this machine: {why}. "
            f"To get it: {_INSTALL_HINT[name]}. "
            f"Backends usable here: {available_backends()}."
        )
    if name == "numpy":
        return np
    if name == "cupy":
        return importlib.import_module("array_api_compat.cupy")
    if name == "torch":
        return importlib.import_module("array_api_compat.torch")
    if name == "jax":
        return importlib.import_module("jax.numpy")
    return importlib.import_module("array_api_strict")


# --------------------------------------------------------------------------- devices


@functools.cache
def _torch_device_problem(device: str) -> str:
    """Why torch cannot allocate on ``device`` here ("" if it can). Probed once."""
    import torch

    if device == "cpu" or device.startswith("cpu:"):
        return ""
    if device.startswith("cuda") and not torch.cuda.is_available():
        return "torch.cuda.is_available() is False (a CPU-only PyTorch, or no GPU or driver)"
    try:
        torch.empty(1, device=device)
    except Exception as exc:  # noqa: BLE001 - no CUDA build, no GPU, no such index, ...
        return f"{type(exc).__name__}: {exc}"
    return ""


def _resolve_device(name: str, xp: Any, device: Any) -> Any:
    """The concrete device object for ``device`` (None: the backend's default)."""
    if name == "numpy":
        if device not in (None, "cpu"):
            raise ValueError(f"the numpy backend has one device, 'cpu'; got device={device!r}")
        return "cpu"
    if name == "array_api_strict":
        if device is None:
            return xp.Device("CPU_DEVICE")
        if isinstance(device, xp.Device):
            return device
        try:
            return xp.Device(str(device))
        except ValueError:
            raise ValueError(
                f"array_api_strict has devices 'CPU_DEVICE', 'device1' and 'device2'; "
                f"got device={device!r}"
            ) from None
    if name == "torch":
        import torch

        if device is None:
            return torch.get_default_device()
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"torch cannot use device={device!r}: {exc}") from None
        why = _torch_device_problem(str(dev))
        if why:
            raise BackendUnavailableError(
                f"torch device {device!r} cannot be used on this machine: {why}. "
                "Use device='cpu' (or leave device unset)."
            )
        return dev
    if name == "jax":
        import jax

        if device is None:
            return jax.devices()[0]
        if isinstance(device, str):
            try:
                return jax.devices(device)[0]
            except RuntimeError as exc:
                raise ValueError(f"jax cannot use device={device!r}: {exc}") from None
        return device
    if name == "cupy":
        import cupy

        if device is None:
            return cupy.cuda.Device()
        if isinstance(device, cupy.cuda.Device):
            index = device.id
        elif isinstance(device, numbers.Integral) and not isinstance(device, bool | np.bool_):
            index = int(device)
        elif isinstance(device, str) and device.removeprefix("cuda:").isdigit():
            index = int(device.removeprefix("cuda:"))
        else:
            raise ValueError(
                f"cupy takes a GPU number, 'cuda:N' or a cupy.cuda.Device; got device={device!r}"
            )
        count = cupy.cuda.runtime.getDeviceCount()
        if not 0 <= index < count:
            raise ValueError(f"cupy has GPUs 0..{count - 1}; got device={device!r}")
        ok, why = _cupy_status(index)
        if not ok:
            raise BackendUnavailableError(f"GPU {index} cannot be used: {why}")
        return cupy.cuda.Device(index)
    return device


def _dtype_name(dtype: Any) -> str:
    if isinstance(dtype, str):
        name = dtype
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = str(dtype).rsplit(".", 1)[-1]
    if name not in DTYPE_NAMES:
        raise ValueError(f"dtype must be one of {list(DTYPE_NAMES)}; got dtype={dtype!r}")
    return name


# --------------------------------------------------------------------------- resolving


def resolve_backend(backend: Any = "numpy", device: Any = None, dtype: Any = None) -> Backend:
    """Resolve ``backend``/``device``/``dtype`` once into a :class:`Backend`.

    Parameters
    ----------
    backend : str, namespace or Backend
        ``"numpy"``, ``"cupy"``, ``"torch"``, ``"jax"``, ``"array_api_strict"``,
        ``"auto"`` (CuPy when a GPU is usable, else NumPy), an array namespace /
        module object (``numpy``, ``array_api_strict``, ``array_api_compat.torch``, ...),
        or an already resolved :class:`Backend` (re-resolved if ``device``/``dtype`` differ).
    device : optional
        A device of that backend; None for the backend's default.
    dtype : {"float32", "float64"} or None
        The floating dtype of every array the object creates. None: float32, or the
        dtype of ``backend`` when that is a resolved :class:`Backend`.

    Raises
    ------
    ValueError
        Unknown backend name, device or dtype.
    BackendUnavailableError
        The backend is known but cannot run here (the message says how to get it).
    """
    if dtype is None:
        dtype = backend.dtype_name if isinstance(backend, Backend) else "float32"
    dtype_name = _dtype_name(dtype)
    if isinstance(backend, Backend):
        if device is None and dtype_name == backend.dtype_name:
            return backend
        spec = backend.name if backend.name in BACKEND_NAMES else backend.xp
        return resolve_backend(spec, backend.device if device is None else device, dtype_name)
    if isinstance(backend, str):
        name = backend.lower().replace("-", "_")
        if name == "auto":
            name = "cupy" if _status("cupy")[0] else "numpy"
        if name not in BACKEND_NAMES:
            try:  # a dotted module name of another Array API library
                module = importlib.import_module(backend)
            except (ImportError, ValueError, TypeError):  # "" or "..x" are no module names
                raise ValueError(
                    f"unknown backend {backend!r}; expected one of "
                    f"{list(BACKEND_NAMES) + ['auto']} or an array namespace"
                ) from None
            return resolve_backend(module, device, dtype_name)
        xp = _load_namespace(name)
        module_name = xp.__name__
    elif isinstance(backend, ModuleType) or hasattr(backend, "asarray"):
        name = namespace_name(backend)
        if name is not None:
            xp = _load_namespace(name)
            module_name = xp.__name__
        else:
            missing = [
                f
                for f in ("asarray", "matmul", "tanh", "stack", "where")
                if not hasattr(backend, f)
            ]
            if missing:
                raise TypeError(
                    f"backend {backend!r} is not an Array API namespace: it lacks {missing}"
                )
            xp = backend
            name = getattr(backend, "__name__", type(backend).__name__)
            module_name = name
    else:
        raise TypeError(
            f"backend must be a name or an array namespace; got {type(backend).__name__} {backend!r}"
        )
    if name == "jax" and dtype_name == "float64":
        import jax

        if not jax.config.jax_enable_x64:
            raise ValueError(
                "JAX computes in float32 unless 64-bit mode is on, and anyrnn will not "
                "silently compute a float64 model in float32. Call "
                "jax.config.update('jax_enable_x64', True) before building the model, "
                "or use dtype='float32'."
            )
    resolved_device = _resolve_device(name, xp, device)
    return Backend(name, xp, resolved_device, dtype_name, module_name)


# --------------------------------------------------------------------------- pickling


def _reduce_backend(backend: Backend) -> tuple:
    """Pickle ``backend`` by name: a call to :func:`resolve_backend` on load."""
    return (resolve_backend, (backend.spec, backend._device_for_pickle(), backend.dtype_name))


copyreg.pickle(Backend, _reduce_backend)
