"""A fully connected layer (the seeds' ``FullyConnected``).

Equations::

    Y = X · W + B

X is (batch, n_in) or (batch, n_steps, n_in): the layer acts on the last axis, so
it maps every step of a sequence at once. W is (n_in, n_out), B is (n_out,).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import io
from .._checks import check_int
from ..cells.init import glorot_uniform
from .base import Gradient, Layer, Parameter, on_device

__all__ = ["Dense"]


@io.register
class Dense(Layer):
    """Fully connected layer ``Y = X·W + B`` with a hand-written backward.

    Parameters
    ----------
    n_in, n_out : int
    backend, device, dtype, random_state
        As for :class:`anyrnn.SimpleRNN`. ``W`` is Glorot-uniform, ``B`` zero.

    Attributes
    ----------
    W : array of shape (n_in, n_out)
    B : array of shape (n_out,)
    dW, dB : arrays
        Gradients from the last :meth:`backward` (None before).
    """

    W = Parameter()
    B = Parameter()
    dW = Gradient("W")
    dB = Gradient("B")
    _param_names = ("W", "B")
    _config_keys = ("n_in", "n_out")

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        backend: Any = "numpy",
        device: Any = None,
        dtype: Any = None,
        random_state: Any = None,
    ):
        n_in = check_int(n_in, "n_in")
        n_out = check_int(n_out, "n_out")
        super().__init__(backend=backend, device=device, dtype=dtype)
        self.n_in, self.n_out = n_in, n_out
        self.random_state = random_state
        rng = np.random.default_rng(random_state)
        self._params = {
            "W": self._backend.from_host(glorot_uniform(rng, (n_in, n_out))),
            "B": self._backend.from_host(np.zeros(n_out)),
        }
        self._x2 = None
        self._in_shape: tuple[int, ...] | None = None
        self._p_forward: dict | None = None

    def __repr__(self) -> str:
        return (
            f"Dense(n_in={self.n_in}, n_out={self.n_out}, backend={self.backend!r}, "
            f"dtype={self._backend.dtype_name!r})"
        )

    @classmethod
    def _param_shapes_for(cls, config: dict) -> dict[str, tuple[int, ...]]:
        n_in = check_int(config.get("n_in"), "n_in")
        n_out = check_int(config.get("n_out"), "n_out")
        return {"W": (n_in, n_out), "B": (n_out,)}

    def _check_X(self, X: Any) -> Any:
        X = self._backend.asarray(X, name="X")
        if X.ndim not in (2, 3):
            raise ValueError(
                f"X must be 2-D (batch, n_in) or 3-D (batch, n_steps, n_in); got "
                f"{X.ndim}-D with shape {tuple(X.shape)}"
            )
        if X.shape[-1] != self.n_in:
            raise ValueError(
                f"X has {X.shape[-1]} features, but this Dense was built for {self.n_in} "
                f"(X.shape={tuple(X.shape)})"
            )
        return X

    def _apply(self, X: Any, p: dict) -> tuple[Any, Any]:
        xp = self.xp
        x2 = xp.reshape(X, (-1, self.n_in))
        y2 = x2 @ p["W"] + p["B"]  # Y = X·W + B
        return x2, xp.reshape(y2, tuple(X.shape[:-1]) + (self.n_out,))

    @on_device
    def forward(self, X: Any) -> Any:
        """``X·W + B`` over the last axis; keeps what :meth:`backward` needs."""
        X = self._check_X(X)
        p = self.params
        x2, Y = self._apply(X, p)
        x2 = self.xp.asarray(x2, copy=True)  # never keep the caller's memory for backward
        self._x2, self._in_shape, self._p_forward = x2, tuple(X.shape), p
        return Y

    __call__ = forward

    @on_device
    def infer(self, X: Any) -> Any:
        """Forward without keeping anything: the layer is not changed."""
        return self._apply(self._check_X(X), self.params)[1]

    def clear(self) -> None:
        """Drop what the last forward pass kept for backward."""
        self._x2 = self._in_shape = self._p_forward = None

    @on_device
    def backward(self, d_out: Any) -> Any:
        """Sets ``dW``, ``dB`` (sums over the batch) and returns dX."""
        if self._x2 is None:
            raise RuntimeError(
                "Dense.backward() was called before forward(): there is no forward pass "
                "to differentiate"
            )
        xp = self.xp
        d_out = self._backend.asarray(d_out, name="d_out")
        expected = self._in_shape[:-1] + (self.n_out,)
        if tuple(d_out.shape) != expected:
            raise ValueError(
                f"d_out must have the shape of forward's output {expected}; got shape "
                f"{tuple(d_out.shape)}"
            )
        d2 = xp.reshape(d_out, (-1, self.n_out))
        p = self._p_forward
        self._grads = {
            "W": xp.matrix_transpose(self._x2) @ d2,  # Y = X·W + B
            "B": xp.sum(d2, axis=0),
        }
        return xp.reshape(d2 @ xp.matrix_transpose(p["W"]), self._in_shape)
