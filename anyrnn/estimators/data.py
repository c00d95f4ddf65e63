"""Training data on the backend: a fit's inputs, lengths, targets and sample weights.

``_Data`` holds them once moved to the backend and cuts minibatches (trimmed to their
longest sequence; padded steps of sequence targets get weight 0) and subsets (the
early-stopping split). ``_held_out_of_every_rank`` joins every MPI rank's held-out
outputs and targets on the host, for a score over all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend import to_numpy
from ..distributed import Sync

__all__ = ["_Data", "_held_out_of_every_rank", "_take"]


def _take(a: Any, backend: Any, idx: np.ndarray) -> Any:
    if backend.name == "numpy":
        return a[idx]
    return backend.xp.take(a, backend.from_host(idx, dtype=backend.int_dtype), axis=0)


@dataclass
class _Data:
    """Training data on the backend: inputs, lengths, targets and weights.

    ``w`` holds per-sample weights on the host (None: all 1); ``sequences``: the
    targets have a step axis (and padded steps get weight 0).
    """

    X: Any
    lengths: np.ndarray | None
    y: Any
    y_host: np.ndarray
    w: np.ndarray | None
    sequences: bool

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    def subset(self, idx: np.ndarray, backend: Any) -> _Data:
        return _Data(
            _take(self.X, backend, idx),
            None if self.lengths is None else self.lengths[idx],
            _take(self.y, backend, idx),
            self.y_host[idx],
            None if self.w is None else self.w[idx],
            self.sequences,
        )

    def batch(self, sel: np.ndarray | None, backend: Any) -> tuple[Any, Any, Any, Any]:
        """``(X, lengths, y, weights)`` of the rows ``sel`` (all with None), trimmed to
        their longest sequence. Weights: None, per sample (b,), or per step (b, T)."""
        X, y = self.X, self.y
        if sel is not None:
            X, y = _take(X, backend, sel), _take(y, backend, sel)
        lengths = self.lengths if sel is None or self.lengths is None else self.lengths[sel]
        w = self.w if sel is None or self.w is None else self.w[sel]
        n_steps = int(X.shape[1])
        if lengths is not None:
            n_steps = int(lengths.max())
            X = X[:, :n_steps, :]
            if self.sequences:
                y = y[:, :n_steps, :]
            if (lengths == n_steps).all():
                lengths = None
        if self.sequences and lengths is not None:
            steps = (np.arange(n_steps)[None, :] < lengths[:, None]).astype(np.float64)
            w = steps if w is None else steps * w[:, None]
        weights = None if w is None else backend.from_host(w)
        return X, lengths, y, weights


def _held_out_of_every_rank(
    sync: Sync, out: Any, data: _Data, lengths: Any
) -> tuple[np.ndarray, _Data, np.ndarray | None]:
    """Every rank's held-out outputs, targets, weights (and lengths) on the host, joined in
    rank order: the same on every rank, for a score over all of them.

    ``out`` and ``lengths`` are this rank's (None when it holds no held-out sample).
    Sequence outputs are cut to each rank's longest held-out sequence: they are padded
    to the longest of all (the padded steps are outside every length).
    """
    mine = None
    if data.n:
        out, y, steps = to_numpy(out), data.y_host, None
        if data.sequences:
            steps = np.full(data.n, out.shape[1]) if lengths is None else lengths
            y = y[:, : out.shape[1]]
        mine = (out, y, data.w, steps)
    parts = [p for p in sync.allgather(mine) if p is not None]
    outs, ys, ws, steps = zip(*parts)
    if data.sequences:
        t = max(o.shape[1] for o in outs)
        outs = [np.pad(a, [(0, 0), (0, t - a.shape[1]), (0, 0)]) for a in outs]
        ys = [np.pad(a, [(0, 0), (0, t - a.shape[1]), (0, 0)]) for a in ys]
    weighted = any(w is not None for w in ws)
    w = np.concatenate([np.ones(len(y)) if w is None else w for w, y in zip(ws, ys)])
    lengths = np.concatenate(steps) if data.sequences else None
    joined = _Data(None, lengths, None, np.concatenate(ys), w if weighted else None, data.sequences)
    return np.concatenate(outs), joined, lengths
