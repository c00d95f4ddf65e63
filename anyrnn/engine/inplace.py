"""The in-place engine: NumPy and CuPy, every cell with a forward/backward program.

The generic engine allocates every per-step result and stacks the lists afterwards, as
it must to run on JAX and array-api-strict. NumPy and CuPy share an ``out=`` API, and on
them this engine runs the same step functions (:mod:`anyrnn.cells.pointwise`) over
preallocated buffers, as kernels generated from those functions
(:mod:`anyrnn.engine.codegen`): on NumPy, Numba loops between NumPy's SIMD ``tanh``
calls (or plain NumPy calls without Numba); on CuPy, one ``ElementwiseKernel`` a step.
It has no arithmetic of its own; it lays out the buffers and runs the matmuls.

What it stores, and where (``t`` the step, ``n`` the units, G the gates):

* the states in time-major buffers (T+1, batch, n), the initial state in row 0, so the
  previous states of all steps are one zero-copy view;
* the hoisted input projection ``x_t·W_x + B`` of every step, written straight into the
  (T, batch, G·n) buffer where the step then leaves its gate values (for a one-gate cell
  that keeps no gate value, into the states' own buffer); other values the backward
  needs (GRU's ``u_n``) in (T, batch, n) buffers. ``tanh(c)`` is recomputed in reverse;
* the reverse loop keeps the per-step gradients of a chunk of about T/8 steps, then does
  the chunk's weight-gradient and ``dX`` matmuls: big matmuls over many steps, and a
  gradient buffer an eighth of T·batch·G·n.

Which values go where follows the naming conventions of :mod:`anyrnn.cells.base`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..backend import register_probe
from ..cells.base import CONSTANTS, Cell, _params, _returns
from ..cells.simple import SimpleCell
from . import codegen, cuda
from .codegen import Binding, Ref
from .workspace import reuse_buffer

__all__ = ["CHUNKS", "InplaceEngine"]

#: The reverse loop does its weight-gradient matmuls every ceil(T / CHUNKS) steps.
CHUNKS = 8


def _module(backend: Any) -> Any:
    if backend.name == "numpy":
        return np
    import cupy

    return cupy


def _gate_block(cell: Cell, name: str, prefix: str) -> int | None:
    """The gate block a parameter ``<prefix>_<gate>`` (or ``<prefix>``) refers to."""
    if cell.n_gates == 1 and name == prefix:
        return 0
    if name.startswith(prefix + "_") and name[len(prefix) + 1 :] in cell.gates:
        return cell.block(name[len(prefix) + 1 :])
    return None


def forward_binding(cell: Cell) -> Binding:
    """Where every parameter and returned value of the forward program lives."""
    G = cell.n_gates
    params: dict[str, Ref] = {}
    for p in _params(cell.forward_program):
        if p in CONSTANTS:
            params[p] = Ref(p, const=True)
        elif (k := _gate_block(cell, p, "a")) is not None:
            params[p] = Ref("gates", k, time=0, writable=True)
        elif (k := _gate_block(cell, p, "w")) is not None:
            params[p] = Ref("w", k, writable=True)
        elif (k := _gate_block(cell, p, "b")) is not None:
            params[p] = Ref("bias", k, vector=True)
        elif p.endswith("_prev") and p[:-5] in cell.state_names:
            params[p] = Ref(p[:-5], 0, time=0)
        else:
            raise codegen.ProgramError(f"{cell.forward_program}: no in-place place for {p!r}")
    returns = []
    for v in _returns(cell.forward_program):
        if v in cell.gates:
            returns.append(Ref("gates", cell.block(v), time=0, writable=True))
        elif v in cell.state_names:
            returns.append(Ref(v, 0, time=1, writable=True))
        else:
            returns.append(Ref(v, 0, time=0, writable=True))
    widths = {"gates": G, "w": G, "bias": G}
    widths.update({r.buf: 1 for r in list(params.values()) + returns if r.buf not in widths})
    return Binding(params, tuple(returns), widths)


def backward_binding(cell: Cell, dy_steps: bool) -> Binding:
    """Where every parameter and returned value of the backward program lives."""
    carries = cell.carries()
    params: dict[str, Ref] = {}
    for p in _params(cell.backward_program):
        if p in CONSTANTS:
            params[p] = Ref(p, const=True)
        elif p in cell.gates:
            params[p] = Ref("gates", cell.block(p), time=0)
        elif p in cell.state_names:
            params[p] = Ref(p, 0, time=1)
        elif p.endswith("_prev") and p[:-5] in cell.state_names:
            params[p] = Ref(p[:-5], 0, time=0)
        elif p in cell.stored():
            params[p] = Ref(p, 0, time=0)
        elif p == "dh_mm":
            params[p] = Ref("dh", 0, writable=True)
        elif p == "dy":
            params[p] = Ref("dy", 0, time=0 if dy_steps else None)
        elif p in carries:
            params[p] = Ref(p, 0, writable=True)
        else:
            raise codegen.ProgramError(f"{cell.backward_program}: no in-place place for {p!r}")
    returns = []
    for v in _returns(cell.backward_program):
        if (k := _gate_block(cell, v, "da")) is not None:
            returns.append(Ref("dz", k, writable=True))
        elif (k := _gate_block(cell, v, "du")) is not None:
            returns.append(Ref("du", k, writable=True))
        elif v.endswith("_prev") and v[:-5] in carries:
            returns.append(Ref(v[:-5], 0, writable=True))
        else:
            raise codegen.ProgramError(f"{cell.backward_program}: no in-place place for {v!r}")
    G = cell.n_gates
    widths = {"gates": G, "dz": G, "du": G}
    widths.update({r.buf: 1 for r in list(params.values()) + returns if r.buf not in widths})
    return Binding(params, tuple(returns), widths)


@functools.cache
def _bindings(cell: Cell) -> dict:
    """The cell's bindings, made once per kind of cell: forward, and backward with and
    without per-step output gradients."""
    return {
        "forward": (cell.forward_program, forward_binding(cell)),
        "backward": (cell.backward_program, backward_binding(cell, True)),
        "backward-last": (cell.backward_program, backward_binding(cell, False)),
    }


def _cupy_probe(backend: Any) -> str | None:
    """Part of CuPy's availability probe: one of anyrnn's own kernels compiles (NVRTC),
    runs on the device and gives NumPy's numbers."""
    prog, binding = _bindings(SimpleCell("tanh"))["forward"]
    why = cuda.check_kernel(prog, binding, backend)
    return None if why is None else f"anyrnn's CUDA kernel {prog} failed: {why}"


register_probe("cupy", _cupy_probe)


class Launcher:
    """Every device operation of a pass's time loop goes through here: a test counts the
    launches per step (a step is a recurrent matmul and one generated kernel on CUDA)."""

    def __init__(self, m: Any):
        self.m = m

    def matmul(self, a: Any, b: Any, out: Any) -> None:
        self.m.matmul(a, b, out=out)

    def step(self, run: Any, buffers: dict, t: int, n: int, rows: int, const: dict) -> None:
        run(buffers, t, n, rows, const)


class InplaceEngine:
    """Runs standard cells on NumPy and CuPy, without a mask or ``return_all_states``.

    Parameters
    ----------
    use_numba : bool or None
        On NumPy: Numba's kernels (None: when Numba is installed) or NumPy calls.
    cuda : callable or None
        A kernel factory (:func:`anyrnn.engine.cuda.cupy_kernel` on CuPy). Given one, the
        engine runs the CUDA flavour whatever the array library: the tests run CUDA's
        kernels, built as C++, over NumPy arrays.
    """

    name = "inplace"
    launcher = Launcher

    def __init__(self, use_numba: bool | None = None, cuda: Any = None):
        self.use_numba = use_numba
        self.cuda = cuda

    def unsupported(
        self, cell: Cell, backend: Any, *, masked: bool, all_states: bool
    ) -> str | None:
        """Why this engine cannot run the call, or None when it can."""
        if backend.name not in ("numpy", "cupy"):
            return f"it runs on NumPy and CuPy, and this layer's backend is {backend.name}"
        if cell.forward_program is None:
            return f"the {cell.name} cell with these options has no in-place form"
        if masked:
            return "a mask was given (masked batches run on the generic engine)"
        if all_states:
            return "return_all_states=True (per-step values come from the generic engine)"
        if self.flavor(backend) == "cuda":
            for prog, binding in _bindings(cell).values():
                why = cuda.self_check(prog, binding, backend, self._factory())
                if why is not None:
                    return f"its CUDA kernel for {prog} failed the self-check ({why})"
        return None

    def flavor(self, backend: Any) -> str:
        """``"numba"``, ``"numpy"`` or ``"cuda"``: how the step functions run here."""
        if backend.name == "cupy" or self.cuda is not None:
            return "cuda"
        use = codegen.numba_available() if self.use_numba is None else self.use_numba
        return "numba" if use else "numpy"

    def _factory(self) -> Any:
        return cuda.cupy_kernel if self.cuda is None else self.cuda

    def _runner(self, prog: str, binding: Binding, backend: Any) -> Any:
        """``run(buffers, t, n, rows, consts)`` for one step function."""
        flavor = self.flavor(backend)
        if flavor == "cuda":
            return cuda.runner(prog, binding, self._factory())
        step = codegen.cpu_step(prog, binding, flavor == "numba")
        fn, names, consts = step.fn, step.buffers, step.consts

        def run(buffers: dict, t: int, n: int, rows: int, const: dict) -> None:
            fn(*[buffers[b] for b in names], t, n, rows, *[const[c] for c in consts])

        run.buffers = names  # type: ignore[attr-defined]
        return run

    # forward ---------------------------------------------------------------------
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
        workspace: dict,
    ) -> tuple[Any, tuple, None, Any]:
        m = _module(backend)
        batch, n_steps, n_features = X.shape
        n = state0[0].shape[1]
        dtype = X.dtype
        G = cell.n_gates
        q = cell.prepare(params, xp=backend.xp)
        const = {k: np.dtype(dtype).type(v) for k, v in CONSTANTS.items()}
        x2 = m.ascontiguousarray(X.transpose(1, 0, 2)).reshape(n_steps * batch, n_features)
        if keep_tape and m.may_share_memory(x2, X):
            x2 = x2.copy()  # the tape never keeps the caller's memory
        run = self._runner(*_bindings(cell)["forward"], backend)
        launch = self.launcher(m)
        buffers: dict[str, Any] = {}
        for s, s0 in zip(cell.state_names, state0):
            buffers[s] = m.empty((n_steps + 1, batch, n), dtype=dtype)
            buffers[s][0] = s0
        stores_gates = any(v in cell.gates for v in _returns(cell.forward_program))
        if G == 1 and not stores_gates:  # the projection goes where the states will be
            buffers["gates"] = buffers["h"][1:]
        else:
            buffers["gates"] = m.empty((n_steps, batch, G * n), dtype=dtype)
        for v in cell.stored():
            buffers[v] = m.empty((n_steps, batch, n), dtype=dtype)
        buffers["w"] = reuse_buffer(m, workspace, "w", (batch, G * n), dtype)
        if "B_h" in q:
            buffers["bias"] = q["B_h"]
        for b in run.buffers:
            if b.startswith("tmp_"):
                buffers[b] = reuse_buffer(m, workspace, b, (batch, n), dtype)
        m.matmul(x2, q["W_x"], out=buffers["gates"].reshape(n_steps * batch, G * n))
        buffers["gates"] += q["B"]  # the hoisted x_t·W_x + B of every step
        W_h, hbuf, w = q["W_h"], buffers["h"], buffers["w"]
        for t in range(n_steps):
            launch.matmul(hbuf[t], W_h, w)  # w = h_{t-1}·W_h
            launch.step(run, buffers, t, n, batch, const)
        finals = tuple(buffers[s][-1].copy() for s in cell.state_names)
        seq = hbuf[1:].transpose(1, 0, 2)
        if m is np:
            # the states kept for backward, without a copy: a view the caller cannot write
            # to (a write would corrupt the gradients); infer keeps nothing, so its
            # output is writable
            seq.flags.writeable = not keep_tape
        else:
            seq = m.ascontiguousarray(seq)  # CuPy has no read-only views
        tape = None
        if keep_tape:
            tape = {"x2": x2, "buffers": {k: v for k, v in buffers.items() if k != "w"}}
        return seq, finals, None, tape

    # backward --------------------------------------------------------------------
    def backward(
        self,
        cell: Cell,
        backend: Any,
        params: dict,
        shape: tuple,
        tape: dict,
        d_seq: Any,
        d_finals: tuple,
        workspace: dict,
    ) -> tuple[Any, tuple, dict]:
        m = _module(backend)
        batch, n_steps, n_features = shape
        stored = tape["buffers"]
        hbuf = stored["h"]
        n = hbuf.shape[2]
        dtype = hbuf.dtype
        G = cell.n_gates
        gn = G * n
        q = cell.prepare(params, xp=backend.xp)
        const = {k: np.dtype(dtype).type(v) for k, v in CONSTANTS.items()}
        run = self._runner(
            *_bindings(cell)["backward" if d_seq is not None else "backward-last"], backend
        )
        launch = self.launcher(m)
        W_hT = m.ascontiguousarray(q["W_hT"])  # once per pass: faster than a view
        W_xT = q["W_xT"]
        buffers = dict(stored)
        by_state = dict(zip(cell.state_names, d_finals))
        fresh = {"dh": by_state["h"]}
        fresh.update({c: by_state.get(c[1:]) for c in cell.carries()})
        for name, d in fresh.items():  # returned to the caller: never scratch
            buffers[name] = m.zeros((batch, n), dtype) if d is None else m.array(d, dtype=dtype)
        if d_seq is None:
            buffers["dy"] = m.zeros((batch, n), dtype)
        else:
            buffers["dy"] = m.ascontiguousarray(d_seq.transpose(1, 0, 2))
        for b in run.buffers:
            if b.startswith("tmp_"):
                buffers[b] = reuse_buffer(m, workspace, b, (batch, n), dtype)
        chunk = -(-n_steps // CHUNKS)
        dz_buf = reuse_buffer(m, workspace, "dz", (chunk, batch, gn), dtype)
        du_buf = (
            reuse_buffer(m, workspace, "du", (chunk, batch, gn), dtype) if cell.has_u() else dz_buf
        )
        x_rows = hbuf[:-1].reshape(n_steps * batch, n)  # h_{t-1} of every step
        dX2 = m.empty((n_steps * batch, n_features), dtype=dtype)
        x2 = tape["x2"]
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

        dh = buffers["dh"]
        t1 = n_steps
        while t1 > 0:
            t0 = max(0, t1 - chunk)
            for t in range(t1 - 1, t0 - 1, -1):
                k = t - t0
                buffers["dz"], buffers["du"] = dz_buf[k], du_buf[k]
                launch.step(run, buffers, t, n, batch, const)
                launch.matmul(du_buf[k], W_hT, dh)  # dh_{t-1} through W_h: du·W_hᵀ
            rows = slice(t0 * batch, t1 * batch)
            dz = dz_buf[: t1 - t0].reshape((t1 - t0) * batch, gn)
            du = du_buf[: t1 - t0].reshape((t1 - t0) * batch, gn)
            accumulate("W_x", x2[rows], dz)  # hoisted over the chunk's steps
            add_sum("B", dz)
            m.matmul(dz, W_xT, out=dX2[rows])
            accumulate("W_h", x_rows[rows], du)
            if "B_h" in params:
                add_sum("B_h", du)
            t1 = t0
        carries = (dh,) + tuple(buffers[c] for c in cell.carries())
        d_state0 = cell.state_grads(q, carries, xp=backend.xp)
        dX = dX2.reshape(n_steps, batch, n_features).transpose(1, 0, 2)
        return dX, d_state0, grads


def show_kernels(cells: list[Cell], targets: tuple[str, ...] = ("cpu", "cuda")) -> str:
    """The generated source of every step of ``cells``: the CPU step (NumPy calls and the
    Numba loops it calls) and the CUDA ``ElementwiseKernel`` (its parameters and body)."""
    parts = []
    for cell in cells:
        if cell.forward_program is None:
            parts.append(f"# {cell.name}: no in-place form (the generic engine runs it)\n")
            continue
        bindings = [
            (cell.forward_program, forward_binding(cell)),
            (cell.backward_program, backward_binding(cell, True)),
        ]
        for prog, binding in bindings:
            head = f"# ---- {cell.name}: {prog} "
            if "cpu" in targets:
                step = codegen.cpu_step(prog, binding, use_numba=True, compile=False)
                parts.append(head + "(CPU: NumPy calls and Numba loops)\n" + step.source + "\n")
                parts += [src + "\n" for src in step.kernels.values()]
            if "cuda" in targets:
                src = codegen.cuda_source(prog, binding)
                parts.append(
                    head
                    + f"(CUDA: ElementwiseKernel {src.name!r})\n"
                    + f"# in:  {src.in_params}\n# out: {src.out_params}\n{src.body}\n"
                )
    return "\n".join(parts)
