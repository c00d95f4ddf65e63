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
``unit_forget_bias``), so early in training the cell keeps its memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Cell, sigmoid_tanh

__all__ = ["LSTMCell"]


class LSTMCell(Cell):
    n_gates = 4
    state_names = ("h", "c")
    value_names = ("i", "f", "g", "o")

    def init_params(self, n_features: int, n_nodes: int, rng: np.random.Generator) -> dict:
        p = super().init_params(n_features, n_nodes, rng)
        p["B"][n_nodes : 2 * n_nodes] = 1.0  # forget-gate bias 1
        return p

    def step(self, p: dict, ax: Any, state: tuple, *, xp: Any) -> tuple[tuple, Any]:
        h_prev, c_prev = state
        n = h_prev.shape[1]
        z = ax + h_prev @ p["W_h"]  # z_t = x_t·W_x + B + h_{t-1}·W_h
        i_f = sigmoid_tanh(z[:, : 2 * n], xp=xp)  # i and f are adjacent: one call for both
        i, f = i_f[:, :n], i_f[:, n:]
        g = xp.tanh(z[:, 2 * n : 3 * n])
        o = sigmoid_tanh(z[:, 3 * n :], xp=xp)
        c = f * c_prev + i * g  # c_t = f ⊙ c_{t-1} + i ⊙ g
        tc = xp.tanh(c)
        h = o * tc  # h_t = o ⊙ tanh(c_t)
        return (h, c), (i, f, g, o, c_prev, tc)

    def step_backward(self, q: dict, cache: Any, d_state: tuple, *, xp: Any) -> tuple:
        i, f, g, o, c_prev, tc = cache
        dh, dc = d_state
        do = dh * tc  # h = o ⊙ tanh(c)
        dc = dc + dh * o * (1 - tc * tc)  # ... and through tanh(c)
        di = dc * g  # c = f ⊙ c_prev + i ⊙ g
        df = dc * c_prev
        dg = dc * i
        dc_prev = dc * f
        dz = xp.concat(
            [
                di * (i - i * i),  # i = σ(z_i), σ' = σ(1 - σ)
                df * (f - f * f),  # f = σ(z_f)
                dg * (1 - g * g),  # g = tanh(z_g)
                do * (o - o * o),  # o = σ(z_o)
            ],
            axis=1,
        )
        dh_prev = dz @ q["W_hT"]  # z = ... + h_{t-1}·W_h
        return dz, dz, (dh_prev, dc_prev)

    def step_values(self, cache: Any, *, xp: Any) -> dict:
        i, f, g, o, _, _ = cache
        return {"i": i, "f": f, "g": g, "o": o}
