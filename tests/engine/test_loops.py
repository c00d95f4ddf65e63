"""The compiled time loops: NumPy's bits, a guard on the pointers they call, a fallback,
and a kernel cache that works without a writable home or package folder.

(Their numbers against the generic engine, on every cell and option: the ``loop`` cases of
``test_equivalence.py``.)
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import anyrnn
from anyrnn import engine
from anyrnn.engine import ffi, inplace, loops
from anyrnn.layers.recurrent import CELLS

pytestmark = pytest.mark.skipif(
    loops.unavailable("float64") is not None, reason="no compiled loops here"
)
ROOT = Path(anyrnn.__file__).resolve().parents[1]


def _pass(cls, dtype, flavour, monkeypatch, **kw):
    monkeypatch.setattr(engine.INPLACE, "use_numba", True)
    monkeypatch.setattr(
        engine.INPLACE, "compiled_loops", {"loop": True, "numba": False}.get(flavour)
    )
    rng = np.random.default_rng(1)
    layer = cls(3, 6, dtype=dtype, random_state=0, **kw)
    X = rng.normal(size=(5, 11, 3))
    out = layer.forward(X)
    dX = layer.backward(rng.normal(size=out.shape))
    return [np.array(out), dX, *[layer.grads[k] for k in sorted(layer.grads)], *layer._d_state0]


@pytest.mark.parametrize("cls", list(CELLS.values()))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sequences", [True, False])
def test_loops_give_the_per_step_kernels_bits_without_a_python_step(
    cls, dtype, sequences, monkeypatch
):
    per_step = _pass(cls, dtype, "numba", monkeypatch, return_sequences=sequences)
    calls = []
    monkeypatch.setattr(inplace.Launcher, "matmul", lambda *a: calls.append(a))
    monkeypatch.setattr(inplace.Launcher, "step", lambda *a: calls.append(a))
    compiled = _pass(cls, dtype, "loop", monkeypatch, return_sequences=sequences)
    assert calls == []  # no step ran from Python
    for a, b in zip(compiled, per_step):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- the guard


def _c_gemm(real, wrong: bool):
    """A ``gemm`` with the BLAS signature, written in Python; ``wrong``: off by an ulp."""

    def gemm(order, ta, tb, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc):
        dtype = np.float32 if real is ctypes.c_float else np.float64
        a = np.ctypeslib.as_array(ctypes.cast(pa, ctypes.POINTER(real)), (m, k)).astype(dtype)
        b = np.ctypeslib.as_array(ctypes.cast(pb, ctypes.POINTER(real)), (k, n)).astype(dtype)
        c = np.ctypeslib.as_array(ctypes.cast(pc, ctypes.POINTER(real)), (m, n))
        c[...] = a @ b
        if wrong:
            c[-1, -1] = np.nextafter(c[-1, -1], np.inf)

    return ffi._gemm_type(real)(gemm)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_self_test_accepts_numpys_own_code_and_refuses_a_near_miss(dtype):
    real = ctypes.c_float if dtype == "float32" else ctypes.c_double
    good = ffi.pointers(dtype)
    assert isinstance(good, ffi.Pointers), good
    assert ffi.self_test(good.gemm, good.tanh, dtype) is None
    right, wrong = _c_gemm(real, False), _c_gemm(real, True)
    assert ffi.self_test(right, good.tanh, dtype) is None
    assert "gemm" in ffi.self_test(wrong, good.tanh, dtype)

    @ffi._LOOP
    def scalar_tanh(args, dims, steps, data):  # libm's tanh, element by element
        n = ctypes.cast(dims, ctypes.POINTER(ctypes.c_int64))[0]
        src, dst = ctypes.cast(args, ctypes.POINTER(ctypes.c_void_p))[:2]
        x = np.ctypeslib.as_array(ctypes.cast(src, ctypes.POINTER(real)), (n,))
        out = np.ctypeslib.as_array(ctypes.cast(dst, ctypes.POINTER(real)), (n,))
        out[...] = np.tanh(x)
        out[n // 2] = np.nextafter(out[n // 2], np.inf)

    assert "tanh" in ffi.self_test(good.gemm, scalar_tanh, dtype)


def test_without_the_pointers_the_engine_runs_its_per_step_kernels(monkeypatch):
    expected = _pass(anyrnn.LSTM, "float64", "numba", monkeypatch, return_sequences=True)
    monkeypatch.setattr(loops.ffi, "pointers", lambda dtype: "NumPy's BLAS is 'mkl'")
    layer = anyrnn.LSTM(3, 6, dtype="float64")
    assert engine.INPLACE.flavor(layer._backend) == "numba"
    got = _pass(anyrnn.LSTM, "float64", "auto", monkeypatch, return_sequences=True)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setattr(engine.INPLACE, "compiled_loops", True)
    with pytest.raises(RuntimeError, match="BLAS is 'mkl'"):
        engine.INPLACE.flavor(layer._backend)


# ----------------------------------------------------------------------------- the cache


def _run(env: dict) -> subprocess.CompletedProcess:
    code = (
        "import numpy as np, anyrnn\n"
        "layer = anyrnn.SimpleRNN(2, 3, activation='relu', dtype='float64', random_state=0)\n"
        "print(layer.infer(np.ones((2, 4, 2))).sum())\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_kernels_compile_once_into_a_cache_outside_home_and_the_package(tmp_path):
    """HOME is a file (no ~/.cache can be made, even as root): the kernels go to the temp
    folder; the first run says once that it compiles, the second loads them silently;
    the package folder gains no file."""
    env = {k: v for k, v in os.environ.items() if k not in ("ANYRNN_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(HOME=os.devnull, TMPDIR=str(tmp_path), PYTHONDONTWRITEBYTECODE="1")
    package = sorted(p for p in (ROOT / "anyrnn").rglob("*") if "__pycache__" not in p.parts)
    first, second = _run(env), _run(env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout == second.stdout
    assert first.stderr.count("anyrnn: compiling CPU kernels") == 1, first.stderr
    assert "compiling" not in second.stderr, second.stderr
    cached = list(tmp_path.glob("anyrnn-*/kernels/*/__pycache__/*.nbi"))
    assert any("simple_relu_forward_loop" in p.name for p in cached), cached
    assert sorted(p for p in (ROOT / "anyrnn").rglob("*") if "__pycache__" not in p.parts) == (
        package
    )


def test_a_loop_that_cannot_type_new_arrays_after_its_first_run_falls_back_with_a_warning():
    # after a first run the loop skips its lookups; a later call whose arrays Numba
    # cannot type must still warn and hand back to the per-step kernels, not raise
    from anyrnn.cells.simple import SimpleCell
    from anyrnn.engine.bindings import _bindings

    prog, binding = _bindings(SimpleCell("tanh"))["forward"]
    runner = loops.LoopRunner(prog, binding, "forward")  # not the shared, cached one
    T, B, n = 3, 2, 4
    const = {"one": 1.0, "half": 0.5, "zero": 0.0}

    def buffers() -> dict:
        shapes = {"h": (T + 1, B, n), "w": (B, n)}
        return {k: np.zeros(shapes.get(k, (T, B, n))) for k in runner.arrays[:-1]}

    assert runner.forward(buffers(), np.eye(n), T, n, B, const)
    assert np.dtype(np.float64) in runner._ready  # the next call takes the short path
    bad = buffers()
    bad["gates"] = bad["gates"][0]  # 2-D where the loop indexes three axes
    with pytest.warns(RuntimeWarning, match="failed to compile"):
        assert not runner.forward(bad, np.eye(n), T, n, B, const)
