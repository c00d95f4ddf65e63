"""The SimpleRNN (Elman) cell.

Equations, for each time step t::

    a_t = x_t · W_x + h_{t-1} · W_h + B
    h_t = f(a_t)              f = tanh (default) or relu

Shapes: x_t (batch, n_features), h_t (batch, n_nodes), W_x (n_features, n_nodes),
W_h (n_nodes, n_nodes), B (n_nodes,). The input side ``x_t · W_x + B`` of every step is
computed at once by the scan; a step adds the recurrent side.
"""

from __future__ import annotations

from typing import Any

from .base import Cell

__all__ = ["SimpleCell", "ACTIVATIONS"]

ACTIVATIONS = ("tanh", "relu")


class SimpleCell(Cell):
    """One step of ``h_t = f(x_t·W_x + h_{t-1}·W_h + B)``."""

    n_gates = 1
    state_names = ("h",)

    def __init__(self, activation: str = "tanh"):
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {list(ACTIVATIONS)}; got activation={activation!r}"
            )
        self.activation = activation

    def step(self, p: dict, ax: Any, state: tuple, *, xp: Any) -> tuple[tuple, Any]:
        (h_prev,) = state
        a = ax + h_prev @ p["W_h"]  # a_t = x_t·W_x + B + h_{t-1}·W_h
        if self.activation == "tanh":
            h = xp.tanh(a)  # h_t = tanh(a_t)
        else:
            h = (a + xp.abs(a)) * 0.5  # h_t = max(a_t, 0), exact, no 0-D constant needed
        return (h,), h

    def step_backward(self, q: dict, cache: Any, d_state: tuple, *, xp: Any) -> tuple:
        h = cache
        (dh,) = d_state
        if self.activation == "tanh":
            da = dh * (1 - h * h)  # d tanh(a) = 1 - tanh(a)^2 = 1 - h^2
        else:
            da = dh * xp.astype(h > 0, dh.dtype)  # d max(a, 0) = [a > 0] = [h > 0]
        dh_prev = da @ q["W_hT"]  # a_t = ... + h_{t-1}·W_h
        return da, da, (dh_prev,)
