"""A fit from start to commit: checks, data, network, optimizer, training, fitted attributes.

``_Fitting._fit`` checks the hyper-parameters and the backend, enters the model's device
once (:meth:`~anyrnn.Backend.run`) and runs the rest there: reading the data and the
targets, the sample weights, a new network or the continued one (``warm_start``,
``partial_fit``), the optimizer, :meth:`~anyrnn.estimators.training._Training._train`,
and only then assigns every fitted attribute at once (``_commit``), so a call that
raises leaves the estimator as it was. Over MPI ranks each step goes through a
:class:`~anyrnn.distributed.Sync`.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import clone

from .._panel import Panel
from .._warn import warn_user
from ..backend import array_library, to_numpy
from ..cells.init import zero_init
from ..distributed import Sync
from ..layers.wrappers import Stacked
from ..train.optimizers import OPTIMIZERS, make_optimizer
from .data import _Data
from .network import Network, _build_network, _describe_changes
from .training import _Diverged, _Monitor

if TYPE_CHECKING:
    from .base import _Hyper

__all__ = ["_Fitting"]


class _Fitting:
    """How :class:`~anyrnn.estimators.base._RNNEstimator` fits (a mixin).

    Subclasses read the targets (``_read_y``) and may weigh classes
    (``_times_class_weight``) and check the data against their own hyper-parameters
    (``_check_fit_data``).
    """

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
