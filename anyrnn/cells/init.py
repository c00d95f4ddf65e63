"""Initial weights, drawn on the host with NumPy and moved to the backend afterwards.

The standard has no random module, and drawing on the host makes the same seed give
bit-identical weights on every backend. :func:`zero_init` skips the draws: loading a
model builds its layers inside it, so a file declaring huge layers costs nothing before
its arrays are checked, and the file's weights replace the zeros.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import numpy as np

__all__ = ["glorot_uniform", "orthogonal", "zeros", "zero_init"]

_ZERO_INIT = contextvars.ContextVar("anyrnn_zero_init", default=False)


@contextlib.contextmanager
def zero_init() -> Iterator[None]:
    """Within this block, every initializer returns zeros without drawing."""
    token = _ZERO_INIT.set(True)
    try:
        yield
    finally:
        _ZERO_INIT.reset(token)


def zeros(shape: tuple[int, ...]) -> np.ndarray:
    return np.zeros(shape)


def glorot_uniform(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Glorot/Xavier uniform: U(-l, l) with l = sqrt(6 / (fan_in + fan_out))."""
    if _ZERO_INIT.get():
        return np.zeros(shape)
    limit = np.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-limit, limit, size=shape)


def orthogonal(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A matrix with orthonormal rows or columns (Saxe et al.), as Keras' default."""
    if _ZERO_INIT.get():
        return np.zeros(shape)
    rows, cols = shape
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    return q.T if rows < cols else q
