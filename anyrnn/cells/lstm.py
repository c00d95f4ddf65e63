"""The LSTM cell (Hochreiter & Schmidhuber; with a forget gate, Gers et al.).

Gate order ``i, f, g, o`` (input, forget, cell candidate, output), the order of PyTorch
and cuDNN (Keras' ``i, f, c, o`` is the same). Each gate is a block of ``n_nodes``
columns of ``W_x`` (n_features, 4·n_nodes), ``W_h`` (n_nodes, 4·n_nodes) and ``B``
(4·n_nodes,). For each step t::

    z_t = x_t · W_x + h_{t-1} · W_h + B
    i_t = σ(z_t[i])   f_t = σ(z_t[f])   g_t = tanh(z_t[g])   o_t = σ(z_t[o])
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(c_t)

The state is ``(h, c)``. The forget-gate bias starts at 1 (Jozefowicz et al. 2015; Keras'
``unit_forget_bias``), so early in training the cell keeps its memory. The step's
arithmetic is :func:`~anyrnn.cells.pointwise.lstm_forward` and ``lstm_backward``.
"""

from __future__ import annotations

import numpy as np

from .base import Cell

__all__ = ["LSTMCell"]


class LSTMCell(Cell):
    name = "lstm"
    gates = ("i", "f", "g", "o")
    sigmoid_gates = ("i", "f", "o")
    state_names = ("h", "c")
    value_names = ("i", "f", "g", "o")
    forward_program = "lstm_forward"
    backward_program = "lstm_backward"

    def init_params(self, n_features: int, n_nodes: int, rng: np.random.Generator) -> dict:
        p = super().init_params(n_features, n_nodes, rng)
        k = self.block("f")
        p["B"][k * n_nodes : (k + 1) * n_nodes] = 1.0  # forget-gate bias 1
        return p
