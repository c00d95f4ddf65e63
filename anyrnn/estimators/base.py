"""The shared base estimator: hyper-parameters, their checks, reading ``X``, inference.

``_RNNEstimator`` holds the constructor every estimator shares, checks and normalises
the hyper-parameters into a ``_Hyper``, says which of them no longer describe the
fitted network (``_architecture_changes``: the one rule for ``warm_start``,
``partial_fit`` and ``save``), reads ``X`` and runs the fitted network on it. It
gathers the fit (:mod:`.fitting`), the fit loop (:mod:`.training`) and the model
files (:mod:`.persistence`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import _check_feature_names, check_is_fitted

from .._checks import check_bool, check_choice, check_int, check_real
from .._panel import LAYOUTS, Panel, read_panel
from ..backend import resolve_backend
from ..cells.simple import ACTIVATIONS
from ..layers.recurrent import CELLS
from ..train.optimizers import OPTIMIZERS
from .fitting import _Fitting
from .persistence import _ModelFiles
from .training import _Training

__all__ = ["_Hyper", "_RNNEstimator"]


@dataclass(frozen=True)
class _Hyper:
    """Checked and normalised hyper-parameters (the estimator's own stay as given)."""

    n_nodes: int
    cell: str
    num_layers: int
    bidirectional: bool
    dropout: float
    activation: str
    optimizer: str
    lr: float
    batch_size: int
    epochs: int
    layout: str | None
    clip_norm: float | None
    early_stopping: str | None  # None, "loss" or "score"
    validation_fraction: float
    n_iter_no_change: int
    tol: float
    warm_start: bool


class _RNNEstimator(_Fitting, _Training, _ModelFiles, BaseEstimator):
    """Shared parameters, data reading, fit loop and model files."""

    # fitted attributes that estimators pickled before they existed lack
    _x_2d = False
    _n_step_features: int | None = None

    def __init__(
        self,
        n_nodes: int = 32,
        *,
        cell: str = "simple",
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        activation: str = "tanh",
        optimizer: str = "adam",
        lr: float = 0.01,
        batch_size: int = 32,
        epochs: int = 30,
        layout: str | None = None,
        warm_start: bool = False,
        verbose: bool = False,
        random_state: Any = None,
        backend: Any = "numpy",
        device: Any = None,
        dtype: str = "float32",
        clip_norm: float | None = None,
        early_stopping: bool | str = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
    ):
        self.n_nodes = n_nodes
        self.cell = cell
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.activation = activation
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.layout = layout
        self.warm_start = warm_start
        self.verbose = verbose
        self.random_state = random_state
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.clip_norm = clip_norm
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol

    # ------------------------------------------------------------------ scikit-learn
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True  # (n_samples, n_steps): univariate sequences
        tags.input_tags.three_d_array = True  # (n_samples, n_steps, n_features)
        tags.input_tags.allow_nan = False  # NaN only as padding after a sequence's end
        tags.input_tags.sparse = False
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "network_")

    # ------------------------------------------------------------------ validation
    def _validate_hyperparams(self) -> _Hyper:
        n_nodes = check_int(self.n_nodes, "n_nodes")
        if not isinstance(self.cell, str) or self.cell.lower() not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}; got cell={self.cell!r}")
        activation = check_choice(self.activation, "activation", ACTIVATIONS)
        if not isinstance(self.optimizer, str) or self.optimizer.lower() not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {sorted(OPTIMIZERS)}; got optimizer={self.optimizer!r}"
            )
        layout = self.layout
        if layout is not None:
            layout = check_choice(layout, "layout", LAYOUTS, lower=True)
        es = self.early_stopping
        if isinstance(es, str) and es.lower() in ("loss", "score"):
            es = es.lower()
        elif isinstance(es, bool | np.bool_):
            es = "score" if es else None
        else:
            raise ValueError(
                "early_stopping must be False, True (the same as 'score'), 'score' or 'loss'; "
                f"got early_stopping={es!r}"
            )
        clip_norm = self.clip_norm
        if clip_norm is not None:
            clip_norm = check_real(clip_norm, "clip_norm", low=0, low_open=True)
        return _Hyper(
            n_nodes=n_nodes,
            cell=self.cell.lower(),
            num_layers=check_int(self.num_layers, "num_layers"),
            bidirectional=check_bool(self.bidirectional, "bidirectional"),
            dropout=check_real(self.dropout, "dropout", low=0, high=1, high_open=True),
            activation=activation,
            optimizer=self.optimizer.lower(),
            lr=check_real(self.lr, "lr", low=0, low_open=True),
            batch_size=check_int(self.batch_size, "batch_size"),
            epochs=check_int(self.epochs, "epochs"),
            layout=layout,
            clip_norm=clip_norm,
            early_stopping=es,
            validation_fraction=check_real(
                self.validation_fraction,
                "validation_fraction",
                low=0,
                high=1,
                low_open=True,
                high_open=True,
            ),
            n_iter_no_change=check_int(self.n_iter_no_change, "n_iter_no_change"),
            tol=check_real(self.tol, "tol", low=0),
            warm_start=check_bool(self.warm_start, "warm_start"),
        )

    def _resolve(self):
        return resolve_backend(self.backend, self.device, self.dtype)

    def _architecture_changes(self, hp: _Hyper) -> dict[str, tuple[Any, Any]]:
        """``{name: (fitted value, value now)}`` of each hyper-parameter that shapes the
        network and no longer describes the fitted one (set with ``set_params`` after fit).

        The one rule for both places that need it: a continued fit (warm_start,
        partial_fit) and ``save`` refuse while this is not empty.
        """
        have = self.network_.architecture()
        wanted = {
            "cell": hp.cell,
            "n_nodes": hp.n_nodes,
            "num_layers": hp.num_layers,
            "bidirectional": hp.bidirectional,
        }
        if have["cell"] == hp.cell == "simple":  # LSTM and GRU have no activation choice
            wanted["activation"] = hp.activation
        return {k: (have[k], v) for k, v in wanted.items() if have[k] != v}

    def _check_panel(self, panel: Panel, name: str = "X") -> None:
        """The data fit the fitted network (predict, and fits that continue one)."""
        cls = type(self).__name__
        if self._x_2d and panel.n_columns is not None and panel.n_columns != self.n_features_in_:
            raise ValueError(
                f"{name} has {panel.n_columns} features, but {cls} is expecting "
                f"{self.n_features_in_} features as input. (It was fitted on a 2-D table of "
                f"univariate sequences: a table keeps its columns; pass a 3-D array "
                f"(n_samples, n_steps, 1) or a list for sequences of other lengths.)"
            )
        n_step = self._n_step_features or self.n_features_in_
        if panel.n_features != n_step:
            if panel.n_columns is not None:
                raise ValueError(
                    f"{name} is 2-D, read as univariate sequences (1 feature per step), but "
                    f"{cls} was fitted on {n_step} features per step"
                )
            raise ValueError(
                f"{name} has {panel.n_features} features, but {cls} is expecting "
                f"{n_step} features as input."
            )

    def _read(self, X: Any, backend: Any, *, fitting: bool, layout: str | None) -> Panel:
        if not fitting and not isinstance(X, list | tuple):
            _check_feature_names(self, X, reset=False)
        return read_panel(X, backend, layout=layout, warn=fitting)

    # ------------------------------------------------------------------ the fitted model
    @property
    def _backend(self) -> Any:
        check_is_fitted(self)
        return self.network_.layers[0]._backend

    def _infer(self, X: Any) -> tuple[Any, Any, Panel]:
        check_is_fitted(self)
        backend = self.network_.layers[0]._backend
        panel = self._read(X, backend, fitting=False, layout=self._layout_for_predict())
        self._check_panel(panel)
        return self.network_.infer(panel.X, panel.lengths), backend, panel

    def _layout_for_predict(self) -> str | None:
        layout = self.layout
        return None if layout is None else check_choice(layout, "layout", LAYOUTS, lower=True)
