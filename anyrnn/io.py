"""Saving and loading models in a format that executes nothing.

A model file is a ``.npz`` (zip) archive holding, uncompressed (as ``numpy.savez``
writes it):

* ``__anyrnn_header__``: UTF-8 JSON as a uint8 array: the format name and version, the
  class, its configuration (constructor arguments), fitted scalars, the name/dtype/shape
  of every array, ``arrays_sha256`` (SHA-256 over all arrays) and ``sha256``, a SHA-256
  over the header itself (its canonical JSON without ``sha256``), so that an edit to the
  header (``"activation": "relu"``) is caught like an edit to a weight;
* one ``.npy`` member per array (parameters, and ``classes_`` for classifiers).

The checksums catch damage and careless edits; they are not a signature (anyone can
recompute them), so the loader never trusts the file beyond what it validates.

This module knows no model class. Every saveable class registers itself by name
(:func:`register`) and describes itself through these methods:

* ``get_config()``: its constructor arguments, as JSON;
* ``_saved_state()``: fitted scalars (estimators; ``{}`` for layers);
* ``_saved_arrays()``: its arrays, as NumPy arrays keyed by name;
* ``_array_specs(config, state)`` (classmethod): the name -> shape of every parameter
  array that configuration has, computed from the configuration alone, without
  building anything;
* ``_from_saved(config, state, arrays, backend)`` (classmethod): the object rebuilt
  with those arrays (no random initialisation);
* optionally ``_check_savable_config()``: ``ValueError`` when the configuration no longer
  describes the object's arrays in a way their shapes cannot show (an estimator whose
  ``activation`` was changed with ``set_params`` after fit).

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

Saving runs the whole load-side validation on the bytes it is about to write (and
rebuilds the object from them on NumPy), so ``save`` never writes a file ``load``
refuses, nor one that ``load`` would build into another model: NaN weights, or
hyper-parameters that shape the network changed after fit, raise ``ValueError`` and
leave any existing file untouched. Writes are atomic: the file is written beside the
target and renamed over it, so a crash mid-save leaves the old file intact. An existing
file keeps its permission bits (a new one gets the umask's default, as ``open`` would
give it), and a symlink is written through: its target is replaced, the link stays.

Format versions: 2 (written since the header checksum) and 1 (read for files saved by
anyrnn 0.1.0 before it, with a warning: their header is not covered by a checksum).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import secrets
import stat
import warnings
import zipfile
from typing import Any

import numpy as np

from .backend import BACKEND_NAMES, DTYPE_NAMES, Backend, resolve_backend

__all__ = ["ModelFileError", "save", "load", "register", "FORMAT_VERSION"]

FORMAT_NAME = "anyrnn-model"
FORMAT_VERSION = 2
HEADER = "__anyrnn_header__"
_MAX_HEADER_BYTES = 1 << 20
_CHUNK = 1 << 20  # members are read this many bytes at a time
_MAX_NPY_HEADER = 1 << 16  # a .npy member's own header (numpy writes < 200 bytes here)

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


def _canonical(header: dict) -> bytes:
    """The header as canonical JSON, without its own ``sha256`` (what that covers)."""
    rest = {k: v for k, v in header.items() if k != "sha256"}
    return json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _header_checksum(header: dict) -> str:
    return hashlib.sha256(b"anyrnn-model-header\0" + _canonical(header)).hexdigest()


def _seal(header: dict, arrays: dict[str, np.ndarray]) -> dict:
    """``header`` with its array specs and both checksums (version 2) filled in."""
    header = dict(header)
    header["arrays"] = {k: [a.dtype.str, list(a.shape)] for k, a in arrays.items()}
    header["arrays_sha256"] = _checksum(arrays)
    header["sha256"] = _header_checksum(header)
    return header


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
    }
    return _seal(header, arrays), arrays


def _serialize(header: dict, arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    payload = {HEADER: np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
    payload.update(arrays)
    np.savez(buf, **payload)  # stored, not compressed: what load requires
    return buf.getvalue()


def _check_savable(obj: Any, header: dict, arrays: dict[str, np.ndarray], raw: bytes) -> None:
    """``ValueError`` unless ``load`` accepts ``raw`` and rebuilds ``obj`` from it."""
    name = header["class"]
    try:
        specs = _REGISTRY[name]._array_specs(header["config"], header["state"])
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(
            f"this {name} cannot be saved: its configuration is invalid ({exc}). Nothing was "
            "written."
        ) from None
    check_config = getattr(obj, "_check_savable_config", None)
    if check_config is not None:  # what shapes cannot show (activation): the object knows
        try:
            check_config()
        except ValueError as exc:
            raise ValueError(f"this {name} cannot be saved: {exc} Nothing was written.") from None
    problems = [
        f"{k} has shape {tuple(arrays[k].shape)} but the configuration needs {tuple(need)}"
        for k, need in specs.items()
        if k in arrays and tuple(arrays[k].shape) != tuple(need)
    ] + [f"{k} is missing" for k in sorted(set(specs) - set(arrays))]
    if problems:
        hint = (
            " Were hyper-parameters changed with set_params() after fit? Fit again, or set "
            "them back, before saving."
            if hasattr(obj, "get_params")
            else ""
        )
        raise ValueError(
            f"this {name} cannot be saved: its configuration does not describe its arrays "
            f"({'; '.join(problems)}).{hint} Nothing was written."
        )
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            parsed, cls, parsed_arrays = _guard(_parse, zf)
            _build(cls, parsed, parsed_arrays, resolve_backend("numpy", None, header["dtype"]))
    except ModelFileError as exc:
        raise ValueError(
            f"this {name} cannot be saved: load would refuse the file ({exc}). Nothing was written."
        ) from None


def save(obj: Any, path: str | os.PathLike) -> None:
    """Write a layer or fitted estimator to ``path`` (atomically; the name is kept as given).

    ``obj.save(path)`` is the same call. The file is checked with everything
    :func:`load` checks before anything is written: what ``save`` writes, ``load``
    reads. An existing file at ``path`` keeps its permission bits; a symlink at ``path``
    stays a symlink, and its target is replaced.

    Raises
    ------
    TypeError
        ``obj`` is not a saveable anyrnn object.
    ValueError
        ``obj`` cannot be written as a valid model file that loads as ``obj`` (NaN or
        infinite weights, hyper-parameters that shape the network changed with
        ``set_params`` after fit, labels of an unsupported type); the file at ``path`` is
        left as it was.
    OSError
        The file cannot be written; the file at ``path`` is left as it was.
    """
    header, arrays = _contents(obj)
    raw = _serialize(header, arrays)
    _check_savable(obj, header, arrays, raw)
    _write_atomic(os.fspath(path), raw)


def _write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``'s target and rename it over."""
    target = os.path.realpath(path)  # through symlinks: the link stays, its target changes
    directory = os.path.dirname(target) or "."
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"cannot save to {path!r}: it is a directory")
    # A new file gets 0o666 minus the umask (the kernel applies it), as open() would give;
    # an existing one keeps its permission bits.
    mode = 0o666 if st is None else stat.S_IMODE(st.st_mode) & 0o777
    base = os.path.basename(target)
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode
            )
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 random names taken
        raise FileExistsError(f"cannot create a temporary file in {directory!r}")
    try:
        with os.fdopen(fd, "wb") as f:
            if st is not None:
                with contextlib.suppress(OSError, AttributeError):  # best effort
                    os.fchown(f.fileno(), st.st_uid, st.st_gid)
                os.chmod(tmp, mode)  # exactly the old bits, whatever the umask
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError, AttributeError):  # the rename itself, durably (POSIX)
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


# ------------------------------------------------------------------------------ load


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


def _read_header(zf: zipfile.ZipFile) -> dict:
    name = HEADER + ".npy"
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ModelFileError("not an anyrnn model file: it has no anyrnn header") from None
    if info.file_size > _MAX_HEADER_BYTES:
        raise ModelFileError(f"the header is {info.file_size} bytes, more than a header can be")
    _check_stored(info, "the header")
    raw = _read_member(zf, name, np.dtype(np.uint8), None)
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
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
    if version >= 2:
        if not isinstance(header.get("sha256"), str):
            raise ModelFileError("the header has no checksum ('sha256')")
        if _header_checksum(header) != header["sha256"]:
            raise ModelFileError(
                "the header does not match its checksum: the file was altered or damaged"
            )
        checks = (("arrays_sha256", str),)
    else:
        warnings.warn(
            "this model file has format version 1, whose header (architecture and "
            "hyper-parameters) is not covered by a checksum; its arrays are checked as "
            "before. Save it again to write version 2.",
            UserWarning,
            stacklevel=5,
        )
        checks = ()
    for key, kind in (
        ("class", str),
        ("config", dict),
        ("state", dict),
        ("arrays", dict),
        ("sha256", str),
        ("dtype", str),
        *checks,
    ):
        if not isinstance(header.get(key), kind):
            raise ModelFileError(f"the header's {key!r} is missing or not a {kind.__name__}")
    if header["dtype"] not in DTYPE_NAMES:
        raise ModelFileError(f"unknown dtype {header['dtype']!r} in the header")
    return header


def _check_stored(info: zipfile.ZipInfo, what: str) -> None:
    """Members must be stored as ``save`` writes them: uncompressed, sizes that agree.

    Then every byte a member yields is a byte of the file: no small file can make
    the loader inflate gigabytes (a zip bomb) before a check fails.
    """
    if info.compress_type != zipfile.ZIP_STORED:
        raise ModelFileError(
            f"{what} is compressed (zip method {info.compress_type}); anyrnn model files "
            "store their arrays uncompressed, as numpy.savez writes them"
        )
    if info.compress_size != info.file_size:
        raise ModelFileError(
            f"{what} declares {info.file_size} bytes but occupies {info.compress_size}"
        )


def _check_member_size(info: zipfile.ZipInfo, key: str, dtype: np.dtype, shape: tuple) -> None:
    _check_stored(info, f"array {key!r}")
    data = math.prod(shape) * dtype.itemsize
    if not data <= info.file_size <= data + _MAX_NPY_HEADER:
        raise ModelFileError(
            f"array {key!r} is {info.file_size} bytes in the archive; its declared "
            f"{dtype} {shape} needs {data} bytes and a short .npy header"
        )


def _read_member(
    zf: zipfile.ZipFile, name: str, dtype: np.dtype, shape: tuple | None
) -> np.ndarray:
    """One ``.npy`` member, read in chunks, never more than its declared size.

    The ``.npy`` header is parsed here (no pickles, no object dtypes) and must declare
    exactly ``dtype`` and ``shape`` (any 1-D shape when ``shape`` is None) before the
    data are interpreted. zipfile checks the CRC-32 when the member has been read.
    """
    info = zf.getinfo(name)
    limit = info.file_size
    parts, total = [], 0
    with zf.open(info) as member:
        while True:
            chunk = member.read(min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise ModelFileError(f"member {name!r} holds more data than it declares")
            parts.append(chunk)
    data = b"".join(parts)
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            npy_shape, fortran, npy_dtype = np.lib.format.read_array_header_1_0(stream)
        elif version in ((2, 0), (3, 0)):
            npy_shape, fortran, npy_dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except ValueError as exc:
        raise ModelFileError(f"member {name!r} is not a readable .npy array: {exc}") from None
    offset = stream.tell()
    if (
        npy_dtype.hasobject
        or npy_dtype != dtype
        or (tuple(npy_shape) != tuple(shape) if shape is not None else len(npy_shape) != 1)
    ):
        raise ModelFileError(
            f"array {name!r} has dtype {npy_dtype} and shape {npy_shape}; the header declares "
            f"{dtype} and {None if shape is None else tuple(shape)}"
        )
    count = math.prod(npy_shape)
    if len(data) - offset != count * dtype.itemsize:
        raise ModelFileError(
            f"array {name!r} holds {len(data) - offset} data bytes; {dtype} {tuple(npy_shape)} "
            f"needs {count * dtype.itemsize}"
        )
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return flat.reshape(npy_shape, order="F" if fortran else "C").copy()


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
