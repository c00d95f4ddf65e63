"""Losses with their gradients, numerically stable on every backend.

There is no softmax, sigmoid or logsumexp in the Array API standard; these are written
so that no intermediate overflows (no warnings, correct limits at logits of ±88, ±710,
±1e4, ±inf in float32 and float64):

* ``logsumexp(z) = m + log Σ exp(z - m)`` with ``m = max z``;
* ``log σ(z) = min(z, 0) - log1p(exp(-|z|))``; ``σ(z)`` from ``exp(-|z|)`` only.

Every function returns ``(loss, d_logits)``: the mean loss over the samples as a 0-D
array and its gradient with respect to the first argument.

Targets are checked before anything is computed, with the expected and received
shapes in the message (``ValueError``; ``TypeError`` for a wrong array library or
dtype): a target never broadcasts against the predictions. Label values are checked
too (class indices in ``[0, n_classes)``, binary targets in ``[0, 1]``), which costs
one device sync per call; ``check_values=False`` skips that, for callers that made the
labels themselves (the estimators do).
"""

from __future__ import annotations

from typing import Any

import array_api_compat

from .._checks import check_bool

__all__ = [
    "sigmoid",
    "softplus",
    "softmax",
    "log_softmax",
    "softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "mean_squared_error",
    "one_hot",
]


def _xp(x: Any) -> Any:
    return array_api_compat.array_namespace(x)


def _pair(pred: Any, y: Any, pred_name: str) -> Any:
    """The namespace of ``pred`` and ``y``: both arrays of one library, ``pred`` floating."""
    try:
        xp = array_api_compat.array_namespace(pred, y)
    except TypeError:
        raise TypeError(
            f"{pred_name} and y must be arrays of one array library; got "
            f"{type(pred).__module__}.{type(pred).__name__} and "
            f"{type(y).__module__}.{type(y).__name__}"
        ) from None
    if not xp.isdtype(pred.dtype, "real floating"):
        raise TypeError(f"{pred_name} must be a real floating array; got dtype {pred.dtype}")
    if not xp.isdtype(y.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"y must hold real numbers; got dtype {y.dtype}")
    if pred.ndim < 1 or pred.shape[0] == 0:
        raise ValueError(
            f"{pred_name} must have at least one sample on axis 0; got shape {tuple(pred.shape)}"
        )
    return xp


def _same_shape(pred: Any, y: Any, pred_name: str) -> None:
    if tuple(y.shape) != tuple(pred.shape):
        raise ValueError(
            f"y must have the shape of {pred_name} {tuple(pred.shape)}; got shape "
            f"{tuple(y.shape)} (targets never broadcast)"
        )


def _check_range(y: Any, xp: Any, low: float, high: float, what: str) -> None:
    """``ValueError`` unless every value of ``y`` is in [low, high] (one device sync)."""
    lo, hi = xp.min(y), xp.max(y)
    if not bool(xp.logical_and(lo >= low, hi <= high)):
        raise ValueError(f"{what}; got values in [{float(lo)}, {float(hi)}]")


def _zero(x: Any, xp: Any) -> Any:
    return xp.zeros((), dtype=x.dtype, device=array_api_compat.device(x))


def _shifted(z: Any, xp: Any, axis: int) -> Any:
    """``z - max(z)`` along ``axis``, with the +inf limits kept finite-safe.

    Rows holding +inf become 0 at the +inf entries and -inf elsewhere (the one-hot
    limit); no ``inf - inf`` is ever computed, so no invalid-value warning.
    """
    zero = _zero(z, xp)
    m = xp.max(z, axis=axis, keepdims=True)
    finite_m = xp.isfinite(m)
    shifted = z - xp.where(finite_m, m, zero)
    pos_inf = xp.logical_and(xp.logical_not(finite_m), m > 0)
    limit = xp.where(
        z == m, zero, xp.asarray(-xp.inf, dtype=z.dtype, device=array_api_compat.device(z))
    )
    return xp.where(pos_inf, limit, shifted)


def _mul_safe(a: Any, b: Any, xp: Any) -> Any:
    """``a * b`` where a zero ``a`` gives 0 even for an infinite ``b`` (no 0·inf)."""
    return a * xp.where(a != 0, b, _zero(b, xp))


def softplus(z: Any) -> Any:
    """``log(1 + exp(z))`` without overflow: ``max(z, 0) + log1p(exp(-|z|))``."""
    xp = _xp(z)
    return xp.maximum(z, _zero(z, xp)) + xp.log1p(xp.exp(-xp.abs(z)))


def sigmoid(z: Any) -> Any:
    """Logistic function from ``exp(-|z|)``: never overflows, exact in both tails."""
    xp = _xp(z)
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1 / (1 + e), e / (1 + e))


def log_softmax(z: Any, axis: int = -1) -> Any:
    xp = _xp(z)
    shifted = _shifted(z, xp, axis)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def softmax(z: Any, axis: int = -1) -> Any:
    xp = _xp(z)
    e = xp.exp(_shifted(z, xp, axis))
    return e / xp.sum(e, axis=axis, keepdims=True)


def one_hot(labels: Any, n_classes: int, dtype: Any) -> Any:
    """(n,) integer labels to (n, n_classes) rows of 0/1 in ``dtype``, on their device."""
    xp = _xp(labels)
    classes = xp.arange(n_classes, dtype=labels.dtype, device=array_api_compat.device(labels))
    return xp.astype(xp.expand_dims(labels, axis=1) == classes, dtype)


def _weights(sample_weight: Any, pred: Any, xp: Any, check_values: bool) -> Any:
    """``sample_weight`` broadcastable against ``pred`` (in its dtype), or None.

    Weights are per sample, shape (n,), or per sample and step, shape (n, T) for a
    (n, T, k) prediction: a leading part of ``pred``'s shape.
    """
    if sample_weight is None:
        return None
    w = sample_weight
    shape = tuple(getattr(w, "shape", ()))
    lead = tuple(pred.shape[: len(shape)])
    if _xp(w) is not xp or not 1 <= len(shape) < pred.ndim + 1 or shape != lead:
        raise ValueError(
            f"sample_weight must be an array of shape {tuple(pred.shape[:1])} (one weight per "
            f"sample) or a leading part of {tuple(pred.shape)}, on the predictions' backend; "
            f"got shape {shape}"
        )
    w = xp.astype(w, pred.dtype) if w.dtype != pred.dtype else w
    if check_values and not bool(xp.all(xp.isfinite(w)) and xp.all(w >= 0)):
        raise ValueError("sample_weight must be finite and non-negative")
    return xp.reshape(w, shape + (1,) * (pred.ndim - len(shape)))


def softmax_cross_entropy(
    logits: Any, y: Any, *, sample_weight: Any = None, check_values: bool = True
) -> tuple[Any, Any]:
    """Mean cross-entropy of softmax(logits) against integer labels or one-hot rows.

    Parameters
    ----------
    logits : array of shape (n, n_classes)
    y : int array of shape (n,), or array of shape (n, n_classes) (one-hot or soft)
        Labels must be in ``[0, n_classes)``; rows of probabilities in ``[0, 1]``.
    sample_weight : array of shape (n,), optional
        Each sample's loss is multiplied by its weight (the mean stays over ``n``). An
        all-ones weight gives the unweighted numbers only up to rounding: pass None.
    check_values : bool
        Check the label and weight values (one device sync); shapes and dtypes are always
        checked.
    """
    xp = _pair(logits, y, "logits")
    check_values = check_bool(check_values, "check_values")
    if logits.ndim != 2:
        raise ValueError(
            f"logits must be 2-D (n_samples, n_classes); got shape {tuple(logits.shape)}"
        )
    n, n_classes = logits.shape
    if n_classes == 0:
        raise ValueError(f"logits must have at least one class; got shape {tuple(logits.shape)}")
    if y.ndim == 1:
        if not xp.isdtype(y.dtype, "integral"):
            raise TypeError(
                f"1-D y must hold integer class labels; got dtype {y.dtype} (cast with "
                "astype, or pass one-hot rows of shape (n_samples, n_classes))"
            )
        if y.shape[0] != n:
            raise ValueError(
                f"y must have one label per row of logits: shape ({n},); got shape {tuple(y.shape)}"
            )
        if check_values:
            _check_range(y, xp, 0, n_classes - 1, f"labels must be in [0, {n_classes - 1}]")
        y = one_hot(y, n_classes, logits.dtype)
    else:
        _same_shape(logits, y, "logits")
        y = xp.astype(y, logits.dtype) if y.dtype != logits.dtype else y  # bool rows too
        if check_values:
            _check_range(y, xp, 0, 1, "one-hot or probability rows must be in [0, 1]")
    w = _weights(sample_weight, logits, xp, check_values)
    terms = _mul_safe(y, log_softmax(logits, axis=1), xp)  # y log p, with 0·(-inf) = 0
    d_logits = softmax(logits, axis=1) - y  # d/dz -Σ y log softmax(z) = p - y
    if w is None:
        return -xp.sum(terms) / n, d_logits / n
    return -xp.sum(w * terms) / n, w * d_logits / n


def sigmoid_binary_cross_entropy(
    logits: Any, y: Any, *, sample_weight: Any = None, check_values: bool = True
) -> tuple[Any, Any]:
    """Mean binary cross-entropy of sigmoid(logits) against targets in [0, 1], same shape.

    ``sample_weight`` (n,): each sample's loss multiplied by its weight. ``check_values``:
    check that the targets are in [0, 1] and the weights non-negative (one device sync).
    """
    xp = _pair(logits, y, "logits")
    _same_shape(logits, y, "logits")
    y = xp.astype(y, logits.dtype) if y.dtype != logits.dtype else y  # bool targets too
    if check_bool(check_values, "check_values"):
        _check_range(y, xp, 0, 1, "binary targets must be in [0, 1]")
    n = logits.shape[0]
    w = _weights(sample_weight, logits, xp, bool(check_values))
    # -[y log σ(z) + (1 - y) log σ(-z)] = y softplus(-z) + (1 - y) softplus(z)
    per = _mul_safe(y, softplus(-logits), xp) + _mul_safe(1 - y, softplus(logits), xp)
    d_logits = sigmoid(logits) - y
    if w is None:
        return xp.sum(per) / n, d_logits / n
    return xp.sum(w * per) / n, w * d_logits / n


def mean_squared_error(
    pred: Any, y: Any, *, sample_weight: Any = None, check_values: bool = True
) -> tuple[Any, Any]:
    """``Σ (pred - y)^2 / n_samples`` (sum over outputs and steps, mean over samples).

    ``y`` must have ``pred``'s shape. The gradient is ``2 (pred - y) / n_samples``, in
    ``pred``'s dtype. ``sample_weight`` (n,): each sample's squared errors multiplied by
    its weight (or (n, T) for (n, T, k) predictions: per sample and step); ``check_values``:
    check the weights are finite and non-negative.
    """
    xp = _pair(pred, y, "pred")
    _same_shape(pred, y, "pred")
    n = pred.shape[0]
    y = xp.astype(y, pred.dtype) if y.dtype != pred.dtype else y
    w = _weights(sample_weight, pred, xp, check_bool(check_values, "check_values"))
    diff = pred - y
    if w is None:
        return xp.sum(diff * diff) / n, (2 / n) * diff
    return xp.sum(w * diff * diff) / n, (2 / n) * (w * diff)
