"""Model files of the estimators: what :mod:`anyrnn.io` asks of them.

``_ModelFiles`` gives the configuration (the hyper-parameters, refused by
``_check_savable_config`` while one that shapes the network differs from the fitted
one), the fitted scalars and the weights a file keeps, the parameter shapes a
configuration has (checked before anything is read) and the estimator rebuilt from a
file on the model's device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .. import io
from .._checks import check_bool, check_int
from ..backend import BACKEND_NAMES, to_numpy
from ..cells.init import zero_init
from ..layers.base import on_device
from ..train.optimizers import make_optimizer
from .network import _build_network, _describe_changes, _param_specs

if TYPE_CHECKING:
    from .base import _RNNEstimator

__all__ = ["_ModelFiles"]


class _ModelFiles:
    """Saving and loading of :class:`~anyrnn.estimators.base._RNNEstimator` (a mixin)."""

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

    def get_config(self) -> dict:
        """The hyper-parameters (``get_params(deep=False)``) as a model file keeps them."""
        check_is_fitted(self)
        params = self.get_params(deep=False)
        backend = self._backend
        params["backend"] = backend.spec
        params["device"] = None
        if not isinstance(params.get("random_state"), int | type(None)):
            params["random_state"] = None  # a Generator's state is not a hyper-parameter
        if isinstance(params.get("class_weight"), dict):  # JSON keys are strings only
            params["class_weight"] = {
                "__pairs__": [[k, v] for k, v in params["class_weight"].items()]
            }
        return params

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
