"""Reading sequence data for the estimators: one (n, T, F) panel and its lengths.

The estimators take sequence data in the forms time-series users hold it, and turn
every one into a right-padded ``(n_samples, n_steps, n_features)`` array on the
estimator's backend plus, when the sequences are not all full length, their lengths
(the layers then run the masked path, so padding never changes an answer):

* a 3-D array ``(n_samples, n_steps, n_features)``, or ``(n_samples, n_channels,
  n_steps)`` with ``layout="nct"`` (aeon's and sktime's panels);
* a 2-D array ``(n_samples, n_steps)``: univariate sequences, one value per step (the
  reading of aeon, sktime and tslearn). Its columns are what scikit-learn counts as
  features (``n_features_in_``), and a table keeps them between fit and predict
  (nested lists of numbers are a table too);
* a list of arrays of unequal lengths: ``(T_i, n_features)`` each, ``(n_channels, T_i)``
  with ``layout="nct"``, or 1-D ``(T_i,)`` for univariate sequences;
* any of the arrays above padded with NaN after each sequence's end: a step whose
  features are all NaN, and every step after it, is padding. NaN anywhere else, and
  infinity anywhere, is an error.

Host data go through scikit-learn's ``check_array`` (so pandas frames, memmaps,
array-likes, object arrays of numbers work and sparse, complex and empty data are
refused with scikit-learn's messages). An array of the estimator's own non-NumPy
library (a torch tensor for ``backend="torch"``) stays on its device; only two
``(n_samples, n_steps)`` flags come to the host.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.utils.validation import _get_feature_names, check_array

from .backend import array_library, refuse_masked, to_numpy

__all__ = ["LAYOUTS", "Panel", "read_panel", "read_targets"]

#: accepted ``layout=`` values (None: "ntf", warning when the array looks transposed)
LAYOUTS = ("ntf", "nct")


@dataclass
class Panel:
    """Sequence data read for an estimator.

    Attributes
    ----------
    X : array of shape (n_samples, n_steps, n_features), on the backend
        Right-padded with zeros.
    lengths : ndarray of int of shape (n_samples,), or None
        Real steps per sample (host); None when every sample has all ``n_steps``.
    n_columns : int or None
        For a 2-D array (not a list), its number of columns (scikit-learn's
        ``n_features_in_``).
    feature_names : ndarray of str or None
        Column names of a 2-D pandas frame.
    """

    X: Any
    lengths: np.ndarray | None
    n_columns: int | None
    feature_names: np.ndarray | None

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[2])


_ARRAY_LIBRARIES = ("cupy", "torch", "jax", "array_api_strict")


def _check_library(x: Any, backend: Any, name: str) -> None:
    """Arrays of another library than the backend's are moved explicitly, as for layers."""
    lib = array_library(x)
    if lib in _ARRAY_LIBRARIES and not backend.owns(x):
        raise TypeError(
            f"{name} is a {lib} array ({type(x).__name__}), but this estimator computes with "
            f"the {backend.name} backend. Move it explicitly with "
            f"anyrnn.to_backend({name}, {backend.name!r}), or pass a NumPy array."
        )


def _is_sequence_list(X: Any) -> bool:
    if isinstance(X, np.ndarray):
        return X.dtype == object and X.ndim == 1 and X.size > 0 and not np.isscalar(X[0])
    return isinstance(X, list | tuple)


def _as_host(item: Any, backend: Any, name: str) -> np.ndarray:
    _check_library(item, backend, name)
    a = to_numpy(item) if array_library(item) in _ARRAY_LIBRARIES else np.asarray(item)
    if a.dtype.kind == "O":
        try:
            a = a.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} could not be read as numbers (dtype object)") from None
    if a.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {a.dtype}")
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers; got dtype {a.dtype}")
    return a


def _stack_list(X: Any, backend: Any, layout: str, name: str) -> tuple[np.ndarray, bool]:
    """A list of sequences as one array, and whether they were ragged.

    Sequences of one shape are stacked as they are (the caller reads the array like any
    other); ragged ones are put in ``(n, T_max, n_features)`` order, NaN after each end.
    """
    items = [_as_host(item, backend, f"{name}[{i}]") for i, item in enumerate(X)]
    if not items:
        raise ValueError(
            "Found array with 0 sample(s) (shape=(0,)) while a minimum of 1 is required."
        )
    ndims = {a.ndim for a in items}
    if ndims == {0}:
        return np.asarray(items, dtype=np.float64), False  # a flat list: 1-D, refused later
    if len(ndims) > 1 or not ndims <= {1, 2}:
        raise ValueError(
            f"{name} must be a list of 1-D (n_steps,) or 2-D sequences, all of one kind; got "
            f"items with {sorted(ndims)} dimensions"
        )
    if len({a.shape for a in items}) == 1:
        return np.stack([a.astype(np.float64, copy=False) for a in items]), False
    if ndims == {1}:
        items = [a[:, None] for a in items]
    elif layout == "nct":
        items = [a.T for a in items]
    n_feat = sorted({a.shape[1] for a in items})
    if len(n_feat) > 1:
        axis = "channels (axis 0)" if layout == "nct" else "features (axis 1)"
        hint = (
            ""
            if layout == "nct"
            else " If each one is (n_channels, n_steps), as aeon and sktime give unequal-length "
            "data, pass layout='nct'."
        )
        raise ValueError(
            f"the sequences in {name} have different numbers of {axis}: {n_feat[:6]}; every "
            f"sequence needs the same number.{hint}"
        )
    empty = [i for i, a in enumerate(items) if a.shape[0] == 0]
    if empty:
        raise ValueError(f"{name}[{empty[0]}] has no time step; every sequence needs at least one")
    out = np.full((len(items), max(a.shape[0] for a in items), n_feat[0]), np.nan)
    for i, a in enumerate(items):
        out[i, : a.shape[0]] = a
    return out, True


def _lengths_from_flags(
    all_nan: np.ndarray, any_bad: np.ndarray, has_inf: bool, name: str
) -> np.ndarray | None:
    """Lengths from per-step flags (n, T): all features NaN / any feature not finite."""
    if not any_bad.any():
        return None
    if has_inf:
        i, t = np.argwhere(any_bad & ~all_nan)[0] if (any_bad & ~all_nan).any() else (0, 0)
        raise ValueError(
            f"Input {name} contains infinity (first at sample {i}, step {t}). Only NaN is read, "
            "and only as padding after a sequence's end."
        )
    # a step is padding if it and every later step are all NaN
    trailing = np.flip(np.logical_and.accumulate(np.flip(all_nan, axis=1), axis=1), axis=1)
    inside = any_bad & ~trailing
    if inside.any():
        i, t = np.argwhere(inside)[0]
        raise ValueError(
            f"Input {name} contains NaN inside a sequence (first at sample {i}, step {t}). NaN "
            "is read only as padding after a sequence's end (every feature of every later step "
            "NaN); impute missing values inside a sequence first."
        )
    lengths = all_nan.shape[1] - trailing.sum(axis=1)
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        raise ValueError(
            f"Input {name} contains NaN only in sample {empty[0]}: every sequence needs at "
            "least one real step"
        )
    return lengths.astype(np.int64)


def _check_range(X: np.ndarray, dtype_name: str, name: str) -> None:
    """Refuse finite values the model's dtype cannot hold (they would become inf)."""
    # a Python float: comparing with np.float32 casts `big` and overflows
    limit = float(np.finfo(dtype_name).max)
    if X.dtype.itemsize <= np.dtype(dtype_name).itemsize or X.size == 0:
        return
    big = float(np.max(np.abs(X), initial=0.0, where=np.isfinite(X)))
    if big > limit:
        raise ValueError(
            f"Input {name} has values up to {big:.3g}, beyond what the model's {dtype_name} can "
            f"hold (±{limit:.3g}): they would overflow to infinity. Scale {name} (e.g. with "
            "sklearn.preprocessing.StandardScaler) or use dtype='float64'."
        )


def _warn_layout(shape: tuple, name: str) -> None:
    n, t, f = shape
    if t < f:
        warnings.warn(
            f"{name} has shape {shape}, read as {n} samples of {t} time step(s) with {f} features "
            f"each. If it is (n_samples, n_channels, n_steps), as aeon and sktime hold panels, "
            "pass layout='nct'; pass layout='ntf' to confirm this reading and silence this "
            "warning.",
            UserWarning,
            stacklevel=4,
        )


def read_panel(
    X: Any, backend: Any, *, layout: str | None, name: str = "X", warn: bool = False
) -> Panel:
    """Read ``X`` in any accepted form into a :class:`Panel` on ``backend``.

    ``warn``: warn when a 3-D array in the default layout has fewer steps than features.
    """
    if X is None:
        raise ValueError(f"{name} is None; expected sequence data")
    refuse_masked(X, name)
    order = layout or "ntf"
    if backend.name != "numpy" and backend.owns(X) and not isinstance(X, np.generic):
        return _read_device(X, backend, order, name, warn and layout is None)
    names, ragged = None, False
    from_list = _is_sequence_list(X)
    # nested lists of numbers are a table, as for any scikit-learn estimator; a list of
    # arrays is a list of sequences
    table_rows = from_list and all(isinstance(item, list | tuple) for item in X)
    if from_list:
        X, ragged = _stack_list(X, backend, order, name)
    else:
        _check_library(X, backend, name)
        names = _get_feature_names(X)
    host = check_array(
        X,
        accept_sparse=False,
        dtype=(np.float64, np.float32),
        ensure_all_finite=False,
        allow_nd=True,
        ensure_min_samples=1,
        ensure_min_features=1,
        input_name=name,
    )
    if host.ndim not in (2, 3):
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_steps) or 3-D (n_samples, n_steps, n_features); "
            f"got {host.ndim}-D with shape {host.shape}"
        )
    n_columns = None
    if host.ndim == 2:
        if table_rows or not from_list:  # a table's columns; a list of arrays: sequences
            n_columns = int(host.shape[1])
        host = host[:, :, None]  # univariate sequences
    elif not ragged:
        if 0 in host.shape:
            raise ValueError(
                f"{name} must have at least one sample, time step and feature; got shape "
                f"{host.shape}"
            )
        if layout == "nct":
            host = np.transpose(host, (0, 2, 1))
        elif warn and layout is None:
            _warn_layout(host.shape, name)
    finite = np.isfinite(host)
    lengths = None
    if not finite.all():
        lengths = _lengths_from_flags(
            np.isnan(host).all(axis=2), ~finite.all(axis=2), bool(np.isinf(host).any()), name
        )
        host = np.where(finite, host, 0.0)
    _check_range(host, backend.dtype_name, name)
    if lengths is not None and (lengths == host.shape[1]).all():
        lengths = None
    return Panel(backend.from_host(host), lengths, n_columns, names)


def _read_device(X: Any, backend: Any, layout: str, name: str, warn: bool) -> Panel:
    xp = backend.xp
    if not xp.isdtype(X.dtype, ("real floating", "integral", "bool")):
        raise ValueError(f"{name} must hold real numbers; got an array of dtype {X.dtype}")
    if X.ndim not in (2, 3):
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_steps) or 3-D (n_samples, n_steps, n_features); "
            f"got {X.ndim}-D with shape {tuple(X.shape)}"
        )
    n_columns = None
    if X.ndim == 2:
        n_columns = int(X.shape[1])
        X = xp.expand_dims(X, axis=2)
    elif layout == "nct":
        X = xp.permute_dims(X, (0, 2, 1))
    if 0 in tuple(X.shape):
        raise ValueError(
            f"{name} must have at least one sample, time step and feature; got shape "
            f"{tuple(X.shape)}"
        )
    if warn and n_columns is None:
        _warn_layout(tuple(X.shape), name)
    X = backend.asarray(X, name=name)
    finite = xp.isfinite(X)
    flags = xp.stack([xp.all(xp.isnan(X), axis=2), xp.logical_not(xp.all(finite, axis=2))], axis=0)
    host_flags = to_numpy(flags)  # one transfer: (2, n, T) booleans
    lengths = None
    if host_flags[1].any():
        has_inf = bool(to_numpy(xp.any(xp.isinf(X))))
        lengths = _lengths_from_flags(host_flags[0], host_flags[1], has_inf, name)
        X = xp.where(finite, X, backend.scalar(0.0))
    return Panel(X, lengths, n_columns, None)


def read_targets(y: Any, backend: Any, name: str = "y") -> tuple[np.ndarray, np.ndarray | None]:
    """Real-valued targets on the host as float64, with lengths for sequence targets.

    Sequence targets may be a list of (T_i, k) arrays or an array NaN-padded after each
    end, like X. Returns ``(y, lengths)``; y is 3-D with zeros at padded steps when it
    holds sequences, else as given; lengths is None unless some sequence is short.
    """
    if y is None:
        raise ValueError("requires y to be passed, but the target y is None")
    refuse_masked(y, name)
    if _is_sequence_list(y):
        y, _ = _stack_list(y, backend, "ntf", name)
    else:
        y = _as_host(y, backend, name)
    y = y.astype(np.float64)
    if y.ndim != 3:
        if not np.all(np.isfinite(y)):
            raise ValueError(f"Input {name} contains NaN or infinity.")
        return y, None
    finite = np.isfinite(y)
    lengths = None
    if not finite.all():
        lengths = _lengths_from_flags(
            np.isnan(y).all(axis=2), ~finite.all(axis=2), bool(np.isinf(y).any()), name
        )
        y = np.where(finite, y, 0.0)
        if (lengths == y.shape[1]).all():
            lengths = None
    return y, lengths
