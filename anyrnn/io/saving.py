"""``save``: a model file written only when ``load`` accepts it, atomically.

Saving runs the whole load-side validation on the bytes it is about to write (and
rebuilds the object from them on NumPy), so ``save`` never writes a file ``load``
refuses, nor one that ``load`` would build into another model: NaN weights, or
hyper-parameters that shape the network changed after fit, raise ``ValueError`` and
leave any existing file untouched. Writes are atomic: the file is written beside the
target and renamed over it, so a crash mid-save leaves the old file intact. An existing
file keeps its permission bits (a new one gets the umask's default, as ``open`` would
give it), and a symlink is written through: its target is replaced, the link stays.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import stat
import zipfile
from typing import Any

import numpy as np

from ..backend import resolve_backend
from .format import FORMAT_NAME, FORMAT_VERSION, ModelFileError, _seal, _serialize
from .loading import _build, _guard, _parse
from .registry import _REGISTRY, json_value


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
        "saved_backend": {"name": backend.spec, "device": str(backend.device)},
        "dtype": backend.dtype_name,
    }
    return _seal(header, arrays), arrays


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
