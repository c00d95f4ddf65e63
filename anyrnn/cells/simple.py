"""The SimpleRNN (Elman) cell.

Equations, for each time step t::

    a_t = x_t · W_x + B
    h_t = f(a_t + h_{t-1} · W_h)        f = tanh (default) or relu

Shapes: x_t (batch, n_features), h_t (batch, n_nodes), W_x (n_features, n_nodes),
W_h (n_nodes, n_nodes), B (n_nodes,). The step's arithmetic is
:func:`~anyrnn.cells.pointwise.simple_tanh_forward` (or ``simple_relu_forward``) and its
backward.
"""

from __future__ import annotations

from .._checks import check_choice
from .base import Cell

__all__ = ["SimpleCell", "ACTIVATIONS"]

ACTIVATIONS = ("tanh", "relu")


class SimpleCell(Cell):
    """One step of ``h_t = f(x_t·W_x + h_{t-1}·W_h + B)``."""

    name = "simple"
    gates = ("",)
    state_names = ("h",)

    def __init__(self, activation: str = "tanh"):
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        self.forward_program = f"simple_{self.activation}_forward"
        self.backward_program = f"simple_{self.activation}_backward"
