"""Kernels generated from the step functions of :mod:`anyrnn.cells.pointwise`.

A step function is parsed once into a :class:`Program`: its parameters, a list of
single-name assignments (helpers inlined) and the names it returns. From a program and
a *binding* (where each value lives in the in-place engine's buffers, see :class:`Ref`)
this module builds:

* **CPU** (:func:`cpu_step`): the program split at every ``m.tanh``: the arithmetic
  between two ``tanh`` lines becomes one Numba kernel (a loop over rows, then over the
  contiguous row slices, the loop shape that vectorises), and each ``tanh`` runs as
  NumPy's SIMD ``tanh`` over whole column blocks (adjacent blocks merged into one
  call). Values that cross a ``tanh`` are kept in a buffer that is free at that moment,
  chosen and checked here. Without Numba the same program runs as NumPy calls.
* **CUDA** (:func:`anyrnn.engine.cudagen.cuda_source`, from the same bindings): the
  whole program as one ``ElementwiseKernel`` body.

The CPU plan (:func:`cpu_plan`) is also what :mod:`anyrnn.engine.loops` compiles into
whole time loops.

Both keep the program's expressions as written (every operation parenthesised, no
literal constants), so float32 stays float32 and nothing is reassociated; Numba does
not contract into FMA without ``fastmath`` and CuPy compiles with ``--fmad=false``.
``python -m anyrnn kernels --show`` prints what is generated.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from typing import Any

from ..cells.language import _BINOPS, _CMPOPS, Program, ProgramError, program
from .bindings import Binding, Ref

__all__ = ["Binding", "Call", "CpuPlan", "Loop", "Ref", "cpu_plan", "cpu_step", "numba_available"]


# ----------------------------------------------------------------------------- placement


def _ops(prog: Program) -> list[tuple[str, list[int]]]:
    """The program as ops: ``("tanh", [stmt])`` or ``("loop", [stmts...])``."""
    ops: list[tuple[str, list[int]]] = []
    for k, (_, expr) in enumerate(prog.stmts):
        if Program.tanh_arg(expr) is not None:
            ops.append(("tanh", [k]))
        elif ops and ops[-1][0] == "loop":
            ops[-1][1].append(k)
        else:
            ops.append(("loop", [k]))
    return ops


def _place(prog: Program, binding: Binding) -> dict[str, Ref]:
    """A ref for every value: parameters and returns as bound, values that cross a
    ``tanh`` in a ref that no live value holds (checked), the rest in registers."""
    ops = _ops(prog)
    op_of = {}
    for j, (_, stmts) in enumerate(ops):
        for k in stmts:
            op_of[prog.stmts[k][0]] = j
    end = len(ops)
    first_use: dict[str, int] = {}
    last_use: dict[str, int] = {}
    for j, (_, stmts) in enumerate(ops):
        for k in stmts:
            for name in prog.reads(prog.stmts[k][1]):
                first_use.setdefault(name, j)
                last_use[name] = j
    for name in prog.returns:
        last_use[name] = end
    refs: dict[str, Ref] = {}
    live: dict[str, tuple[int, int]] = {}  # value -> (defined at op, last used at op)
    for name, ref in binding.params.items():
        refs[name] = ref
        live[name] = (-1, last_use.get(name, -1))
    for name, ref in zip(prog.returns, binding.returns):
        if name in refs and refs[name].key() != ref.key():
            raise ProgramError(f"{prog.name}: {name} is returned to two places")
        refs[name] = ref
        if name not in binding.params:
            live[name] = (op_of[name], end)

    def occupants(ref: Ref) -> list[tuple[int, int]]:
        return [live[v] for v, r in refs.items() if r.key() == ref.key() and v in live]

    def free(ref: Ref, span: tuple[int, int]) -> bool:
        # two values may share a ref when one is last read in the op that writes the
        # other: every generated loop loads all its inputs before it stores
        return all(b <= span[0] or span[1] <= a for a, b in occupants(ref))

    for name, expr in prog.stmts:
        if name in refs:
            continue
        here = op_of[name]
        if last_use.get(name, here) == here:
            continue  # lives and dies inside one loop: a register
        span = (here, last_use[name])
        candidates = [refs[v] for v in prog.reads(expr) if v in refs]
        candidates += [refs[v] for v in prog.returns if v in refs]
        for ref in candidates:
            if ref.writable and not ref.const and not ref.vector and free(ref, span):
                refs[name] = ref
                break
        else:
            refs[name] = Ref("tmp_" + name, 0, None, writable=True)
            binding.widths["tmp_" + name] = 1
        live[name] = span
    # check what was bound by hand too: no two values in one ref at once
    for name, span in live.items():
        for other, span2 in live.items():
            if other < name and refs[name].key() == refs[other].key():
                if not (span2[1] <= span[0] or span[1] <= span2[0]):
                    raise ProgramError(
                        f"{prog.name}: {name} and {other} would share {refs[name].buf} "
                        f"block {refs[name].block} while both are needed"
                    )
    return refs


# ----------------------------------------------------------------------------- expressions


def _expr(node: ast.expr, lang: str) -> str:
    """An expression in ``lang`` ("numba": scalar Python, "numpy": array calls, "c"),
    fully parenthesised, names prefixed ``v_``."""
    if isinstance(node, ast.Name):
        return "v_" + node.id
    if isinstance(node, ast.BinOp):
        return f"({_expr(node.left, lang)} {_BINOPS[type(node.op)]} {_expr(node.right, lang)})"
    if isinstance(node, ast.UnaryOp):
        return f"(-{_expr(node.operand, lang)})"
    if isinstance(node, ast.Compare):
        op = _CMPOPS[type(node.ops[0])]
        return f"({_expr(node.left, lang)} {op} {_expr(node.comparators[0], lang)})"
    if isinstance(node, ast.Call):
        args = [_expr(a, lang) for a in node.args]
        if node.func.attr == "tanh":  # type: ignore[attr-defined]
            return {"c": "tanh", "numba": "_tanh", "numpy": "_np.tanh"}[lang] + f"({args[0]})"
        if lang == "c":
            return f"({args[0]} ? {args[1]} : {args[2]})"
        if lang == "numpy":
            return f"_np.where({args[0]}, {args[1]}, {args[2]})"
        return f"({args[1]} if {args[0]} else {args[2]})"
    raise ProgramError(f"cannot translate {ast.dump(node)}")


# ----------------------------------------------------------------------------- CPU


def numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _view_name(ref: Ref) -> str:
    t = "" if ref.time is None else f"_t{ref.time}"
    return f"r_{ref.buf}{t}_{ref.block}"


def _loop_lines(prog: Program, stmts: list[int], refs: dict, after: set) -> tuple:
    """The body of one loop over rows and columns (at function level, indented 4):
    ``(lines, buffers, consts)``, buffers and consts in argument order."""
    defined = {prog.stmts[k][0] for k in stmts}
    inputs: list[str] = []
    for k in stmts:
        for v in prog.reads(prog.stmts[k][1]):
            if v not in defined and v not in inputs:
                inputs.append(v)
    outputs = [prog.stmts[k][0] for k in stmts if prog.stmts[k][0] in after]
    consts = [v for v in inputs if refs[v].const]
    arrays = [v for v in inputs + outputs if not refs[v].const]
    bufs = sorted({refs[v].buf for v in arrays})
    row_views = sorted({_view_name(refs[v]): refs[v] for v in arrays if not refs[v].vector}.items())
    vec_views = sorted({_view_name(refs[v]): refs[v] for v in arrays if refs[v].vector}.items())
    lines = []
    for view, ref in vec_views:
        lines.append(f"    {view} = {ref.buf}[{ref.block} * n:{ref.block + 1} * n]")
    lines.append("    for b in range(rows):")
    for view, ref in row_views:
        idx = "b" if ref.time is None else f"t + {ref.time}, b"
        lines.append(f"        {view} = {ref.buf}[{idx}, {ref.block} * n:{ref.block + 1} * n]")
    lines.append("        for j in range(n):")
    for v in inputs:
        if not refs[v].const:
            lines.append(f"            v_{v} = {_view_name(refs[v])}[j]")
    for k in stmts:
        target, expr = prog.stmts[k]
        lines.append(f"            v_{target} = {_expr(expr, 'numba')}")
    for v in outputs:
        lines.append(f"            {_view_name(refs[v])}[j] = v_{v}")
    return lines, bufs, consts


def _loop_source(name: str, prog: Program, stmts: list[int], refs: dict, after: set) -> tuple:
    """Numba source of one loop: ``(source, buffers, consts)`` in argument order."""
    lines, bufs, consts = _loop_lines(prog, stmts, refs, after)
    head = f"def {name}({', '.join(bufs + ['t', 'n', 'rows'] + ['v_' + c for c in consts])}):"
    return "\n".join([head] + lines), bufs, consts


def _block_slice(ref: Ref, last: int, widths: dict) -> str:
    """Blocks ``ref.block..last`` of ``ref``'s buffer at its step (a plain index when they
    are the whole row: fewer views to make in the step loop)."""
    if ref.time is None and ref.block == 0 and last + 1 == widths[ref.buf]:
        return ref.buf
    idx = "" if ref.time is None else f"t + {ref.time}"
    if ref.block == 0 and last + 1 == widths[ref.buf]:
        return f"{ref.buf}[{idx}]"
    idx = "" if ref.time is None else idx + ", "
    return f"{ref.buf}[{idx}..., {ref.block} * n:{last + 1} * n]"


@dataclass
class CpuStep:
    """A generated CPU step: ``source`` (Python), ``kernels`` (Numba sources)."""

    name: str
    source: str
    kernels: dict[str, str]
    buffers: tuple[str, ...]
    consts: tuple[str, ...]
    fn: Any = None


_UFUNCS = {ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply"}


def _as_ufunc(prog: Program, k: int, refs: dict) -> tuple[str, list[Ref], Ref] | None:
    """Statement ``k`` as one NumPy ufunc call on refs, when it is that simple."""
    target, expr = prog.stmts[k]
    arg = Program.tanh_arg(expr)
    if arg is not None:
        return "tanh", [refs[arg]], refs[target]
    if (
        isinstance(expr, ast.BinOp)
        and isinstance(expr.left, ast.Name)
        and isinstance(expr.right, ast.Name)
        and target in refs
        and expr.left.id in refs
        and expr.right.id in refs
    ):
        ins = [refs[expr.left.id], refs[expr.right.id]]
        if all(not r.const and not r.vector for r in ins):
            return _UFUNCS[type(expr.op)], ins, refs[target]
    return None


def _adjacent(a: Ref, b: Ref) -> bool:
    return (a.buf, a.time) == (b.buf, b.time) and b.block == a.block + 1


@dataclass(frozen=True)
class Call:
    """``out = fn(*ins)``, a NumPy ufunc over ``width`` adjacent column blocks of refs."""

    fn: str
    ins: tuple[Ref, ...]
    out: Ref
    width: int


@dataclass(frozen=True)
class Loop:
    """Statements of the program run as one loop over rows and columns; ``after`` the
    values read after it (it stores those it defines)."""

    index: int
    stmts: tuple[int, ...]
    after: frozenset


@dataclass
class CpuPlan:
    """A step function as the CPU runs it: ufunc calls and loops, in order."""

    prog: Program
    refs: dict[str, Ref]  # where every value that leaves a loop lives
    widths: dict[str, int]
    items: list  # Call | Loop
    buffers: tuple[str, ...]  # every buffer it touches, sorted
    consts: tuple[str, ...]


def _merged_calls(calls: list[tuple[str, list[Ref], Ref]]) -> list[Call]:
    """Ufunc calls, consecutive calls over adjacent blocks of the same buffers merged."""
    out = []
    j = 0
    while j < len(calls):
        fn, ins, dst = calls[j]
        width = 1
        while j + width < len(calls):
            fn2, ins2, out2 = calls[j + width]
            prev_ins, prev_out = calls[j + width - 1][1], calls[j + width - 1][2]
            if fn2 != fn or not _adjacent(prev_out, out2):
                break
            if not all(_adjacent(a, b) for a, b in zip(prev_ins, ins2)):
                break
            width += 1
        out.append(Call(fn, tuple(ins), dst, width))
        j += width
    return out


def _call_line(call: Call, widths: dict) -> str:
    args = [_block_slice(r, r.block + call.width - 1, widths) for r in call.ins]
    dst = _block_slice(call.out, call.out.block + call.width - 1, widths)
    return f"    _np.{call.fn}({', '.join(args)}, out={dst})"


def _ufunc_loop(prog: Program, stmts: list[int], refs: dict) -> list | None:
    """A loop as NumPy ufunc calls, when every statement is one and no call reads a ref
    an earlier call of the loop wrote (the generated loops read everything first)."""
    calls = [_as_ufunc(prog, k, refs) for k in stmts]
    if any(c is None for c in calls):
        return None
    written: set = set()
    for _, ins, out in calls:
        if any(r.key() in written for r in ins):
            return None
        written.add(out.key())
    return calls


@functools.cache
def _cpu_plan_cached(prog_name: str, signature: tuple) -> CpuPlan:
    prog = program(prog_name)
    binding = Binding.from_signature(signature)
    refs = _place(prog, binding)
    ops = _ops(prog)
    items: list = []
    pending: list = []  # ufunc calls not yet merged (merged across ops)
    for j, (kind, stmts) in enumerate(ops):
        calls = (
            [_as_ufunc(prog, stmts[0], refs)] if kind == "tanh" else _ufunc_loop(prog, stmts, refs)
        )
        if calls is not None:
            pending.extend(calls)
            continue
        items.extend(_merged_calls(pending))
        pending = []
        later = set(prog.returns)
        for _, rest in ops[j + 1 :]:
            for k in rest:
                later.update(prog.reads(prog.stmts[k][1]))
        items.append(Loop(j, tuple(stmts), frozenset(later)))
    items.extend(_merged_calls(pending))
    bufs = tuple(sorted({r.buf for r in refs.values() if not r.const}))
    consts = tuple(sorted({v for v, r in refs.items() if r.const}))
    return CpuPlan(prog, refs, binding.widths, items, bufs, consts)


def cpu_plan(prog_name: str, binding: Binding) -> CpuPlan:
    """How the CPU runs ``pointwise.<prog_name>`` over ``binding``'s buffers (cached)."""
    return _cpu_plan_cached(prog_name, binding.signature())


@functools.cache
def _cpu_step_cached(prog_name: str, signature: tuple, use_numba: bool) -> CpuStep:
    plan = _cpu_plan_cached(prog_name, signature)
    prog, refs = plan.prog, plan.refs
    kernels: dict[str, str] = {}
    body: list[str] = []
    for item in plan.items:
        if isinstance(item, Call):
            body.append(_call_line(item, plan.widths))
        elif use_numba:
            kname = f"_{prog.name}_{item.index}"
            src, bufs, consts = _loop_source(kname, prog, list(item.stmts), refs, item.after)
            kernels[kname] = src
            args = ", ".join(bufs + ["t", "n", "rows"] + ["v_" + c for c in consts])
            body.append(f"    {kname}({args})")
        else:
            body.extend(_numpy_lines(prog, list(item.stmts), refs, set(item.after)))
    args = ", ".join(list(plan.buffers) + ["t", "n", "rows"] + ["v_" + c for c in plan.consts])
    source = "\n".join([f"def {prog.name}_step({args}):"] + (body or ["    pass"]))
    return CpuStep(prog.name + "_step", source, kernels, plan.buffers, plan.consts)


def _numpy_lines(prog: Program, stmts: list[int], refs: dict, after: set) -> list[str]:
    """The same loop as NumPy calls on whole blocks (no Numba)."""
    defined = {prog.stmts[k][0] for k in stmts}
    lines = []
    loaded = set()
    for k in stmts:
        for v in prog.reads(prog.stmts[k][1]):
            if v not in defined and v not in loaded:
                loaded.add(v)
                r = refs[v]
                if r.const:
                    continue
                if r.vector:
                    lines.append(f"    v_{v} = {r.buf}[{r.block} * n:{r.block + 1} * n]")
                else:
                    idx = "" if r.time is None else f"t + {r.time}, "
                    lines.append(
                        f"    v_{v} = {r.buf}[{idx}..., {r.block} * n:{r.block + 1} * n].copy()"
                    )
    for k in stmts:
        target, expr = prog.stmts[k]
        lines.append(f"    v_{target} = {_expr(expr, 'numpy')}")
    for k in stmts:
        target = prog.stmts[k][0]
        if target in after:
            r = refs[target]
            idx = "" if r.time is None else f"t + {r.time}, "
            lines.append(f"    {r.buf}[{idx}..., {r.block} * n:{r.block + 1} * n] = v_{target}")
    return lines


def cpu_step(prog_name: str, binding: Binding, use_numba: bool, compile: bool = True) -> CpuStep:
    """The step of ``pointwise.<prog_name>`` for ``binding``, compiled unless ``compile``
    is False (cached)."""
    step = _cpu_step_cached(prog_name, binding.signature(), use_numba)
    if compile and step.fn is None:
        step.fn = _compile_cpu(step, use_numba)
    return step


def _compile_cpu(step: CpuStep, use_numba: bool) -> Any:
    import numpy as np

    namespace: dict[str, Any] = {"_np": np}
    if use_numba:
        module = _numba_module(step)
        namespace.update({k: getattr(module, k) for k in step.kernels})
    exec(compile(step.source, f"<anyrnn {step.name}>", "exec"), namespace)  # noqa: S102
    return namespace[step.name]


def _numba_module(step: CpuStep) -> Any:
    """The Numba kernels of a step, from a file in the cache folder (so Numba caches)."""
    from .kernel_cache import load_module

    source = "import math\n\nimport numba\n\n_tanh = math.tanh\n\n"
    source += "\n\n".join(
        "@numba.njit(cache=True, nogil=True, error_model='numpy')\n" + src
        for src in step.kernels.values()
    )
    return load_module(f"anyrnn_{step.name}", source)
