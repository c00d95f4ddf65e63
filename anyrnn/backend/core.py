"""The Backend object: a resolved namespace, device and dtype, and conversions into it.

A :class:`Backend` is made by :func:`anyrnn.backend.resolve.resolve_backend` and never
changes afterwards. Every array a layer or model creates goes through its ``zeros``,
``from_host``, ``scalar`` and ``asarray``, so all of them live in one namespace, on one
device, in one dtype. This module also names arrays' libraries (:func:`array_library`)
and refuses NumPy masked arrays (:func:`refuse_masked`).
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

__all__ = ["BACKEND_NAMES", "DTYPE_NAMES", "Backend", "array_library", "refuse_masked"]

BACKEND_NAMES = ("numpy", "cupy", "torch", "jax", "array_api_strict")
DTYPE_NAMES = ("float32", "float64")


#: (backend name, is-an-array-of-it, is-its-namespace), in the order they are tried
_LIBRARIES = (
    ("numpy", array_api_compat.is_numpy_array, array_api_compat.is_numpy_namespace),
    ("cupy", array_api_compat.is_cupy_array, array_api_compat.is_cupy_namespace),
    ("torch", array_api_compat.is_torch_array, array_api_compat.is_torch_namespace),
    ("jax", array_api_compat.is_jax_array, array_api_compat.is_jax_namespace),
)


def array_library(x: Any) -> str:
    """Name of the array library ``x`` belongs to (``"numpy"``, ``"torch"``, ...)."""
    for name, is_array, _ in _LIBRARIES:
        if is_array(x):
            return name
    module = type(x).__module__.split(".")[0]
    if module == "array_api_strict":
        return "array_api_strict"
    return module


def namespace_name(xp: Any) -> str | None:
    """Backend name of a namespace object, or None for an unknown one."""
    if xp is np:
        return "numpy"
    for name, _, is_namespace in _LIBRARIES:
        if is_namespace(xp):
            return name
    if array_api_compat.is_array_api_strict_namespace(xp):
        return "array_api_strict"
    return None


# --------------------------------------------------------------------------- Backend


class Backend:
    """A resolved backend: namespace ``xp``, ``device`` and floating ``dtype``.

    Build one with :func:`resolve_backend`. It pickles by name (the module is
    re-imported on load; :mod:`.resolve` registers how), so objects holding one stay
    picklable.
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

    @property
    def spec(self) -> str:
        """What ``resolve_backend`` takes to make this backend again (files, pickles,
        ``get_params``): its name, or its namespace module's for another namespace."""
        return self.name if self.name in BACKEND_NAMES else self._module_name

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


# --------------------------------------------------------------------------- host arrays


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
