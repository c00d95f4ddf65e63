"""The CuPy kernels, checked without a GPU: each generated ``ElementwiseKernel`` body,
built as C++ for the CPU (one iteration of the body per element ``i``, as CuPy runs it),
must do one step exactly as the CPU engine does it.

This catches index, layout and formula mistakes in the CUDA source on a CPU-only machine.
Both sides keep the step functions' operation order and do not contract into FMA; they
differ only in ``tanh`` (glibc's here, NumPy's SIMD one there), hence the tolerances.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from anyrnn.cells import CELLS
from anyrnn.cells.base import CONSTANTS
from anyrnn.engine import codegen, inplace

CXX = shutil.which("g++") or shutil.which("c++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler to build the kernel bodies")

B, N, T = 3, 5, 4  # rows, units, steps


def _cases():
    out = []
    for name, cls in CELLS.items():
        for cell in [cls("relu"), cls("tanh")] if name == "simple" else [cls()]:
            if cell.forward_program is None:
                continue
            label = f"{name}-{getattr(cell, 'activation', '')}".rstrip("-")
            out.append(
                pytest.param(
                    cell.forward_program, inplace.forward_binding(cell), id=label + "-forward"
                )
            )
            for dy_steps in (True, False):
                out.append(
                    pytest.param(
                        cell.backward_program,
                        inplace.backward_binding(cell, dy_steps),
                        id=f"{label}-backward-{'dy' if dy_steps else 'no-dy'}",
                    )
                )
    return out


CASES = _cases()


def _cxx_source(src: codegen.CudaSource) -> str:
    def params(spec: str) -> list[str]:
        out = []
        for item in filter(None, (p.strip() for p in spec.split(","))):
            words = item.split()
            kind, pname = words[-2], words[-1]
            if kind == "int64":
                out.append(f"long long {pname}")
            elif words[0] == "raw":
                out.append(f"T* {pname}")
            else:
                out.append(f"T {pname}")
        return out

    sig = params(src.in_params) + params(src.out_params)
    names = [s.split()[-1] for s in sig]
    lines = ["#include <cmath>", "#include <cstddef>", "using std::tanh;"]
    lines.append(f"template <typename T> void k(ptrdiff_t size_, {', '.join(sig)}) {{")
    lines.append("  for (ptrdiff_t i = 0; i < size_; ++i) {")
    lines.append(src.body)
    lines += ["  }", "}"]
    for typ, suffix in (("float", "f32"), ("double", "f64")):
        csig = ", ".join(
            ["ptrdiff_t size_"] + [s.replace("T ", f"{typ} ").replace("T*", f"{typ}*") for s in sig]
        )
        lines.append(
            f'extern "C" void k_{suffix}({csig}) {{ k<{typ}>(size_, {", ".join(names)}); }}'
        )
    return "\n".join(lines)


def _buffers(binding: codegen.Binding, dtype: str, rng: np.random.Generator) -> dict:
    """Random contents for every buffer the binding names, in the engine's shapes."""
    out = {}
    refs = list(binding.params.values()) + list(binding.returns)
    for ref in refs:
        if ref.const or ref.buf in out:
            continue
        width = binding.widths[ref.buf] * N
        has_time = any(r.buf == ref.buf and r.time is not None for r in refs)
        shape = (width,) if ref.vector else ((T + 1, B, width) if has_time else (B, width))
        out[ref.buf] = rng.uniform(-1, 1, size=shape).astype(dtype)
    return out


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kernels")
    built = {}

    def get(src: codegen.CudaSource):
        if src.name not in built:
            (folder / f"{src.name}.cpp").write_text(_cxx_source(src))
            lib = folder / f"{src.name}.so"
            subprocess.run(
                [
                    CXX,
                    "-O1",
                    "-ffp-contract=off",
                    "-shared",
                    "-fPIC",
                    "-o",
                    lib,
                    folder / f"{src.name}.cpp",
                ],
                check=True,
            )
            built[src.name] = ctypes.CDLL(str(lib))
        return built[src.name]

    return get


@pytest.mark.parametrize("prog, binding", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cuda_kernel_body_does_the_cpu_engines_step(build, prog, binding, dtype):
    src = codegen.cuda_source(prog, binding)
    lib = build(src)
    rng = np.random.default_rng(0)
    cpu = _buffers(binding, dtype, rng)
    cxx = {k: v.copy() for k, v in cpu.items()}
    const = {k: np.dtype(dtype).type(v) for k, v in CONSTANTS.items()}
    t = 2
    step = codegen.cpu_step(prog, binding, codegen.numba_available())
    for name in step.buffers:  # placement scratch of the CPU step
        cpu.setdefault(name, np.zeros((B, N), dtype))
    step.fn(*[cpu[b] for b in step.buffers], t, N, B, *[const[c] for c in step.consts])
    scalar = ctypes.c_float if dtype == "float32" else ctypes.c_double
    args = [ctypes.c_ssize_t(B * N)]
    for name in src.read:
        args.append(ctypes.c_void_p(cxx[name].ctypes.data))
    args += [ctypes.c_longlong(t), ctypes.c_longlong(N), ctypes.c_longlong(B)]
    args += [scalar(const[c[2:] if c.startswith("v_") else c]) for c in src.consts]
    for name in src.written:
        args.append(ctypes.c_void_p(cxx[name].ctypes.data))
    getattr(lib, "k_f32" if dtype == "float32" else "k_f64")(*args)
    tol = 1e-6 if dtype == "float32" else 1e-14
    for name in src.written:  # everything the kernel writes, every step and block
        np.testing.assert_allclose(cxx[name], cpu[name], rtol=tol, atol=tol, err_msg=name)
    kept = {r.buf for r in binding.params.values() if not r.writable and not r.const}
    kept -= set(src.written)
    for name in kept:  # what the step must not change (the tape, the biases)
        np.testing.assert_array_equal(cxx[name], cpu[name], err_msg=name)


def test_every_step_function_of_an_inplace_cell_is_checked_here():
    progs = {c.values[0] for c in CASES}
    expected = {
        p
        for cls in CELLS.values()
        for cell in ([cls("relu"), cls("tanh")] if cls.name == "simple" else [cls()])
        for p in (cell.forward_program, cell.backward_program)
        if p is not None
    }
    assert progs == expected
