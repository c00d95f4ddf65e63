"""CUDA source generated from the step functions of :mod:`anyrnn.cells.pointwise`.

From a program and the binding of :mod:`anyrnn.engine.codegen` (where each value lives in
the in-place engine's buffers), :func:`cuda_source` makes the whole step one
``ElementwiseKernel`` body, ``tanh`` inline; buffers are ``raw`` arguments indexed by
step, row and column. :mod:`anyrnn.engine.cuda` compiles and runs it.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from ..cells.language import program
from .codegen import Binding, Ref, _expr

__all__ = ["CudaSource", "cuda_source"]


@dataclass(frozen=True)
class CudaSource:
    """What ``cupy.ElementwiseKernel`` takes, for one step function and binding."""

    name: str
    in_params: str
    out_params: str
    body: str
    read: tuple[str, ...]  # raw arrays read only: the first arguments
    consts: tuple[str, ...]  # scalars after them and ``t``, ``n``, ``rows``
    written: tuple[str, ...]  # raw arrays written (and maybe read): the last arguments

    @property
    def buffers(self) -> tuple[str, ...]:
        return self.read + self.written


def _c_index(ref: Ref, widths: dict) -> str:
    width = widths[ref.buf]
    col = f"{ref.block} * n + col"
    if ref.vector:
        return col
    row = "row" if ref.time is None else f"((t + {ref.time}) * rows + row)"
    return f"{row} * ({width} * n) + {col}"


@functools.cache
def _cuda_cached(prog_name: str, signature: tuple) -> CudaSource:
    prog = program(prog_name)
    params, returns, widths = signature
    widths = dict(widths)
    refs = dict(params)
    consts = sorted(v for v, r in refs.items() if r.const)
    loaded = [v for v in prog.params if not refs[v].const]
    stored = list(zip(prog.returns, returns))
    written = sorted({r.buf for _, r in stored})
    read_only = sorted({refs[v].buf for v in loaded} - set(written))
    lines = ["const ptrdiff_t row = i / n, col = i % n;"]
    for v in loaded:
        lines.append(f"const T v_{v} = {refs[v].buf}[{_c_index(refs[v], widths)}];")
    for target, expr in prog.stmts:
        lines.append(f"const T v_{target} = {_expr(expr, 'c')};")
    for name, ref in stored:
        lines.append(f"{ref.buf}[{_c_index(ref, widths)}] = v_{name};")
    in_params = ", ".join(
        [f"raw T {b}" for b in read_only]
        + ["int64 t", "int64 n", "int64 rows"]
        + [f"T v_{c}" for c in consts]
    )
    out_params = ", ".join(f"raw T {b}" for b in written)
    name = f"anyrnn_{prog.name}_" + hashlib.sha256(repr(signature).encode()).hexdigest()[:8]
    body = "\n".join(lines)
    return CudaSource(
        name, in_params, out_params, body, tuple(read_only), tuple(consts), tuple(written)
    )


def cuda_source(prog_name: str, binding: Binding) -> CudaSource:
    """One ``ElementwiseKernel`` for the whole step (size: rows × n), cached."""
    return _cuda_cached(prog_name, binding.signature())
