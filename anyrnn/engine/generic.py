"""The one time loop: a forward scan and a reverse (BPTT) scan that serve every cell.

Work that does not depend on the recurrence is hoisted out of the loop:

* forward: the input projection ``x_t · W_x + B`` of all steps is one matmul over the
  time-major input ``(T*batch, n_features)``;
* backward: ``dW_x = X^T · dA_x``, ``dB = Σ dA_x``, ``dX = dA_x · W_x^T`` and the
  recurrent-weight gradients (``dW_h = H_{prev}^T · dA_h``) are single matmuls over
  the stacked per-step deltas.

Inside the loop only the recurrent matmul and the cell's elementwise work remain.
Nothing is written in place: per-step results are collected in lists and stacked,
and accumulations rebind, so JAX and array-api-strict run the same code.

NumPy fast path: given a ``workspace`` dict (the layer keeps one when its backend is
NumPy), the transient large arrays of a pass (the projected inputs and the stacked
per-step deltas and states) are written with ``out=`` into buffers kept there between
calls. Fresh multi-megabyte temporaries on every call cost a page fault per 4 KiB
(about 5 µs each on the machines measured, a third of the time of a medium-size
training step); reused buffers stay mapped. The operations and their order are the
same, so the results are bit-identical to the generic path; arrays that outlive the
pass (outputs, the tape) are never workspace buffers.

Masks: ``mask`` (batch, T) is True on real steps. On a masked step the state is
carried through unchanged (``where``, so NaN/inf padding never leaks), its output is
zero, and in the reverse scan the state's gradient passes through untouched while
every gradient of that step is exactly zero. Padded inputs are replaced by zeros
before the projection, so they reach no matmul either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cells.base import Cell
from .workspace import reuse_buffer

__all__ = ["Tape", "scan_forward", "scan_backward"]


def _stack(arrays: list, *, xp: Any, workspace: dict | None, key: str) -> Any:
    """``xp.stack(arrays, axis=0)``, into a reused buffer on the NumPy fast path."""
    if workspace is None:
        return xp.stack(arrays, axis=0)
    shape = (len(arrays),) + tuple(arrays[0].shape)
    return np.stack(arrays, axis=0, out=reuse_buffer(np, workspace, key, shape, arrays[0].dtype))


def _project(cell: Cell, q: dict, x2: Any, *, xp: Any, workspace: dict | None) -> Any:
    """``x2 · W_x + B`` for every step at once, into a reused buffer on NumPy."""
    if workspace is None or type(cell).project is not Cell.project:
        return cell.project(q, x2, xp=xp)
    w = q["W_x"]
    out = reuse_buffer(np, workspace, "ax", (x2.shape[0], w.shape[1]), w.dtype)
    np.matmul(x2, w, out=out)
    return np.add(out, q["B"], out=out)


@dataclass
class Tape:
    """What the reverse scan needs from the forward scan."""

    p: dict  # parameters as they were during the forward pass
    x2: Any  # (T*batch, n_features) time-major input, padding zeroed
    state0: tuple  # initial state
    states: list  # per-step state tuple (h_t, ...) after masking, t = 0..T-1
    caches: list  # per-step cell caches
    mask_tm: Any  # (T, batch, 1) bool, or None
    shape: tuple[int, int, int]  # (batch, T, n_features)


def _time_major_mask(mask: Any, *, xp: Any) -> Any:
    return xp.expand_dims(xp.permute_dims(mask, (1, 0)), axis=2)  # (T, batch, 1)


def scan_forward(
    cell: Cell,
    p: dict,
    X: Any,
    state0: tuple,
    *,
    xp: Any,
    mask: Any = None,
    keep_tape: bool = True,
    keep_caches: bool = False,
    workspace: dict | None = None,
) -> tuple[list, tuple, Tape | None, list]:
    """Run ``cell`` over the time axis of ``X``.

    Parameters
    ----------
    cell : Cell
    p : dict of arrays
        The cell's parameters.
    X : array of shape (batch, T, n_features)
    state0 : tuple of arrays of shape (batch, n_nodes)
        Initial state (``(h0,)``, or ``(h0, c0)`` for LSTM).
    mask : bool array of shape (batch, T), optional
        True on real steps.
    keep_tape : bool
        Keep what the reverse scan needs (False for inference: less memory).
    keep_caches : bool
        Return the per-step cell caches even without a tape (for gate values).
    workspace : dict, optional
        NumPy only: reused buffers for the transient arrays (see the module docstring).

    Returns
    -------
    states : list of T tuples of arrays of shape (batch, n_nodes)
        Per-step states ``(h_t, ...)`` (carried through on masked steps).
    state : tuple of arrays
        The final state.
    tape : Tape or None
    caches : list
        Per-step cell caches (empty unless ``keep_tape`` or ``keep_caches``).
    """
    batch, n_steps, n_features = X.shape
    mask_tm = None
    x_tm = xp.permute_dims(X, (1, 0, 2))
    if mask is not None:
        mask_tm = _time_major_mask(mask, xp=xp)
        x_tm = xp.where(mask_tm, x_tm, xp.zeros_like(x_tm))
    x2 = xp.reshape(x_tm, (n_steps * batch, n_features))
    q = cell.prepare(p, xp=xp)
    ax_all = xp.reshape(_project(cell, q, x2, xp=xp, workspace=workspace), (n_steps, batch, -1))

    state = state0
    states, caches = [], []
    keep = keep_tape or keep_caches
    for t in range(n_steps):
        new_state, cache = cell.step(q, ax_all[t, ...], state, xp=xp)
        if mask_tm is not None:
            m = mask_tm[t, ...]
            new_state = tuple(xp.where(m, new, old) for new, old in zip(new_state, state))
        state = new_state
        states.append(state)
        if keep:
            caches.append(cache)
    tape = None
    if keep_tape:
        tape = Tape(p, x2, state0, states, caches, mask_tm, (batch, n_steps, n_features))
    return states, state, tape, caches


def scan_backward(
    cell: Cell,
    tape: Tape,
    d_hs: Any,
    d_state: tuple,
    *,
    xp: Any,
    workspace: dict | None = None,
) -> tuple[Any, tuple, dict]:
    """Backpropagation through time over a :class:`Tape`.

    Parameters
    ----------
    cell : Cell
    tape : Tape
        From :func:`scan_forward` with ``keep_tape=True``.
    d_hs : array of shape (batch, T, n_nodes) or None
        Gradient on every step's output (None: only the final state has one). Entries at
        masked steps are ignored: a padded output is the constant 0.
    d_state : tuple
        Gradient on the final state, one entry per state (None entries are zero).
    workspace : dict, optional
        NumPy only: reused buffers for the stacked deltas and states.

    Returns
    -------
    dX : array of shape (batch, T, n_features)
        Zero at masked steps.
    d_state0 : tuple of arrays of shape (batch, n_nodes)
    grads : dict
        Gradients of every parameter of the cell, keyed like ``tape.p``.
    """
    p = tape.p
    batch, n_steps, n_features = tape.shape
    zero = xp.zeros_like(tape.state0[0])
    d_state = tuple(zero if d is None else d for d in d_state)
    d_hs_tm = None if d_hs is None else xp.permute_dims(d_hs, (1, 0, 2))
    q = cell.prepare_backward(p, xp=xp)
    mask_tm = tape.mask_tm

    d_ax_rev, d_ah_rev = [], []
    for t in range(n_steps - 1, -1, -1):
        m = None if mask_tm is None else mask_tm[t, ...]
        if d_hs_tm is not None:
            d_h = d_hs_tm[t, ...]
            if m is not None:  # a padded output is the constant 0: no gradient from it
                d_h = xp.where(m, d_h, zero)
            d_state = (d_state[0] + d_h,) + d_state[1:]
        if m is not None:
            carried = tuple(xp.where(m, zero, d) for d in d_state)  # masked: passes through
            d_state = tuple(xp.where(m, d, zero) for d in d_state)  # real: into the cell
        d_ax, d_ah, d_prev = cell.step_backward(q, tape.caches[t], d_state, xp=xp)
        if m is not None:
            d_prev = tuple(a + b for a, b in zip(d_prev, carried))
        d_state = d_prev
        d_ax_rev.append(d_ax)
        d_ah_rev.append(d_ah)

    n_rows = n_steps * batch
    d_ax2 = xp.reshape(_stack(d_ax_rev[::-1], xp=xp, workspace=workspace, key="d_ax"), (n_rows, -1))
    if all(a is b for a, b in zip(d_ax_rev, d_ah_rev)):
        d_ah2 = d_ax2
    else:
        d_ah2 = xp.reshape(
            _stack(d_ah_rev[::-1], xp=xp, workspace=workspace, key="d_ah"), (n_rows, -1)
        )

    # hoisted weight gradients: one matmul each over all steps
    grads = {
        "W_x": xp.matrix_transpose(tape.x2) @ d_ax2,  # ax = x·W_x + B
        "B": xp.sum(d_ax2, axis=0),
    }
    h_prevs = [tape.state0[0]] + [s[0] for s in tape.states[:-1]]
    h_prev2 = xp.reshape(_stack(h_prevs, xp=xp, workspace=workspace, key="h_prev"), (n_rows, -1))
    grads.update(cell.recurrent_grads(p, h_prev2, tape.caches, d_ah2, xp=xp))
    dx2 = d_ax2 @ xp.matrix_transpose(p["W_x"])  # ax = x·W_x + B
    dX = xp.permute_dims(xp.reshape(dx2, (n_steps, batch, n_features)), (1, 0, 2))
    return dX, d_state, grads
