"""In-place fast path for the SimpleRNN cell on NumPy and CuPy: the same equations,
written with ``out=``.

The generic scan (:mod:`anyrnn.scan`) allocates every per-step result and stacks the
lists afterwards, as it must to run on JAX and array-api-strict. NumPy and CuPy share
an ``out=`` API, and on them this path writes in place instead (``m`` below is the
``numpy`` or ``cupy`` module):

* states go into one time-major buffer ``Hbuf`` of shape (T+1, batch, n_nodes) with
  ``h0`` in row 0, so ``h_{t-1}`` for every step (needed by ``dW_h``) is the zero-copy
  view ``Hbuf[:-1]``;
* the projected inputs and the per-step deltas ``dA`` go into buffers the layer keeps
  between calls (no page faults for fresh multi-megabyte temporaries);
* each step is ``matmul(out=) -> add(out=) -> tanh(out=)``; each reverse step
  ``add(out=) -> multiply(out=) -> matmul(out=)``.

On CuPy every ``out=`` call is one kernel with no allocation, which is also what makes
the loop capturable in a CUDA graph. It is used for SimpleRNN on NumPy and CuPy when no
mask is given and ``return_all_states`` is off (those take the generic path). The tests
require its results to equal the generic path's; the CuPy case runs only where a GPU
does, and was not measured on one when written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["SimpleTape", "forward", "backward"]


@dataclass
class SimpleTape:
    p: dict  # parameters of the forward pass
    x2: Any  # (T*batch, n_features) time-major input
    hbuf: Any  # (T+1, batch, n_nodes): h0, h_1, ..., h_T
    shape: tuple[int, int, int]  # (batch, T, n_features)


def _buffer(m: Any, workspace: dict, key: str, shape: tuple, dtype: Any) -> Any:
    buf = workspace.get(key)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        buf = workspace[key] = m.empty(shape, dtype=dtype)
    return buf


def forward(
    m: Any, activation: str, p: dict, X: Any, h0: Any, workspace: dict
) -> tuple[Any, SimpleTape]:
    """All states ``Hbuf`` (T+1, batch, n_nodes) and the tape for :func:`backward`."""
    batch, n_steps, n_features = X.shape
    n_nodes = h0.shape[1]
    dtype = X.dtype
    x2 = m.ascontiguousarray(X.transpose(1, 0, 2)).reshape(n_steps * batch, n_features)
    ax = _buffer(m, workspace, "ax", (n_steps * batch, n_nodes), dtype)
    m.matmul(x2, p["W_x"], out=ax)  # hoisted: x_t·W_x for every step
    ax += p["B"]
    ax = ax.reshape(n_steps, batch, n_nodes)
    hbuf = m.empty((n_steps + 1, batch, n_nodes), dtype=dtype)
    hbuf[0] = h0
    W_h = p["W_h"]
    for t in range(n_steps):
        a = hbuf[t + 1]  # a_t is built in place of h_t, then activated there
        m.matmul(hbuf[t], W_h, out=a)  # h_{t-1}·W_h
        a += ax[t]  # a_t = x_t·W_x + B + h_{t-1}·W_h
        if activation == "tanh":
            m.tanh(a, out=a)
        else:
            m.maximum(a, 0, out=a)
    return hbuf, SimpleTape(p, x2, hbuf, (batch, n_steps, n_features))


def backward(
    m: Any,
    activation: str,
    tape: SimpleTape,
    d_hs: Any,
    d_last: Any,
    workspace: dict,
) -> tuple[Any, Any, dict]:
    """BPTT over a :class:`SimpleTape`: ``(dX, dh0, grads)``.

    ``d_hs`` (batch, T, n_nodes) is the gradient on every step's output (or None),
    ``d_last`` (batch, n_nodes) the gradient on the final state (or None).
    """
    p, hbuf = tape.p, tape.hbuf
    batch, n_steps, n_features = tape.shape
    n_nodes = hbuf.shape[2]
    dtype = hbuf.dtype
    W_hT = m.ascontiguousarray(p["W_h"].T)  # once per pass: a contiguous matrix is faster
    d_a = _buffer(m, workspace, "d_a", (n_steps, batch, n_nodes), dtype)
    deriv = _buffer(m, workspace, "deriv", (batch, n_nodes), dtype)
    carry = m.zeros((batch, n_nodes), dtype) if d_last is None else m.array(d_last, dtype=dtype)
    d_hs_tm = None if d_hs is None else d_hs.transpose(1, 0, 2)
    for t in range(n_steps - 1, -1, -1):
        if d_hs_tm is not None:
            carry += d_hs_tm[t]  # dh_t = (from the output) + (from step t+1)
        h = hbuf[t + 1]
        if activation == "tanh":
            m.multiply(h, h, out=deriv)
            m.subtract(1, deriv, out=deriv)  # d tanh(a) = 1 - h^2
        else:
            m.sign(h, out=deriv)  # d max(a, 0) = [a > 0] = sign(h), as h >= 0
        m.multiply(carry, deriv, out=d_a[t])
        m.matmul(d_a[t], W_hT, out=carry)  # a_t = ... + h_{t-1}·W_h
    d_a2 = d_a.reshape(n_steps * batch, n_nodes)
    grads = {
        "W_x": tape.x2.T @ d_a2,  # hoisted: one matmul over all steps
        "W_h": hbuf[:-1].reshape(n_steps * batch, n_nodes).T @ d_a2,
        "B": d_a2.sum(axis=0),
    }
    dX = (d_a2 @ p["W_x"].T).reshape(n_steps, batch, n_features).transpose(1, 0, 2)
    return dX, carry, grads
