"""The generic engine: one forward scan and one reverse (BPTT) scan for every cell, in
Array API calls only, so it runs on every backend (JAX and array-api-strict included).

Work that does not depend on the recurrence is hoisted out of the loop:

* forward: the input projection ``x_t · W_x + B`` of all steps is one matmul over the
  time-major input ``(T·batch, n_features)``;
* backward: ``dW_x = Xᵀ · dA``, ``dB = Σ dA``, ``dX = dA · W_xᵀ`` and the recurrent
  gradients (``dW_h = H_prevᵀ · dU``) are single matmuls over the stacked deltas.

Inside the loop only the recurrent matmul and the cell's step remain. Nothing is
written in place: per-step results are collected in lists and stacked, and
accumulations rebind.

Masks: ``mask`` (batch, T) is True on real steps. On a masked step the state is carried
through unchanged (``where``, so NaN/inf padding never leaks), its output is zero, and
in the reverse scan the carried gradients pass through untouched while every gradient
of that step is exactly zero. Padded inputs are replaced by zeros before the projection.

On NumPy (``workspace`` given), the transient large arrays of a pass (the projection,
the stacked deltas and states) are written into buffers kept between calls: fresh
multi-megabyte temporaries cost a page fault per 4 KiB. The operations are the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..cells.base import Cell
from .workspace import reuse_buffer

__all__ = ["GenericEngine"]


def _stack(arrays: list, *, xp: Any, workspace: dict | None, key: str) -> Any:
    """``xp.stack(arrays, axis=0)``, into a reused buffer on NumPy."""
    if workspace is None:
        return xp.stack(arrays, axis=0)
    shape = (len(arrays),) + tuple(arrays[0].shape)
    return np.stack(arrays, axis=0, out=reuse_buffer(np, workspace, key, shape, arrays[0].dtype))


class GenericEngine:
    """Runs every cell, option and backend (see the module docstring)."""

    name = "generic"

    def unsupported(self, cell: Cell, backend: Any, *, masked: bool, all_states: bool) -> None:
        return None

    def forward(
        self,
        cell: Cell,
        backend: Any,
        params: dict,
        X: Any,
        state0: tuple,
        *,
        mask: Any,
        keep_tape: bool,
        all_states: bool,
        workspace: dict | None,
    ) -> tuple[Any, tuple, dict | None, Any]:
        """Returns ``(seq, finals, values, tape_data)``: the per-step ``h`` (batch, T, n),
        the final states, the per-step values (``all_states``) and what backward needs."""
        xp = backend.xp
        ws = workspace if backend.name == "numpy" else None
        batch, n_steps, n_features = X.shape
        mask_tm = None
        x_tm = xp.permute_dims(X, (1, 0, 2))
        if mask is not None:
            mask_tm = xp.expand_dims(xp.permute_dims(mask, (1, 0)), axis=2)  # (T, batch, 1)
            x_tm = xp.where(mask_tm, x_tm, xp.zeros_like(x_tm))
        x2 = xp.reshape(x_tm, (n_steps * batch, n_features))
        if keep_tape:
            x2 = xp.asarray(x2, copy=True)  # the tape never keeps the caller's memory
        q = cell.prepare(params, xp=xp)
        if ws is None or cell.project is not Cell.project:
            a_all = cell.project(q, x2, xp=xp)
        else:  # the same matmul and add, into a reused buffer
            a_all = reuse_buffer(np, ws, "a", (x2.shape[0], q["W_x"].shape[1]), q["W_x"].dtype)
            np.matmul(x2, q["W_x"], out=a_all)
            np.add(a_all, q["B"], out=a_all)
        a_all = xp.reshape(a_all, (n_steps, batch, -1))
        state = state0
        states, caches = [], []
        for t in range(n_steps):
            new_state, cache = cell.step(q, a_all[t, ...], state, xp=xp)
            if mask_tm is not None:
                m = mask_tm[t, ...]
                new_state = tuple(xp.where(m, new, old) for new, old in zip(new_state, state))
            state = new_state
            states.append(state)
            if keep_tape or all_states:
                caches.append(cache)

        def seq(arrays: list) -> Any:
            out = xp.stack(arrays, axis=1)
            if mask is None:
                return out
            return xp.where(xp.expand_dims(mask, axis=2), out, xp.zeros_like(out))

        h_seq = seq([s[0] for s in states])
        values = None
        if all_states:
            values = {n: seq([s[k] for s in states]) for k, n in enumerate(cell.state_names)}
            for n in cell.value_names:
                values[n] = seq([c[n] for c in caches])
        tape = None
        if keep_tape:
            tape = {"x2": x2, "state0": state0, "states": states, "caches": caches, "mask": mask_tm}
        return h_seq, state, values, tape

    def backward(
        self,
        cell: Cell,
        backend: Any,
        params: dict,
        shape: tuple,
        tape: dict,
        d_seq: Any,
        d_finals: tuple,
        workspace: dict | None,
    ) -> tuple[Any, tuple, dict]:
        """BPTT: ``(dX, d_state0, grads)``. ``d_seq`` (batch, T, n) is the gradient on every
        step's output (None: none); ``d_finals`` on the final states (None entries: zero).
        Entries of ``d_seq`` at masked steps are ignored: a padded output is the constant 0."""
        xp = backend.xp
        ws = workspace if backend.name == "numpy" else None
        batch, n_steps, n_features = shape
        zero = xp.zeros_like(tape["state0"][0])
        q = cell.prepare(params, xp=xp)
        # carries: (dh_mm, *cell.carries()), started from the gradients on the final state
        by_state = dict(zip(cell.state_names, d_finals))
        carries = [zero if by_state["h"] is None else by_state["h"]]
        for c in cell.carries():
            d = by_state.get(c[1:])
            carries.append(zero if d is None else d)
        carries = tuple(carries)
        d_tm = None if d_seq is None else xp.permute_dims(d_seq, (1, 0, 2))
        mask_tm = tape["mask"]
        d_a_rev, d_u_rev = [], []
        for t in range(n_steps - 1, -1, -1):
            m = None if mask_tm is None else mask_tm[t, ...]
            dy = zero if d_tm is None else d_tm[t, ...]
            if m is not None:
                dy = xp.where(m, dy, zero)  # a padded output is the constant 0
            d_a, d_u, new = cell.step_backward(q, tape["caches"][t], carries, dy, xp=xp)
            if m is not None:  # masked rows: the step is skipped, the carries pass through
                d_a = xp.where(m, d_a, xp.zeros_like(d_a))
                d_u = d_a if d_u is d_a else xp.where(m, d_u, xp.zeros_like(d_u))
                new = tuple(xp.where(m, a, b) for a, b in zip(new, carries))
            carries = new
            d_a_rev.append(d_a)
            d_u_rev.append(d_u)

        n_rows = n_steps * batch
        d_a2 = xp.reshape(_stack(d_a_rev[::-1], xp=xp, workspace=ws, key="d_a"), (n_rows, -1))
        if all(a is b for a, b in zip(d_a_rev, d_u_rev)):
            d_u2 = d_a2
        else:
            d_u2 = xp.reshape(_stack(d_u_rev[::-1], xp=xp, workspace=ws, key="d_u"), (n_rows, -1))
        x2 = tape["x2"]
        grads = {
            "W_x": xp.matrix_transpose(x2) @ d_a2,  # a = x·W_x + B
            "B": xp.sum(d_a2, axis=0),
        }
        h_prevs = [tape["state0"][0]] + [s[0] for s in tape["states"][:-1]]
        h_prev2 = xp.reshape(_stack(h_prevs, xp=xp, workspace=ws, key="h_prev"), (n_rows, -1))
        grads.update(cell.recurrent_grads(h_prev2, tape["caches"], d_u2, xp=xp))
        dx2 = d_a2 @ q["W_xT"]  # a = x·W_x + B
        dX = xp.permute_dims(xp.reshape(dx2, (n_steps, batch, n_features)), (1, 0, 2))
        return dX, cell.state_grads(q, carries, xp=xp), grads
