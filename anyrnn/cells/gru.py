"""The GRU cell (Cho et al. 2014), in both of its formulations.

Gate order ``r, z, n`` (reset, update, candidate), the order of PyTorch and cuDNN. Each
gate is a block of ``n_nodes`` columns of ``W_x`` (n_features, 3·n_nodes) and ``W_h``
(n_nodes, 3·n_nodes); σ is the logistic sigmoid.

``reset_after=True`` (default; cuDNN, PyTorch, Keras ``reset_after=True``): the reset gate
multiplies the recurrent matmul's result, and there are two biases, ``B`` on the input
side and ``B_h`` on the recurrent side (both (3·n_nodes,))::

    a_t = x_t · W_x + B            u_t = h_{t-1} · W_h + B_h
    r_t = σ(a_t[r] + u_t[r])       z_t = σ(a_t[z] + u_t[z])
    n_t = tanh(a_t[n] + r_t ⊙ u_t[n])
    h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

``reset_after=False`` (the original paper; Keras ``reset_after=False``): the reset gate
multiplies the state before its matmul, and there is one bias ``B``::

    r_t = σ(a_t[r] + h_{t-1} · W_h[r])      z_t = σ(a_t[z] + h_{t-1} · W_h[z])
    n_t = tanh(a_t[n] + (r_t ⊙ h_{t-1}) · W_h[n])
    h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import check_bool
from .base import Cell, sigmoid_tanh

__all__ = ["GRUCell"]


class GRUCell(Cell):
    n_gates = 3
    state_names = ("h",)
    value_names = ("r", "z", "n")

    def __init__(self, reset_after: bool = True):
        self.reset_after = check_bool(reset_after, "reset_after")
        self.param_names = ("W_x", "W_h", "B", "B_h") if reset_after else ("W_x", "W_h", "B")

    def param_shapes(self, n_features: int, n_nodes: int) -> dict:
        shapes = super().param_shapes(n_features, n_nodes)
        if self.reset_after:
            shapes["B_h"] = (3 * n_nodes,)
        return shapes

    def init_params(self, n_features: int, n_nodes: int, rng: np.random.Generator) -> dict:
        p = super().init_params(n_features, n_nodes, rng)
        if self.reset_after:
            p["B_h"] = np.zeros(3 * n_nodes)
        return p

    # forward ------------------------------------------------------------------------
    def prepare(self, p: dict, *, xp: Any) -> dict:
        if self.reset_after:
            return p
        n = p["W_h"].shape[0]
        return {**p, "W_hrz": p["W_h"][:, : 2 * n], "W_hn": p["W_h"][:, 2 * n :]}

    def step(self, p: dict, ax: Any, state: tuple, *, xp: Any) -> tuple[tuple, Any]:
        (h_prev,) = state
        n = h_prev.shape[1]
        if self.reset_after:
            u = h_prev @ p["W_h"] + p["B_h"]  # u_t = h_{t-1}·W_h + B_h
            rz = sigmoid_tanh(ax[:, : 2 * n] + u[:, : 2 * n], xp=xp)
            r, z = rz[:, :n], rz[:, n:]
            u_n = u[:, 2 * n :]
            cand = xp.tanh(ax[:, 2 * n :] + r * u_n)  # n_t = tanh(a[n] + r ⊙ u[n])
            h = cand + z * (h_prev - cand)  # h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
            return (h,), (r, z, cand, u_n, h_prev)
        rz = sigmoid_tanh(ax[:, : 2 * n] + h_prev @ p["W_hrz"], xp=xp)
        r, z = rz[:, :n], rz[:, n:]
        rh = r * h_prev
        cand = xp.tanh(ax[:, 2 * n :] + rh @ p["W_hn"])  # n_t = tanh(a[n] + (r ⊙ h)·W_h[n])
        h = cand + z * (h_prev - cand)
        return (h,), (r, z, cand, rh, h_prev)

    # backward -----------------------------------------------------------------------
    def prepare_backward(self, p: dict, *, xp: Any) -> dict:
        q = {"W_hT": xp.matrix_transpose(p["W_h"])}
        if not self.reset_after:
            n = p["W_h"].shape[0]
            q["W_hrzT"] = xp.matrix_transpose(p["W_h"][:, : 2 * n])
            q["W_hnT"] = xp.matrix_transpose(p["W_h"][:, 2 * n :])
        return q

    def step_backward(self, q: dict, cache: Any, d_state: tuple, *, xp: Any) -> tuple:
        (dh,) = d_state
        r, z, cand, extra, h_prev = cache
        d_cand = dh * (1 - z)  # h = (1 - z) ⊙ n + z ⊙ h_prev
        dz_pre = dh * (h_prev - cand) * z * (1 - z)  # ... and z = σ(·)
        dh_prev = dh * z
        dn_pre = d_cand * (1 - cand * cand)  # n = tanh(·)
        if self.reset_after:
            u_n = extra
            dr_pre = dn_pre * u_n * r * (1 - r)  # n = tanh(a[n] + r ⊙ u[n]), r = σ(·)
            d_ax = xp.concat([dr_pre, dz_pre, dn_pre], axis=1)
            d_u = xp.concat([dr_pre, dz_pre, dn_pre * r], axis=1)
            dh_prev = dh_prev + d_u @ q["W_hT"]  # u = h_prev·W_h + B_h
            return d_ax, d_u, (dh_prev,)
        d_rh = dn_pre @ q["W_hnT"]  # n = tanh(a[n] + (r ⊙ h_prev)·W_h[n])
        dr_pre = d_rh * h_prev * r * (1 - r)
        d_rz = xp.concat([dr_pre, dz_pre], axis=1)
        dh_prev = dh_prev + d_rh * r + d_rz @ q["W_hrzT"]  # rz = σ(a[rz] + h_prev·W_h[rz])
        d_ax = xp.concat([d_rz, dn_pre], axis=1)
        return d_ax, d_ax, (dh_prev,)

    def recurrent_grads(self, p: dict, h_prev2: Any, caches: list, d_ah2: Any, *, xp: Any) -> dict:
        if self.reset_after:
            return {
                "W_h": xp.matrix_transpose(h_prev2) @ d_ah2,  # u = h_prev·W_h + B_h
                "B_h": xp.sum(d_ah2, axis=0),
            }
        n = h_prev2.shape[1]
        rh2 = xp.reshape(xp.stack([c[3] for c in caches], axis=0), (-1, n))
        d_rz = xp.matrix_transpose(h_prev2) @ d_ah2[:, : 2 * n]  # h_prev·W_h[rz]
        d_n = xp.matrix_transpose(rh2) @ d_ah2[:, 2 * n :]  # (r ⊙ h_prev)·W_h[n]
        return {"W_h": xp.concat([d_rz, d_n], axis=1)}

    def step_values(self, cache: Any, *, xp: Any) -> dict:
        r, z, cand = cache[:3]
        return {"r": r, "z": z, "n": cand}
