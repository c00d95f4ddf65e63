"""NumPy's own BLAS ``gemm`` and SIMD ``tanh`` as raw function pointers, for compiled loops.

The compiled time loops (:mod:`anyrnn.engine.loops`) run a whole pass without returning
to Python, yet must compute what NumPy computes. So they call NumPy's own code:

* ``cblas_?gemm`` of the OpenBLAS that NumPy's wheels bundle (scipy-openblas, 64-bit
  integers: symbols ``scipy_cblas_sgemm64_``, ``scipy_cblas_dgemm64_``), found among the
  libraries loaded into this process; the same library and thread pool as ``np.matmul``;
* the inner loop NumPy's ``tanh`` runs for float32/float64 (its SIMD loop, picked for this
  CPU when NumPy was imported), read from the public ``PyUFuncObject`` struct of
  ``numpy/ufuncobject.h``.

Both depend on how NumPy was built (an MKL or Accelerate build has other symbols) and on
a C struct layout, so neither is trusted: :func:`pointers` first runs :func:`self_test`,
which compares each pointer with ``np.matmul`` and ``np.tanh`` bit for bit on awkward
shapes, lengths, alignments and values (NaN, ±inf, ±0, subnormals). Anything missing or
different makes :func:`pointers` return the reason instead, and the engine runs its
per-step kernels.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Pointers", "pointers", "self_test", "blas_library"]

ROW_MAJOR, NO_TRANS = 101, 111
_NPY_TYPENUM = {np.dtype(np.float32): 11, np.dtype(np.float64): 12}  # NPY_FLOAT, NPY_DOUBLE


@dataclass(frozen=True)
class Pointers:
    """What the compiled loops call for one dtype: ``gemm(order, ta, tb, M, N, K, alpha,
    A, lda, B, ldb, beta, C, ldc)`` (64-bit integers, pointers as integers) and
    ``tanh(args, dims, steps, data)``, NumPy's 1-D inner loop."""

    gemm: Any
    tanh: Any


def _gemm_type(real: Any) -> Any:
    i64, ptr = ctypes.c_int64, ctypes.c_size_t
    i32 = ctypes.c_int
    return ctypes.CFUNCTYPE(
        None, i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64
    )


_LOOP = ctypes.CFUNCTYPE(None, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t)


def blas_library() -> tuple[str, str] | str:
    """``(path, symbol prefix)`` of NumPy's bundled 64-bit-integer OpenBLAS, or why not."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception as exc:  # noqa: BLE001 - an unusual NumPy: say so
        return f"NumPy's build configuration is unreadable ({type(exc).__name__})"
    name = str(blas.get("name", ""))
    config = str(blas.get("openblas configuration", ""))
    if "openblas" not in name or "USE64BITINT" not in config:
        return f"NumPy's BLAS is {name or 'unknown'!r}, not the 64-bit-integer OpenBLAS"
    prefix = "scipy_" if name.startswith("scipy") else ""
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
            getattr(lib, f"{prefix}cblas_sgemm64_")
        except (OSError, AttributeError):
            continue
        return path, prefix
    return f"NumPy's {name} library was not found among the loaded libraries"


def _candidates() -> list[str]:
    """Shared libraries that may be NumPy's OpenBLAS: what threadpoolctl sees loaded under
    NumPy's folders first, then the wheels' library folders."""
    root = os.path.dirname(os.path.dirname(np.__file__))
    out = []
    try:
        import threadpoolctl

        for info in threadpoolctl.threadpool_info():
            path = info.get("filepath", "")
            if info.get("internal_api") == "openblas" and "numpy" in path:
                out.append(path)
    except Exception:  # noqa: BLE001 - threadpoolctl is a convenience here
        pass
    for folder in ("numpy.libs", os.path.join("numpy", ".dylibs")):
        out += sorted(glob.glob(os.path.join(root, folder, "*openblas*")))
    return out


def _ufunc_loop(ufunc: np.ufunc, dtype: np.dtype) -> Any:
    """NumPy's inner loop of a 1-in 1-out ufunc for ``dtype``, from its C struct."""
    head = object.__basicsize__  # PyObject_HEAD (bigger on free-threaded builds)

    class _Fields(ctypes.Structure):  # numpy/ufuncobject.h, after PyObject_HEAD
        _fields_ = [
            ("nin", ctypes.c_int),
            ("nout", ctypes.c_int),
            ("nargs", ctypes.c_int),
            ("identity", ctypes.c_int),
            ("functions", ctypes.POINTER(ctypes.c_void_p)),
            ("data", ctypes.POINTER(ctypes.c_void_p)),
            ("ntypes", ctypes.c_int),
            ("reserved1", ctypes.c_int),
            ("name", ctypes.c_char_p),
            ("types", ctypes.POINTER(ctypes.c_char)),
        ]

    s = _Fields.from_address(id(ufunc) + head)
    if (s.nin, s.nout, s.nargs, s.ntypes) != (1, 1, 2, ufunc.ntypes):
        raise LookupError("the ufunc struct does not have the expected layout")
    if s.name != ufunc.__name__.encode():
        raise LookupError("the ufunc struct does not have the expected name")
    want = _NPY_TYPENUM[dtype]
    for k in range(s.ntypes):
        if ord(s.types[2 * k]) == want and ord(s.types[2 * k + 1]) == want:
            if s.data[k] is not None or not s.functions[k]:
                raise LookupError(f"the {dtype} loop needs data or is missing")
            return _LOOP(s.functions[k])
    raise LookupError(f"no {dtype} loop")


def _call_gemm(gemm: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    (m, k), n = a.shape, b.shape[1]
    c = np.full((m, n), np.nan, dtype=a.dtype)
    args = (ROW_MAJOR, NO_TRANS, NO_TRANS, m, n, k, 1.0, a.ctypes.data, k, b.ctypes.data, n)
    gemm(*args, 0.0, c.ctypes.data, n)
    return c


def _call_tanh(loop: Any, x: np.ndarray, out: np.ndarray) -> None:
    ctx = np.array([x.ctypes.data, out.ctypes.data, x.size, x.itemsize, x.itemsize], np.int64)
    base = ctx.ctypes.data
    loop(base, base + 16, base + 24, 0)


def self_test(gemm: Any, tanh: Any, dtype: Any) -> str | None:
    """None when ``gemm`` and ``tanh`` give ``np.matmul``'s and ``np.tanh``'s bits for
    ``dtype`` (on shapes like the engine's and odd ones), else what differed."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(0)
    for m, k, n in [(2, 3, 5), (4, 5, 20), (7, 64, 256), (33, 17, 9), (32, 64, 192)]:
        a = rng.normal(size=(m, k)).astype(dtype)
        b = rng.normal(size=(k, n)).astype(dtype)
        if not np.array_equal(_call_gemm(gemm, a, b), a @ b):
            return f"gemm of ({m}x{k})·({k}x{n}) differs from np.matmul"
    tiny = np.finfo(dtype).smallest_subnormal
    special = np.array(
        [0.0, -0.0, np.inf, -np.inf, np.nan, tiny, -tiny, 1e-8, 0.5, 8.9, 9.1, 20.0, -44.0],
        dtype=dtype,
    )
    base = np.concatenate([special, (rng.normal(size=600) * 4).astype(dtype)])
    bits = f"u{dtype.itemsize}"
    for offset in range(4):  # alignments
        for size in [*range(1, 40), 64, 65, 127, 300, 600]:
            x = base[offset : offset + size]
            out = np.empty_like(x)
            _call_tanh(tanh, x, out)
            if not np.array_equal(out.view(bits), np.tanh(x).view(bits)):
                return f"tanh over {size} values at offset {offset} differs from np.tanh"
            inplace = x.copy()
            _call_tanh(tanh, inplace, inplace)
            if not np.array_equal(inplace.view(bits), out.view(bits)):
                return "tanh in place differs from tanh into another array"
    return None


@functools.cache
def pointers(dtype: Any) -> Pointers | str:
    """The pointers for ``dtype`` (float32, float64) after their self-test, or why they
    cannot be used here (checked once per process)."""
    dtype = np.dtype(dtype)
    if dtype not in _NPY_TYPENUM:
        return f"no compiled loops for {dtype}"
    found = blas_library()
    if isinstance(found, str):
        return found
    path, prefix = found
    real = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    letter = "s" if dtype == np.float32 else "d"
    try:
        gemm = _gemm_type(real)((f"{prefix}cblas_{letter}gemm64_", ctypes.CDLL(path)))
        tanh = _ufunc_loop(np.tanh, dtype)
    except (OSError, AttributeError, LookupError) as exc:
        return f"{type(exc).__name__}: {exc}"
    why = self_test(gemm, tanh, dtype)
    if why is not None:
        return f"the self-test failed: {why}"
    return Pointers(gemm, tanh)
