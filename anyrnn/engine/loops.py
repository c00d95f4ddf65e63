"""Whole time loops, compiled: the NumPy in-place engine's fastest flavour.

From the plan the per-step kernels come from (:func:`~anyrnn.engine.codegen.cpu_plan`:
a step function split at every ``tanh`` into ufunc calls and loops), this module
generates one Numba function per step function and binding that runs

* **forward**, every step ``t``: ``w = h_{t-1}·W_h``, then the step;
* **backward**, every step of one gradient chunk, last first: the step, then
  ``dh = du_t·W_hᵀ`` (the chunk's weight-gradient matmuls stay in the engine).

Inside, the matmuls call NumPy's own BLAS ``gemm``, each ``tanh`` NumPy's own SIMD
``tanh`` loop over contiguous runs (:mod:`anyrnn.engine.ffi`, both self-tested against
NumPy bit for bit), the ufunc calls become loops over rows and contiguous column runs,
and the plan's loops are the per-step kernels' bodies, inline. Every number is computed
by the same operations in the same order as in the per-step flavours, so a pass gives
their bits (but for a batch of one row, where ``np.matmul`` uses ``gemv``), without a
return to Python per step. The functions are compiled on first use and cached
(:mod:`anyrnn.engine.kernel_cache`); ``python -m anyrnn kernels --show`` prints them.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .._warn import warn_user
from . import codegen, ffi, kernel_cache
from .codegen import Binding, Call, CpuPlan, Ref

__all__ = ["LoopRunner", "runner", "loop_source"]

#: the per-step buffers of a gradient chunk: the engine passes (chunk, rows, G·n) arrays
CHUNKED = ("dz", "du")

_PROLOGUE = [
    "    args = np.empty(2, np.uint64)  # NumPy's inner-loop call: args, dims, steps",
    "    dims = np.empty(1, np.int64)",
    "    steps = np.empty(2, np.int64)",
    "    steps[0] = W.itemsize",
    "    steps[1] = W.itemsize",
    "    p_args, p_dims, p_steps = args.ctypes.data, dims.ctypes.data, steps.ctypes.data",
]
_BINARY = {"add": "+", "subtract": "-", "multiply": "*"}


def _row(ref: Ref, cols: str) -> str:
    idx = "b" if ref.time is None else f"t + {ref.time}, b"
    return f"{ref.buf}[{idx}, {cols}]"


def _call_lines(call: Call, widths: dict) -> list[str]:
    """A merged ufunc call of the plan, at function level."""
    refs = (*call.ins, call.out)
    w = call.width

    def cols(r: Ref) -> str:
        return f"{r.block} * n:{r.block + w} * n"

    if call.fn == "tanh":
        src, dst = call.ins[0], call.out
        if all(r.block == 0 and w == widths[r.buf] for r in refs):  # whole rows: one run
            at = {r: r.buf if r.time is None else f"{r.buf}[t + {r.time}]" for r in refs}
            return [
                f"    args[0] = {at[src]}.ctypes.data",
                f"    args[1] = {at[dst]}.ctypes.data",
                f"    dims[0] = rows * {w} * n",
                "    tanh(p_args, p_dims, p_steps, 0)",
            ]
        return [
            "    for b in range(rows):",
            f"        args[0] = {_row(src, cols(src))}.ctypes.data",
            f"        args[1] = {_row(dst, cols(dst))}.ctypes.data",
            f"        dims[0] = {w} * n",
            "        tanh(p_args, p_dims, p_steps, 0)",
        ]
    names = [f"q_{k}" for k in range(len(refs))]
    lines = ["    for b in range(rows):"]
    lines += [f"        {q} = {_row(r, cols(r))}" for q, r in zip(names, refs)]
    lines.append(f"        for j in range({w} * n):")
    lines.append(f"            {names[-1]}[j] = {names[0]}[j] {_BINARY[call.fn]} {names[1]}[j]")
    return lines


def _step_lines(plan: CpuPlan) -> list[str]:
    """The step's ops, at the indentation of a loop over ``t``."""
    lines: list[str] = []
    for item in plan.items:
        if isinstance(item, Call):
            lines += _call_lines(item, plan.widths)
        else:
            body, _, _ = codegen._loop_lines(plan.prog, list(item.stmts), plan.refs, item.after)
            lines += body
    return ["    " + line for line in lines]


def _gemm(a: str, b: str, c: str, m: str, n: str, k: str) -> str:
    """Row-major ``c = a·b`` of contiguous (m×k)·(k×n) arrays."""
    return (
        f"gemm(101, 111, 111, {m}, {n}, {k}, 1.0, {a}.ctypes.data, {k}, "
        f"{b}.ctypes.data, {n}, 0.0, {c}.ctypes.data, {n})"
    )


def loop_source(prog_name: str, binding: Binding, direction: str) -> tuple[str, str, tuple]:
    """``(function name, Numba source, array arguments)`` of the loop of one direction."""
    plan = codegen.cpu_plan(prog_name, binding)
    name = f"{prog_name}_loop"
    consts = ["v_" + c for c in plan.consts]
    if direction == "forward":
        arrays = (*plan.buffers, "W")
        head = [*arrays, "n_steps", "n", "rows", *consts]
        loop = [
            "    gn = W.shape[1]",
            "    for t in range(n_steps):",
            "        " + _gemm("h[t]", "W", "w", "rows", "gn", "n") + "  # w = h_{t-1}·W_h",
        ]
        tail: list[str] = []
    else:
        arrays = (*[b for b in plan.buffers if b not in CHUNKED], "dz_all", "du_all", "W")
        head = [*arrays, "t0", "t1", "n", "rows", *consts]
        loop = [
            "    gn = W.shape[0]",
            "    for t in range(t1 - 1, t0 - 1, -1):",
            "        dz = dz_all[t - t0]",
            "        du = du_all[t - t0]",
        ]
        tail = ["        " + _gemm("du", "W", "dh", "rows", "n", "gn") + "  # dh_{t-1} = du·W_hᵀ"]
    lines = [
        "@numba.njit(cache=True, nogil=True, error_model='numpy')",
        f"def {name}({', '.join(['gemm', 'tanh', *head])}):",
        *_PROLOGUE,
        *loop,
        *_step_lines(plan),
        *tail,
    ]
    return name, "\n".join(lines), arrays


class LoopRunner:
    """One compiled loop: ``forward(...)``/``backward(...)`` return False when the loop
    cannot run here (the engine then runs the per-step kernels)."""

    def __init__(self, prog_name: str, binding: Binding, direction: str):
        self.direction = direction
        self.name, self.source, self.arrays = loop_source(prog_name, binding, direction)
        plan = codegen.cpu_plan(prog_name, binding)
        self.buffers, self.consts = plan.buffers, plan.consts
        tanh = {r.buf for c in plan.items if isinstance(c, Call) and c.fn == "tanh" for r in c.ins}
        tanh |= {c.out.buf for c in plan.items if isinstance(c, Call) and c.fn == "tanh"}
        gemm = {"h", "w", "dh", "dz_all", "du_all", "W"}
        self._pointers = [a in tanh | gemm for a in self.arrays]  # read through pointers
        self._fn: Any = None
        self._failed: str | None = None
        self._ready: dict = {}  # dtype -> (gemm, tanh, compiled loop)

    def _function(self) -> Any:
        if self._fn is None:
            module = kernel_cache.load_module(
                f"anyrnn_{self.name}_{self.direction}",
                "import numba\nimport numpy as np\n\n\n" + self.source + "\n",
            )
            self._fn = module, getattr(module, self.name)
        return self._fn

    def _run(self, arrays: list, scalars: list) -> bool:
        if self._failed is not None:
            return False
        dtype = arrays[-1].dtype
        ready = self._ready.get(dtype)
        if ready is None:
            ptrs = ffi.pointers(dtype)
            if isinstance(ptrs, str):
                return False
        if not all(a.flags.c_contiguous for a, p in zip(arrays, self._pointers) if p):
            return False  # gemm and tanh take pointers (other buffers, like dy, may be views)
        try:
            if ready is not None:  # called before for this dtype: no lookups
                ready[2](ready[0], ready[1], *arrays, *scalars)
                return True
            args = [ptrs.gemm, ptrs.tanh, *arrays, *scalars]
            module, fn = self._function()
            kernel_cache.first_call(module, dtype.name, lambda: fn(*args))
        except Exception as exc:  # a Numba that cannot compile it: say so, run per step
            import numba

            if not isinstance(exc, (numba.core.errors.NumbaError, TypeError)):
                raise
            self._failed = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            warn_user(
                f"anyrnn: the compiled loop {self.name} ({self.direction}) failed to compile, "
                f"so the per-step kernels run instead: {self._failed}",
                RuntimeWarning,
            )
            return False
        self._ready[dtype] = (ptrs.gemm, ptrs.tanh, fn)
        return True

    def forward(
        self, buffers: dict, W_h: Any, n_steps: int, n: int, rows: int, const: dict
    ) -> bool:
        """Every step of the forward pass (the projection already in ``gates``)."""
        arrays = [buffers[b] for b in self.arrays[:-1]] + [W_h]
        return self._run(arrays, [n_steps, n, rows, *[const[c] for c in self.consts]])

    def backward(
        self,
        buffers: dict,
        dz_all: Any,
        du_all: Any,
        W_hT: Any,
        t0: int,
        t1: int,
        n: int,
        rows: int,
        const: dict,
    ) -> bool:
        """Steps ``t1 - 1`` down to ``t0``, their gradients into ``dz_all``/``du_all``
        (row ``t - t0``), ``dh`` left as step ``t0``'s ``du·W_hᵀ``."""
        arrays = [buffers[b] for b in self.arrays[:-3]] + [dz_all, du_all, W_hT]
        return self._run(arrays, [t0, t1, n, rows, *[const[c] for c in self.consts]])


@functools.cache
def _runner(prog_name: str, signature: tuple, direction: str) -> LoopRunner:
    return LoopRunner(prog_name, Binding.from_signature(signature), direction)


def runner(prog_name: str, binding: Binding, direction: str) -> LoopRunner:
    """The loop of ``pointwise.<prog_name>`` over ``binding`` ("forward", "backward")."""
    return _runner(prog_name, binding.signature(), direction)


def unavailable(dtype: Any) -> str | None:
    """Why the compiled loops cannot run for ``dtype`` here, or None."""
    if not codegen.numba_available():
        return "Numba is not installed"
    ptrs = ffi.pointers(np.dtype(dtype))
    return ptrs if isinstance(ptrs, str) else None
