"""Checks of what a recurrent layer's forward and backward receive: X, states, masks.

Each returns the value on the layer's backend (or raises with expected and received
values); nothing here changes a layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import Backend, to_numpy

__all__ = ["check_X", "check_state", "check_mask"]


def check_X(backend: Backend, X: Any, n_features: int, owner: str) -> Any:
    """``X`` as a (batch, n_steps, n_features) array of ``backend``."""
    X = backend.asarray(X, name="X")
    if X.ndim != 3:
        raise ValueError(
            f"X must be 3-D (batch, n_steps, n_features); got {X.ndim}-D with shape "
            f"{tuple(X.shape)}"
        )
    batch, n_steps, features = X.shape
    if features != n_features:
        raise ValueError(
            f"X has {features} features, but this {owner} was built for {n_features} "
            f"(X.shape={tuple(X.shape)})"
        )
    if n_steps == 0:
        raise ValueError(
            f"X has n_steps = 0 time steps; a recurrent layer needs at least one "
            f"(X.shape={tuple(X.shape)})"
        )
    if batch == 0:
        raise ValueError(f"X has an empty batch (X.shape={tuple(X.shape)})")
    return X


def check_state(backend: Backend, value: Any, name: str, batch: int, n_nodes: int) -> Any:
    """A (batch, n_nodes) state of ``backend``; zeros for None."""
    if value is None:
        return backend.zeros((batch, n_nodes))
    arr = backend.asarray(value, name=name)
    expected = (batch, n_nodes)
    if tuple(arr.shape) != expected:
        raise ValueError(
            f"{name} must have shape (batch, n_nodes) = {expected}; got shape {tuple(arr.shape)}"
        )
    return arr


def _host(value: Any) -> np.ndarray:
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(
            "a NumPy masked array's mask would be ignored here: pass a plain array and give "
            "its padding as mask= or lengths="
        )
    return np.asarray(to_numpy(value) if not isinstance(value, list | tuple) else value)


def check_mask(backend: Backend, mask: Any, lengths: Any, batch: int, n_steps: int) -> Any:
    """The boolean (batch, n_steps) mask on ``backend``, or None when nothing is padded."""
    if mask is not None and lengths is not None:
        raise ValueError("give mask or lengths, not both")
    if lengths is not None:
        lens = _host(lengths)
        if lens.dtype.kind not in "iu" or lens.shape != (batch,):
            raise ValueError(
                f"lengths must be {batch} integers, one per row of X; got dtype {lens.dtype} "
                f"and shape {lens.shape}"
            )
        bad = np.flatnonzero((lens < 1) | (lens > n_steps))
        if bad.size:
            raise ValueError(
                f"lengths must be in [1, {n_steps}] (the n_steps of X); row {bad[0]} has "
                f"length {lens[bad[0]]}"
            )
        host = np.arange(n_steps)[None, :] < lens[:, None]
    elif mask is not None:
        host = _host(mask)
        if host.dtype != np.bool_:
            raise TypeError(
                f"mask must be a boolean array (True on real steps); got dtype {host.dtype}"
            )
        if host.shape != (batch, n_steps):
            raise ValueError(
                f"mask must have shape (batch, n_steps) = {(batch, n_steps)}; got shape "
                f"{host.shape}"
            )
        empty = np.flatnonzero(~host.any(axis=1))
        if empty.size:
            raise ValueError(
                f"mask row {empty[0]} has no real step (all False); every sequence needs at "
                "least one"
            )
        starts = host.astype(np.int8)
        runs = (np.diff(starts, axis=1) == 1).sum(axis=1) + starts[:, 0]
        holes = np.flatnonzero(runs > 1)
        if holes.size:
            raise ValueError(
                f"mask row {holes[0]} has a hole in the middle of its sequence "
                f"({host[holes[0]].astype(int).tolist()}); padding may only sit on the left "
                "or the right"
            )
    else:
        return None
    if host.all():
        return None  # nothing is padded: the unmasked loop is the same and faster
    return backend.from_host(host, dtype=backend.xp.bool)
