"""CuPy kernels for the in-place engine: one ``ElementwiseKernel`` per step function.

The source comes from :func:`anyrnn.engine.cudagen.cuda_source`; this module compiles it
with CuPy (``--fmad=false``: no contraction into FMA, so products and sums round as on the
CPU) and calls it over ``rows × n`` threads: a step is the recurrent matmul and this one
launch, forward and backward.

Code that meets hardware fails safe: the first time a kernel is used for a dtype on a
device, :func:`self_check` compiles it, runs it on a tiny random problem and compares
every value it writes with the same step function run by NumPy on the host. A compile
error, a launch error or a wrong number is reported once as a ``RuntimeWarning`` naming
the kernel and the reason, and the engine falls back to the generic engine for that
cell (or raises, with ``fast_path=True``).

This module never needs a GPU to be tested: the kernel factory is a parameter, and the
tests pass one that builds each kernel's body as C++ for the CPU and runs whole passes
with NumPy arrays, and ones that fail on purpose. The NVRTC tests compile every kernel
for sm_80 and sm_90 without a device.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .._warn import warn_user
from ..backend import to_numpy
from ..cells.base import constants
from . import codegen, cudagen

__all__ = ["OPTIONS", "check_kernel", "cupy_kernel", "runner", "self_check", "random_buffers"]

#: NVRTC options of every kernel: no FMA contraction
OPTIONS = ("--fmad=false",)


@functools.cache
def cupy_kernel(src: cudagen.CudaSource) -> Any:
    """The CuPy ``ElementwiseKernel`` of a generated source (compiled on first launch)."""
    import cupy

    return cupy.ElementwiseKernel(
        src.in_params, src.out_params, src.body, src.name, no_return=True, options=OPTIONS
    )


def runner(prog: str, binding: codegen.Binding, factory: Any = cupy_kernel) -> Any:
    """``run(buffers, t, n, rows, consts)``: one launch of the step of ``prog``."""
    src = cudagen.cuda_source(prog, binding)
    kernel = factory(src)

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


def random_buffers(
    binding: codegen.Binding, dtype: Any, rng: np.random.Generator, steps: int, rows: int, n: int
) -> dict:
    """Host buffers of the engine's shapes for every buffer ``binding`` names, filled with
    values in [-1, 1] (time-indexed ones have ``steps + 1`` steps)."""
    out = {}
    refs = list(binding.params.values()) + list(binding.returns)
    for ref in refs:
        if ref.const or ref.buf in out:
            continue
        width = binding.widths[ref.buf] * n
        timed = any(r.buf == ref.buf and r.time is not None for r in refs)
        shape = (width,) if ref.vector else ((steps + 1, rows, width) if timed else (rows, width))
        out[ref.buf] = rng.uniform(-1, 1, size=shape).astype(dtype)
    return out


def check_kernel(
    prog: str, binding: codegen.Binding, backend: Any, factory: Any = cupy_kernel
) -> str | None:
    """Compile, run and compare one kernel; the reason it cannot be used, or None."""
    dtype = np.dtype(backend.dtype_name)
    src = cudagen.cuda_source(prog, binding)
    rng = np.random.default_rng(0)
    steps, rows, n, t = 3, 2, 3, 1
    host = random_buffers(binding, dtype, rng, steps, rows, n)
    const = constants(dtype)
    try:
        device = {k: backend.from_host(v.copy()) for k, v in host.items()}
        backend.run(runner(prog, binding, factory), device, t, n, rows, const)
        got = {k: np.asarray(to_numpy(device[k])) for k in src.written}
    except Exception as exc:  # compile errors, missing libraries, launch failures
        return (
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        )
    reference = {k: v.copy() for k, v in host.items()}
    step = codegen.cpu_step(prog, binding, use_numba=False)
    for name in step.buffers:
        reference.setdefault(name, np.zeros((rows, n), dtype))
    step.fn(*[reference[b] for b in step.buffers], t, n, rows, *[const[c] for c in step.consts])
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for name in src.written:
        diff = np.max(np.abs(got[name] - reference[name]))
        if not diff <= tol:  # NaN fails too
            return (
                f"it wrote {name} differing from NumPy's result by {diff:.3g} (tolerance {tol:g})"
            )
    return None


_RESULTS: dict[tuple, str | None] = {}


def self_check(
    prog: str, binding: codegen.Binding, backend: Any, factory: Any = cupy_kernel
) -> str | None:
    """None when the kernel of ``prog`` works for ``backend``'s dtype and device (checked
    once per process), else why not, warned about once."""
    key = (
        cudagen.cuda_source(prog, binding).name,
        backend.dtype_name,
        str(backend.device),
        id(factory),
    )
    if key not in _RESULTS:
        why = check_kernel(prog, binding, backend, factory)
        _RESULTS[key] = why
        if why is not None:
            warn_user(
                f"anyrnn: the CUDA kernel for {prog} ({backend.dtype_name}, device "
                f"{backend.device}) failed its self-check, so this layer runs on the generic "
                f"engine: {why}",
                RuntimeWarning,
            )
    return _RESULTS[key]
