"""Backend resolution: the array namespace, device and dtype, fixed once per object.

A :class:`Backend` is resolved when a layer or model is built and never changes
afterwards. Every array that object creates is made through it, so all of them live
in one namespace, on one device, in one dtype. There is no global "current backend".

The NumPy backend uses the ``numpy`` module itself: NumPy >= 2.1 implements the
Array API standard in its main namespace, and skipping the array-api-compat wrapper
saves a Python call per operation in the time loop. CuPy and PyTorch go through
array-api-compat's wrappers, JAX through ``jax.numpy`` and array-api-strict as it is.
"""

from __future__ import annotations

import functools
import importlib
import numbers
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "BACKEND_NAMES",
    "DTYPE_NAMES",
    "Backend",
    "BackendUnavailableError",
    "array_library",
    "available_backends",
    "cupy_advice",
    "refuse_masked",
    "register_probe",
    "resolve_backend",
    "to_backend",
    "to_numpy",
]

BACKEND_NAMES = ("numpy", "cupy", "torch", "jax", "array_api_strict")
DTYPE_NAMES = ("float32", "float64")

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


# --------------------------------------------------------------------------- probes


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


# --------------------------------------------------------------------------- names


def array_library(x: Any) -> str:
    """Name of the array library ``x`` belongs to (``"numpy"``, ``"torch"``, ...)."""
    if array_api_compat.is_numpy_array(x):
        return "numpy"
    if array_api_compat.is_cupy_array(x):
        return "cupy"
    if array_api_compat.is_torch_array(x):
        return "torch"
    if array_api_compat.is_jax_array(x):
        return "jax"
    module = type(x).__module__.split(".")[0]
    if module == "array_api_strict":
        return "array_api_strict"
    return module


def _namespace_name(xp: Any) -> str | None:
    """Backend name of a namespace object, or None for an unknown one."""
    if xp is np or array_api_compat.is_numpy_namespace(xp):
        return "numpy"
    if array_api_compat.is_cupy_namespace(xp):
        return "cupy"
    if array_api_compat.is_torch_namespace(xp):
        return "torch"
    if array_api_compat.is_jax_namespace(xp):
        return "jax"
    if array_api_compat.is_array_api_strict_namespace(xp):
        return "array_api_strict"
    return None


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


# --------------------------------------------------------------------------- Backend


class Backend:
    """A resolved backend: namespace ``xp``, ``device`` and floating ``dtype``.

    Build one with :func:`resolve_backend`. It pickles by name (the module is
    re-imported on load), so objects holding one stay picklable.
    """

    __slots__ = ("name", "xp", "device", "dtype", "dtype_name", "_module_name")

    def __init__(self, name: str, xp: Any, device: Any, dtype_name: str, module_name: str):
        self.name = name
        self.xp = xp
        self.device = device
        self.dtype_name = dtype_name
        self.dtype = getattr(xp, dtype_name)
        self._module_name = module_name

    def __repr__(self) -> str:
        return f"Backend(name={self.name!r}, device={self.device!r}, dtype={self.dtype_name!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Backend):
            return NotImplemented
        return (self.name, self.dtype_name, str(self.device)) == (
            other.name,
            other.dtype_name,
            str(other.device),
        )

    def __hash__(self) -> int:
        return hash((self.name, self.dtype_name, str(self.device)))

    def __reduce__(self):
        spec = self.name if self.name in BACKEND_NAMES else self._module_name
        return (resolve_backend, (spec, self._device_for_pickle(), self.dtype_name))

    def _device_for_pickle(self) -> Any:
        if self.name == "numpy":
            return None
        if self.name == "array_api_strict":
            return str(self.device).split("'")[1]
        if self.name == "torch":
            return str(self.device)
        if self.name == "cupy":
            return int(self.device.id)
        if self.name == "jax":
            return self.device.platform
        return self.device

    @property
    def int_dtype(self) -> Any:
        """Integer dtype for labels and indices (int32 on JAX without 64-bit mode)."""
        if self.name == "jax":
            import jax

            if not jax.config.jax_enable_x64:
                return self.xp.int32
        return self.xp.int64

    def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` with this backend's device current (CuPy allocates and
        launches on the current device, whatever array it is given)."""
        if self.name != "cupy":
            return fn(*args, **kwargs)
        with self.device:
            return fn(*args, **kwargs)

    # creation ---------------------------------------------------------------------
    def zeros(self, shape: tuple[int, ...]) -> Any:
        """Zeros of this backend's dtype on its device."""
        if self.name == "cupy":  # compat's cupy.zeros ignores device=; allocate inside it
            with self.device:
                return self.xp.zeros(shape, dtype=self.dtype)
        return self.xp.zeros(shape, dtype=self.dtype, device=self.device)

    def from_host(self, a: np.ndarray, dtype: Any = None, *, copy: bool = False) -> Any:
        """Move a NumPy array here, cast to ``dtype`` (default: the backend's float).

        Any NumPy array works: negative strides and non-native byte order are copied
        into a native, positive-stride array on the host first where the backend needs it
        (torch refuses both). ``copy=True`` guarantees the result shares no memory with
        ``a`` (without it, a NumPy or CPU torch array of the right dtype may be ``a``'s
        memory).
        """
        dtype = self.dtype if dtype is None else dtype
        if self.name == "numpy":
            return np.array(a, dtype=dtype, copy=True) if copy else np.asarray(a, dtype=dtype)
        a = _native(np.asarray(a))
        out = self.xp.asarray(a, dtype=dtype, device=self.device)
        if copy and _may_share(out, a):
            out = self.xp.asarray(out, copy=True)
        return out

    def scalar(self, value: float) -> Any:
        """A 0-D array (the 2023.12 standard takes no Python scalars in function calls)."""
        return self.from_host(np.asarray(value))

    # conversion of user input --------------------------------------------------------
    def owns(self, x: Any) -> bool:
        """Whether ``x`` is an array of this backend's library."""
        lib = array_library(x)
        if self.name in BACKEND_NAMES:
            return lib == self.name
        return lib == self._module_name.split(".")[0]

    def asarray(self, x: Any, *, name: str, copy: bool = False) -> Any:
        """``x`` as an array of this backend, device and float dtype.

        Accepts arrays of this backend's library (moved to its device, cast to its
        dtype), NumPy arrays, Python numbers and (nested) sequences. Arrays of any
        other library raise ``TypeError``: moving them between libraries is explicit,
        with :func:`anyrnn.to_backend`. NumPy masked arrays raise ``TypeError`` too:
        their mask would be silently dropped. ``copy=True``: the result never shares
        memory with ``x`` (parameters are stored that way, so a caller who later writes
        into their array does not change the layer).
        """
        xp = self.xp
        refuse_masked(x, name)
        if self.owns(x) and not isinstance(x, np.generic):
            if not xp.isdtype(x.dtype, ("real floating", "integral", "bool")):
                raise TypeError(f"{name} must hold real numbers; got an array of dtype {x.dtype}")
            arr = x
            if self.name == "numpy":  # byte order, subclasses (np.matrix): a plain array
                return (
                    np.array(x, dtype=self.dtype, copy=True) if copy else np.asarray(x, self.dtype)
                )
            if array_api_compat.device(arr) != self.device:
                arr = array_api_compat.to_device(arr, self.device)
            if arr.dtype != self.dtype:
                arr = xp.astype(arr, self.dtype)
            if copy and arr is x:
                arr = xp.asarray(arr, copy=True)
            return arr
        if isinstance(x, np.ndarray | np.generic | list | tuple | int | float | bool):
            try:
                a = np.asarray(x)
            except ValueError as exc:  # ragged nested lists
                raise ValueError(f"{name} could not be read as an array: {exc}") from None
            if a.dtype.kind not in "biuf":
                raise TypeError(
                    f"{name} must hold real numbers; got an array of dtype {a.dtype} "
                    f"(kind {a.dtype.kind!r})"
                )
            return self.from_host(a, copy=copy)
        lib = array_library(x)
        raise TypeError(
            f"{name} is a {lib} array ({type(x).__name__}), but this object computes with "
            f"the {self.name} backend. Move it explicitly with "
            f"anyrnn.to_backend({name}, {self.name!r}), or pass a NumPy array."
        )


def refuse_masked(x: Any, name: str | None) -> None:
    """NumPy masked arrays are refused: every conversion would drop their mask."""
    if isinstance(x, np.ma.MaskedArray):
        what, fix = (name, f"{name}.filled(0)") if name else ("the array", "a.filled(0)")
        raise TypeError(
            f"{what} is a NumPy masked array; anyrnn does not read element masks (converting "
            f"it would silently drop the mask). Pass {fix} (or its .data) and, for padded "
            "sequences, say which steps are real: to a layer, forward(X, mask=...) with a bool "
            "(batch, n_steps) array, True on real steps, or lengths=...; to an estimator, a "
            "list of unequal-length arrays or NaN padding after each sequence's end"
        )


def _native(a: np.ndarray) -> np.ndarray:
    """``a`` with native byte order and no negative strides (copied only if needed)."""
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if any(s < 0 for s in a.strides):
        a = np.ascontiguousarray(a)
    return a


def _may_share(out: Any, a: np.ndarray) -> bool:
    """Whether ``out`` (any library) might share memory with the host array ``a``."""
    try:
        return bool(np.shares_memory(np.from_dlpack(out), a))
    except Exception:  # noqa: BLE001 - not on the host, or no DLPack: assume the worst
        return array_library(out) != "cupy"


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
        name = _namespace_name(backend)
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


# --------------------------------------------------------------------------- moving arrays


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
