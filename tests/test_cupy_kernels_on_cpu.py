"""CuPy's fused kernels, checked without a GPU: their CUDA bodies, built as C++ for the CPU.

The bodies of ``anyrnn._fused._CUPY_KERNELS`` are plain C++ over scalars and flat arrays,
so a C++ compiler can run them the way CuPy's ``ElementwiseKernel`` does (one iteration of
the body per element ``i``). They must give the Numba kernels' results, which the other
fast-path tests compare with the generic path. This catches index or formula mistakes in
the CuPy kernels on a CPU-only machine; CUDA compilation itself is checked only where a
GPU runs the CuPy tests.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from anyrnn.engine import compile as _fused

CXX = shutil.which("g++") or shutil.which("c++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler to build the kernel bodies")


def _params(spec: str) -> list[tuple[bool, str, str]]:
    out = []
    for item in spec.split(","):
        words = item.split()
        raw = words[0] == "raw"
        out.append((raw, words[-2], words[-1]))
    return out


def _source() -> str:
    lines = ["#include <cstddef>", "#include <cstdint>"]
    for name, (inp, outp, body) in _fused._CUPY_KERNELS.items():
        params = [(p, False) for p in _params(inp)] + [(p, True) for p in _params(outp)]
        sig, bind = [], []
        for (raw, typ, pname), is_out in params:
            if typ == "int64":
                sig.append(f"long long {pname}")
            elif raw:
                sig.append(f"T* {pname}")
            else:
                sig.append(f"T* {pname}_")
                bind.append(f"{'T&' if is_out else 'const T'} {pname} = {pname}_[i];")
        lines.append(f"template <typename T> void {name}(ptrdiff_t size_, {', '.join(sig)}) {{")
        lines.append("  for (ptrdiff_t i = 0; i < size_; ++i) {")
        lines += ["    " + b for b in bind] + [body, "  }", "}"]
        args = ", ".join(["size_"] + [p[2] for p, _ in params])
        for typ, suffix in (("float", "f32"), ("double", "f64")):
            csig = ", ".join(
                ["ptrdiff_t size_"]
                + [
                    s.replace("T*", f"{typ}*").replace("T* ", f"{typ}* ")
                    for s in [
                        (f"long long {p[2]}" if p[1] == "int64" else f"T* {p[2]}")
                        for p, _ in params
                    ]
                ]
            )
            lines.append(f'extern "C" void {name}_{suffix}({csig}) {{ {name}<{typ}>({args}); }}')
    return "\n".join(lines)


@pytest.fixture(scope="module")
def cpu_kernels(tmp_path_factory):
    d = tmp_path_factory.mktemp("kernels")
    (d / "k.cpp").write_text(_source())
    lib_path = d / "k.so"
    subprocess.run(
        [CXX, "-O1", "-ffp-contract=off", "-shared", "-fPIC", "-o", lib_path, d / "k.cpp"],
        check=True,
    )
    lib = ctypes.CDLL(str(lib_path))

    def make(name: str, inp: str, outp: str):
        params = _params(inp) + _params(outp)

        def call(*args):
            assert len(args) == len(params)
            elementwise = [
                a for a, (raw, typ, _) in zip(args, params) if typ != "int64" and not raw
            ]
            suffix = "f32" if elementwise[0].dtype == np.float32 else "f64"
            c_args = [ctypes.c_ssize_t(elementwise[0].size)]
            for a, (_, typ, _) in zip(args, params):
                if typ == "int64":
                    c_args.append(ctypes.c_longlong(a))
                else:
                    assert a.flags.c_contiguous and a.dtype == elementwise[0].dtype
                    c_args.append(ctypes.c_void_p(a.ctypes.data))
            getattr(lib, f"{name}_{suffix}")(*c_args)

        return call

    k = {name: make(name, inp, outp) for name, (inp, outp, _) in _fused._CUPY_KERNELS.items()}
    return _fused._elementwise_api(k)


@pytest.fixture(scope="module")
def numba_kernels():
    kernels = _fused.load()
    if kernels is None:
        pytest.skip("Numba is not installed (pip install anyrnn[fast])")
    return kernels


CALLS = {  # name: (shapes of the arguments in units of (B, n); which are written)
    "lstm_forward": ([(1, 4), (1, 1), (1, 1), "half"], [0, 2]),
    "lstm_backward": ([(1, 4), (1, 1), (1, 1), (1, 1), (1, 1), (1, 4), "one"], [4, 5]),
    "gru_forward_u": ([(1, 3), (1, 3), (0, 3), (1, 1)], [0, 3]),
    "gru_forward_gates": ([(1, 3), (1, 1), "half"], [0]),
    "gru_forward_h": ([(1, 3), (1, 1), (1, 1)], [2]),
    "gru_backward": ([(1, 3), (1, 1), (1, 1), (1, 1), (1, 3), (1, 3), "one"], [3, 4, 5]),
    "simple_backward": ([(1, 1), (1, 1), (1, 1), "one", "tanh"], [2]),
}


def test_every_fused_kernel_is_checked_here():
    assert set(CALLS) == set(_fused.KERNELS)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CALLS) + ["simple_backward_relu"])
def test_cupy_kernel_bodies_equal_the_numba_kernels(cpu_kernels, numba_kernels, name, dtype):
    relu = name == "simple_backward_relu"
    name = "simple_backward" if relu else name
    shapes, written = CALLS[name]
    rng = np.random.default_rng(0)
    B, n = 3, 5
    args = []
    for s in shapes:
        if s == "half":
            args.append(np.dtype(dtype).type(0.5))
        elif s == "one":
            args.append(np.dtype(dtype).type(1))
        elif s == "tanh":
            args.append(not relu)
        else:
            shape = (s[1] * n,) if s[0] == 0 else (B, s[1] * n)
            args.append(rng.uniform(-1, 1, size=shape).astype(dtype))
    mine = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    getattr(numba_kernels, name)(*args)
    getattr(cpu_kernels, name)(*mine)
    for k in written:
        np.testing.assert_array_equal(mine[k], args[k])  # no FMA on either side
