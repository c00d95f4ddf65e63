"""``RNNRegressor``: recurrent layer(s) and a Dense head trained with mean squared error.

Targets one per sequence, ``(n_samples,)`` or ``(n_samples, n_outputs)``, or one per
step, ``(n_samples, n_steps, n_outputs)`` (padded steps left out of the loss and the
score); the fit, the fit loop and the model files come from
:class:`~anyrnn.estimators.base._RNNEstimator`. Also: the check of targets against the
model's dtype and R² over the real steps.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score

from .. import io
from .._panel import Panel, read_targets
from ..backend import to_numpy
from ..distributed import Sync
from ..layers.base import on_device
from ..train import losses
from .base import _RNNEstimator
from .data import _Data

__all__ = ["RNNRegressor"]


@io.register
class RNNRegressor(RegressorMixin, _RNNEstimator):
    """A recurrent regressor trained with mean squared error.

    Many-to-one: ``y`` of shape (n_samples,) or (n_samples, n_outputs) is predicted from
    the last state. Sequence-to-sequence: ``y`` of shape (n_samples, n_steps,
    n_outputs), or a list of (n_steps_i, n_outputs) arrays matching the sequences of
    ``X``, is predicted at every step (e.g. next-step prediction); padded steps are
    left out of the loss and the score.

    Parameters and attributes as :class:`RNNClassifier`, without ``class_weight`` and
    ``classes_``; ``validation_scores_`` holds R². ``predict`` returns an array of the
    estimator's backend, of ``y``'s shape; for sequences of unequal lengths, NaN after
    each sequence's end.
    """

    _stratify = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _read_y(
        self,
        y: Any,
        panel: Panel,
        backend: Any,
        *,
        classes: Any,
        partial: bool,
        cont: bool,
        sync: Sync,
    ):
        """Targets on the host and on the backend, and the fitted target info.

        Over ranks, each rank reads its own; the ranks must agree on their shape.
        """
        with sync.together():
            y2, info = self._read_targets(y, panel, backend, cont)
        sync.agree((info["_y_ndim"], info["_n_out"]), "the targets' dimensions and outputs")
        return y2, backend.from_host(y2), info

    def _read_targets(
        self, y: Any, panel: Panel, backend: Any, cont: bool
    ) -> tuple[np.ndarray, dict]:
        y, lengths = read_targets(y, backend)
        n = panel.n_samples
        if y.ndim not in (1, 2, 3):
            raise ValueError(f"y must be 1-D, 2-D or 3-D; got shape {y.shape}")
        if y.shape[0] != n:
            raise ValueError(
                f"X and y have different numbers of samples: X has {n}, y has {y.shape[0]}"
            )
        if y.ndim == 3:
            if y.shape[1] != panel.n_steps:
                raise ValueError(
                    f"a sequence target y must have X's {panel.n_steps} steps; got "
                    f"y.shape={y.shape}"
                )
            x_len = panel.lengths if panel.lengths is not None else np.full(n, panel.n_steps)
            if lengths is not None and not np.array_equal(lengths, x_len):
                i = int(np.flatnonzero(lengths != x_len)[0])
                raise ValueError(
                    f"sample {i} of y has {lengths[i]} steps, but its sequence in X has "
                    f"{x_len[i]}: sequence targets must have X's lengths"
                )
        _check_target_range(y, backend.dtype_name, min(self.batch_size, n))
        y2 = y[:, None] if y.ndim == 1 else y
        info = {"_y_ndim": y.ndim, "_sequences": y.ndim == 3, "_n_out": int(y2.shape[-1])}
        if cont:
            if (info["_y_ndim"], info["_n_out"]) != (self._y_ndim, self._n_out):
                raise ValueError(
                    f"y has shape {y.shape}, but the fitted model predicts targets of "
                    f"{self._y_ndim} dimension(s) with {self._n_out} output(s): a continued "
                    "fit needs targets of the same shape"
                )
        return y2, info

    def _check_scorable(self, n_val: int, n: int) -> None:
        if n_val < 2:
            raise ValueError(
                f"early_stopping={self.early_stopping!r} scores R² on the validation part, "
                f"but validation_fraction={self.validation_fraction} of {n} samples holds out "
                f"{n_val}, and R² needs at least 2. Raise validation_fraction, use more data, "
                "or set early_stopping='loss'."
            )

    def _loss(self, out: Any, y: Any, w: Any) -> tuple[Any, Any]:
        # w: per sample (n,), or per sample and step (n, T) for sequence targets
        return losses.mean_squared_error(out, y, sample_weight=w, check_values=False)

    def _score_out(self, out: Any, data: _Data, lengths: Any) -> float:
        y = data.y_host
        if data.sequences:  # out has the steps of the longest held-out sequence only
            y = y[:, : out.shape[1]]
        return _r2(to_numpy(out), y, lengths, data.w, quiet=True)

    def fit(self, X: Any, y: Any, sample_weight: Any = None, *, comm: Any = None) -> RNNRegressor:
        """Fit on sequences X (as for :meth:`RNNClassifier.fit`) and real targets y.

        ``comm``: an mpi4py communicator for data-parallel training, each rank passing
        its own samples (see :meth:`RNNClassifier.fit`).
        """
        return self._fit(X, y, sample_weight, partial=False, comm=comm)

    def partial_fit(
        self, X: Any, y: Any, sample_weight: Any = None, *, comm: Any = None
    ) -> RNNRegressor:
        """One epoch over (X, y), continuing the fitted network and optimizer (``comm``:
        as for :meth:`fit`)."""
        return self._fit(X, y, sample_weight, partial=True, comm=comm)

    @on_device
    def predict(self, X: Any) -> Any:
        out, backend, panel = self._infer(X)
        xp = backend.xp
        if self._y_ndim == 1:
            out = xp.reshape(out, (-1,))
        elif self._sequences and panel.lengths is not None:
            real = np.arange(panel.n_steps)[None, :] < panel.lengths[:, None]
            mask = backend.from_host(real[:, :, None], dtype=xp.bool)
            out = xp.where(mask, out, backend.scalar(float("nan")))
        return out

    @on_device
    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R² (over every output and, for sequence targets, every real step)."""
        pred = to_numpy(self.predict(X))
        backend = self.network_.layers[0]._backend
        y, lengths = read_targets(y, backend)
        w = None if sample_weight is None else np.asarray(to_numpy(sample_weight), dtype=float)
        if y.ndim == 3:
            pred = np.where(np.isnan(pred), 0.0, pred)
            return _r2(pred, y, lengths, w)
        return float(r2_score(y, pred.reshape(y.shape), sample_weight=w))


def _check_target_range(y: np.ndarray, dtype_name: str, batch: int) -> None:
    """Refuse targets whose values or squared errors the model's dtype cannot hold."""
    limit = float(np.finfo(dtype_name).max)
    big = float(np.max(np.abs(y), initial=0.0))
    per_batch = batch * (y.size // max(y.shape[0], 1))
    if big > 0 and 2 * math.log(big) + math.log(per_batch) >= math.log(limit):
        what = "values" if big > limit else "squared errors"
        raise ValueError(
            f"y has values up to {big:.3g}: their {what} overflow the model's {dtype_name} "
            f"(largest {limit:.3g}), so the loss would be infinite from the first step. Scale "
            "y (e.g. sklearn.compose.TransformedTargetRegressor with a StandardScaler) or use "
            "dtype='float64'."
        )


def _r2(pred: np.ndarray, y: np.ndarray, lengths: Any, w: Any, *, quiet: bool = False) -> float:
    """R² over samples (and real steps of sequence targets), every output pooled. For
    fewer than two it is undefined: NaN, with scikit-learn's warning unless ``quiet`` (the
    early-stopping monitor, which records the score of a held-out part it does not use)."""
    if y.ndim == 3:
        n, t, k = y.shape
        real = (
            np.ones((n, t), dtype=bool)
            if lengths is None
            else np.arange(t)[None, :] < np.asarray(lengths)[:, None]
        )
        ww = None if w is None else np.broadcast_to(np.asarray(w)[:, None], (n, t))[real]
        y, pred, w = y[real], pred.reshape(y.shape)[real], ww
    if quiet and len(y) < 2:
        return float("nan")
    return float(r2_score(y, pred.reshape(y.shape), sample_weight=w))
