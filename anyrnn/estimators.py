"""scikit-learn estimators: recurrent layers, a Dense head, a loss and an optimizer.

What ``X`` may be (see :mod:`anyrnn._panel`): a 3-D array ``(n_samples, n_steps,
n_features)`` (``(n_samples, n_channels, n_steps)`` with ``layout="nct"``), a 2-D array
``(n_samples, n_steps)`` of univariate sequences, a list of sequences of unequal
lengths, or an array NaN-padded after each sequence's end. Unequal lengths run the
layers' masked path, so a padded sequence gives exactly what it gives alone. ``predict``
may get sequences of other lengths than ``fit`` did (a 2-D table keeps its columns,
as in any scikit-learn estimator: give 3-D data or a list for other lengths).

The estimators follow the scikit-learn protocol through its base classes
(``get_params``/``set_params``, ``clone``, ``Pipeline``, ``GridSearchCV``, pickling) and
pass its ``check_estimator`` (the test lists the deviations). They compute on the
backend named by ``backend=``/``device=``/``dtype=``: the data are moved there once per
call, and every public call (``fit``, ``partial_fit``, ``predict``, ``predict_proba``,
``score``, saving and loading) runs as a whole with that device current
(:meth:`~anyrnn.Backend.run`, entered once where the call starts). Shuffling indices
are drawn on the host from ``random_state``, so the same ``random_state`` gives a
bit-identical fit on the same backend.

A call that raises (``fit``, ``partial_fit``, ``predict``...) leaves the estimator
exactly as it was: a fit computes everything first and assigns the fitted attributes
at the end, in one step.

``fit(..., comm=)`` and ``partial_fit(..., comm=)`` with an mpi4py communicator train
data-parallel, each rank passing its own samples: the fit loop asks a
:class:`~anyrnn.distributed.Sync` at a few points (reading, targets, weights, random
stream and weights, split, each step's gradients, each epoch's loss, validation and
decisions); without a communicator each of those calls does nothing.

Outputs: ``predict`` of the classifier returns labels as a NumPy array (labels may be
strings); ``predict_proba`` and the regressor's ``predict`` return arrays of the
estimator's backend (NumPy arrays on the default backend).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_feature_names, check_is_fitted
from tqdm.auto import tqdm

from . import io
from ._checks import check_bool, check_choice, check_int, check_real
from ._panel import LAYOUTS, Panel, read_panel, read_targets
from ._warn import warn_user
from .backend import BACKEND_NAMES, array_library, resolve_backend, to_numpy
from .cells.init import zero_init
from .cells.simple import ACTIVATIONS
from .distributed import Sync
from .layers.base import on_device
from .layers.dense import Dense
from .layers.recurrent import CELLS, make_recurrent
from .layers.wrappers import Bidirectional, Stacked
from .train import losses
from .train.optimizers import OPTIMIZERS, make_optimizer

__all__ = ["RNNClassifier", "RNNRegressor", "ScratchSimpleRNNClassifier", "Network"]

_CELL_OF = {cls.__name__: name for name, cls in CELLS.items()}


# ---------------------------------------------------------------------------- the network


class Network:
    """Recurrent layers (a layer, ``Bidirectional`` or ``Stacked``) followed by a Dense head.

    The head maps the last state, or every step with sequence targets.
    """

    def __init__(self, recurrent: Any, head: Dense):
        self.recurrent, self.head = recurrent, head

    @property
    def layers(self) -> list:
        """The plain layers, in order (what an optimizer updates)."""
        return [layer for _, layer in self.named_layers()]

    def named_layers(self) -> list[tuple[str, Any]]:
        """``(name, layer)`` of every plain layer; names as in the model file's arrays."""
        out = []

        def walk(obj: Any, prefix: str) -> None:
            if isinstance(obj, Stacked | Bidirectional):
                for key, sub in obj._named():
                    walk(sub, f"{prefix}/{key}")
            else:
                out.append((prefix, obj))

        walk(self.recurrent, "recurrent")
        out.append(("head", self.head))
        return out

    def forward(self, X: Any, lengths: Any = None) -> Any:
        return self.head.forward(self.recurrent.forward(X, lengths=lengths))

    def backward(self, d_out: Any) -> Any:
        return self.recurrent.backward(self.head.backward(d_out))

    def infer(self, X: Any, lengths: Any = None) -> Any:
        return self.head.infer(self.recurrent.infer(X, lengths=lengths))

    def clear(self) -> None:
        """Drop what the last forward pass kept (tapes, dropout masks)."""
        self.recurrent.clear()
        self.head.clear()
        if isinstance(self.recurrent, Stacked):
            self.recurrent._keeps = []

    def get_weights(self) -> list[dict]:
        return [layer.params for layer in self.layers]

    def set_weights(self, weights: list[dict]) -> None:
        for layer, w in zip(self.layers, weights):
            layer._params = dict(w)

    def architecture(self) -> dict:
        """What a continued fit must keep: cell, sizes, depth, directions, activation."""
        first = self.layers[0]
        return {
            "cell": _CELL_OF[type(first).__name__],
            "n_nodes": first.n_nodes,
            "num_layers": len(self.recurrent) if isinstance(self.recurrent, Stacked) else 1,
            "bidirectional": isinstance(
                self.recurrent[0] if isinstance(self.recurrent, Stacked) else self.recurrent,
                Bidirectional,
            ),
            "activation": getattr(first, "activation", None),
        }


def _param_specs(hp: _Hyper, n_features: int, n_out: int) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every parameter, from the hyper-parameters alone (nothing built).

    The names are those :meth:`Network.named_layers` gives the built network.
    """
    specs: dict[str, tuple[int, ...]] = {}
    n_in = n_features
    width = hp.n_nodes * (2 if hp.bidirectional else 1)
    for k in range(hp.num_layers):
        base = "recurrent" if hp.num_layers == 1 else f"recurrent/{k}"
        shapes = CELLS[hp.cell]._param_shapes_for(
            {"n_features": n_in, "n_nodes": hp.n_nodes, "activation": hp.activation}
        )
        for direction in ("forward", "backward") if hp.bidirectional else (None,):
            prefix = base if direction is None else f"{base}/{direction}"
            specs.update({f"{prefix}/{name}": shape for name, shape in shapes.items()})
        n_in = width
    specs.update(
        {
            f"head/{k}": v
            for k, v in Dense._param_shapes_for({"n_in": width, "n_out": n_out}).items()
        }
    )
    return specs


def _build_network(
    hp: _Hyper, backend: Any, n_features: int, n_out: int, sequences: bool, rng: Any
) -> Network:
    """A fresh network; weights drawn from ``rng`` in a fixed order (layer by layer)."""
    kw = dict(backend=backend, dtype=backend.dtype_name, random_state=rng)
    layers = []
    n_in = n_features
    for k in range(hp.num_layers):
        layer = make_recurrent(
            hp.cell,
            n_in,
            hp.n_nodes,
            activation=hp.activation,
            return_sequences=sequences or k < hp.num_layers - 1,
            **kw,
        )
        if hp.bidirectional:
            layer = Bidirectional(layer, random_state=rng)
        layers.append(layer)
        n_in = layer.n_outputs
    if hp.num_layers == 1:
        recurrent = layers[0]
    else:
        seed = None if rng is None else int(rng.integers(2**31 - 1))
        recurrent = Stacked(layers, dropout=hp.dropout, random_state=seed)
    return Network(recurrent, Dense(n_in, n_out, **kw))


def _describe_changes(changed: dict[str, tuple[Any, Any]]) -> str:
    """``"n_nodes: 3 when fitted, 7 now; ..."`` (from ``_architecture_changes``)."""
    return "; ".join(f"{k}: {a!r} when fitted, {b!r} now" for k, (a, b) in changed.items())


def _all_finite(xp: Any, weights: list[dict]) -> bool:
    flags = [xp.all(xp.isfinite(w)) for layer in weights for w in layer.values()]
    ok = flags[0]
    for f in flags[1:]:
        ok = xp.logical_and(ok, f)
    return bool(ok)


def _take(a: Any, backend: Any, idx: np.ndarray) -> Any:
    if backend.name == "numpy":
        return a[idx]
    return backend.xp.take(a, backend.from_host(idx, dtype=backend.int_dtype), axis=0)


# ---------------------------------------------------------------------------- data


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


# ---------------------------------------------------------------------------- hyper-parameters


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


class _Diverged(Exception):
    def __init__(self, epoch: int, loss: float):
        super().__init__(epoch, loss)
        self.epoch, self.loss = epoch, loss


class _Monitor:
    """Per-epoch bookkeeping: curves, divergence and early stopping, decided in one place.

    Over ranks (``sync``) every rank holds the same global loss, validation values and
    weights, so every rank decides alike; the decisions are still taken together
    (``sync.any``), so that no rank can stop while another waits for it.
    """

    def __init__(self, mode: str | None, tol: float, patience: int, network: Network, sync: Sync):
        self.mode, self.tol, self.patience, self.sync = mode, tol, patience, sync
        self.loss_curve: list[float] = []
        self.val_scores: list[float] = []
        self.val_losses: list[float] = []
        self.epoch_times: list[float] = []
        self.best: float | None = None
        self.best_weights: list[dict] | None = None
        self.best_index: int | None = None
        self.no_improve = 0
        self.last_good = network.get_weights()

    def end_epoch(
        self,
        network: Network,
        epoch_loss: float,
        seconds: float,
        val_loss: float | None,
        val_score: float | None,
    ) -> bool:
        """Record one epoch; raise ``_Diverged`` or return whether to stop early."""
        weights = network.get_weights()
        finite = math.isfinite(epoch_loss) and _all_finite(network.layers[0].xp, weights)
        if self.sync.any(not finite):
            raise _Diverged(len(self.loss_curve) + 1, epoch_loss)
        self.last_good = weights
        self.loss_curve.append(epoch_loss)
        self.epoch_times.append(seconds)
        if self.mode is None:
            return False
        self.val_losses.append(val_loss)
        self.val_scores.append(val_score)
        value = val_score if self.mode == "score" else -val_loss
        if not math.isfinite(value):  # the same value on every rank: raised on all
            raise self.sync.collective(
                ValueError(
                    f"the validation {self.mode} is "
                    f"{value if self.mode == 'score' else val_loss} in epoch "
                    f"{len(self.loss_curve)}: early stopping cannot compare epochs. Use a "
                    "larger validation_fraction or early_stopping=False."
                )
            )
        if self.best is None or value > self.best + self.tol:
            self.best, self.best_weights, self.no_improve = value, weights, 0
            self.best_index = len(self.loss_curve) - 1
        else:
            self.no_improve += 1
        return self.sync.any(self.no_improve >= self.patience)


# ---------------------------------------------------------------------------- the estimators


class _RNNEstimator(BaseEstimator):
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

    # ------------------------------------------------------------------ fitting
    def _continues(self, partial: bool, hp: _Hyper) -> bool:
        return self.__sklearn_is_fitted__() and (partial or hp.warm_start)

    def _fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any,
        *,
        partial: bool,
        classes: Any = None,
        comm: Any = None,
    ):
        """Compute a fit, then commit it: nothing is assigned before every step succeeded.

        ``comm``: an mpi4py communicator for a data-parallel fit, each rank passing its
        own samples (:mod:`anyrnn.distributed`). ``sync`` holds the collective steps;
        without a communicator each of them does nothing.
        """
        sync = Sync.create(comm)
        with sync.guard():  # an error on one rank alone aborts every rank: none waits forever
            with sync.together():  # bad input on one rank raises on every rank
                hp = self._validate_hyperparams()
                backend = self._resolve()  # device= checked here, as a layer checks it
            # the whole fit (reading, losses, optimizer steps) with the model's device current
            return backend.run(
                self._fit_synced,
                sync,
                hp,
                backend,
                X,
                y,
                sample_weight,
                partial=partial,
                classes=classes,
            )

    def _fit_synced(
        self,
        sync: Sync,
        hp: _Hyper,
        backend: Any,
        X: Any,
        y: Any,
        sample_weight: Any,
        *,
        partial: bool,
        classes: Any,
    ):
        with sync.together():  # bad input on one rank raises on every rank
            cont = self._continues(partial, hp)
            panel = self._read(X, backend, fitting=True, layout=hp.layout)
            if cont:
                self._check_panel(panel)
        sync.agree({**vars(hp), "continues": cont}, "the hyper-parameters")
        y_host, y_all, info = self._read_y(
            y, panel, backend, classes=classes, partial=partial, cont=cont, sync=sync
        )
        labels = sync.concat(y_host) if self._stratify else None  # classifiers: every rank's
        with sync.together():
            w = self._weights(sample_weight, y_host, panel.n_samples, info, labels, partial=partial)
            self._check_fit_data(panel, info)
        sync.agree((panel.n_features, panel.n_columns), "X's features (per step, columns)")
        if not sync.any(w is None or np.any(w > 0)):  # over every rank's samples
            raise sync.collective(
                ValueError("sample_weight (times class_weight) is zero for every sample")
            )
        if hp.dropout > 0 and hp.num_layers == 1:
            warn_user(
                f"dropout={hp.dropout} acts between recurrent layers, and num_layers=1 has "
                "none: it has no effect",
                UserWarning,
            )
        rng = np.random.default_rng(self.random_state)
        if cont and partial and getattr(self, "_rng", None) is not None:
            rng = copy.deepcopy(self._rng)  # partial_fit goes on drawing where it stopped
        rng = sync.rng(rng)  # rank 0's random stream on every rank
        with sync.together():
            if cont:
                network = self._continued_network(hp, backend, panel.n_features, info, rng)
            else:
                network = _build_network(
                    hp, backend, panel.n_features, info["_n_out"], info["_sequences"], rng
                )
        sync.broadcast_params(network.layers)  # rank 0's weights on every rank
        if sync.size > 1 and isinstance(network.recurrent, Stacked):  # own dropout masks
            seed = network.recurrent.random_state
            network.recurrent._rng = np.random.default_rng([seed, sync.rank])
        data = _Data(panel.X, panel.lengths, y_all, y_host, w, info["_sequences"])
        train, val = data, None
        if hp.early_stopping and not partial:
            train, val = self._split(data, hp, backend, rng, info, labels, sync)
        old = getattr(self, "_optimizer", None) if partial and cont else None
        if old is not None and (type(old), old.lr, old.clip_norm) == (
            OPTIMIZERS[hp.optimizer],
            hp.lr,
            hp.clip_norm,
        ):  # partial_fit goes on with the optimizer's state (unless its settings changed)
            optimizer = copy.copy(old)
            optimizer.state = dict(old.state)
        else:
            optimizer = make_optimizer(hp.optimizer, hp.lr, hp.clip_norm)
        monitor = _Monitor(
            None if partial else hp.early_stopping, hp.tol, hp.n_iter_no_change, network, sync
        )
        try:
            self._train(network, optimizer, train, val, monitor, rng, backend, hp, partial, sync)
        except _Diverged as exc:
            network.set_weights(monitor.last_good)
            network.clear()
            fitted = self._fitted(network, monitor, optimizer, rng, panel, info, cont)
            last = clone(self)
            last._commit(fitted)
            err = FloatingPointError(
                f"training diverged in epoch {exc.epoch}: the loss became {exc.loss} (NaN or "
                f"infinite). Try a smaller lr (now {self.lr}) or set clip_norm (now "
                f"{self.clip_norm}), e.g. clip_norm=1.0. This estimator is unchanged; the "
                "error's .estimator attribute holds the model at its last finite epoch."
            )
            err.estimator = last
            raise sync.collective(err) from None  # every rank diverged together
        if monitor.best_weights is not None:
            network.set_weights(monitor.best_weights)
        network.clear()
        self._commit(self._fitted(network, monitor, optimizer, rng, panel, info, cont))
        return self

    def _train(
        self,
        network: Network,
        optimizer: Any,
        train: _Data,
        val: _Data | None,
        monitor: _Monitor,
        rng: np.random.Generator,
        backend: Any,
        hp: _Hyper,
        partial: bool,
        sync: Sync,
    ) -> None:
        """The epochs: shuffled minibatches, one gradient and one optimizer step each.

        Four places, each in one line: the minibatch gradient (``self._gradient``), the
        optimizer step, the epoch loss (``total``, one device sync per epoch) and every
        decision to stop (``monitor.end_epoch``: divergence, early stopping).

        Over ranks, the minibatches are global: the samples of all ranks are numbered in
        rank order and shuffled as one process shuffles them all; each rank computes the
        gradient of the samples it holds of a minibatch (maybe none), and
        ``sync.allreduce_grads`` makes it the minibatch's mean gradient before the step.
        """
        epochs = 1 if partial else hp.epochs
        shards = sync.shards(train.n)  # the training samples of every rank
        bar = tqdm(
            range(epochs),
            disable=not (self.verbose and sync.is_root),
            desc=type(self).__name__,
            unit="epoch",
            leave=True,
        )
        try:
            for _ in bar:
                t0 = time.perf_counter()
                total = None
                for sel, _ in shards.minibatches(rng, hp.batch_size):  # this rank's part of each
                    if sel.shape[0]:
                        batch = train.batch(sel, backend)
                        loss = self._gradient(network, batch)  # sets every layer's grads
                        part = loss * sel.shape[0]
                        total = part if total is None else total + part
                    sync.allreduce_grads(network.layers, sel.shape[0])
                    optimizer.step(network.layers)
                local = 0.0 if total is None else float(total)  # one device sync per epoch
                epoch_loss = sync.sum(local) / shards.n_global
                postfix = {"loss": f"{epoch_loss:.4f}"}
                val_loss = val_score = None
                if val is not None:
                    val_loss, val_score = self._evaluate(network, val, backend, sync)
                    postfix.update(val_loss=f"{val_loss:.4f}", val_score=f"{val_score:.4f}")
                stop = monitor.end_epoch(
                    network, epoch_loss, time.perf_counter() - t0, val_loss, val_score
                )
                bar.set_postfix(postfix)
                if stop:
                    break
        finally:
            bar.close()

    def _gradient(self, network: Network, batch: tuple) -> Any:
        """Forward and backward over one minibatch; returns its loss (a 0-D array)."""
        X, lengths, y, w = batch
        out = network.forward(X, lengths)
        loss, d_out = self._loss(out, y, w)
        network.backward(d_out)
        return loss

    def _evaluate(
        self, network: Network, data: _Data, backend: Any, sync: Sync
    ) -> tuple[float, float]:
        """Loss and score of held-out data (no gradients), over every rank's."""
        out = lengths = None
        loss = 0.0
        if data.n:  # a rank may hold none of the held-out samples
            X, lengths, y, w = data.batch(None, backend)
            out = network.infer(X, lengths)
            loss = float(self._loss(out, y, w)[0])
        loss = sync.mean(loss, data.n)
        if sync.size > 1:  # score every rank's outputs and targets, joined on the host
            out, data, lengths = _held_out_of_every_rank(sync, out, data, lengths)
        return loss, self._score_out(out, data, lengths)

    def _split(
        self,
        data: _Data,
        hp: _Hyper,
        backend: Any,
        rng: np.random.Generator,
        info: dict,
        labels: np.ndarray | None,
        sync: Sync,
    ) -> tuple[_Data, _Data]:
        """The training and validation parts (over ranks: the split of all the ranks'
        samples, stratified by all their ``labels``; each rank keeps its own of each)."""
        shards = sync.shards(data.n)
        with sync.together():  # the same on every rank
            idx_train, idx_val = self._split_indices(shards.n_global, hp, rng, info, labels)
        idx_train, idx_val = shards.local(idx_train), shards.local(idx_val)
        return data.subset(idx_train, backend), data.subset(idx_val, backend)

    def _split_indices(
        self, n: int, hp: _Hyper, rng: np.random.Generator, info: dict, labels: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        n_val = math.ceil(hp.validation_fraction * n)
        stratify = labels if self._stratify else None
        if n - n_val < 1:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} of {n} samples leaves no "
                "sample to train on; lower validation_fraction or set early_stopping=False"
            )
        if hp.early_stopping == "score":
            self._check_scorable(n_val, n)
        if stratify is not None:
            classes, counts = np.unique(stratify, return_counts=True)
            if n_val < classes.size or n - n_val < classes.size:
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} holds out {n_val} of {n} "
                    f"samples, but early stopping splits by class and y has {classes.size} "
                    "classes: both parts need at least one sample of each. Raise "
                    "validation_fraction (or lower it), use more data, or set "
                    "early_stopping=False."
                )
            if counts.min() < 2:
                label = info["classes_"][classes[np.argmin(counts)]]
                raise ValueError(
                    f"early stopping splits by class, and class {label!r} has only 1 sample: "
                    "it cannot be in both the training and the validation part. Use more data "
                    "or set early_stopping=False."
                )
        idx_train, idx_val = train_test_split(
            np.arange(n),
            test_size=n_val,
            stratify=stratify,
            random_state=int(rng.integers(2**31 - 1)),
        )
        return np.sort(idx_train), idx_val

    def _check_scorable(self, n_val: int, n: int) -> None:
        pass

    def _continued_network(
        self, hp: _Hyper, backend: Any, n_features: int, info: dict, rng: Any
    ) -> Network:
        """A new network holding the fitted weights (the fitted one is not touched)."""
        changed = self._architecture_changes(hp)
        if changed:
            raise ValueError(
                f"warm_start and partial_fit continue the fitted network, but its architecture "
                f"changed since it was fitted ({_describe_changes(changed)}). Set "
                "warm_start=False to fit a new one."
            )
        with zero_init():
            network = _build_network(
                hp, backend, n_features, info["_n_out"], info["_sequences"], rng
            )
        same = backend == self.network_.layers[0]._backend
        for layer, old in zip(network.layers, self.network_.layers):
            layer._params = {
                k: v if same else backend.from_host(to_numpy(v)) for k, v in old.params.items()
            }
        return network

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

    def _check_savable_config(self) -> None:
        """``ValueError`` unless the hyper-parameters describe the fitted network (what
        :func:`anyrnn.io.save` asks before writing: load would build what they describe)."""
        changed = self._architecture_changes(self._validate_hyperparams())
        if changed:
            back = ", ".join(f"{k}={a!r}" for k, (a, _) in changed.items())
            raise ValueError(
                f"hyper-parameters that shape the network were changed with set_params() "
                f"after fit ({_describe_changes(changed)}): the file would describe another "
                f"network than the fitted one, and load would build that one. Fit again, or "
                f"set them back (set_params({back})), before saving."
            )

    def _fitted(
        self,
        network: Network,
        monitor: _Monitor,
        optimizer: Any,
        rng: Any,
        panel: Panel,
        info: dict,
        cont: bool,
    ) -> dict:
        """Every fitted attribute of this fit (continuing the curves of a continued one)."""
        val = monitor.mode is not None
        best = monitor.best_index
        fitted = {
            **info,
            "network_": network,
            "_optimizer": optimizer,
            "_rng": rng,
            "validation_scores_": None,
            "validation_loss_curve_": None,
            "best_validation_score_": None,
            "best_validation_loss_": None,
        }
        if cont:
            fitted.update(
                n_features_in_=self.n_features_in_,
                _n_step_features=self._n_step_features or self.n_features_in_,
                _x_2d=self._x_2d,
                loss_curve_=list(self.loss_curve_) + monitor.loss_curve,
                epoch_times_=list(self.epoch_times_) + monitor.epoch_times,
                n_iter_=self.n_iter_ + len(monitor.loss_curve),
            )
            if getattr(self, "feature_names_in_", None) is not None:
                fitted["feature_names_in_"] = self.feature_names_in_
        else:
            fitted.update(
                n_features_in_=panel.n_columns or panel.n_features,
                _n_step_features=panel.n_features,
                _x_2d=panel.n_columns is not None,
                loss_curve_=monitor.loss_curve,
                epoch_times_=monitor.epoch_times,
                n_iter_=len(monitor.loss_curve),
            )
            if panel.feature_names is not None:
                fitted["feature_names_in_"] = panel.feature_names
        if val:
            fitted.update(
                validation_scores_=monitor.val_scores,
                validation_loss_curve_=monitor.val_losses,
                best_validation_score_=None if best is None else monitor.val_scores[best],
                best_validation_loss_=None if best is None else monitor.val_losses[best],
            )
        return fitted

    def _commit(self, fitted: dict) -> None:
        if "feature_names_in_" not in fitted and hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        vars(self).update(fitted)

    def _weights(
        self,
        sample_weight: Any,
        y_host: np.ndarray,
        n: int,
        info: dict,
        labels: np.ndarray | None,
        *,
        partial: bool,
    ):
        """Per-sample weights on the host (None when every weight is 1).

        ``labels``: the encoded labels of every rank (classifiers), for
        ``class_weight="balanced"``. A caller checks that some weight is positive.
        """
        w = None
        if sample_weight is not None:
            if array_library(sample_weight) not in ("numpy", "builtins", "pandas"):
                sample_weight = to_numpy(sample_weight)
            w = np.asarray(sample_weight)
            if w.dtype.kind not in "biuf":
                raise ValueError(f"sample_weight must hold real numbers; got dtype {w.dtype}")
            w = w.astype(np.float64)
            if w.ndim == 0:
                w = np.full(n, float(w))
            if w.shape != (n,):
                raise ValueError(
                    f"sample_weight.shape == {w.shape}, expected {(n,)} (one weight per sample)"
                )
            if not np.all(np.isfinite(w)):
                raise ValueError("Input sample_weight contains NaN or infinity.")
            if np.any(w < 0):
                raise ValueError(
                    f"Negative values in data passed to sample_weight: got min {w.min()}"
                )
        w = self._times_class_weight(w, y_host, info, labels, partial)
        if w is not None and np.all(w == 1.0):
            return None
        return w

    def _times_class_weight(
        self, w: Any, y_host: np.ndarray, info: dict, labels: Any, partial: bool
    ) -> Any:
        return w

    def _check_fit_data(self, panel: Panel, info: dict) -> None:
        """Checks of the data against hyper-parameters that run before training."""

    def _infer(self, X: Any) -> tuple[Any, Any, Panel]:
        check_is_fitted(self)
        backend = self.network_.layers[0]._backend
        panel = self._read(X, backend, fitting=False, layout=self._layout_for_predict())
        self._check_panel(panel)
        return self.network_.infer(panel.X, panel.lengths), backend, panel

    def _layout_for_predict(self) -> str | None:
        layout = self.layout
        return None if layout is None else check_choice(layout, "layout", LAYOUTS, lower=True)

    # model files ------------------------------------------------------------------
    #: fitted scalars a model file keeps
    _state_keys = (
        "n_features_in_",
        "feature_names_in_",
        "loss_curve_",
        "validation_scores_",
        "validation_loss_curve_",
        "best_validation_score_",
        "best_validation_loss_",
        "n_iter_",
        "epoch_times_",
        "_n_out",
        "_y_ndim",
        "_sequences",
        "_n_step_features",
        "_x_2d",
    )

    def save(self, path: Any) -> None:
        """Save the fitted estimator: the same as ``anyrnn.save(self, path)``.

        The file keeps the hyper-parameters, the fitted attributes and the weights, not
        the optimizer's state: after ``load``, ``partial_fit`` starts a fresh optimizer.
        It refuses (``ValueError``, nothing written) while a hyper-parameter that shapes
        the network (``cell``, ``n_nodes``, ``num_layers``, ``bidirectional``, the simple
        cell's ``activation``) differs from the fitted one: fit again or set it back.
        """
        io.save(self, path)

    @property
    def _backend(self) -> Any:
        check_is_fitted(self)
        return self.network_.layers[0]._backend

    def get_config(self) -> dict:
        """The hyper-parameters (``get_params(deep=False)``) as a model file keeps them."""
        check_is_fitted(self)
        params = self.get_params(deep=False)
        backend = self._backend
        params["backend"] = backend.name if backend.name in BACKEND_NAMES else backend._module_name
        params["device"] = None
        if not isinstance(params.get("random_state"), int | type(None)):
            params["random_state"] = None  # a Generator's state is not a hyper-parameter
        if isinstance(params.get("class_weight"), dict):  # JSON keys are strings only
            params["class_weight"] = {
                "__pairs__": [[k, v] for k, v in params["class_weight"].items()]
            }
        return params

    def _saved_state(self) -> dict:
        state = {k: getattr(self, k) for k in self._state_keys if hasattr(self, k)}
        if "feature_names_in_" in state:
            state["feature_names_in_"] = [str(v) for v in state["feature_names_in_"]]
        return state

    @on_device
    def _saved_arrays(self) -> dict[str, np.ndarray]:
        return {
            f"{prefix}/{name}": to_numpy(v)
            for prefix, layer in self.network_.named_layers()
            for name, v in layer.params.items()
        }

    @classmethod
    def _restore_unfitted(cls, config: dict, state: dict) -> _RNNEstimator:
        """The estimator with the file's hyper-parameters and fitted scalars, no network."""
        unknown = set(state) - set(cls._state_keys)
        if unknown:
            raise ValueError(f"unknown fitted attribute(s) {sorted(unknown)}")
        config = dict(config)
        cw = config.get("class_weight")
        if isinstance(cw, dict) and set(cw) == {"__pairs__"}:
            pairs = cw["__pairs__"]
            if not (
                isinstance(pairs, list) and all(isinstance(p, list) and len(p) == 2 for p in pairs)
            ):
                raise ValueError("class_weight pairs are malformed")
            config["class_weight"] = {k: v for k, v in pairs}
        est = cls(**config)
        est._validate_hyperparams()
        for key, value in state.items():
            setattr(est, key, value)
        for key in ("n_features_in_", "_n_out"):
            check_int(getattr(est, key, None), key)
        est._n_step_features = check_int(
            getattr(est, "_n_step_features", est.n_features_in_), "_n_step_features"
        )
        est._x_2d = check_bool(getattr(est, "_x_2d", False), "_x_2d")
        est._sequences = check_bool(getattr(est, "_sequences", False), "_sequences")
        names = getattr(est, "feature_names_in_", None)
        if names is not None:
            if not (
                isinstance(names, list)
                and all(isinstance(v, str) for v in names)
                and len(names) == est.n_features_in_
            ):
                raise ValueError("feature_names_in_ must be n_features_in_ strings")
            est.feature_names_in_ = np.asarray(names, dtype=object)
        return est

    @classmethod
    def _array_specs(cls, config: dict, state: dict) -> dict:
        est = cls._restore_unfitted(config, state)
        return _param_specs(est._validate_hyperparams(), est._n_step_features, est._n_out)

    @classmethod
    def _from_saved(cls, config: dict, state: dict, arrays: dict, backend: Any) -> _RNNEstimator:
        # the network is built and filled with the model's device current
        return backend.run(cls._rebuild, config, state, arrays, backend)

    @classmethod
    def _rebuild(cls, config: dict, state: dict, arrays: dict, backend: Any) -> _RNNEstimator:
        name = backend.name if backend.name in BACKEND_NAMES else backend.xp
        config = {**config, "backend": name, "device": None}
        est = cls._restore_unfitted(config, state)
        est._restore_extra(arrays)
        hp = est._validate_hyperparams()
        with zero_init():
            network = _build_network(
                hp, backend, est._n_step_features, est._n_out, est._sequences, None
            )
        for prefix, layer in network.named_layers():
            head = prefix + "/"
            layer.set_params_from(
                {
                    k[len(head) :]: v
                    for k, v in arrays.items()
                    if k.startswith(head) and "/" not in k[len(head) :]
                }
            )
        est.network_ = network
        est._optimizer = make_optimizer(hp.optimizer, hp.lr, hp.clip_norm)
        est._rng = np.random.default_rng(est.random_state)
        return est

    def _restore_extra(self, arrays: dict) -> None:
        pass


# ---------------------------------------------------------------------------- classifier


def _labels_on_host(y: Any) -> np.ndarray:
    if y is None:
        raise ValueError("requires y to be passed, but the target y is None")
    if array_library(y) in ("cupy", "torch", "jax", "array_api_strict"):
        return to_numpy(y)
    return np.asarray(y)


@io.register
class RNNClassifier(ClassifierMixin, _RNNEstimator):
    """A recurrent classifier: recurrent layer(s) → Dense → softmax (sigmoid for 2 classes).

    Parameters
    ----------
    n_nodes : int
        Hidden units of each recurrent layer (per direction).
    cell : {"simple", "lstm", "gru"}
        The recurrent cell (:class:`~anyrnn.SimpleRNN`, :class:`~anyrnn.LSTM`,
        :class:`~anyrnn.GRU`); case-insensitive.
    num_layers : int
        Recurrent layers stacked (:class:`~anyrnn.Stacked`).
    bidirectional : bool
        Each recurrent layer reads the sequences both ways (:class:`~anyrnn.Bidirectional`,
        outputs concatenated).
    dropout : float in [0, 1)
        Dropout on the outputs between recurrent layers during training (none with
        ``num_layers=1``).
    activation : {"tanh", "relu"}
        Activation of the simple cell (ignored by LSTM and GRU).
    optimizer : {"sgd", "momentum", "adagrad", "rmsprop", "adam"}
    lr : float
        Learning rate.
    batch_size : int
    epochs : int
        Passes over the training data in ``fit`` (fewer with early stopping).
    layout : {None, "ntf", "nct"}
        How a 3-D ``X`` (and each sequence of a list) is laid out: ``"ntf"`` (samples,
        time steps, features); ``"nct"`` (samples, channels, time steps), as aeon and
        sktime hold panels. None: ``"ntf"``, warning at ``fit`` when ``X`` has fewer
        time steps than features (a sign of the other layout).
    class_weight : None, "balanced" or dict
        Weights of the classes in the loss (``{label: weight}``); ``"balanced"`` uses
        ``n_samples / (n_classes * count(label))``. Multiplies ``sample_weight``.
    warm_start : bool
        ``fit`` continues from the fitted weights (same architecture and classes)
        instead of starting anew; the curves and ``n_iter_`` continue too.
    verbose : bool
        Show a progress bar with the loss per epoch.
    random_state : None, int or numpy.random.Generator
        Initial weights, shuffling, dropout and the validation split.
    backend, device, dtype
        Where the model computes, as for :class:`anyrnn.SimpleRNN`.
    clip_norm : float or None
        Clip gradients by their global norm.
    early_stopping : False, True, "score" or "loss"
        Hold out ``validation_fraction`` of the training data (stratified), stop when
        its accuracy (``True``/``"score"``) or its loss (``"loss"``) has not improved by
        ``tol`` for ``n_iter_no_change`` epochs, and keep the weights of the best epoch.
        The model is not refit on all the data. ``partial_fit`` ignores it.
    validation_fraction, n_iter_no_change, tol
        As above.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
        Features per time step; for a 2-D ``X`` (univariate sequences), its columns.
    feature_names_in_ : ndarray of str
        Column names of a 2-D pandas ``X`` (only then).
    loss_curve_ : list of float
        Mean training loss per epoch (weighted by the sample weights).
    validation_scores_, validation_loss_curve_ : list of float or None
        Held-out accuracy and loss per epoch (with early stopping).
    best_validation_score_, best_validation_loss_ : float or None
        Their values at the epoch whose weights are kept.
    n_iter_ : int
        Epochs run.
    epoch_times_ : list of float
        Seconds per epoch.
    network_ : Network
        The fitted layers (``network_.recurrent``, ``network_.head``).

    Notes
    -----
    ``y`` may hold any labels (ints, strings, objects) or be one-hot rows of shape
    (n_samples, n_classes). ``predict`` returns labels as a NumPy array;
    ``predict_proba`` an array of the estimator's backend. A fit whose loss turns
    NaN/inf raises ``FloatingPointError``; the estimator is left as it was and the
    error's ``estimator`` attribute holds a copy at the last finite epoch.
    """

    _stratify = True
    _sequences = False
    _extra_arrays = ("classes_",)

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
        class_weight: Any = None,
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
        super().__init__(
            n_nodes,
            cell=cell,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
            activation=activation,
            optimizer=optimizer,
            lr=lr,
            batch_size=batch_size,
            epochs=epochs,
            layout=layout,
            warm_start=warm_start,
            verbose=verbose,
            random_state=random_state,
            backend=backend,
            device=device,
            dtype=dtype,
            clip_norm=clip_norm,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
        )
        self.class_weight = class_weight

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags

    # targets ------------------------------------------------------------------------
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
        """Encoded labels on the host and on the backend, and the fitted target info.

        Over ranks, the labels of every rank are read as one, as one process reads them
        all (``classes_``, the checks); each rank keeps the rows of its own samples.
        """
        with sync.together():
            y = _labels_on_host(y)
        y, shards = sync.gather_rows(y, panel.n_samples)
        with sync.together():
            encoded, info = self._encode_labels(y, shards.n_global, classes, partial, cont)
        sync.agree(info["classes_"].tolist(), "classes_ (partial_fit's classes=)")
        encoded = shards.rows(encoded)
        if info["_n_out"] == 1:
            y_all = backend.from_host(encoded[:, None])  # 0/1 floats for the sigmoid loss
        else:
            y_all = backend.from_host(encoded, dtype=backend.int_dtype)
        return encoded, y_all, info

    def _encode_labels(
        self, y: np.ndarray, n: int, classes: Any, partial: bool, cont: bool
    ) -> tuple[np.ndarray, dict]:
        """Labels checked and encoded (0 .. n_classes-1), and the fitted target info."""
        onehot = y.ndim == 2 and y.shape[1] > 1 and y.dtype.kind in "biuf"
        if onehot:
            if not np.all(np.isfinite(y)):
                raise ValueError("Input y contains NaN or infinity.")
            if not (np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1)):
                raise ValueError(
                    "a 2-D y must be one-hot rows (0/1 with exactly one 1 per row); got "
                    f"values in [{y.min()}, {y.max()}] with row sums in "
                    f"[{y.sum(axis=1).min()}, {y.sum(axis=1).max()}]"
                )
            labels = np.argmax(y, axis=1)
            found = np.arange(y.shape[1])
        else:
            if y.ndim == 2 and y.shape[1] == 1:
                warn_user(
                    "A column-vector y was passed when a 1d array was expected. Please change "
                    "the shape of y to (n_samples,), for example using ravel().",
                    DataConversionWarning,
                )
                y = y[:, 0]
            if y.ndim != 1:
                raise ValueError(
                    "y must be 1-D labels (n_samples,) or one-hot (n_samples, n_classes); got "
                    f"shape {y.shape}"
                )
            labels = y
            try:
                check_classification_targets(y)
                found = np.unique(y)
            except TypeError:
                raise ValueError(
                    "the labels in y cannot be sorted (mixed types?): use all numbers or all "
                    "strings"
                ) from None
        if labels.shape[0] != n:
            raise ValueError(
                f"X and y have different numbers of samples: X has {n}, y has {labels.shape[0]}"
            )
        classes_ = self._fit_classes(found, classes, partial, cont)
        if classes_.shape[0] < 2:
            raise ValueError(
                f"the classifier needs at least 2 classes in y; got 1 class: {classes_}"
            )
        known = np.isin(labels, classes_)
        if not known.all():
            extra = np.unique(labels[~known])
            raise ValueError(
                f"y has label(s) {extra.tolist()[:10]} that are not among the classes "
                f"{classes_.tolist()[:20]} (fixed by the first partial_fit's classes= or a "
                "warm-started fit)"
            )
        encoded = np.searchsorted(classes_, labels) if not onehot else labels
        n_out = 1 if classes_.shape[0] == 2 else int(classes_.shape[0])
        return encoded, {"classes_": classes_, "_n_out": n_out, "_sequences": False}

    def _fit_classes(
        self, found: np.ndarray, classes: Any, partial: bool, cont: bool
    ) -> np.ndarray:
        """The classes of this fit: y's, partial_fit's ``classes``, or the fitted ones."""
        fitted = self.__sklearn_is_fitted__()
        if partial:
            if classes is not None:
                classes = np.unique(_labels_on_host(classes))
            if not fitted:
                if classes is None:
                    raise ValueError(
                        "classes must be passed on the first call to partial_fit: all the "
                        "labels the classifier will ever see"
                    )
                return classes
            if classes is not None and not np.array_equal(classes, self.classes_):
                raise ValueError(
                    f"classes={classes.tolist()} is not the same as on the first call to "
                    f"partial_fit: {self.classes_.tolist()}"
                )
            return self.classes_
        if cont:
            if not np.array_equal(found, self.classes_):
                raise ValueError(
                    "warm_start can only be used where y has the same classes as in the "
                    f"previous call to fit. Previously got {self.classes_.tolist()}, y has "
                    f"{found.tolist()}"
                )
            return self.classes_
        return found

    def _times_class_weight(
        self, w: Any, y_host: np.ndarray, info: dict, labels: Any, partial: bool
    ) -> Any:
        cw = self.class_weight
        if cw is None:
            return w
        if isinstance(cw, str):
            if cw != "balanced":
                raise ValueError(
                    f"class_weight must be None, 'balanced' or a dict; got class_weight={cw!r}"
                )
            if partial:
                raise ValueError(
                    "class_weight='balanced' is not supported by partial_fit, which sees one "
                    "chunk of the data at a time: compute the weights once with "
                    "sklearn.utils.class_weight.compute_class_weight and pass them as a dict"
                )
        elif not isinstance(cw, dict):
            raise ValueError(
                f"class_weight must be None, 'balanced' or a dict; got class_weight={cw!r}"
            )
        classes = info["classes_"]
        if isinstance(cw, dict):
            unknown = [k for k in cw if not np.isin(np.asarray([k], dtype=object), classes).any()]
            if unknown:
                raise ValueError(
                    f"class_weight has label(s) {unknown[:10]} that are not classes of y: "
                    f"{classes.tolist()[:20]}"
                )
            for k, v in cw.items():
                check_real(v, f"class_weight[{k!r}]", low=0)
        per_class = (
            compute_class_weight(cw, classes=np.arange(classes.shape[0]), y=labels)
            if cw == "balanced"
            else np.array([float(cw.get(c, 1.0)) for c in classes.tolist()])
        )
        cw_rows = per_class[y_host]
        return cw_rows if w is None else w * cw_rows

    def _restore_extra(self, arrays: dict) -> None:
        n_classes = arrays["classes_"].shape[0]
        if self._n_out != (1 if n_classes == 2 else n_classes):
            raise io.ModelFileError(
                f"{n_classes} classes do not fit an output layer of {self._n_out}"
            )
        self.classes_ = arrays["classes_"]

    def _saved_arrays(self) -> dict[str, np.ndarray]:
        classes = np.asarray(self.classes_)
        if classes.dtype.kind == "O" and all(isinstance(c, str) for c in classes.tolist()):
            classes = classes.astype(str)
        if classes.dtype.kind not in "biuU":
            raise ValueError(
                f"classes_ of dtype {classes.dtype} cannot be saved: use int or str labels"
            )
        return {**super()._saved_arrays(), "classes_": classes}

    @staticmethod
    def _check_extra_array(name: str, dtype: np.dtype, shape: tuple) -> None:
        if dtype.kind not in "biuU" or len(shape) != 1:
            raise io.ModelFileError(
                f"classes_ must be a 1-D int or str array; got {dtype} {list(shape)}"
            )

    # loss and outputs -----------------------------------------------------------------
    def _loss(self, out: Any, y: Any, w: Any) -> tuple[Any, Any]:
        # the labels are our own encoding: no value check (it would cost a device sync)
        if out.shape[1] == 1:
            return losses.sigmoid_binary_cross_entropy(out, y, sample_weight=w, check_values=False)
        return losses.softmax_cross_entropy(out, y, sample_weight=w, check_values=False)

    def _score_out(self, out: Any, data: _Data, lengths: Any) -> float:
        xp = array_api_compat.array_namespace(out)
        pred = to_numpy(xp.argmax(self._proba(out, xp), axis=1))
        return float(accuracy_score(data.y_host, pred, sample_weight=data.w))

    def _proba(self, logits: Any, xp: Any) -> Any:
        if logits.shape[1] == 1:
            p = losses.sigmoid(logits)
            return xp.concat([1 - p, p], axis=1)
        return losses.softmax(logits, axis=1)

    # public ---------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None, *, comm: Any = None) -> RNNClassifier:
        """Fit on sequences X and labels (or one-hot rows) y.

        Parameters
        ----------
        X : array of shape (n_samples, n_steps, n_features), (n_samples, n_steps), or a
            list of (n_steps_i, n_features) arrays; NaN after a sequence's end is padding
            (see ``layout`` for (n_samples, n_channels, n_steps) panels)
        y : array of shape (n_samples,) or one-hot (n_samples, n_classes)
        sample_weight : array of shape (n_samples,), optional
            Each sample's weight in the loss (the minibatch loss is the mean of
            weight × loss); multiplied by ``class_weight``.
        comm : mpi4py communicator, optional
            Data-parallel training: every rank of ``comm`` calls ``fit`` with its own
            samples (X, y and sample_weight of its shard) and ends with the model one
            process would fit on all of them (see :mod:`anyrnn.distributed`).
        """
        return self._fit(X, y, sample_weight, partial=False, comm=comm)

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None, *, comm: Any = None
    ) -> RNNClassifier:
        """One epoch over (X, y), continuing the fitted network and optimizer.

        ``classes`` (every label the classifier will ever see) is required on the first
        call and must not change. Early stopping does not apply. ``comm``: as for
        :meth:`fit`, each rank passing its own samples.
        """
        return self._fit(X, y, sample_weight, partial=True, classes=classes, comm=comm)

    @on_device
    def predict_proba(self, X: Any) -> Any:
        """Class probabilities, (n_samples, n_classes); rows sum to 1."""
        logits, backend, _ = self._infer(X)
        return self._proba(logits, backend.xp)

    @on_device
    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (NumPy array of the classes' type)."""
        proba = self.predict_proba(X)
        return self.classes_[to_numpy(self.network_.layers[0].xp.argmax(proba, axis=1))]

    @on_device
    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (weighted by ``sample_weight``)."""
        y = _labels_on_host(y)
        if y.ndim == 2 and y.shape[1] > 1:
            y = self.classes_[np.argmax(y, axis=1)]
        elif y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        return float(accuracy_score(y, self.predict(X), sample_weight=sample_weight))


@io.register
class ScratchSimpleRNNClassifier(RNNClassifier):
    """The seeds' classifier name, as a scikit-learn estimator.

    The same model as :class:`RNNClassifier`, accepting the seeds' parameter names
    (``n_nodes``, ``activation``, ``optimizer``, ``lr``, ``batch_size``, ``epochs``,
    ``verbose``, ``random_state``) and, optionally, the seeds' ``n_features`` and
    ``n_output``: when given they are checked against the data before training. For
    the seed notebook's exact class (``forward`` returning ``(h, h_sequence, y)``, MSE
    training), see :class:`anyrnn.scratch.ScratchSimpleRNNClassifier`.
    """

    def __init__(
        self,
        n_nodes: int = 32,
        n_features: int | None = None,
        n_output: int | None = None,
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
        class_weight: Any = None,
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
        super().__init__(
            n_nodes,
            cell=cell,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
            activation=activation,
            optimizer=optimizer,
            lr=lr,
            batch_size=batch_size,
            epochs=epochs,
            layout=layout,
            class_weight=class_weight,
            warm_start=warm_start,
            verbose=verbose,
            random_state=random_state,
            backend=backend,
            device=device,
            dtype=dtype,
            clip_norm=clip_norm,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
        )
        self.n_features = n_features
        self.n_output = n_output

    def _architecture_changes(self, hp: _Hyper) -> dict[str, tuple[Any, Any]]:
        """As for every estimator, and the seeds' ``n_features`` and ``n_output`` when given:
        the fitted network's input features per step and outputs."""
        changed = super()._architecture_changes(hp)
        n_features = self._n_step_features or self.n_features_in_
        if self.n_features is not None and self.n_features != n_features:
            changed["n_features"] = (n_features, self.n_features)
        n_classes = len(self.classes_)
        if self.n_output is not None and self.n_output not in (self._n_out, n_classes):
            changed["n_output"] = (self._n_out, self.n_output)
        return changed

    def _check_fit_data(self, panel: Panel, info: dict) -> None:
        name = type(self).__name__
        if self.n_features is not None:
            n_features = check_int(self.n_features, "n_features")
            if panel.n_features != n_features:
                raise ValueError(
                    f"X has {panel.n_features} features, but {name} was built with "
                    f"n_features={self.n_features}"
                )
        if self.n_output is not None:
            n_output = check_int(self.n_output, "n_output")
            n_classes = len(info["classes_"])
            if n_output not in (n_classes, 1 if n_classes == 2 else n_classes):
                raise ValueError(
                    f"n_output={self.n_output} does not fit y, which has {n_classes} classes"
                )


# ---------------------------------------------------------------------------- regressor


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
        return _r2(to_numpy(out), y, lengths, data.w)

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


def _r2(pred: np.ndarray, y: np.ndarray, lengths: Any, w: Any) -> float:
    """R² over samples (and real steps of sequence targets), every output pooled."""
    if y.ndim == 3:
        n, t, k = y.shape
        real = (
            np.ones((n, t), dtype=bool)
            if lengths is None
            else np.arange(t)[None, :] < np.asarray(lengths)[:, None]
        )
        ww = None if w is None else np.broadcast_to(np.asarray(w)[:, None], (n, t))[real]
        return float(r2_score(y[real], pred.reshape(y.shape)[real], sample_weight=ww))
    return float(r2_score(y, pred.reshape(y.shape), sample_weight=w))
