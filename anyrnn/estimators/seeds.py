"""``ScratchSimpleRNNClassifier``: the seeds' classifier name and parameters, as an estimator.

The same model as :class:`~anyrnn.RNNClassifier`; the seeds' ``n_features`` and
``n_output``, when given, are checked against the data before training and shape the
fitted network like the other structural hyper-parameters. The seed notebook's own class
is :class:`anyrnn.scratch.ScratchSimpleRNNClassifier`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import io
from .._checks import check_int
from .._panel import Panel
from .classifier import RNNClassifier

if TYPE_CHECKING:
    from .base import _Hyper

__all__ = ["ScratchSimpleRNNClassifier"]


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
