"""The classifier's targets: labels on the host, checked, encoded, and class weights.

``_labels_on_host`` brings labels of any array library home; ``_Labels`` checks and
encodes them (``0 .. n_classes-1``) against ``classes_`` (``y``'s, ``partial_fit``'s
``classes=`` or the fitted ones) and multiplies the sample weights by
``class_weight``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets

from .._checks import check_real
from .._warn import warn_user
from ..backend import array_library, to_numpy

__all__ = ["_Labels", "_labels_on_host"]


def _labels_on_host(y: Any) -> np.ndarray:
    if y is None:
        raise ValueError("requires y to be passed, but the target y is None")
    if array_library(y) in ("cupy", "torch", "jax", "array_api_strict"):
        return to_numpy(y)
    return np.asarray(y)


class _Labels:
    """Label reading and class weights of :class:`~anyrnn.RNNClassifier` (a mixin)."""

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
