"""In-place fast paths on NumPy and CuPy: the cells' equations written with ``out=``.

The generic scan (:mod:`anyrnn.scan`) allocates every per-step result and stacks the
lists afterwards, as it must to run on JAX and array-api-strict. NumPy and CuPy share an
``out=`` API (``m`` below is the ``numpy`` or ``cupy`` module), and on them this module
runs the same equations in place, with one forward loop and one reverse loop for every
cell; a small kernel class per cell holds its in-place step (the equations are in
:mod:`anyrnn.cells`).

What it stores, and where:

* the states go into time-major buffers of shape (T+1, batch, n_nodes) with the initial
  state in row 0, so ``h_{t-1}`` of every step is the zero-copy view ``hbuf[:-1]``;
* the hoisted input projection ``x_t·W_x + B`` of every step is written straight into
  the buffer that the step then turns into its stored values (SimpleRNN: the states;
  LSTM and GRU: the gates), so no (T, batch, gates·n_nodes) projection is kept besides;
* the tape holds only what BPTT needs: SimpleRNN ``h``; LSTM ``h, c, i, f, o, g``
  (``tanh(c_t)`` is recomputed in the reverse loop, one call a step); GRU ``h, r, z, n``
  and the recurrent candidate term ``u_t[n]``;
* the reverse loop keeps the per-step gradients of the pre-activations for a chunk of
  about T/8 steps, then does the chunk's weight-gradient and ``dX`` matmuls: those stay
  big matmuls over many steps, and the gradient buffer is an eighth of T·batch·gates·n;
* the sigmoid gates' columns of the weights are scaled by 0.5 once per pass, so one
  ``tanh`` call covers every gate of a step (``σ(z) = 0.5·tanh(0.5 z) + 0.5``, and
  scaling by 0.5 is exact in binary floating point); LSTM's gates are reordered to
  ``i, f, o, g`` inside the pass so the three sigmoids are adjacent.

Between the matmuls and the ``tanh`` calls, each step's arithmetic runs either as one
fused kernel per step and direction (:mod:`anyrnn._fused`: Numba on NumPy when installed,
``ElementwiseKernel`` on CuPy) or, without them, as ``out=`` calls of NumPy or CuPy.

Used on NumPy and CuPy for SimpleRNN, LSTM and GRU with ``reset_after=True`` (the
default), when no mask is given and ``return_all_states`` is off; everything else takes
the generic path. The tests require its results to equal the generic path's to
rounding, with and without the fused kernels. The CuPy branch runs only where a GPU does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..cells.gru import GRUCell
from ..cells.lstm import LSTMCell
from ..cells.simple import SimpleCell
from .workspace import reuse_buffer

__all__ = ["CHUNKS", "Tape", "forward", "backward", "kernel_for"]

#: The reverse loop does its weight-gradient matmuls every ceil(T / CHUNKS) steps.
CHUNKS = 8


def _sigmoid_from_tanh_(z: Any) -> None:
    """In place: ``tanh(0.5 z) -> σ(z) = 0.5·tanh(0.5 z) + 0.5``."""
    z *= 0.5
    z += 0.5


# ----------------------------------------------------------------------------- kernels


class _Kernel:
    """What every cell's in-place kernel has; the subclasses hold the equations.

    ``fused`` is set by the layer: the kernels of :mod:`anyrnn._fused` (Numba's for NumPy,
    CuPy's ``ElementwiseKernel`` objects for CuPy), or None for the ``out=`` calls.
    """

    n_gates = 1
    has_u = False  # True when d/du (the recurrent side) differs from d/d(ax)
    state_keys: tuple = ()  # store keys of the (T+1, batch, n) states besides h
    backward_scratch: dict = {}  # (batch, width·n) buffers of the reverse step's out= calls

    def __init__(self) -> None:
        self.fused: Any = None

    def forward_params(self, m: Any, p: dict) -> dict:
        """A fresh dict of what the forward steps use (the loop adds its scratch to it)."""
        return dict(p)

    def backward_params(self, m: Any, p: dict) -> dict:
        return {"W_x": p["W_x"], "W_h": p["W_h"]}

    def public_grads(self, m: Any, grads: dict, n: int) -> dict:
        return grads


class _Simple(_Kernel):
    """``h_t = f(x_t·W_x + h_{t-1}·W_h + B)``, f = tanh or relu."""

    def __init__(self, activation: str):
        super().__init__()
        self.tanh = activation == "tanh"

    def alloc(self, m: Any, T: int, B: int, n: int, dtype: Any, hbuf: Any) -> tuple[dict, Any]:
        return {}, hbuf[1:]  # the projection goes where the states will be

    def step(self, m: Any, fp: dict, store: dict, hbuf: Any, t: int) -> None:
        a = hbuf[t + 1]  # holds x_t·W_x + B
        tmp = fp["tmp"]
        m.matmul(hbuf[t], fp["W_h"], out=tmp)
        a += tmp  # a_t = x_t·W_x + B + h_{t-1}·W_h
        if self.tanh:
            m.tanh(a, out=a)
        else:
            m.maximum(a, 0, out=a)

    def step_backward(self, m, bp, store, hbuf, t, carry, dzx, dzh) -> None:
        (dh,) = carry
        h = hbuf[t + 1]
        if self.fused is not None:
            self.fused.simple_backward(h, dh, dzx, bp["one"], self.tanh)
        elif self.tanh:
            m.multiply(h, h, out=dzx)
            m.subtract(1, dzx, out=dzx)  # d tanh(a) = 1 - h^2
            dzx *= dh  # da_t = dh_t ⊙ f'(a_t)
        else:
            m.greater(h, 0, out=dzx)  # d max(a, 0) = [a > 0] = [h > 0]
            dzx *= dh
        m.matmul(dzx, bp["W_hT"], out=dh)  # dh_{t-1} = da_t·W_hᵀ


class _LSTM(_Kernel):
    """LSTM, gates reordered to ``i, f, o, g`` inside the pass (public order i, f, g, o)."""

    n_gates = 4
    state_keys = ("cbuf",)
    backward_scratch = {"tc": 1, "t1": 1, "t2": 1, "t3": 3}

    @staticmethod
    def _perm(m: Any, n: int) -> Any:
        """Columns i f g o -> i f o g (swapping two blocks: its own inverse)."""
        i = m.arange(4 * n)
        return m.concatenate([i[: 2 * n], i[3 * n :], i[2 * n : 3 * n]])

    def backward_params(self, m: Any, p: dict) -> dict:
        perm = self._perm(m, p["W_h"].shape[0])
        return {"W_x": p["W_x"][:, perm], "W_h": p["W_h"][:, perm]}

    def forward_params(self, m: Any, p: dict) -> dict:
        n = p["W_h"].shape[0]
        perm = self._perm(m, n)
        scale = m.ones(4 * n, dtype=p["W_h"].dtype)
        scale[: 3 * n] = 0.5  # i, f, o: σ(z) = 0.5·tanh(0.5 z) + 0.5
        return {k: p[k][..., perm] * scale for k in ("W_x", "W_h", "B")}

    def public_grads(self, m: Any, grads: dict, n: int) -> dict:
        perm = self._perm(m, n)
        return {k: g[..., perm] for k, g in grads.items()}

    def alloc(self, m: Any, T: int, B: int, n: int, dtype: Any, hbuf: Any) -> tuple[dict, Any]:
        gates = m.empty((T, B, 4 * n), dtype=dtype)
        cbuf = m.empty((T + 1, B, n), dtype=dtype)
        return {"gates": gates, "cbuf": cbuf}, gates

    def step(self, m: Any, fp: dict, store: dict, hbuf: Any, t: int) -> None:
        z = store["gates"][t]  # holds x_t·W_x + B (sigmoid columns halved)
        n = z.shape[1] // 4
        tmp = fp["tmp"]
        m.matmul(hbuf[t], fp["W_h"], out=tmp)
        z += tmp  # z_t = x_t·W_x + B + h_{t-1}·W_h
        m.tanh(z, out=z)  # every gate in one call
        cbuf = store["cbuf"]
        c = cbuf[t + 1]
        o = z[:, 2 * n : 3 * n]
        if self.fused is not None:
            self.fused.lstm_forward(z, cbuf[t], c, fp["half"])
        else:
            _sigmoid_from_tanh_(z[:, : 3 * n])  # i, f, o
            i, f, g = z[:, :n], z[:, n : 2 * n], z[:, 3 * n :]
            ig = tmp[:, :n]
            m.multiply(f, cbuf[t], out=c)  # c_t = f ⊙ c_{t-1} + i ⊙ g
            m.multiply(i, g, out=ig)
            c += ig
        h = hbuf[t + 1]
        m.tanh(c, out=h)  # h_t = o ⊙ tanh(c_t)
        h *= o

    def step_backward(self, m, bp, store, hbuf, t, carry, dzx, dzh) -> None:
        dh, dc = carry
        z = store["gates"][t]
        n = z.shape[1] // 4
        i, f, o, g = z[:, :n], z[:, n : 2 * n], z[:, 2 * n : 3 * n], z[:, 3 * n :]
        cbuf = store["cbuf"]
        tc = bp["tc"]
        m.tanh(cbuf[t + 1], out=tc)  # recomputed rather than stored
        if self.fused is not None:
            self.fused.lstm_backward(z, cbuf[t], tc, dh, dc, dzx, bp["one"])
            m.matmul(dzx, bp["W_hT"], out=dh)  # dh_{t-1} = dz·W_hᵀ
            return
        t1, t2, t3 = bp["t1"], bp["t2"], bp["t3"]
        m.multiply(dh, o, out=t1)  # dc_t += dh ⊙ o ⊙ (1 - tanh(c_t)^2)
        m.multiply(tc, tc, out=t2)
        m.subtract(1, t2, out=t2)
        t1 *= t2
        dc += t1
        m.multiply(dc, g, out=dzx[:, :n])  # di = dc ⊙ g
        m.multiply(dc, cbuf[t], out=dzx[:, n : 2 * n])  # df = dc ⊙ c_{t-1}
        m.multiply(dh, tc, out=dzx[:, 2 * n : 3 * n])  # do = dh ⊙ tanh(c_t)
        sig = z[:, : 3 * n]
        m.multiply(sig, sig, out=t3)  # σ' = σ(1 - σ), for i, f, o at once
        m.subtract(sig, t3, out=t3)
        dzx[:, : 3 * n] *= t3
        dz_g = dzx[:, 3 * n :]
        m.multiply(g, g, out=t2)  # dz_g = dc ⊙ i ⊙ (1 - g^2)
        m.subtract(1, t2, out=t2)
        m.multiply(dc, i, out=dz_g)
        dz_g *= t2
        dc *= f  # dc_{t-1} = dc ⊙ f
        m.matmul(dzx, bp["W_hT"], out=dh)  # dh_{t-1} = dz·W_hᵀ


class _GRU(_Kernel):
    """GRU with ``reset_after=True``, gate order ``r, z, n``."""

    n_gates = 3
    has_u = True  # d/du differs from d/d(ax) in the n block (r ⊙ u[n])
    backward_scratch = {"t1": 1, "t2": 1, "t3": 1}

    def forward_params(self, m: Any, p: dict) -> dict:
        n = p["W_h"].shape[0]
        scale = m.ones(3 * n, dtype=p["W_h"].dtype)
        scale[: 2 * n] = 0.5  # r, z: σ(z) = 0.5·tanh(0.5 z) + 0.5
        return {k: p[k] * scale for k in ("W_x", "W_h", "B", "B_h")}

    def alloc(self, m: Any, T: int, B: int, n: int, dtype: Any, hbuf: Any) -> tuple[dict, Any]:
        gates = m.empty((T, B, 3 * n), dtype=dtype)
        u_n = m.empty((T, B, n), dtype=dtype)
        return {"gates": gates, "u_n": u_n}, gates

    def step(self, m: Any, fp: dict, store: dict, hbuf: Any, t: int) -> None:
        z = store["gates"][t]  # holds a_t = x_t·W_x + B (r, z columns halved)
        n = z.shape[1] // 3
        u = fp["tmp"]
        m.matmul(hbuf[t], fp["W_h"], out=u)  # u_t = h_{t-1}·W_h + B_h
        if self.fused is not None:
            fused = self.fused
            u_n = store["u_n"][t]
            fused.gru_forward_u(z, u, fp["B_h"], u_n)
            m.tanh(z[:, : 2 * n], out=z[:, : 2 * n])
            fused.gru_forward_gates(z, u_n, fp["half"])
            m.tanh(z[:, 2 * n :], out=z[:, 2 * n :])
            fused.gru_forward_h(z, hbuf[t], hbuf[t + 1])
            return
        u += fp["B_h"]
        rz = z[:, : 2 * n]
        rz += u[:, : 2 * n]
        m.tanh(rz, out=rz)
        _sigmoid_from_tanh_(rz)  # r, z = σ(a[rz] + u[rz])
        r, zg, cand = z[:, :n], z[:, n : 2 * n], z[:, 2 * n :]
        u_n = store["u_n"][t]
        u_n[...] = u[:, 2 * n :]
        tmp = u[:, :n]  # u[r] is spent: reuse it
        m.multiply(r, u_n, out=tmp)
        cand += tmp
        m.tanh(cand, out=cand)  # n_t = tanh(a[n] + r ⊙ u[n])
        h = hbuf[t + 1]
        m.subtract(hbuf[t], cand, out=h)  # h_t = n + z ⊙ (h_{t-1} - n)
        h *= zg
        h += cand

    def step_backward(self, m, bp, store, hbuf, t, carry, dzx, dzh) -> None:
        (dh,) = carry
        z = store["gates"][t]
        n = z.shape[1] // 3
        r, zg, cand = z[:, :n], z[:, n : 2 * n], z[:, 2 * n :]
        u_n = store["u_n"][t]
        tmp = bp["t3"]
        if self.fused is not None:
            self.fused.gru_backward(z, u_n, hbuf[t], dh, dzx, dzh, bp["one"])
            m.matmul(dzh, bp["W_hT"], out=tmp)
            dh += tmp  # dh_{t-1} = dh ⊙ z + d_u·W_hᵀ
            return
        omz, t2 = bp["t1"], bp["t2"]
        m.subtract(1, zg, out=omz)
        dn = dzx[:, 2 * n :]
        m.multiply(dh, omz, out=dn)  # d_cand = dh ⊙ (1 - z)
        m.multiply(cand, cand, out=t2)
        m.subtract(1, t2, out=t2)
        dn *= t2  # dn_pre = d_cand ⊙ (1 - n^2)
        dzp = dzx[:, n : 2 * n]
        m.subtract(hbuf[t], cand, out=dzp)  # dz_pre = dh ⊙ (h_{t-1} - n) ⊙ z ⊙ (1 - z)
        dzp *= dh
        dzp *= zg
        dzp *= omz
        dr = dzx[:, :n]
        m.multiply(dn, u_n, out=dr)  # dr_pre = dn_pre ⊙ u[n] ⊙ r ⊙ (1 - r)
        dr *= r
        m.subtract(1, r, out=t2)
        dr *= t2
        dzh[:, : 2 * n] = dzx[:, : 2 * n]  # d/du = d/da on r and z ...
        m.multiply(dn, r, out=dzh[:, 2 * n :])  # ... and dn_pre ⊙ r on n
        m.matmul(dzh, bp["W_hT"], out=tmp)
        dh *= zg  # dh_{t-1} = dh ⊙ z + d_u·W_hᵀ
        dh += tmp


def kernel_for(cell: Any) -> _Kernel | None:
    """A new in-place kernel for a cell (its ``fused`` unset), or None when it has none."""
    if isinstance(cell, SimpleCell):
        return _Simple(cell.activation)
    if isinstance(cell, LSTMCell):
        return _LSTM()
    if isinstance(cell, GRUCell) and cell.reset_after:
        return _GRU()
    return None


# ----------------------------------------------------------------------------- the loops


@dataclass
class Tape:
    kernel: Any
    p: dict  # the layer's parameters at forward time
    x2: Any  # (T*batch, n_features): time-major inputs
    hbuf: Any  # (T+1, batch, n_nodes): h0, h_1, ..., h_T
    store: dict  # the kernel's per-step values (gates, c, ...)
    shape: tuple[int, int, int]  # (batch, T, n_features)

    def state_buffers(self) -> tuple:
        """(T+1, batch, n_nodes) buffers of every state, in the cell's state order."""
        return (self.hbuf,) + tuple(self.store[k] for k in self.kernel.state_keys)


def forward(m: Any, kernel: Any, p: dict, X: Any, state0: tuple, workspace: dict) -> Tape:
    """Run the forward pass; the states are in ``tape.state_buffers()``."""
    batch, n_steps, n_features = X.shape
    n = state0[0].shape[1]
    dtype = X.dtype
    fp = kernel.forward_params(m, p)
    fp["tmp"] = reuse_buffer(m, workspace, "f_tmp", (batch, kernel.n_gates * n), dtype)
    fp["half"] = dtype.type(0.5)
    x2 = m.ascontiguousarray(X.transpose(1, 0, 2)).reshape(n_steps * batch, n_features)
    hbuf = m.empty((n_steps + 1, batch, n), dtype=dtype)
    store, proj = kernel.alloc(m, n_steps, batch, n, dtype, hbuf)
    m.matmul(x2, fp["W_x"], out=proj.reshape(n_steps * batch, -1))  # hoisted x_t·W_x
    proj += fp["B"]
    tape = Tape(kernel, p, x2, hbuf, store, (batch, n_steps, n_features))
    for buf, s0 in zip(tape.state_buffers(), state0):
        buf[0] = s0
    for t in range(n_steps):
        kernel.step(m, fp, store, hbuf, t)
    return tape


def backward(
    m: Any, tape: Tape, d_hs: Any, d_last: tuple, workspace: dict
) -> tuple[Any, tuple, dict]:
    """BPTT over a :class:`Tape`: ``(dX, d_state0, grads)``.

    ``d_hs`` (batch, T, n_nodes) is the gradient on every step's output (or None);
    ``d_last`` holds the gradients on the final states (each None or (batch, n_nodes)).
    """
    kernel, p, hbuf = tape.kernel, tape.p, tape.hbuf
    batch, n_steps, n_features = tape.shape
    n = hbuf.shape[2]
    dtype = hbuf.dtype
    gn = kernel.n_gates * n
    bp = kernel.backward_params(m, p)
    bp["W_hT"] = m.ascontiguousarray(bp["W_h"].T)  # once per pass: faster than a view
    bp["one"] = dtype.type(1)
    for key, width in kernel.backward_scratch.items():
        bp[key] = reuse_buffer(m, workspace, "b_" + key, (batch, width * n), dtype)
    W_xT = bp["W_x"].T
    carry = tuple(
        m.zeros((batch, n), dtype) if d is None else m.array(d, dtype=dtype) for d in d_last
    )
    d_hs_tm = None if d_hs is None else d_hs.transpose(1, 0, 2)
    chunk = -(-n_steps // CHUNKS)
    dzx_buf = reuse_buffer(m, workspace, "dzx", (chunk, batch, gn), dtype)
    dzh_buf = (
        reuse_buffer(m, workspace, "dzh", (chunk, batch, gn), dtype) if kernel.has_u else dzx_buf
    )
    x_rows = hbuf[:-1].reshape(n_steps * batch, n)  # h_{t-1} of every step
    dX2 = m.empty((n_steps * batch, n_features), dtype=dtype)
    grads: dict = {}

    def accumulate(key: str, a: Any, b: Any) -> None:
        """grads[key] += aᵀ·b, without a fresh temporary after the first chunk."""
        if key not in grads:
            grads[key] = a.T @ b
        else:
            tmp = reuse_buffer(m, workspace, "acc_" + key, grads[key].shape, dtype)
            m.matmul(a.T, b, out=tmp)
            grads[key] += tmp

    def add_sum(key: str, d: Any) -> None:
        s = d.sum(axis=0)
        grads[key] = s if key not in grads else grads[key] + s

    t1 = n_steps
    while t1 > 0:
        t0 = max(0, t1 - chunk)
        for t in range(t1 - 1, t0 - 1, -1):
            if d_hs_tm is not None:
                carry[0][...] += d_hs_tm[t]  # dh_t = (from the output) + (from step t+1)
            k = t - t0
            kernel.step_backward(m, bp, tape.store, hbuf, t, carry, dzx_buf[k], dzh_buf[k])
        rows = slice(t0 * batch, t1 * batch)
        dzx = dzx_buf[: t1 - t0].reshape((t1 - t0) * batch, gn)
        dzh = dzh_buf[: t1 - t0].reshape((t1 - t0) * batch, gn)
        accumulate("W_x", tape.x2[rows], dzx)  # hoisted over the chunk's steps
        add_sum("B", dzx)
        m.matmul(dzx, W_xT, out=dX2[rows])
        accumulate("W_h", x_rows[rows], dzh)
        if "B_h" in p:
            add_sum("B_h", dzh)
        t1 = t0
    grads = kernel.public_grads(m, grads, n)
    dX = dX2.reshape(n_steps, batch, n_features).transpose(1, 0, 2)
    return dX, carry, grads
