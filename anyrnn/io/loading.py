"""``load``: a model file checked against the class it names, then rebuilt.

Loading parses every ``.npy`` member itself (never a pickle or an object array), checks
the header's checksum, requires the arrays to be exactly those the declared architecture has (names,
shapes, dtypes) *before* reading any of them or building anything, reads each member in
bounded chunks against its declared size (so the work is bounded by the file's size,
never by what it declares), and requires them finite and matching their checksum. Any
file that fails raises :class:`ModelFileError` (a ``ValueError``) saying what is wrong;
nothing is executed and no altered weights are ever loaded silently. Problems of the
caller or the machine are not the file's: an unknown ``backend=``, a ``device`` that is
not there, a backend that cannot run here (a CuPy-saved model on a machine without a
GPU), float64 on JAX without 64-bit mode raise what constructing the layer raises
(``ValueError``, :class:`~anyrnn.BackendUnavailableError`).
"""

from __future__ import annotations

import os
import stat
import zipfile
from typing import Any

import numpy as np

from ..backend import BACKEND_NAMES, Backend, resolve_backend
from .format import (
    HEADER,
    ModelFileError,
    _check_member_size,
    _checksum,
    _declared,
    _read_header,
    _read_member,
)
from .registry import registered


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
        The file is not a valid anyrnn model: not a zip, truncated, bit-flipped, an
        edited header, pickled or object arrays, compressed members, wrong arrays or
        shapes for the declared architecture, NaN weights, a newer format version.
        (A missing file raises ``FileNotFoundError`` as usual.)
    ValueError, BackendUnavailableError
        ``backend``/``device`` are invalid or cannot run here, as constructing the layer
        would raise them (also for the saved backend, when ``backend`` is not given).
    """
    with open(path, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ModelFileError(f"not an anyrnn model file: {os.fspath(path)!r} is not a file")
        try:
            zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise ModelFileError(
                f"not an anyrnn model file: not a readable zip archive ({exc})"
            ) from None
        with zf:
            header, cls, arrays = _guard(_parse, zf)
    be = _resolve(header, backend, device)  # the caller's or the machine's errors, as they are
    return _build(cls, header, arrays, be)


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
        RecursionError,
    ) as exc:
        # zlib/CRC errors, truncated members, malformed .npy headers, ...
        raise ModelFileError(f"the model file is corrupt: {type(exc).__name__}: {exc}") from None


def _parse(zf: zipfile.ZipFile) -> tuple[dict, type, dict[str, np.ndarray]]:
    """Everything load checks in the file: ``(header, class, arrays)`` or ModelFileError.

    Cheap checks first: the header and its checksum, the architecture it declares
    against the arrays it declares, the archive's members and their sizes; only then
    are the arrays read (each bounded by its declared size), checksummed and checked
    finite. Nothing is built here.
    """
    names = zf.namelist()
    if len(names) != len(set(names)):
        raise ModelFileError("the archive holds two members with one name")
    header = _read_header(zf)
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
    if set(names) != wanted_members:
        raise ModelFileError(
            f"the archive holds {sorted(names)}; expected {sorted(wanted_members)}"
        )
    float_dtype = np.dtype(header["dtype"])
    shapes = {}
    for key in sorted(declared):
        dtype, shape = _declared(key, declared[key])
        if key in specs and (dtype != float_dtype or shape != tuple(specs[key])):
            raise ModelFileError(
                f"array {key!r} is declared as {dtype} {shape}; a {name} with this "
                f"configuration needs {header['dtype']} {tuple(specs[key])}"
            )
        if key not in specs:
            cls._check_extra_array(key, dtype, shape)
        _check_member_size(zf.getinfo(key + ".npy"), key, dtype, shape)
        shapes[key] = dtype, shape
    arrays = {key: _read_member(zf, key + ".npy", *shapes[key]) for key in sorted(shapes)}
    expected = header["arrays_sha256"] if header["format_version"] >= 2 else header["sha256"]
    if _checksum(arrays) != expected:
        raise ModelFileError(
            "the arrays do not match the header's checksum: the file was altered or damaged"
        )
    for key, a in arrays.items():
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise ModelFileError(f"array {key!r} contains NaN or infinity")
    return header, cls, arrays


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


def _build(cls: type, header: dict, arrays: dict[str, np.ndarray], be: Backend) -> Any:
    """The object, rebuilt on ``be`` from validated arrays (no random initialisation).

    A configuration the checks above let through but the class refuses is the file's
    fault (ModelFileError); anything else (out of device memory, a driver error) is
    raised as it is.
    """
    try:
        return cls._from_saved(header["config"], header["state"], arrays, be)
    except ModelFileError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise ModelFileError(
            f"the header does not describe a valid {header['class']}: {exc}"
        ) from None
