"""``fingerprint(obj)``: one hash of everything a failed call must leave as it was.

A rejected call must leave its object exactly as it was (CONVENTIONS.md, pattern 8). Tests
check that by comparing ``fingerprint(obj)`` before and after the call. The hash covers,
recursively:

* every array (any backend: dtype, shape and bytes, through :func:`anyrnn.to_numpy`), so a
  layer's parameters, gradients, initial-state gradients and what its last forward kept
  for backward;
* an anyrnn object's attributes (public and private) and a scikit-learn estimator's
  hyper-parameters and fitted attributes (``classes_``, ``network_``, ``loss_curve_``, ...);
* an optimizer's state and iteration count; a NumPy ``Generator``'s state;
* plain values, lists, tuples and dicts.

Left out, because they may change without changing what the object computes: scratch
buffers that calls reuse (``_workspace``, per-thread scratch), locks and thread-local
storage, modules, functions, and the :class:`~anyrnn.Backend` (hashed by its repr).
"""

from __future__ import annotations

import hashlib
import threading
import types
from typing import Any

import numpy as np

import anyrnn
from anyrnn.backend import BACKEND_NAMES, array_library

__all__ = ["fingerprint"]

#: attributes that hold reusable scratch memory, not state
_SCRATCH = frozenset({"_workspace", "_scratch", "_local", "_lock"})
_LOCKS = (type(threading.Lock()), type(threading.RLock()), threading.local)
_PLAIN = (type(None), bool, int, float, complex, str, bytes)


def fingerprint(obj: Any) -> str:
    """A SHA-256 hex digest of ``obj``'s state (see the module docstring)."""
    h = hashlib.sha256()
    _feed(h, obj, set())
    return h.hexdigest()


def _is_array(x: Any) -> bool:
    if isinstance(x, np.ndarray):
        return True
    return hasattr(x, "shape") and hasattr(x, "dtype") and array_library(x) in BACKEND_NAMES


def _feed(h: Any, x: Any, seen: set) -> None:
    if isinstance(x, _PLAIN):
        h.update(f"{type(x).__name__}:{x!r};".encode())
        return
    if isinstance(x, np.generic):
        h.update(f"np:{x.dtype.str}:{x!r};".encode())
        return
    if _is_array(x):
        a = np.ascontiguousarray(anyrnn.to_numpy(x))
        h.update(f"array:{array_library(x)}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
        return
    if isinstance(x, anyrnn.Backend):
        h.update(f"{x!r};".encode())
        return
    if isinstance(x, types.ModuleType | types.FunctionType | types.BuiltinFunctionType | type):
        h.update(f"{type(x).__name__}:{getattr(x, '__name__', '?')};".encode())
        return
    if isinstance(x, _LOCKS):
        return
    if id(x) in seen:  # a cycle, or an object shared between two places: once is enough
        h.update(b"seen;")
        return
    seen.add(id(x))
    if isinstance(x, dict):
        h.update(f"dict{len(x)}{{".encode())
        for k in sorted(x, key=repr):
            _feed(h, k, seen)
            _feed(h, x[k], seen)
        h.update(b"}")
        return
    if isinstance(x, list | tuple | set | frozenset):
        items = sorted(x, key=repr) if isinstance(x, set | frozenset) else x
        h.update(f"{type(x).__name__}{len(x)}[".encode())
        for v in items:
            _feed(h, v, seen)
        h.update(b"]")
        return
    if isinstance(x, np.random.Generator):
        _feed(h, x.bit_generator.state, seen)
        return
    h.update(f"object:{type(x).__module__}.{type(x).__qualname__}(".encode())
    _feed(h, _attributes(x), seen)
    h.update(b")")


def _attributes(x: Any) -> dict:
    """An object's state: its ``__dict__`` and ``__slots__``, minus scratch memory."""
    out = {}
    for cls in type(x).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(x, name):
                out[name] = getattr(x, name)
    out.update(getattr(x, "__dict__", {}))
    return {k: v for k, v in out.items() if k not in _SCRATCH and not k.startswith("__")}
