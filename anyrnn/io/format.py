"""The model-file format: a file's bytes, written and read back, and nothing built.

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

Reading is bounded by the file: members must be stored uncompressed, each is read in
chunks against its declared size, and its ``.npy`` header is parsed here (never a pickle
or an object array).

Format versions: 2 (written since the header checksum) and 1 (read for files saved by
anyrnn 0.1.0 before it, with a warning: their header is not covered by a checksum).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from typing import Any

import numpy as np

from .._warn import warn_user
from ..backend import DTYPE_NAMES

FORMAT_NAME = "anyrnn-model"
FORMAT_VERSION = 2
HEADER = "__anyrnn_header__"
_MAX_HEADER_BYTES = 1 << 20
_CHUNK = 1 << 20  # members are read this many bytes at a time
_MAX_NPY_HEADER = 1 << 16  # a .npy member's own header (numpy writes < 200 bytes here)


class ModelFileError(ValueError):
    """The file is not a valid anyrnn model (truncated, altered, foreign, or newer)."""


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


def _serialize(header: dict, arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    payload = {HEADER: np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
    payload.update(arrays)
    np.savez(buf, **payload)  # stored, not compressed: what load requires
    return buf.getvalue()


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
        warn_user(
            "this model file has format version 1, whose header (architecture and "
            "hyper-parameters) is not covered by a checksum; its arrays are checked as "
            "before. Save it again to write version 2.",
            UserWarning,
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
