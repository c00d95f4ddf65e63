"""Central finite differences in float64, for any layer with forward/backward."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """dF/dx by central differences, one element at a time (x is not modified)."""
    grad = np.zeros(x.shape, dtype=np.float64)  # C order: the reshape below is a view
    flat = grad.reshape(-1)
    for i in range(x.size):
        xp_ = x.copy().reshape(-1)
        xm_ = x.copy().reshape(-1)
        xp_[i] += eps
        xm_[i] -= eps
        flat[i] = (f(xp_.reshape(x.shape)) - f(xm_.reshape(x.shape))) / (2 * eps)
    return grad


def max_rel_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    scale = max(np.max(np.abs(numeric)), 1e-12)
    return float(np.max(np.abs(np.asarray(analytic) - numeric)) / scale)
