"""The generic engine: one forward scan and one reverse (BPTT) scan for every cell, in
Array API calls only, so it runs on every backend (JAX and array-api-strict included).

Work that does not depend on the recurrence is hoisted out of the loop:

* forward: the input projection ``x_t · W_x + B`` of all steps is one matmul over the
  time-major input ``(T·batch, n_features)``;
* backward: ``dW_x = Xᵀ · dA``, ``dB = Σ dA``, ``dX = dA · W_xᵀ`` and the recurrent
  gradients (``dW_h = H_prevᵀ · dU``) are single matmuls over the stacked deltas.

Inside the loop only the recurrent matmul and the cell's step remain. Nothing is
written in place: per-step results are collected in lists and stacked, and
accumulations rebind. Each loop is one call of ``scan(body, carry, xs, n_steps)`` with
``jax.lax.scan``'s contract: :func:`python_scan` here, ``jax.lax.scan`` when the JAX
engine traces the same functions for ``jax.jit`` (:mod:`anyrnn.engine.jaxjit`).

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

__all__ = ["GenericEngine", "python_scan"]


def _stack(steps: Any, *, xp: Any, workspace: dict | None, key: str, axis: int = 0) -> Any:
    """Per-step arrays stacked on ``axis``: a list from :func:`python_scan` (into a reused
    buffer on NumPy), or already one array from a compiled scan."""
    if not isinstance(steps, list):
        return steps if axis == 0 else xp.moveaxis(steps, 0, axis)
    if workspace is None or axis != 0:
        return xp.stack(steps, axis=axis)
    shape = (len(steps),) + tuple(steps[0].shape)
    return np.stack(steps, axis=0, out=reuse_buffer(np, workspace, key, shape, steps[0].dtype))


def _select(steps: Any, pick: Any) -> Any:
    """``pick`` of every step's output: a list (Python loop) or the stacked array (scan)."""
    return [pick(y) for y in steps] if isinstance(steps, list) else pick(steps)


def _at(xs: Any, t: int) -> Any:
    """Step ``t`` of a tuple of per-step inputs (arrays or lists indexed on axis 0)."""
    if isinstance(xs, tuple):
        return tuple(_at(x, t) for x in xs)
    if xs is None or isinstance(xs, list):
        return None if xs is None else xs[t]
    return xs[t, ...]


def python_scan(body: Any, carry: Any, xs: tuple, n_steps: int, reverse: bool = False) -> tuple:
    """``jax.lax.scan``'s contract as a Python loop: ``carry, y_t = body(carry, x_t)``;
    returns the last carry and the list of ``y_t`` in step order."""
    ys: list = [None] * n_steps
    for t in range(n_steps - 1, -1, -1) if reverse else range(n_steps):
        carry, ys[t] = body(carry, _at(xs, t))
    return carry, ys


class GenericEngine:
    """Runs every cell, option and backend (see the module docstring).

    ``scan`` runs the time loops (:func:`python_scan` by default; the JAX engine passes
    ``jax.lax.scan`` and traces the whole pass).
    """

    name = "generic"

    def __init__(self, scan: Any = python_scan):
        self.scan = scan

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
        keep = keep_tape or all_states

        def step(state: tuple, x: tuple) -> tuple:
            a_t, m = x
            new_state, cache = cell.step(q, a_t, state, xp=xp)
            if m is not None:
                new_state = tuple(xp.where(m, new, old) for new, old in zip(new_state, state))
            return new_state, (new_state, cache if keep else None)

        state, ys = self.scan(step, tuple(state0), (a_all, mask_tm), n_steps)
        states = _select(ys, lambda y: y[0])
        caches = _select(ys, lambda y: y[1]) if keep else None

        def seq(steps: Any) -> Any:
            out = _stack(steps, xp=xp, workspace=None, key="", axis=1)
            if mask is None:
                return out
            return xp.where(xp.expand_dims(mask, axis=2), out, xp.zeros_like(out))

        h_seq = seq(_select(states, lambda s: s[0]))
        values = None
        if all_states:
            values = {
                n: seq(_select(states, lambda s, k=k: s[k])) for k, n in enumerate(cell.state_names)
            }
            for n in cell.value_names:
                values[n] = seq(_select(caches, lambda c, n=n: c[n]))
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
        d_tm = None if d_seq is None else xp.permute_dims(d_seq, (1, 0, 2))
        same = not cell.has_u()  # d_u is d_a: stacked once

        def step(carries: tuple, x: tuple) -> tuple:
            cache, dy, m = x
            dy = zero if dy is None else dy
            if m is not None:
                dy = xp.where(m, dy, zero)  # a padded output is the constant 0
            d_a, d_u, new = cell.step_backward(q, cache, carries, dy, xp=xp)
            if same and d_u is not d_a:  # d_u would be dropped: the W_h gradient wrong
                raise TypeError(
                    f"{type(cell).__name__}.step_backward returned a d_u that is not its d_a, "
                    "but the cell's has_u() says they are one: override has_u() to return True"
                )
            if m is not None:  # masked rows: the step is skipped, the carries pass through
                d_a = xp.where(m, d_a, xp.zeros_like(d_a))
                d_u = d_a if same else xp.where(m, d_u, xp.zeros_like(d_u))
                new = tuple(xp.where(m, a, b) for a, b in zip(new, carries))
            return new, (d_a, None if same else d_u)

        xs = (tape["caches"], d_tm, tape["mask"])
        carries, ys = self.scan(step, tuple(carries), xs, n_steps, reverse=True)
        n_rows = n_steps * batch
        d_a = _stack(_select(ys, lambda y: y[0]), xp=xp, workspace=ws, key="d_a")
        d_a2 = xp.reshape(d_a, (n_rows, -1))
        if same:
            d_u2 = d_a2
        else:
            d_u = _stack(_select(ys, lambda y: y[1]), xp=xp, workspace=ws, key="d_u")
            d_u2 = xp.reshape(d_u, (n_rows, -1))
        x2 = tape["x2"]
        grads = {
            "W_x": xp.matrix_transpose(x2) @ d_a2,  # a = x·W_x + B
            "B": xp.sum(d_a2, axis=0),
        }
        h0 = tape["state0"][0]
        hs = _select(tape["states"], lambda s: s[0])
        if isinstance(hs, list):
            h_prev = _stack([h0] + hs[:-1], xp=xp, workspace=ws, key="h_prev")
        else:
            h_prev = xp.concat([xp.expand_dims(h0, axis=0), hs[:-1, ...]], axis=0)
        h_prev2 = xp.reshape(h_prev, (n_rows, -1))

        def cached(name: str) -> Any:  # a stored per-step value, stacked (N, ...)
            v = _stack(_select(tape["caches"], lambda c: c[name]), xp=xp, workspace=None, key="")
            return xp.reshape(v, (n_rows, -1))

        grads.update(cell.recurrent_grads(h_prev2, cached, d_u2, xp=xp))
        dx2 = d_a2 @ q["W_xT"]  # a = x·W_x + B
        dX = xp.permute_dims(xp.reshape(dx2, (n_steps, batch, n_features)), (1, 0, 2))
        return dX, cell.state_grads(q, carries, xp=xp), grads
