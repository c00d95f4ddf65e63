"""The CuPy path, checked without a GPU.

Every generated ``ElementwiseKernel`` body is built as C++ for the CPU (one iteration of
the body per element ``i``, as CuPy runs it, no FMA contraction) and

* does one step exactly as the CPU engine does it (the same step functions; the two
  differ only in ``tanh``, glibc's here and NumPy's there, hence the tolerances);
* runs whole forward and backward passes in the engine's CUDA flavour over NumPy arrays
  in two launches a step (their numbers: the equivalence suite's ``cuda-on-cpu`` cases);
* when it fails to compile or computes a wrong number, the layer warns once, names the
  kernel and the reason, and gives the generic engine's numbers (``fast_path=True``: an
  error).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from cxx_kernels import CXX, CxxFactory

import anyrnn
from anyrnn import engine
from anyrnn.cells import CELLS
from anyrnn.cells.base import CONSTANTS
from anyrnn.engine import codegen, cuda, cudagen, inplace
from anyrnn.layers.recurrent import CELLS as LAYERS

pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler to build the kernel bodies")

ROWS, N, T = 3, 5, 4  # batch rows, units, steps


def _cells():
    out = []
    for name, cls in CELLS.items():
        for cell in [cls("relu"), cls("tanh")] if name == "simple" else [cls()]:
            if cell.forward_program is not None:
                out.append(cell)
    return out


def _cases():
    out = []
    for cell in _cells():
        label = f"{cell.name}-{getattr(cell, 'activation', '')}".rstrip("-")
        for key, (prog, binding) in inplace._bindings(cell).items():
            out.append(pytest.param(prog, binding, id=f"{label}-{key}"))
    return out


CASES = _cases()


@pytest.fixture(scope="module")
def factory(tmp_path_factory):
    return CxxFactory(tmp_path_factory.mktemp("kernels"))


@pytest.mark.parametrize("prog, binding", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cuda_kernel_body_does_the_cpu_engines_step(factory, prog, binding, dtype):
    src = cudagen.cuda_source(prog, binding)
    kernel = factory(src)
    cpu = cuda.random_buffers(binding, dtype, np.random.default_rng(0), T, ROWS, N)
    cxx = {k: v.copy() for k, v in cpu.items()}
    const = {k: np.dtype(dtype).type(v) for k, v in CONSTANTS.items()}
    t = 2
    step = codegen.cpu_step(prog, binding, codegen.numba_available())
    for name in step.buffers:  # placement scratch of the CPU step
        cpu.setdefault(name, np.zeros((ROWS, N), dtype))
    step.fn(*[cpu[b] for b in step.buffers], t, N, ROWS, *[const[c] for c in step.consts])
    cuda.runner(prog, binding, lambda _src: kernel)(cxx, t, N, ROWS, const)
    tol = 1e-6 if dtype == "float32" else 1e-14
    for name in src.written:  # everything the kernel writes, every step and block
        np.testing.assert_allclose(cxx[name], cpu[name], rtol=tol, atol=tol, err_msg=name)
    kept = {r.buf for r in binding.params.values() if not r.writable and not r.const}
    for name in kept - set(src.written):  # what the step must not change (tape, biases)
        np.testing.assert_array_equal(cxx[name], cpu[name], err_msg=name)


def test_every_step_function_of_an_inplace_cell_is_checked_here():
    progs = {c.values[0] for c in CASES}
    expected = {p for cell in _cells() for p in (cell.forward_program, cell.backward_program)}
    assert progs == expected and None not in progs


class CountingLauncher(inplace.Launcher):
    counts: dict = {}

    def matmul(self, a, b, out):
        CountingLauncher.counts["matmul"] = CountingLauncher.counts.get("matmul", 0) + 1
        super().matmul(a, b, out)

    def step(self, *args):
        CountingLauncher.counts["kernel"] = CountingLauncher.counts.get("kernel", 0) + 1
        super().step(*args)


@pytest.fixture
def cuda_on_cpu(factory, monkeypatch):
    """The in-place engine in its CUDA flavour, its kernels built for the CPU."""
    emulated = inplace.InplaceEngine(cuda=factory)
    emulated.launcher = CountingLauncher
    monkeypatch.setattr(engine, "INPLACE", emulated)
    CountingLauncher.counts = {}
    return emulated


@pytest.mark.parametrize("cls", list(LAYERS.values()))
@pytest.mark.parametrize("return_sequences", [False, True])
def test_a_cuda_step_is_two_launches_forward_and_backward(cuda_on_cpu, cls, return_sequences):
    """The recurrent matmul and one generated kernel, in both directions (the equivalence
    suite checks the numbers of these passes)."""
    n_steps = 11
    layer = cls(3, N, return_sequences=return_sequences, random_state=0)
    X = np.random.default_rng(1).normal(size=(ROWS, n_steps, 3))
    out = layer.forward(X)
    assert layer._tape.engine is cuda_on_cpu
    assert CountingLauncher.counts == {"matmul": n_steps, "kernel": n_steps}
    CountingLauncher.counts = {}
    layer.backward(np.ones_like(out))
    assert CountingLauncher.counts == {"matmul": n_steps, "kernel": n_steps}


class CompileError(Exception):
    """Stands in for cupy.cuda.compiler.CompileException."""


def _failing(kind, factory):
    def make(src):
        if kind == "compile":
            raise CompileError(f'{src.name}.cu(17): error: identifier "bogus" is undefined')
        kernel = factory(src)

        def wrong(*args, size):
            kernel(*args, size=size)
            args[-1][...] += 1e-3  # the last buffer it writes is off

        return wrong

    return make


@pytest.mark.parametrize(
    "kind, words", [("compile", "CompileError"), ("wrong", "differing from NumPy")]
)
def test_a_failing_kernel_warns_once_and_falls_back_to_the_generic_engine(
    factory, monkeypatch, kind, words
):
    monkeypatch.setattr(engine, "INPLACE", inplace.InplaceEngine(cuda=_failing(kind, factory)))
    monkeypatch.setattr(cuda, "_RESULTS", {})
    X = np.random.default_rng(2).normal(size=(2, 6, 3))
    layer = anyrnn.LSTM(3, 4, return_sequences=True, dtype="float64", random_state=0)
    generic = anyrnn.LSTM(
        3, 4, return_sequences=True, dtype="float64", random_state=0, fast_path=False
    )
    with pytest.warns(RuntimeWarning, match=f"lstm_forward.*self-check.*{words}"):
        out = layer.forward(X)
    np.testing.assert_array_equal(out, generic.forward(X))
    assert layer._tape.engine.name == "generic"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once: no second warning
        np.testing.assert_array_equal(layer.infer(X), out)
    layer.fast_path = True
    with pytest.raises(engine.FastPathError, match=f"failed the self-check.*{words}"):
        layer.forward(X)
