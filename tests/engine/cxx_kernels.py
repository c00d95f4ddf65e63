"""The generated CUDA kernels built as C++ for the CPU: a kernel factory for the engine.

``factory(src)`` returns a callable with the calling convention of a CuPy
``ElementwiseKernel`` (inputs, then outputs, ``size=``) that runs the kernel's body once
per element ``i`` over NumPy arrays, so whole CUDA-flavoured passes run on a CPU.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np

from anyrnn.engine import cudagen

CXX = shutil.which("g++") or shutil.which("c++")


def cxx_source(src: cudagen.CudaSource) -> str:
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


class CxxFactory:
    """Builds each kernel once (g++, no FMA contraction) into ``folder``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.built: dict = {}

    def __call__(self, src: cudagen.CudaSource):
        if src.name not in self.built:
            cpp = self.folder / f"{src.name}.cpp"
            cpp.write_text(cxx_source(src))
            lib = self.folder / f"{src.name}.so"
            subprocess.run(
                [CXX, "-O1", "-ffp-contract=off", "-shared", "-fPIC", "-o", lib, cpp], check=True
            )
            self.built[src.name] = ctypes.CDLL(str(lib))
        lib = self.built[src.name]
        n_read, n_consts = len(src.read), len(src.consts)

        def kernel(*args, size):
            arrays = [a for a in args if isinstance(a, np.ndarray)]
            dtype = arrays[0].dtype
            scalar = ctypes.c_float if dtype == np.float32 else ctypes.c_double
            c_args = [ctypes.c_ssize_t(size)]
            for k, a in enumerate(args):
                if isinstance(a, np.ndarray):
                    assert a.dtype == dtype and a.flags.c_contiguous, (k, a.dtype, a.flags)
                    c_args.append(ctypes.c_void_p(a.ctypes.data))
                elif n_read <= k < n_read + 3:  # t, n, rows
                    c_args.append(ctypes.c_longlong(int(a)))
                else:
                    assert n_read + 3 <= k < n_read + 3 + n_consts
                    c_args.append(scalar(a))
            getattr(lib, "k_f32" if dtype == np.float32 else "k_f64")(*c_args)

        return kernel
