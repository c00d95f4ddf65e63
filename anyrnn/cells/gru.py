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

The arithmetic is :func:`~anyrnn.cells.pointwise.gru_forward` and ``gru_backward``; the
second form has a matmul inside its step, so it is two functions each way there and runs
on the generic engine only.
"""

from __future__ import annotations

from typing import Any

from .._checks import check_bool
from . import pointwise
from .base import Cell, _call

__all__ = ["GRUCell"]


class GRUCell(Cell):
    name = "gru"
    gates = ("r", "z", "n")
    sigmoid_gates = ("r", "z")
    state_names = ("h",)
    value_names = ("r", "z", "n")

    def __init__(self, reset_after: bool = True):
        self.reset_after = check_bool(reset_after, "reset_after")
        if self.reset_after:
            self.param_names = ("W_x", "W_h", "B", "B_h")
            self.forward_program = "gru_forward"
            self.backward_program = "gru_backward"

    # reset_after=False: a matmul between the gates and the candidate ----------------
    def step(self, q: dict, a: Any, state: tuple, *, xp: Any) -> tuple[tuple, dict]:
        if self.reset_after:
            return super().step(q, a, state, xp=xp)
        (h_prev,) = state
        n = h_prev.shape[1]
        W_h = q["W_h"]
        w_rz = h_prev @ W_h[:, : 2 * n]
        blocks = self._blocks(a, "a")
        r, z, rh = pointwise.gru_gates_reset_before(
            xp, blocks["a_r"], blocks["a_z"], w_rz[:, :n], w_rz[:, n:], h_prev, q["half"]
        )
        w_n = rh @ W_h[:, 2 * n :]  # (r ⊙ h_{t-1})·W_h[n]
        cand, h = pointwise.gru_state_reset_before(xp, blocks["a_n"], w_n, z, h_prev)
        return (h,), {"h_prev": h_prev, "r": r, "z": z, "n": cand, "rh": rh, "h": h}

    def step_backward(
        self, q: dict, cache: dict, carries: tuple, dy: Any, *, xp: Any
    ) -> tuple[Any, Any, tuple]:
        if self.reset_after:
            return super().step_backward(q, cache, carries, dy, xp=xp)
        n = cache["h"].shape[1]
        W_hT = q["W_hT"]  # (3n, n): rows of the r, z blocks, then the n block
        values = {**cache, "dh_mm": carries[0], "dy": dy}
        out = _call("gru_backward_state_reset_before", values, q, xp)
        d_rh = out["da_n"] @ W_hT[2 * n :, :]  # w_n = (r ⊙ h_prev)·W_h[n]
        gates = _call("gru_backward_gates_reset_before", {**cache, **out, "d_rh": d_rh}, q, xp)
        d_rz = xp.concat([gates["da_r"], out["da_z"]], axis=1)
        dh = pointwise.add(xp, gates["dh_part"], d_rz @ W_hT[: 2 * n, :])  # w_rz = h_prev·W_h
        d_a = xp.concat([d_rz, out["da_n"]], axis=1)
        return d_a, d_a, (dh,)

    def state_grads(self, q: dict, carries: tuple, *, xp: Any) -> tuple:
        # h_0 reaches h_1 directly as well as through W_h: its carry dh_direct joins dh
        (dh,) = super().state_grads(q, carries, xp=xp)
        if "dh_direct" in self.carries():
            dh = pointwise.add(xp, carries[1 + self.carries().index("dh_direct")], dh)
        return (dh,)

    def recurrent_grads(self, h_prev2: Any, cached: Any, d_u2: Any, *, xp: Any) -> dict:
        if self.reset_after:
            return super().recurrent_grads(h_prev2, cached, d_u2, xp=xp)
        n = h_prev2.shape[1]
        rh2 = cached("rh")
        d_rz = xp.matrix_transpose(h_prev2) @ d_u2[:, : 2 * n]  # h_prev·W_h[rz]
        d_n = xp.matrix_transpose(rh2) @ d_u2[:, 2 * n :]  # (r ⊙ h_prev)·W_h[n]
        return {"W_h": xp.concat([d_rz, d_n], axis=1)}
