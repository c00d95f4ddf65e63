"""Saving and loading models in a format that executes nothing.

A model file is a ``.npz`` (zip) archive holding

* ``__anyrnn_header__``: UTF-8 JSON as a uint8 array: the format name and version, the
  class, its hyper-parameters, fitted scalars, the name/dtype/shape of every array and a
  SHA-256 checksum over all arrays;
* one ``.npy`` member per array (parameters, and ``classes_`` for classifiers).

Loading reads it with ``allow_pickle=False``, checks every member's size *before*
reading it, rebuilds the object from the header, and requires the arrays to be exactly
those the rebuilt architecture has (names, shapes, dtypes), finite, and to match the
checksum. Any file that fails raises :class:`ModelFileError` (a ``ValueError``) saying
what is wrong; nothing is executed and no altered weights are ever loaded silently.
Writes are atomic: the file is written beside the target and renamed over it, so a
crash mid-save leaves the old file intact.
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

from ._backend import BACKEND_NAMES, resolve_backend, to_numpy

__all__ = ["ModelFileError", "save", "load", "FORMAT_VERSION"]

FORMAT_NAME = "anyrnn-model"
FORMAT_VERSION = 1
HEADER = "__anyrnn_header__"
_MAX_HEADER_BYTES = 1 << 20
_ESTIMATOR_STATE = (
    "n_features_in_",
    "loss_curve_",
    "validation_scores_",
    "best_validation_score_",
    "n_iter_",
    "epoch_times_",
    "_n_out",
    "_y_ndim",
    "_sequences",
)


class ModelFileError(ValueError):
    """The file is not a valid anyrnn model (truncated, altered, foreign, or newer)."""


def _registry() -> dict[str, type]:
    from . import estimators, recurrent
    from .dense import Dense
    from .wrappers import Bidirectional, Stacked

    classes: dict[str, type] = {"Dense": Dense, "Stacked": Stacked, "Bidirectional": Bidirectional}
    classes.update({cls.__name__: cls for cls in recurrent.CELLS.values()})
    for name in ("RNNClassifier", "RNNRegressor", "ScratchSimpleRNNClassifier"):
        classes[name] = getattr(estimators, name)
    return classes


def _is_estimator(obj: Any) -> bool:
    from .estimators import _RNNEstimator

    return isinstance(obj, _RNNEstimator)


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(a.dtype.str.encode())
        h.update(repr(tuple(a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _json_value(value: Any, name: str) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_json_value(v, name) for v in value]
    raise ValueError(f"{name}={value!r} cannot be saved (only numbers, strings, None and lists)")


def _backend_spec(obj_backend: Any) -> str:
    return obj_backend.name if obj_backend.name in BACKEND_NAMES else obj_backend._module_name


# ------------------------------------------------------------------------------ save


def _layer_config(layer: Any) -> dict:
    config = {key: getattr(layer, key) for key in layer._config_keys}
    return {k: _json_value(v, k) for k, v in config.items()}


_MAX_DEPTH = 4  # Stacked > Bidirectional > layer: a file cannot ask for deep nesting
_MAX_LAYERS = 64


def _leaves(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(array-name prefix, plain layer) for a layer, Bidirectional or Stacked."""
    from .wrappers import Bidirectional, Stacked

    if isinstance(obj, Stacked):
        return [leaf for k, layer in enumerate(obj) for leaf in _leaves(layer, f"{prefix}{k}/")]
    if isinstance(obj, Bidirectional):
        return _leaves(obj.forward_layer, f"{prefix}forward/") + _leaves(
            obj.backward_layer, f"{prefix}backward/"
        )
    return [(prefix, obj)]


def _describe(obj: Any) -> dict:
    """The architecture as JSON: a layer's config, or the containers' nesting."""
    from .wrappers import Bidirectional, Stacked

    if isinstance(obj, Stacked):
        layers = [{"class": type(layer).__name__, "config": _describe(layer)} for layer in obj]
        return {"dropout": obj.dropout, "layers": layers}
    if isinstance(obj, Bidirectional):
        return {
            "merge_mode": obj.merge_mode,
            "forward": {
                "class": type(obj.forward_layer).__name__,
                "config": _describe(obj.forward_layer),
            },
            "backward": {
                "class": type(obj.backward_layer).__name__,
                "config": _describe(obj.backward_layer),
            },
        }
    return _layer_config(obj)


def _build_layer(name: Any, config: Any, be: Any, depth: int, count: list | None = None) -> Any:
    """Rebuild what :func:`_describe` wrote, checking every class name and shape of it."""
    from . import recurrent
    from .dense import Dense
    from .wrappers import Bidirectional, Stacked

    count = [0] if count is None else count
    count[0] += 1
    if depth > _MAX_DEPTH or count[0] > _MAX_LAYERS:
        raise ValueError(
            f"the architecture nests deeper than {_MAX_DEPTH} or has more than {_MAX_LAYERS} layers"
        )
    if not isinstance(config, dict):
        raise ValueError(f"the config of a {name!r} is not an object")
    plain = {"Dense": Dense, **{c.__name__: c for c in recurrent.CELLS.values()}}

    def child(entry: Any) -> Any:
        if not isinstance(entry, dict) or set(entry) != {"class", "config"}:
            raise ValueError(f"a nested layer must be {{'class', 'config'}}; got {entry!r:.80}")
        if entry["class"] not in plain and entry["class"] not in ("Bidirectional",):
            raise ValueError(f"{entry['class']!r} cannot be nested here")
        return _build_layer(entry["class"], entry["config"], be, depth + 1, count)

    if name == "Stacked":
        if set(config) != {"dropout", "layers"} or not isinstance(config["layers"], list):
            raise ValueError("a Stacked config has exactly 'dropout' and a list of 'layers'")
        return Stacked([child(e) for e in config["layers"]], dropout=config["dropout"])
    if name == "Bidirectional":
        if set(config) != {"merge_mode", "forward", "backward"}:
            raise ValueError(
                "a Bidirectional config has exactly 'merge_mode', 'forward', 'backward'"
            )
        return Bidirectional(
            child(config["forward"]), config["merge_mode"], backward_layer=child(config["backward"])
        )
    if name not in plain:
        raise ValueError(f"unknown layer class {name!r}")
    return plain[name](**config, backend=be, dtype=be.dtype_name)


def _contents(obj: Any) -> tuple[dict, dict[str, np.ndarray]]:
    """Header fields and host arrays of a layer or a fitted estimator."""
    registry = _registry()
    cls = type(obj).__name__
    if registry.get(cls) is not type(obj):
        raise TypeError(
            f"cannot save a {type(obj).__name__}: save takes anyrnn layers and estimators"
        )
    if _is_estimator(obj):
        if not hasattr(obj, "network_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"this {cls} is not fitted yet: fit it before saving")
        params = obj.get_params(deep=False)
        params["backend"] = _backend_spec(obj.network_.recurrent._backend)
        params["device"] = None
        if not isinstance(params.get("random_state"), int | type(None)):
            params["random_state"] = None  # a Generator's state is not a hyper-parameter
        config = {k: _json_value(v, k) for k, v in params.items()}
        state = {k: _json_value(getattr(obj, k), k) for k in _ESTIMATOR_STATE if hasattr(obj, k)}
        arrays = {
            f"{part}/{name}": to_numpy(v)
            for part, layer in (("recurrent", obj.network_.recurrent), ("head", obj.network_.head))
            for name, v in layer.params.items()
        }
        if hasattr(obj, "classes_"):
            classes = np.asarray(obj.classes_)
            if classes.dtype.kind not in "biuU":
                raise ValueError(
                    f"classes_ of dtype {classes.dtype} cannot be saved: use int or str labels"
                )
            arrays["classes_"] = classes
        backend = obj.network_.recurrent._backend
    else:
        config = _describe(obj)
        state = {}
        arrays = {
            f"{prefix}{name}": to_numpy(v)
            for prefix, leaf in _leaves(obj)
            for name, v in leaf.params.items()
        }
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
    """Write a layer or fitted estimator to ``path`` (atomically; the name is kept as given)."""
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


def _fail(msg: str) -> ModelFileError:
    return ModelFileError(msg)


def _read_header(zf: zipfile.ZipFile) -> dict:
    name = HEADER + ".npy"
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise _fail("not an anyrnn model file: it has no anyrnn header") from None
    if info.file_size > _MAX_HEADER_BYTES:
        raise _fail(f"the header is {info.file_size} bytes, more than a header can be")
    raw = _read_member(zf, name, np.dtype(np.uint8), None)
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(f"the header is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise _fail("not an anyrnn model file: the header does not name the anyrnn format")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _fail(f"the header has an invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise _fail(
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
            raise _fail(f"the header's {key!r} is missing or not a {kind.__name__}")
    return header


def _read_member(
    zf: zipfile.ZipFile, name: str, dtype: np.dtype, shape: tuple | None
) -> np.ndarray:
    info = zf.getinfo(name)
    if shape is not None:
        limit = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize + 4096
        if info.file_size > limit:
            raise _fail(
                f"array {name!r} is {info.file_size} bytes, larger than its declared shape allows"
            )
    data = zf.read(name)  # whole member: zipfile checks its CRC-32 (BadZipFile if wrong)
    try:
        a = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise _fail(f"array {name!r} cannot be read safely: {exc}") from None
    if a.dtype != dtype or (shape is not None and tuple(a.shape) != tuple(shape)):
        raise _fail(
            f"array {name!r} has dtype {a.dtype} and shape {a.shape}; the header declares "
            f"{dtype} and {None if shape is None else tuple(shape)}"
        )
    return a


def _expected_arrays(obj: Any, header: dict) -> dict[str, tuple[tuple[int, ...], set[str]]]:
    """name -> (shape, allowed dtype kinds) that the rebuilt object requires."""
    dt = {np.dtype(header["dtype"]).str}
    if _is_estimator(obj):
        out = {}
        for part, layer in (("recurrent", obj.network_.recurrent), ("head", obj.network_.head)):
            for name, shape in layer.param_shapes().items():
                out[f"{part}/{name}"] = (shape, dt)
        return out
    return {
        f"{prefix}{name}": (shape, dt)
        for prefix, leaf in _leaves(obj)
        for name, shape in leaf.param_shapes().items()
    }


def _rebuild(header: dict, backend: Any, device: Any) -> Any:
    registry = _registry()
    cls = registry.get(header["class"])
    if cls is None:
        raise _fail(f"unknown model class {header['class']!r}; expected one of {sorted(registry)}")
    if header["dtype"] not in ("float32", "float64"):
        raise _fail(f"unknown dtype {header['dtype']!r} in the header")
    config = dict(header["config"])
    if backend is None:
        saved = header.get("saved_backend")
        backend = saved.get("name") if isinstance(saved, dict) else None
        if backend not in BACKEND_NAMES:
            # never import a module a file names: that would run code from the file
            raise _fail(
                f"the file names saved backend {backend!r}, not one of {list(BACKEND_NAMES)}; "
                "pass backend= to load it"
            )
    # An unusable backend (e.g. saved on CuPy, no GPU here) is not a broken file: this
    # raises BackendUnavailableError, and load(path, backend="numpy") is the remedy.
    be = resolve_backend(backend, device, header["dtype"])
    try:
        if _is_estimator_class(cls):
            config.update(backend=be.name if be.name in BACKEND_NAMES else be.xp, device=device)
            obj = cls(**config)
            obj._validate_hyperparams()
            state = header["state"]
            for key, value in state.items():
                if key not in _ESTIMATOR_STATE:
                    raise ValueError(f"unknown fitted attribute {key!r}")
                setattr(obj, key, value)
            n_features, n_out = obj.n_features_in_, obj._n_out
            for key, value in (("n_features_in_", n_features), ("_n_out", n_out)):
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"fitted attribute {key}={value!r} is not a positive int")
            sequences = bool(state.get("_sequences", False))
            obj.network_ = obj._build(be, n_features, n_out, sequences, np.random.default_rng(0))
        else:
            obj = _build_layer(header["class"], config, be, depth=0)
    except ModelFileError:
        raise
    except Exception as exc:  # the config does not describe a valid object
        raise _fail(f"the header does not describe a valid {header['class']}: {exc}") from None
    return obj


def _is_estimator_class(cls: type) -> bool:
    from .estimators import _RNNEstimator

    return issubclass(cls, _RNNEstimator)


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
    """
    raw = Path(path).read_bytes()
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise _fail(f"not an anyrnn model file: not a readable zip archive ({exc})") from None
    try:
        with zf:
            return _load_from_zip(zf, backend, device)
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
        raise _fail(f"the model file is corrupt: {type(exc).__name__}: {exc}") from None


def _load_from_zip(zf: zipfile.ZipFile, backend: Any, device: Any) -> Any:
    header = _read_header(zf)
    obj = _rebuild(header, backend, device)
    expected = _expected_arrays(obj, header)
    declared = header["arrays"]
    if "classes_" in declared:
        if header["class"] not in ("RNNClassifier", "ScratchSimpleRNNClassifier"):
            raise _fail(f"a {header['class']} has no classes_")
    elif header["class"] in ("RNNClassifier", "ScratchSimpleRNNClassifier"):
        raise _fail("a classifier file must hold classes_")
    names_needed = set(expected) | ({"classes_"} if "classes_" in declared else set())
    if set(declared) != names_needed:
        raise _fail(
            f"the file's arrays {sorted(declared)} are not those a {header['class']} has: "
            f"{sorted(names_needed)}"
        )
    members = {n for n in zf.namelist()}
    wanted_members = {n + ".npy" for n in names_needed} | {HEADER + ".npy"}
    if members != wanted_members:
        raise _fail(f"the archive holds {sorted(members)}; expected {sorted(wanted_members)}")
    arrays = {}
    for name in sorted(names_needed):
        spec = declared[name]
        if not (
            isinstance(spec, list)
            and len(spec) == 2
            and isinstance(spec[0], str)
            and isinstance(spec[1], list)
            and all(isinstance(s, int) and s >= 0 for s in spec[1])
        ):
            raise _fail(f"the header's entry for array {name!r} is malformed: {spec!r}")
        try:
            dtype = np.dtype(spec[0])
        except TypeError:
            raise _fail(f"array {name!r} declares an unknown dtype {spec[0]!r}") from None
        if dtype.hasobject:
            raise _fail(f"array {name!r} declares an object dtype, which is never loaded")
        if name == "classes_":
            if dtype.kind not in "biuU" or len(spec[1]) != 1:
                raise _fail(f"classes_ must be a 1-D int or str array; got {dtype} {spec[1]}")
        else:
            shape, kinds = expected[name]
            if dtype.str not in kinds or tuple(spec[1]) != tuple(shape):
                raise _fail(
                    f"array {name!r} is declared as {dtype} {tuple(spec[1])}; a "
                    f"{header['class']} with this configuration needs {header['dtype']} {shape}"
                )
        arrays[name] = _read_member(zf, name + ".npy", dtype, tuple(spec[1]))
    if _checksum(arrays) != header["sha256"]:
        raise _fail(
            "the arrays do not match the header's checksum: the file was altered or damaged"
        )
    for name, a in arrays.items():
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise _fail(f"array {name!r} contains NaN or infinity")
    if _is_estimator(obj):
        if "classes_" in arrays:
            n_classes = arrays["classes_"].shape[0]
            if obj._n_out != (1 if n_classes == 2 else n_classes):
                raise _fail(f"{n_classes} classes do not fit an output layer of {obj._n_out}")
            obj.classes_ = arrays["classes_"]
        for part, layer in (("recurrent", obj.network_.recurrent), ("head", obj.network_.head)):
            layer.set_params_from(
                {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(part + "/")}
            )
    else:
        for prefix, leaf in _leaves(obj):
            leaf.set_params_from({n: arrays[prefix + n] for n in leaf.param_shapes()})
    return obj
