"""In-place fast path for the LSTM cell on NumPy and CuPy (``m`` is the module).

The equations of :mod:`anyrnn.cells.lstm`, written with ``out=``:

* states ``h`` and ``c`` go into time-major buffers of shape (T+1, batch, n_nodes) with
  ``h0``/``c0`` in row 0, so ``h_{t-1}`` for ``dW_h`` is the zero-copy view ``Hbuf[:-1]``;
* the gate pre-activations of step t are computed in place in ``G[t]`` (T, batch,
  4·n_nodes) and turned into the gate values there, so the tape holds exactly what the
  generic path's caches hold (gates, ``tanh(c)``, states) without per-step allocation;
* the reverse scan writes each step's ``dz`` into one reused buffer instead of a list
  that is stacked afterwards.

Used for LSTM on NumPy and CuPy without a mask or ``return_all_states``. The tests require
its results to equal the generic path's (to rounding); the CuPy branch runs only where a
GPU does and was not measured on one when written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._inplace_simple import _buffer

__all__ = ["LSTMTape", "forward", "backward"]


@dataclass
class LSTMTape:
    p: dict  # parameters of the forward pass
    x2: Any  # (T*batch, n_features) time-major input
    hbuf: Any  # (T+1, batch, n_nodes): h0, h_1, ..., h_T
    cbuf: Any  # (T+1, batch, n_nodes): c0, c_1, ..., c_T
    gates: Any  # (T, batch, 4*n_nodes): i, f, g, o of every step
    tanh_c: Any  # (T, batch, n_nodes)
    shape: tuple[int, int, int]  # (batch, T, n_features)


def _sigmoid_(m: Any, z: Any) -> None:
    """In place: ``z <- 0.5 * tanh(0.5 z) + 0.5`` (the cells' sigmoid, op for op)."""
    z *= 0.5
    m.tanh(z, out=z)
    z *= 0.5
    z += 0.5


def forward(m: Any, p: dict, X: Any, h0: Any, c0: Any, workspace: dict) -> LSTMTape:
    batch, n_steps, n_features = X.shape
    n = h0.shape[1]
    dtype = X.dtype
    x2 = m.ascontiguousarray(X.transpose(1, 0, 2)).reshape(n_steps * batch, n_features)
    ax = _buffer(m, workspace, "ax", (n_steps * batch, 4 * n), dtype)
    m.matmul(x2, p["W_x"], out=ax)  # hoisted: x_t·W_x for every step
    ax += p["B"]
    ax = ax.reshape(n_steps, batch, 4 * n)
    hbuf = m.empty((n_steps + 1, batch, n), dtype=dtype)
    cbuf = m.empty((n_steps + 1, batch, n), dtype=dtype)
    gates = m.empty((n_steps, batch, 4 * n), dtype=dtype)
    tanh_c = m.empty((n_steps, batch, n), dtype=dtype)
    hbuf[0], cbuf[0] = h0, c0
    ig = _buffer(m, workspace, "ig", (batch, n), dtype)
    W_h = p["W_h"]
    for t in range(n_steps):
        z = gates[t]
        m.matmul(hbuf[t], W_h, out=z)  # z_t = x_t·W_x + B + h_{t-1}·W_h
        z += ax[t]
        _sigmoid_(m, z[:, : 2 * n])  # i, f
        m.tanh(z[:, 2 * n : 3 * n], out=z[:, 2 * n : 3 * n])  # g
        _sigmoid_(m, z[:, 3 * n :])  # o
        i, f, g, o = z[:, :n], z[:, n : 2 * n], z[:, 2 * n : 3 * n], z[:, 3 * n :]
        c = cbuf[t + 1]
        m.multiply(f, cbuf[t], out=c)  # c_t = f ⊙ c_{t-1} + i ⊙ g
        m.multiply(i, g, out=ig)
        c += ig
        m.tanh(c, out=tanh_c[t])
        m.multiply(o, tanh_c[t], out=hbuf[t + 1])  # h_t = o ⊙ tanh(c_t)
    return LSTMTape(p, x2, hbuf, cbuf, gates, tanh_c, (batch, n_steps, n_features))


def backward(
    m: Any, tape: LSTMTape, d_hs: Any, d_h_last: Any, d_c_last: Any, workspace: dict
) -> tuple[Any, tuple, dict]:
    """BPTT over an :class:`LSTMTape`: ``(dX, (dh0, dc0), grads)``."""
    p = tape.p
    batch, n_steps, n_features = tape.shape
    n = tape.hbuf.shape[2]
    dtype = tape.hbuf.dtype
    W_hT = m.ascontiguousarray(p["W_h"].T)  # once per pass: a contiguous matrix is faster
    dz_all = _buffer(m, workspace, "dz", (n_steps, batch, 4 * n), dtype)
    tmp = _buffer(m, workspace, "tmp", (batch, n), dtype)
    dh = m.zeros((batch, n), dtype) if d_h_last is None else m.array(d_h_last, dtype=dtype)
    dc = m.zeros((batch, n), dtype) if d_c_last is None else m.array(d_c_last, dtype=dtype)
    d_hs_tm = None if d_hs is None else d_hs.transpose(1, 0, 2)
    for t in range(n_steps - 1, -1, -1):
        if d_hs_tm is not None:
            dh += d_hs_tm[t]
        z = tape.gates[t]
        i, f, g, o = z[:, :n], z[:, n : 2 * n], z[:, 2 * n : 3 * n], z[:, 3 * n :]
        tc = tape.tanh_c[t]
        dz = dz_all[t]
        dz_i, dz_f, dz_g, dz_o = dz[:, :n], dz[:, n : 2 * n], dz[:, 2 * n : 3 * n], dz[:, 3 * n :]
        m.multiply(tc, tc, out=tmp)  # dc += dh ⊙ o ⊙ (1 - tanh(c)^2)
        m.subtract(1, tmp, out=tmp)
        tmp *= o
        tmp *= dh
        dc += tmp
        m.multiply(dh, tc, out=dz_o)  # do = dh ⊙ tanh(c); dz_o = do ⊙ o(1 - o)
        m.multiply(o, o, out=tmp)
        m.subtract(o, tmp, out=tmp)
        dz_o *= tmp
        m.multiply(dc, g, out=dz_i)  # di = dc ⊙ g; dz_i = di ⊙ i(1 - i)
        m.multiply(i, i, out=tmp)
        m.subtract(i, tmp, out=tmp)
        dz_i *= tmp
        m.multiply(dc, tape.cbuf[t], out=dz_f)  # df = dc ⊙ c_{t-1}; dz_f = df ⊙ f(1 - f)
        m.multiply(f, f, out=tmp)
        m.subtract(f, tmp, out=tmp)
        dz_f *= tmp
        m.multiply(dc, i, out=dz_g)  # dg = dc ⊙ i; dz_g = dg ⊙ (1 - g^2)
        m.multiply(g, g, out=tmp)
        m.subtract(1, tmp, out=tmp)
        dz_g *= tmp
        dc *= f  # dc_{t-1} = dc ⊙ f
        m.matmul(dz, W_hT, out=dh)  # dh_{t-1} = dz·W_hᵀ
    dz2 = dz_all.reshape(n_steps * batch, 4 * n)
    grads = {
        "W_x": tape.x2.T @ dz2,  # hoisted: one matmul over all steps
        "W_h": tape.hbuf[:-1].reshape(n_steps * batch, n).T @ dz2,
        "B": dz2.sum(axis=0),
    }
    dX = (dz2 @ p["W_x"].T).reshape(n_steps, batch, n_features).transpose(1, 0, 2)
    return dX, (dh, dc), grads
