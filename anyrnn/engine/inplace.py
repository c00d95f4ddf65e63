"""The in-place engine: NumPy and CuPy, every cell with a forward/backward program.

The generic engine allocates every per-step result and stacks the lists afterwards, as
it must to run on JAX and array-api-strict. NumPy and CuPy share an ``out=`` API, and on
them this engine runs the same step functions (:mod:`anyrnn.cells.pointwise`) over
preallocated buffers, as kernels generated from those functions
(:mod:`anyrnn.engine.codegen`). Its flavours (:meth:`InplaceEngine.flavor`):

* ``"loop"`` (NumPy with Numba, the default where its self-test passes): the whole time
  loop of a pass compiled, matmuls and NumPy's SIMD ``tanh`` called from inside it
  (:mod:`anyrnn.engine.loops`);
* ``"numba"``: per step, a matmul, then Numba loops between NumPy's SIMD ``tanh`` calls;
* ``"numpy"`` (no Numba): per step, a matmul, then NumPy calls;
* ``"cuda"`` (CuPy): per step, a matmul, then one ``ElementwiseKernel``.

It has no arithmetic of its own; it lays out the buffers and runs the matmuls.

What it stores, and where (``t`` the step, ``n`` the units, G the gates):

* the states in time-major buffers (T+1, batch, n), the initial state in row 0, so the
  previous states of all steps are one zero-copy view;
* the hoisted input projection ``x_t·W_x + B`` of every step, written straight into the
  (T, batch, G·n) buffer where the step then leaves its gate values (for a one-gate cell
  that keeps no gate value, into the states' own buffer); other values the backward
  needs (GRU's ``u_n``) in (T, batch, n) buffers. ``tanh(c)`` is recomputed in reverse;
* the reverse loop keeps the per-step gradients of a chunk of about T/8 steps (at least
  8), then does the chunk's weight-gradient and ``dX`` matmuls: big matmuls over many
  steps, and a gradient buffer about an eighth of T·batch·G·n.

Which values go where follows the naming conventions of :mod:`anyrnn.cells.base`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..backend import register_probe
from ..cells.base import Cell, _returns, constants
from ..cells.simple import SimpleCell
from . import codegen, cuda, cudagen, loops
from .bindings import _bindings
from .workspace import reuse_buffer

__all__ = ["CHUNKS", "MIN_CHUNK_STEPS", "InplaceEngine"]

#: The reverse loop does its weight-gradient matmuls every ceil(T / CHUNKS) steps, but
#: over at least MIN_CHUNK_STEPS steps (or all of them): for short sequences, per-chunk
#: calls cost more than the chunk's memory (the demo's 8 steps: about a quarter of its
#: time in chunks of one step).
CHUNKS = 8
MIN_CHUNK_STEPS = 8


def _module(backend: Any) -> Any:
    if backend.name == "numpy":
        return np
    import cupy

    return cupy


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
    compiled_loops : bool or None
        With Numba: the whole time loop compiled (:mod:`anyrnn.engine.loops`; None: when
        NumPy's BLAS and ``tanh`` pass their self-test, see :mod:`anyrnn.engine.ffi`) or
        one call of the generated kernels per step (False).
    cuda : callable or None
        A kernel factory (:func:`anyrnn.engine.cuda.cupy_kernel` on CuPy). Given one, the
        engine runs the CUDA flavour whatever the array library: the tests run CUDA's
        kernels, built as C++, over NumPy arrays.
    """

    name = "inplace"
    launcher = Launcher

    def __init__(
        self, use_numba: bool | None = None, cuda: Any = None, compiled_loops: bool | None = None
    ):
        self.use_numba = use_numba
        self.cuda = cuda
        self.compiled_loops = compiled_loops

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
        """``"loop"``, ``"numba"``, ``"numpy"`` or ``"cuda"``: how the steps run here."""
        if backend.name == "cupy" or self.cuda is not None:
            return "cuda"
        use = codegen.numba_available() if self.use_numba is None else self.use_numba
        if not use:
            return "numpy"
        if self.compiled_loops is False:
            return "numba"
        why = loops.unavailable(backend.dtype_name)
        if why is not None and self.compiled_loops:
            raise RuntimeError(f"compiled_loops=True, but they cannot run here: {why}")
        return "numba" if why is not None else "loop"

    def _factory(self) -> Any:
        return cuda.cupy_kernel if self.cuda is None else self.cuda

    def _runners(self, cell: Cell, key: str, flavor: str) -> tuple[Any, Any]:
        """``(run, loop)`` for one step function of ``cell`` (``key`` as in
        :func:`_bindings`): ``run(buffers, t, n, rows, consts)`` runs one step, ``loop``
        the compiled time loop (None unless ``flavor`` is ``"loop"``)."""
        prog, binding = _bindings(cell)[key]
        if flavor == "cuda":
            return cuda.runner(prog, binding, self._factory()), None
        return _cpu_runners(cell, key, flavor)

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
        const = constants(dtype)
        x2 = m.ascontiguousarray(X.transpose(1, 0, 2)).reshape(n_steps * batch, n_features)
        if keep_tape and m.may_share_memory(x2, X):
            x2 = x2.copy()  # the tape never keeps the caller's memory
        flavor = self.flavor(backend)
        run, loop = self._runners(cell, "forward", flavor)
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
        W_h, hbuf, w = m.ascontiguousarray(q["W_h"]), buffers["h"], buffers["w"]
        if loop is None or not loop.forward(buffers, W_h, n_steps, n, batch, const):
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
            # what backward reads of q, made once: the transposed weights (views of the
            # tape's parameters, which are never changed in place) and the constants; not
            # the gates' scaled weight copies (a parameter set's memory, unused backward)
            derived = {k: v for k, v in q.items() if k not in params}
            tape = {
                "x2": x2,
                "q": derived,
                "buffers": {k: v for k, v in buffers.items() if k != "w"},
            }
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
        q = tape["q"]
        const = constants(dtype)
        key = "backward" if d_seq is not None else "backward-last"
        flavor = self.flavor(backend)
        run, loop = self._runners(cell, key, flavor)
        launch = self.launcher(m)
        W_hT = m.ascontiguousarray(q["W_hT"])  # once per pass: faster than a view
        W_xT = q["W_xT"]
        buffers = dict(stored)
        by_state = dict(zip(cell.state_names, d_finals))
        fresh = {"dh": by_state["h"]}
        fresh.update({c: by_state.get(c[1:]) for c in cell.carries()})
        for name, d in fresh.items():  # returned to the caller: never scratch
            buffers[name] = (
                m.zeros((batch, n), dtype) if d is None else m.array(d, dtype=dtype, order="C")
            )
        if d_seq is None:
            buffers["dy"] = m.zeros((batch, n), dtype)
        else:
            # a time-major view, not a copy (that would be a quarter to a half of what BPTT
            # must keep); the CUDA kernels index contiguous buffers
            buffers["dy"] = d_seq.transpose(1, 0, 2)
            if flavor == "cuda":
                buffers["dy"] = m.ascontiguousarray(buffers["dy"])
        for b in run.buffers:
            if b.startswith("tmp_"):
                buffers[b] = reuse_buffer(m, workspace, b, (batch, n), dtype)
        chunk = min(n_steps, max(-(-n_steps // CHUNKS), MIN_CHUNK_STEPS))
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
            if loop is None or not loop.backward(
                buffers, dz_buf, du_buf, W_hT, t0, t1, n, batch, const
            ):
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


@functools.cache
def _cpu_runners(cell: Cell, key: str, flavor: str) -> tuple[Any, Any]:
    """:meth:`InplaceEngine._runners` on the CPU, made once per kind of cell: the per-call
    lookups cost a training step of a small layer several percent."""
    prog, binding = _bindings(cell)[key]
    step = codegen.cpu_step(prog, binding, flavor in ("numba", "loop"))
    fn, names, consts = step.fn, step.buffers, step.consts

    def run(buffers: dict, t: int, n: int, rows: int, const: dict) -> None:
        fn(*[buffers[b] for b in names], t, n, rows, *[const[c] for c in consts])

    run.buffers = names  # type: ignore[attr-defined]
    direction = "forward" if key == "forward" else "backward"
    loop = loops.runner(prog, binding, direction) if flavor == "loop" else None
    return run, loop


def show_kernels(cells: list[Cell], targets: tuple[str, ...] = ("cpu", "cuda")) -> str:
    """The generated source of every step of ``cells``: the CPU step (NumPy calls and the
    Numba loops it calls), the compiled time loop made of it, and the CUDA
    ``ElementwiseKernel`` (its parameters and body)."""
    parts = []
    for cell in cells:
        if cell.forward_program is None:
            parts.append(f"# {cell.name}: no in-place form (the generic engine runs it)\n")
            continue
        for direction in ("forward", "backward"):
            prog, binding = _bindings(cell)[direction]
            head = f"# ---- {cell.name}: {prog} "
            if "cpu" in targets:
                step = codegen.cpu_step(prog, binding, use_numba=True, compile=False)
                parts.append(head + "(CPU: NumPy calls and Numba loops)\n" + step.source + "\n")
                parts += [src + "\n" for src in step.kernels.values()]
                src = loops.runner(prog, binding, direction).source
                parts.append(head + f"(CPU: the compiled {direction} time loop)\n{src}\n")
            if "cuda" in targets:
                src = cudagen.cuda_source(prog, binding)
                parts.append(
                    head
                    + f"(CUDA: ElementwiseKernel {src.name!r})\n"
                    + f"# in:  {src.in_params}\n# out: {src.out_params}\n{src.body}\n"
                )
    return "\n".join(parts)
