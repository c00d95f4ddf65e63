"""CuPy kernels for the in-place engine: one ``ElementwiseKernel`` per step function.

The source comes from :func:`anyrnn.engine.codegen.cuda_source`; this module compiles it
with CuPy (``--fmad=false``: no contraction into FMA, so products and sums round as on the
CPU) and calls it over ``rows × n`` threads. Written without a GPU to run it on: the
tests compile every kernel with NVRTC and run its body as C++ on the CPU; the CuPy tests
run it where a GPU does.
"""

from __future__ import annotations

import functools
from typing import Any

from . import codegen

__all__ = ["runner", "OPTIONS"]

#: NVRTC options of every kernel: no FMA contraction
OPTIONS = ("--fmad=false",)


@functools.cache
def _kernel(src: codegen.CudaSource) -> Any:
    import cupy

    return cupy.ElementwiseKernel(
        src.in_params, src.out_params, src.body, src.name, no_return=True, options=OPTIONS
    )


def runner(prog: str, binding: codegen.Binding) -> Any:
    """``run(buffers, t, n, rows, consts)``: one launch of the step of ``prog``."""
    src = codegen.cuda_source(prog, binding)
    kernel = _kernel(src)

    def run(buffers: dict, t: int, n: int, rows: int, const: dict) -> None:
        kernel(
            *[buffers[b] for b in src.read],
            t,
            n,
            rows,
            *[const[c] for c in src.consts],
            *[buffers[b] for b in src.written],
            size=rows * n,
        )

    run.buffers = src.buffers  # type: ignore[attr-defined]
    return run
