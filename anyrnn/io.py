"""Saving and loading models in a format that executes nothing.

A model file is a ``.npz`` (zip) archive holding

* ``__anyrnn_header__``: UTF-8 JSON as a uint8 array: the format name and version, the
  class, its configuration (constructor arguments), fitted scalars, the name/dtype/shape
  of every array and a SHA-256 checksum over all arrays;
* one ``.npy`` member per array (parameters, and ``classes_`` for classifiers).

This module knows no model class. Every saveable class registers itself by name
(:func:`register`) and describes itself through four methods:

* ``get_config()``: its constructor arguments, as JSON;
* ``_saved_state()``: fitted scalars (estimators; ``{}`` for layers);
* ``_saved_arrays()``: its arrays, as NumPy arrays keyed by name;
* ``_array_specs(config, state)`` (classmethod): the name -> shape of every parameter
  array that configuration has, computed from the configuration alone, without
  building anything;
* ``_from_saved(config, state, arrays, backend)`` (classmethod): the object rebuilt
  with those arrays (no random initialisation).

Loading reads with ``allow_pickle=False``, checks every member's size *before* reading
it, requires the arrays to be exactly those the declared architecture has (names,
shapes, dtypes) before anything is built, finite, and matching the checksum. Any file
that fails raises :class:`ModelFileError` (a ``ValueError``) saying what is wrong;
nothing is executed and no altered weights are ever loaded silently. A backend that
cannot run here is the machine's problem, not the file's: it raises what
:func:`anyrnn.resolve_backend` raises. Writes are atomic: the file is written beside the
target and renamed over it, so a crash mid-save leaves the old file intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .backend import BACKEND_NAMES, DTYPE_NAMES, Backend, resolve_backend

__all__ = ["ModelFileError", "save", "load", "register", "FORMAT_VERSION"]

FORMAT_NAME = "anyrnn-model"
FORMAT_VERSION = 1
HEADER = "__anyrnn_header__"
_MAX_HEADER_BYTES = 1 << 20

#: saveable classes by name (filled by :func:`register`)
_REGISTRY: dict[str, type] = {}


class ModelFileError(ValueError):
    """The file is not a valid anyrnn model (truncated, altered, foreign, or newer)."""


def register(cls: type) -> type:
    """Class decorator: ``cls`` can be saved and is loaded back by its name."""
    _REGISTRY[cls.__name__] = cls
    return cls


def registered(name: Any, allowed: tuple[str, ...] | None = None) -> type:
    """The registered class called ``name`` (``ValueError`` if it is not one, or not allowed)."""
    if not isinstance(name, str) or name not in _REGISTRY or (allowed and name not in allowed):
        choices = sorted(allowed or _REGISTRY)
        raise ValueError(f"unknown model class {name!r}; expected one of {choices}")
    return _REGISTRY[name]


def json_value(value: Any, name: str) -> Any:
    """``value`` as JSON (numbers, strings, None, lists), or ``ValueError`` naming it."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [json_value(v, name) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: json_value(v, f"{name}.{k}") for k, v in value.items()}
    raise ValueError(f"{name}={value!r} cannot be saved (only numbers, strings, None and lists)")


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(a.dtype.str.encode())
        h.update(repr(tuple(a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _backend_spec(backend: Backend) -> str:
    return backend.name if backend.name in BACKEND_NAMES else backend._module_name


# ------------------------------------------------------------------------------ save


def _contents(obj: Any) -> tuple[dict, dict[str, np.ndarray]]:
    """Header fields and host arrays of a registered object."""
    cls = type(obj).__name__
    if _REGISTRY.get(cls) is not type(obj):
        raise TypeError(f"cannot save a {cls}: save takes anyrnn layers and estimators")
    config = json_value(obj.get_config(), "config")
    state = json_value(obj._saved_state(), "state")
    arrays = obj._saved_arrays()
    backend = obj._backend
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "class": cls,
        "config": config,
        "state": state,
        "saved_backend": {"name": _backend_spec(backend), "device": str(backend.device)},
        "dtype": backend.dtype_name,
        "arrays": {k: [a.dtype.str, list(a.shape)] for k, a in arrays.items()},
        "sha256": _checksum(arrays),
    }
    return header, arrays


def save(obj: Any, path: str | os.PathLike) -> None:
    """Write a layer or fitted estimator to ``path`` (atomically; the name is kept as given).

    ``obj.save(path)`` is the same call.
    """
    header, arrays = _contents(obj)
    buf = io.BytesIO()
    payload = {HEADER: np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
    payload.update(arrays)
    np.savez(buf, **payload)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ------------------------------------------------------------------------------ load


def _read_header(zf: zipfile.ZipFile) -> dict:
    name = HEADER + ".npy"
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ModelFileError("not an anyrnn model file: it has no anyrnn header") from None
    if info.file_size > _MAX_HEADER_BYTES:
        raise ModelFileError(f"the header is {info.file_size} bytes, more than a header can be")
    raw = _read_member(zf, name, np.dtype(np.uint8), None)
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"the header is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ModelFileError("not an anyrnn model file: the header does not name the anyrnn format")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"the header has an invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"the file has format version {version}, newer than this anyrnn reads "
            f"(up to {FORMAT_VERSION}): upgrade anyrnn to load it"
        )
    for key, kind in (
        ("class", str),
        ("config", dict),
        ("state", dict),
        ("arrays", dict),
        ("sha256", str),
        ("dtype", str),
    ):
        if not isinstance(header.get(key), kind):
            raise ModelFileError(f"the header's {key!r} is missing or not a {kind.__name__}")
    if header["dtype"] not in DTYPE_NAMES:
        raise ModelFileError(f"unknown dtype {header['dtype']!r} in the header")
    return header


def _read_member(
    zf: zipfile.ZipFile, name: str, dtype: np.dtype, shape: tuple | None
) -> np.ndarray:
    info = zf.getinfo(name)
    if shape is not None:
        limit = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize + 4096
        if info.file_size > limit:
            raise ModelFileError(
                f"array {name!r} is {info.file_size} bytes, larger than its declared shape allows"
            )
    data = zf.read(name)  # whole member: zipfile checks its CRC-32 (BadZipFile if wrong)
    try:
        a = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise ModelFileError(f"array {name!r} cannot be read safely: {exc}") from None
    if a.dtype != dtype or (shape is not None and tuple(a.shape) != tuple(shape)):
        raise ModelFileError(
            f"array {name!r} has dtype {a.dtype} and shape {a.shape}; the header declares "
            f"{dtype} and {None if shape is None else tuple(shape)}"
        )
    return a


def _resolve(header: dict, backend: Any, device: Any) -> Backend:
    """The backend to rebuild on. Only a file's bad backend *name* is the file's fault."""
    if backend is None:
        saved = header.get("saved_backend")
        backend = saved.get("name") if isinstance(saved, dict) else None
        if backend not in BACKEND_NAMES:
            # never import a module a file names: that would run code from the file
            raise ModelFileError(
                f"the file names saved backend {backend!r}, not one of {list(BACKEND_NAMES)}; "
                "pass backend= to load it"
            )
    # An unusable backend (saved on CuPy, no GPU here) is not a broken file: this raises
    # BackendUnavailableError or ValueError, and load(path, backend="numpy") is the remedy.
    return resolve_backend(backend, device, header["dtype"])


def load(path: str | os.PathLike, backend: Any = None, device: Any = None) -> Any:
    """Load a model saved with ``save``, on its saved backend or on ``backend``/``device``.

    Parameters
    ----------
    path : str or path-like
    backend : str or namespace, optional
        Rebuild on this backend (e.g. trained on ``"cupy"``, loaded on ``"numpy"``).
    device : optional
        A device of that backend.

    Raises
    ------
    ModelFileError
        The file is not a valid anyrnn model: not a zip, truncated, bit-flipped, pickled
        or object arrays, wrong arrays or shapes for the declared architecture, a newer
        format version. (A missing file raises ``FileNotFoundError`` as usual.)
    ValueError, BackendUnavailableError
        ``backend``/``device`` are invalid or cannot run here (as
        :func:`anyrnn.resolve_backend` raises them).
    """
    raw = Path(path).read_bytes()
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ModelFileError(
            f"not an anyrnn model file: not a readable zip archive ({exc})"
        ) from None
    with zf:
        header = _guard(_read_header, zf)
        be = _resolve(header, backend, device)
        return _guard(_load_from_zip, zf, header, be)


def _guard(fn: Any, *args: Any) -> Any:
    """``fn(*args)``, with anything a damaged file can raise turned into ModelFileError."""
    try:
        return fn(*args)
    except ModelFileError:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        OSError,
        ValueError,
        KeyError,
        TypeError,
        IndexError,
        OverflowError,
        MemoryError,
        NotImplementedError,
        RuntimeError,
        UnicodeDecodeError,
    ) as exc:
        # zlib/CRC errors, truncated members, malformed .npy headers, ...
        raise ModelFileError(f"the model file is corrupt: {type(exc).__name__}: {exc}") from None


def _declared(name: str, spec: Any) -> tuple[np.dtype, tuple[int, ...]]:
    if not (
        isinstance(spec, list)
        and len(spec) == 2
        and isinstance(spec[0], str)
        and isinstance(spec[1], list)
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in spec[1])
    ):
        raise ModelFileError(f"the header's entry for array {name!r} is malformed: {spec!r}")
    try:
        dtype = np.dtype(spec[0])
    except TypeError:
        raise ModelFileError(f"array {name!r} declares an unknown dtype {spec[0]!r}") from None
    if dtype.hasobject:
        raise ModelFileError(f"array {name!r} declares an object dtype, which is never loaded")
    return dtype, tuple(spec[1])


def _load_from_zip(zf: zipfile.ZipFile, header: dict, be: Backend) -> Any:
    name = header["class"]
    try:
        cls = registered(name)
    except ValueError as exc:
        raise ModelFileError(str(exc)) from None
    config, state = header["config"], header["state"]
    try:  # from the configuration alone: nothing is built yet
        specs = cls._array_specs(config, state)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelFileError(f"the header does not describe a valid {name}: {exc}") from None
    declared = header["arrays"]
    extra = set(declared) - set(specs)  # arrays that are not parameters (classes_)
    allowed_extra = set(getattr(cls, "_extra_arrays", ()))
    missing_extra = allowed_extra - set(declared)
    if set(specs) - set(declared) or extra - allowed_extra or missing_extra:
        raise ModelFileError(
            f"the file's arrays {sorted(declared)} are not those a {name} has: "
            f"{sorted(set(specs) | allowed_extra)}"
        )
    wanted_members = {n + ".npy" for n in declared} | {HEADER + ".npy"}
    if set(zf.namelist()) != wanted_members:
        raise ModelFileError(
            f"the archive holds {sorted(zf.namelist())}; expected {sorted(wanted_members)}"
        )
    float_dtype = np.dtype(header["dtype"])
    arrays = {}
    for key in sorted(declared):
        dtype, shape = _declared(key, declared[key])
        if key in specs and (dtype != float_dtype or shape != tuple(specs[key])):
            raise ModelFileError(
                f"array {key!r} is declared as {dtype} {shape}; a {name} with this "
                f"configuration needs {header['dtype']} {tuple(specs[key])}"
            )
        if key not in specs:
            cls._check_extra_array(key, dtype, shape)
        arrays[key] = _read_member(zf, key + ".npy", dtype, shape)
    if _checksum(arrays) != header["sha256"]:
        raise ModelFileError(
            "the arrays do not match the header's checksum: the file was altered or damaged"
        )
    for key, a in arrays.items():
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise ModelFileError(f"array {key!r} contains NaN or infinity")
    try:
        return cls._from_saved(config, state, arrays, be)
    except ModelFileError:
        raise
    except Exception as exc:  # the config does not describe a valid object
        raise ModelFileError(f"the header does not describe a valid {name}: {exc}") from None
