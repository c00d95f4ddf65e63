"""``RNNClassifier``: recurrent layer(s), a Dense head, softmax (sigmoid for 2 classes).

The labels are read by :mod:`.labels`; the fit, the fit loop and the model files come
from :class:`~anyrnn.estimators.base._RNNEstimator`. This module holds the classifier's
parameters, its loss, its scores and its public calls.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score

from .. import io
from .._panel import Panel
from ..backend import to_numpy
from ..distributed import Sync
from ..layers.base import on_device
from ..train import losses
from .base import _RNNEstimator
from .data import _Data
from .labels import _Labels, _labels_on_host

__all__ = ["RNNClassifier"]


@io.register
class RNNClassifier(ClassifierMixin, _Labels, _RNNEstimator):
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

    # model files: classes_ beside the weights -----------------------------------------
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
