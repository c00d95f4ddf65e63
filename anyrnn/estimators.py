"""scikit-learn estimators: a recurrent layer, a Dense head, a loss and an optimizer.

``X`` is ``(n_samples, n_sequences, n_features)``. The estimators follow the
scikit-learn protocol through its base classes (``get_params``/``set_params``,
``clone``, ``Pipeline``, ``GridSearchCV``, ``cross_val_score``, pickling) and compute on
the backend named by ``backend=``/``device=``/``dtype=``: the data are moved there once
per ``fit``; shuffling indices are drawn on the host from ``random_state``, so the same
``random_state`` gives a bit-identical fit on the same backend.

Outputs: ``predict`` of the classifier returns labels as a NumPy array (labels may be
strings); ``predict_proba`` and the regressor's ``predict`` return arrays of the
estimator's backend (NumPy arrays on the default backend).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from . import io
from ._checks import check_bool, check_int, check_real
from .backend import BACKEND_NAMES, resolve_backend, to_numpy
from .cells.init import zero_init
from .cells.simple import ACTIVATIONS
from .distributed import Sync  # distributed:
from .layers.dense import Dense
from .layers.recurrent import CELLS, make_recurrent
from .train import losses
from .train.optimizers import OPTIMIZERS, make_optimizer

__all__ = ["RNNClassifier", "RNNRegressor", "ScratchSimpleRNNClassifier", "Network"]


class Network:
    """A recurrent layer followed by a Dense head (applied to every step for sequences)."""

    def __init__(self, recurrent: Any, head: Dense):
        self.recurrent, self.head = recurrent, head

    @property
    def layers(self) -> list:
        return [self.recurrent, self.head]

    def forward(self, X: Any) -> Any:
        return self.head.forward(self.recurrent.forward(X))

    def backward(self, d_out: Any) -> Any:
        return self.recurrent.backward(self.head.backward(d_out))

    def infer(self, X: Any) -> Any:
        return self.head.infer(self.recurrent.infer(X))

    def clear(self) -> None:
        for layer in self.layers:
            layer.clear()

    def get_weights(self) -> list[dict]:
        return [layer.params for layer in self.layers]

    def set_weights(self, weights: list[dict]) -> None:
        for layer, w in zip(self.layers, weights):
            layer._params = dict(w)


class _RNNEstimator(BaseEstimator):
    """Shared fit loop; subclasses define targets, the loss and the score."""

    def __init__(
        self,
        n_nodes: int = 32,
        *,
        cell: str = "simple",
        activation: str = "tanh",
        optimizer: str = "adam",
        lr: float = 0.01,
        batch_size: int = 32,
        epochs: int = 30,
        verbose: bool = False,
        random_state: Any = None,
        backend: Any = "numpy",
        device: Any = None,
        dtype: str = "float32",
        clip_norm: float | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
    ):
        self.n_nodes = n_nodes
        self.cell = cell
        self.activation = activation
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
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

    # ------------------------------------------------------------------ validation
    def _validate_hyperparams(self) -> None:
        check_int(self.n_nodes, "n_nodes")
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}; got cell={self.cell!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {list(ACTIVATIONS)}; got activation={self.activation!r}"
            )
        if not isinstance(self.optimizer, str) or self.optimizer.lower() not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {sorted(OPTIMIZERS)}; got optimizer={self.optimizer!r}"
            )
        check_real(self.lr, "lr", low=0, low_open=True)
        check_int(self.batch_size, "batch_size")
        check_int(self.epochs, "epochs")
        if self.clip_norm is not None:
            check_real(self.clip_norm, "clip_norm", low=0, low_open=True)
        check_bool(self.early_stopping, "early_stopping")
        check_real(
            self.validation_fraction,
            "validation_fraction",
            low=0,
            high=1,
            low_open=True,
            high_open=True,
        )
        check_int(self.n_iter_no_change, "n_iter_no_change")
        check_real(self.tol, "tol", low=0)

    def _resolve(self):
        return resolve_backend(self.backend, self.device, self.dtype)

    def _check_X(self, X: Any, backend: Any, *, reset: bool) -> Any:
        name = type(self).__name__
        Xb = backend.asarray(X, name="X")
        if Xb.ndim != 3:
            raise ValueError(
                f"X must be 3-D (n_samples, n_sequences, n_features); got {Xb.ndim}-D with shape "
                f"{tuple(Xb.shape)}. Reshape a 2-D table to (n_samples, n_sequences, n_features)."
            )
        n, t, f = Xb.shape
        if n == 0 or t == 0 or f == 0:
            raise ValueError(
                f"X must have at least one sample, time step and feature; got shape {tuple(Xb.shape)}"
            )
        if not reset and f != self.n_features_in_:
            raise ValueError(
                f"X has {f} features, but {name} is expecting {self.n_features_in_} features as input."
            )
        xp = backend.xp
        if not bool(xp.all(xp.isfinite(Xb))):
            raise ValueError("Input X contains NaN or infinity.")
        return Xb

    # ------------------------------------------------------------------ fitting
    def _build(
        self, backend: Any, n_features: int, n_out: int, sequences: bool, rng: np.random.Generator
    ) -> Network:
        kw = dict(backend=backend, dtype=backend.dtype_name, random_state=rng)
        recurrent = make_recurrent(
            self.cell,
            n_features,
            self.n_nodes,
            activation=self.activation,
            return_sequences=sequences,
            **kw,
        )
        head = Dense(self.n_nodes, n_out, **kw)
        return Network(recurrent, head)

    def _fit(self, X: Any, y: Any, comm: Any = None) -> _RNNEstimator:
        sync = Sync.create(comm)  # distributed: a no-op object when comm is None
        with sync.guard():  # distributed: an error on one rank alone aborts every rank
            return self._fit_synced(X, y, sync)

    def _fit_synced(self, X: Any, y: Any, sync: Sync) -> _RNNEstimator:
        with sync.together():  # distributed: one rank's bad input raises on every rank
            self._validate_hyperparams()
            backend = self._resolve()
            xp = backend.xp
            Xb = self._check_X(X, backend, reset=True)
            n_samples = Xb.shape[0]
        y_host = sync.prepare_targets(  # distributed: was self._prepare_y(y, n_samples, T)
            self._prepare_y, y, n_samples, Xb.shape[1], gather=self._stratify
        )  # host targets, encoded (classifiers: classes_ from every rank's labels)
        rng = sync.rng(self.random_state)  # distributed: rank 0's random stream everywhere
        network = self._build(backend, Xb.shape[2], self._n_out, self._sequences, rng)
        sync.broadcast_params(network.layers)  # distributed: rank 0's initial weights

        shards = sync.shards(n_samples)  # distributed: samples numbered across ranks
        idx_train = np.arange(shards.n_global)  # distributed: was np.arange(n_samples)
        idx_val = None
        if self.early_stopping:
            stratify = sync.concat(y_host) if self._stratify else None  # distributed: concat
            idx_train, idx_val = train_test_split(
                idx_train,
                test_size=self.validation_fraction,
                stratify=stratify,
                random_state=int(rng.integers(2**31 - 1)),
            )
            idx_train = np.sort(idx_train)
            idx_val = shards.local(idx_val)  # distributed: this rank's validation samples
        idx_train = shards.local(idx_train)  # distributed: this rank's training samples
        y_all = self._targets_on(backend, y_host)
        X_train, y_train = _take(xp, Xb, backend, idx_train), _take(xp, y_all, backend, idx_train)
        X_val = None if idx_val is None else _take(xp, Xb, backend, idx_val)  # fixed: once
        y_val = None if idx_val is None else sync.concat(y_host[idx_val])  # distributed: all
        n_train = X_train.shape[0]
        batches = sync.shards(n_train)  # distributed: the training samples of every rank

        optimizer = make_optimizer(self.optimizer, self.lr, self.clip_norm)
        self.loss_curve_ = []
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = None
        best_weights, no_improve = None, 0
        last_good = network.get_weights()
        epoch_times = []
        bar = tqdm(
            range(self.epochs),
            disable=not (self.verbose and sync.is_root),  # distributed: rank 0 only
            desc=type(self).__name__,
            unit="epoch",
            leave=True,
        )
        self.n_iter_ = 0
        try:
            for epoch in bar:
                t0 = time.perf_counter()
                total = None
                # distributed: global minibatches (the permutation a one-process fit draws)
                for sel, _ in batches.minibatches(rng, self.batch_size):
                    if sel.shape[0]:  # distributed: a rank may hold none of a minibatch
                        xb = _take(xp, X_train, backend, sel)
                        yb = _take(xp, y_train, backend, sel)
                        out = network.forward(xb)
                        loss, d_out = self._loss(out, yb)
                        network.backward(d_out)
                        part = loss * sel.shape[0]
                        total = part if total is None else total + part
                    sync.allreduce_grads(network.layers, sel.shape[0])  # distributed: mean
                    optimizer.step(network.layers)
                local = 0.0 if total is None else float(total)  # distributed: (one device sync)
                epoch_loss = sync.sum(local) / batches.n_global  # distributed: global loss
                weights = network.get_weights()
                finite = math.isfinite(epoch_loss) and _all_finite(xp, weights)  # distributed:
                if sync.any(not finite):  # distributed: decided together
                    network.set_weights(last_good)
                    raise sync.collective(  # distributed: raised on every rank
                        FloatingPointError(
                            f"training diverged in epoch {epoch + 1}: the loss became "
                            f"{epoch_loss} (NaN or infinite). The model keeps the weights of the last "
                            f"finite epoch. Try a smaller lr (now {self.lr}) or set clip_norm "
                            f"(now {self.clip_norm}), e.g. clip_norm=1.0."
                        )
                    )
                last_good = weights
                self.loss_curve_.append(epoch_loss)
                self.n_iter_ = epoch + 1
                epoch_times.append(time.perf_counter() - t0)
                postfix = {"loss": f"{epoch_loss:.4f}"}
                if idx_val is not None:
                    # distributed: the score over every rank's validation samples
                    score = self._score_arrays(sync.gathering(network), X_val, y_val)
                    self.validation_scores_.append(score)
                    postfix["val"] = f"{score:.4f}"
                    if (
                        self.best_validation_score_ is None
                        or score > self.best_validation_score_ + self.tol
                    ):
                        self.best_validation_score_, best_weights, no_improve = score, weights, 0
                    else:
                        no_improve += 1
                bar.set_postfix(postfix)
                stop = idx_val is not None and no_improve >= self.n_iter_no_change  # distributed:
                if sync.any(stop):  # distributed: decided together
                    break
        finally:
            bar.close()
            network.clear()
            self.network_ = network
            self.n_features_in_ = int(Xb.shape[2])
            self.epoch_times_ = epoch_times
        if best_weights is not None:
            network.set_weights(best_weights)
        return self

    def _score_arrays(self, network: Network, Xv: Any, y_host: np.ndarray) -> float:
        raise NotImplementedError

    def _targets_on(self, backend: Any, y_host: np.ndarray) -> Any:
        return backend.from_host(y_host)

    def _infer(self, X: Any) -> tuple[Any, Any]:
        check_is_fitted(self, "network_")
        backend = self.network_.recurrent._backend
        Xb = self._check_X(X, backend, reset=False)
        return self.network_.infer(Xb), backend

    # model files ------------------------------------------------------------------
    #: fitted scalars a model file keeps
    _state_keys = (
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

    def save(self, path: Any) -> None:
        """Save the fitted estimator: the same as ``anyrnn.save(self, path)``."""
        io.save(self, path)

    @property
    def _backend(self) -> Any:
        check_is_fitted(self, "network_")
        return self.network_.recurrent._backend

    def get_config(self) -> dict:
        """The hyper-parameters (``get_params(deep=False)``) as a model file keeps them."""
        check_is_fitted(self, "network_")
        params = self.get_params(deep=False)
        backend = self._backend
        params["backend"] = backend.name if backend.name in BACKEND_NAMES else backend._module_name
        params["device"] = None
        if not isinstance(params.get("random_state"), int | type(None)):
            params["random_state"] = None  # a Generator's state is not a hyper-parameter
        return params

    def _saved_state(self) -> dict:
        return {k: getattr(self, k) for k in self._state_keys if hasattr(self, k)}

    def _saved_arrays(self) -> dict[str, np.ndarray]:
        return {
            f"{part}/{name}": to_numpy(v)
            for part, layer in (
                ("recurrent", self.network_.recurrent),
                ("head", self.network_.head),
            )
            for name, v in layer.params.items()
        }

    @classmethod
    def _restore_unfitted(cls, config: dict, state: dict) -> _RNNEstimator:
        """The estimator with the file's hyper-parameters and fitted scalars, no network."""
        unknown = set(state) - set(cls._state_keys)
        if unknown:
            raise ValueError(f"unknown fitted attribute(s) {sorted(unknown)}")
        est = cls(**config)
        est._validate_hyperparams()
        for key, value in state.items():
            setattr(est, key, value)
        for key in ("n_features_in_", "_n_out"):
            check_int(getattr(est, key, None), key)
        return est

    def _layer_classes(self) -> dict:
        return {"recurrent": CELLS[self.cell], "head": Dense}

    @classmethod
    def _array_specs(cls, config: dict, state: dict) -> dict:
        est = cls._restore_unfitted(config, state)
        n_features, n_out = est.n_features_in_, est._n_out
        rec = CELLS[est.cell]._param_shapes_for(
            {"n_features": n_features, "n_nodes": est.n_nodes, "activation": est.activation}
        )
        head = Dense._param_shapes_for({"n_in": est.n_nodes, "n_out": n_out})
        return {
            **{f"recurrent/{k}": v for k, v in rec.items()},
            **{f"head/{k}": v for k, v in head.items()},
        }

    @classmethod
    def _from_saved(cls, config: dict, state: dict, arrays: dict, backend: Any) -> _RNNEstimator:
        name = backend.name if backend.name in BACKEND_NAMES else backend.xp
        config = {**config, "backend": name, "device": None}
        est = cls._restore_unfitted(config, state)
        est._restore_extra(arrays)
        with zero_init():
            network = est._build(
                backend, est.n_features_in_, est._n_out, bool(est._sequences), None
            )
        for part, layer in (("recurrent", network.recurrent), ("head", network.head)):
            head = part + "/"
            layer.set_params_from(
                {k[len(head) :]: v for k, v in arrays.items() if k.startswith(head)}
            )
        est.network_ = network
        return est

    def _restore_extra(self, arrays: dict) -> None:
        pass


def _take(xp: Any, a: Any, backend: Any, idx: np.ndarray) -> Any:
    if backend.name == "numpy":
        return a[idx]
    return xp.take(a, backend.from_host(idx, dtype=backend.int_dtype), axis=0)


def _all_finite(xp: Any, weights: list[dict]) -> bool:
    flags = [xp.all(xp.isfinite(w)) for layer in weights for w in layer.values()]
    ok = flags[0]
    for f in flags[1:]:
        ok = xp.logical_and(ok, f)
    return bool(ok)


@io.register
class RNNClassifier(ClassifierMixin, _RNNEstimator):
    """A recurrent classifier: recurrent layer → Dense → softmax (or sigmoid for 2 classes).

    Parameters
    ----------
    n_nodes : int
        Hidden units of the recurrent layer.
    cell : {"simple", "lstm", "gru"}
        The recurrent cell (:class:`~anyrnn.SimpleRNN`, :class:`~anyrnn.LSTM`,
        :class:`~anyrnn.GRU`).
    activation : {"tanh", "relu"}
        Activation of the simple cell (ignored by LSTM and GRU).
    optimizer : {"sgd", "momentum", "adagrad", "rmsprop", "adam"}
    lr : float
        Learning rate.
    batch_size : int
    epochs : int
        Passes over the training data (fewer with early stopping).
    verbose : bool
        Show a progress bar with the loss per epoch.
    random_state : None, int or numpy.random.Generator
        Initial weights, shuffling and the validation split.
    backend, device, dtype
        Where the model computes, as for :class:`anyrnn.SimpleRNN`.
    clip_norm : float or None
        Clip gradients by their global norm.
    early_stopping : bool
        Hold out ``validation_fraction`` of the training data (stratified), stop when its
        accuracy has not improved by ``tol`` for ``n_iter_no_change`` epochs, and keep
        the best weights.
    validation_fraction, n_iter_no_change, tol
        As above.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    loss_curve_ : list of float
        Mean training loss per epoch.
    validation_scores_ : list of float or None
        Held-out accuracy per epoch (with early stopping).
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs run.
    epoch_times_ : list of float
        Seconds per epoch.
    network_ : Network
        The fitted layers (``network_.recurrent``, ``network_.head``).

    Notes
    -----
    ``y`` may hold any labels (ints, strings) or be one-hot rows of shape
    (n_samples, n_classes). ``predict`` returns labels as a NumPy array;
    ``predict_proba`` an array of the estimator's backend.
    A fit whose loss turns NaN/inf raises ``FloatingPointError`` and keeps the weights of
    the last finite epoch.
    """

    _stratify = True
    _sequences = False
    _extra_arrays = ("classes_",)

    def _saved_arrays(self) -> dict[str, np.ndarray]:
        classes = np.asarray(self.classes_)
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

    def _restore_extra(self, arrays: dict) -> None:
        n_classes = arrays["classes_"].shape[0]
        if self._n_out != (1 if n_classes == 2 else n_classes):
            raise io.ModelFileError(
                f"{n_classes} classes do not fit an output layer of {self._n_out}"
            )
        self.classes_ = arrays["classes_"]

    def _prepare_y(self, y: Any, n_samples: int, n_steps: int) -> np.ndarray:
        y = np.asarray(to_numpy(y) if not isinstance(y, list | tuple) else y)
        if y.ndim == 2 and y.shape[1] > 1 and y.dtype.kind in "biuf":
            if not np.all(np.isfinite(y)):
                raise ValueError("Input y contains NaN or infinity.")
            if not (np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1)):
                raise ValueError(
                    "a 2-D y must be one-hot rows (0/1 with exactly one 1 per row); got "
                    f"values in [{y.min()}, {y.max()}] with row sums in "
                    f"[{y.sum(axis=1).min()}, {y.sum(axis=1).max()}]"
                )
            self.classes_ = np.arange(y.shape[1])
            encoded = np.argmax(y, axis=1)
        else:
            if y.ndim == 2 and y.shape[1] == 1:
                y = y[:, 0]
            if y.ndim != 1:
                raise ValueError(
                    f"y must be 1-D labels (n_samples,) or one-hot (n_samples, n_classes); got shape {y.shape}"
                )
            if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
                raise ValueError("Input y contains NaN or infinity.")
            if y.dtype.kind == "O":
                raise ValueError("y of dtype object is not supported: use numbers or strings")
            self.classes_, encoded = np.unique(y, return_inverse=True)
        if encoded.shape[0] != n_samples:
            raise ValueError(
                f"X and y have different numbers of samples: X has {n_samples}, y has {encoded.shape[0]}"
            )
        if self.classes_.shape[0] < 2:
            raise ValueError(
                f"the classifier needs at least 2 classes in y; got {self.classes_.shape[0]}: {self.classes_}"
            )
        self._n_out = 1 if self.classes_.shape[0] == 2 else int(self.classes_.shape[0])
        return encoded

    def _targets_on(self, backend: Any, y_host: np.ndarray) -> Any:
        if self._n_out == 1:
            return backend.from_host(y_host[:, None])  # 0/1 floats for the sigmoid loss
        return backend.from_host(y_host, dtype=backend.int_dtype)

    def _loss(self, out: Any, y: Any) -> tuple[Any, Any]:
        if self._n_out == 1:
            return losses.sigmoid_binary_cross_entropy(out, y)
        return losses.softmax_cross_entropy(out, y)

    def fit(self, X: Any, y: Any, *, comm: Any = None) -> RNNClassifier:
        """Fit on X (n_samples, n_sequences, n_features) and labels or one-hot y.

        ``comm``: an mpi4py communicator for data-parallel training; each rank passes
        its own shard of X and y (see :mod:`anyrnn.distributed`).
        """
        return self._fit(X, y, comm=comm)

    def _proba(self, logits: Any, xp: Any) -> Any:
        if logits.shape[1] == 1:
            p = losses.sigmoid(logits)
            return xp.concat([1 - p, p], axis=1)
        return losses.softmax(logits, axis=1)

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities, (n_samples, n_classes); rows sum to 1."""
        logits, backend = self._infer(X)
        return self._proba(logits, backend.xp)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (NumPy array of the classes' type)."""
        proba = self.predict_proba(X)
        return self.classes_[to_numpy(self.network_.recurrent.xp.argmax(proba, axis=1))]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy."""
        y = np.asarray(to_numpy(y) if not isinstance(y, list | tuple) else y)
        if y.ndim == 2 and y.shape[1] > 1:
            y = self.classes_[np.argmax(y, axis=1)]
        return float(accuracy_score(y, self.predict(X), sample_weight=sample_weight))

    def _score_arrays(self, network: Network, Xv: Any, y_host: np.ndarray) -> float:
        logits = network.infer(Xv)
        pred = to_numpy(
            network.recurrent.xp.argmax(self._proba(logits, network.recurrent.xp), axis=1)
        )
        return float(np.mean(pred == y_host))


@io.register
class ScratchSimpleRNNClassifier(RNNClassifier):
    """The seeds' classifier name, as a scikit-learn estimator.

    The same model as :class:`RNNClassifier`, accepting the seeds' parameter names
    (``n_nodes``, ``activation``, ``optimizer``, ``lr``, ``batch_size``, ``epochs``,
    ``verbose``, ``random_state``) and, optionally, the seeds' ``n_features`` and
    ``n_output``: when given they are checked against the data at ``fit``. For the seed
    notebook's exact class (``forward`` returning ``(h, h_sequence, y)``, MSE training),
    see :class:`anyrnn.scratch.ScratchSimpleRNNClassifier`.
    """

    def __init__(
        self,
        n_nodes: int = 32,
        n_features: int | None = None,
        n_output: int | None = None,
        *,
        cell: str = "simple",
        activation: str = "tanh",
        optimizer: str = "adam",
        lr: float = 0.01,
        batch_size: int = 32,
        epochs: int = 30,
        verbose: bool = False,
        random_state: Any = None,
        backend: Any = "numpy",
        device: Any = None,
        dtype: str = "float32",
        clip_norm: float | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
    ):
        super().__init__(
            n_nodes,
            cell=cell,
            activation=activation,
            optimizer=optimizer,
            lr=lr,
            batch_size=batch_size,
            epochs=epochs,
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

    def fit(self, X: Any, y: Any, *, comm: Any = None) -> ScratchSimpleRNNClassifier:
        with Sync.create(comm).together():  # distributed: raised on every rank
            if self.n_features is not None:
                check_int(self.n_features, "n_features")
                shape = getattr(X, "shape", np.shape(X))
                if len(shape) == 3 and shape[2] != self.n_features:
                    raise ValueError(
                        f"X has {shape[2]} features, but {type(self).__name__} was built with "
                        f"n_features={self.n_features}"
                    )
        super().fit(X, y, comm=comm)
        if self.n_output is not None:
            n_classes = len(self.classes_)
            if self.n_output not in (n_classes, 1 if n_classes == 2 else n_classes):
                raise ValueError(
                    f"n_output={self.n_output} does not fit y, which has {n_classes} classes"
                )
        return self


@io.register
class RNNRegressor(RegressorMixin, _RNNEstimator):
    """A recurrent regressor trained with mean squared error.

    Many-to-one: ``y`` of shape (n_samples,) or (n_samples, n_outputs) is predicted from
    the last state. Sequence-to-sequence: ``y`` of shape (n_samples, n_sequences,
    n_outputs) is predicted at every step (e.g. next-step prediction).

    Parameters and attributes as :class:`RNNClassifier` (``validation_scores_`` holds R²).
    ``predict`` returns an array of the estimator's backend, of ``y``'s shape.
    """

    _stratify = False

    def _prepare_y(self, y: Any, n_samples: int, n_steps: int) -> np.ndarray:
        y = np.asarray(to_numpy(y) if not isinstance(y, list | tuple) else y)
        if y.dtype.kind not in "biuf":
            raise ValueError(f"y must hold real numbers; got dtype {y.dtype}")
        y = y.astype(np.float64)
        if not np.all(np.isfinite(y)):
            raise ValueError("Input y contains NaN or infinity.")
        if y.ndim not in (1, 2, 3):
            raise ValueError(f"y must be 1-D, 2-D or 3-D; got shape {y.shape}")
        if y.shape[0] != n_samples:
            raise ValueError(
                f"X and y have different numbers of samples: X has {n_samples}, y has {y.shape[0]}"
            )
        if y.ndim == 3 and y.shape[1] != n_steps:
            raise ValueError(
                f"a sequence target y must have X's {n_steps} steps; got y.shape={y.shape}"
            )
        self._y_ndim = y.ndim
        self._sequences = y.ndim == 3
        y2 = y[:, None] if y.ndim == 1 else y
        self._n_out = int(y2.shape[-1])
        return y2

    def _loss(self, out: Any, y: Any) -> tuple[Any, Any]:
        return losses.mean_squared_error(out, y)

    def fit(self, X: Any, y: Any, *, comm: Any = None) -> RNNRegressor:
        """Fit on X (n_samples, n_sequences, n_features) and real targets y.

        ``comm``: an mpi4py communicator for data-parallel training; each rank passes
        its own shard of X and y (see :mod:`anyrnn.distributed`).
        """
        return self._fit(X, y, comm=comm)

    def predict(self, X: Any) -> Any:
        out, backend = self._infer(X)
        if self._y_ndim == 1:
            out = backend.xp.reshape(out, (-1,))
        return out

    def _score_arrays(self, network: Network, Xv: Any, y_host: np.ndarray) -> float:
        pred = to_numpy(network.infer(Xv))
        return float(
            r2_score(y_host.reshape(-1, y_host.shape[-1]), pred.reshape(-1, pred.shape[-1]))
        )

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R² (over every output and, for sequence targets, every step)."""
        pred = to_numpy(self.predict(X))
        y = np.asarray(to_numpy(y) if not isinstance(y, list | tuple) else y, dtype=np.float64)
        if y.ndim == 3:
            return float(r2_score(y.reshape(-1, y.shape[-1]), pred.reshape(-1, pred.shape[-1])))
        return float(r2_score(y, pred, sample_weight=sample_weight))
