"""Backend resolution, moving arrays between libraries, pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import anyrnn
from anyrnn.backend import _status


def test_numpy_is_always_available():
    names = anyrnn.available_backends()
    assert names[0] == "numpy"
    assert set(names) <= {"numpy", "cupy", "torch", "jax", "array_api_strict"}


def test_auto_picks_cupy_only_with_a_gpu():
    expected = "cupy" if _status("cupy")[0] else "numpy"
    assert anyrnn.resolve_backend("auto").name == expected


def test_resolve_records_namespace_device_dtype(backend, dtype):
    b = anyrnn.resolve_backend(backend.name, backend.device, dtype)
    assert b.name == backend.name and b.dtype_name == dtype
    z = b.zeros((2, 3))
    assert b.owns(z) and z.dtype == b.dtype and tuple(z.shape) == (2, 3)
    import array_api_compat

    assert str(array_api_compat.device(z)) == str(b.device)


def test_namespace_objects_are_accepted(backend):
    xp = anyrnn.resolve_backend(backend.name, backend.device).xp
    again = anyrnn.resolve_backend(xp, backend.device)
    assert again.name == backend.name


def test_numpy_module_itself_is_the_numpy_backend():
    assert anyrnn.resolve_backend(np).name == "numpy"
    assert anyrnn.resolve_backend(np).xp is np


def test_dtype_accepts_numpy_dtypes():
    assert anyrnn.resolve_backend("numpy", dtype=np.float64).dtype_name == "float64"


def test_backend_and_layer_pickle_round_trip(backend):
    rnn = anyrnn.SimpleRNN(2, 3, backend=backend.name, device=backend.device, random_state=0)
    b = pickle.loads(pickle.dumps(rnn._backend))
    assert b == rnn._backend
    out = rnn.forward(np.ones((1, 4, 2)))
    clone = pickle.loads(pickle.dumps(rnn))
    np.testing.assert_array_equal(
        anyrnn.to_numpy(clone.forward(np.ones((1, 4, 2)))), anyrnn.to_numpy(out)
    )
    assert clone.backend == rnn.backend and str(clone.device) == str(rnn.device)


def test_to_numpy_and_to_backend_round_trip(backend, dtype):
    host = np.arange(12, dtype=dtype).reshape(3, 4) / 7
    moved = anyrnn.to_backend(host, backend.name, device=backend.device)
    b = anyrnn.resolve_backend(backend.name, backend.device)
    assert b.owns(moved)
    import array_api_compat

    assert str(array_api_compat.device(moved)) == str(b.device)
    back = anyrnn.to_numpy(moved)
    assert isinstance(back, np.ndarray) and back.dtype == host.dtype
    np.testing.assert_array_equal(back, host)
    # and between two non-NumPy libraries, through to_backend again
    again = anyrnn.to_backend(moved, "numpy")
    np.testing.assert_array_equal(again, host)


def test_to_backend_between_libraries():
    torch = pytest.importorskip("torch", reason="torch not installed")
    strict = pytest.importorskip("array_api_strict", reason="array-api-strict not installed")
    t = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    s = anyrnn.to_backend(t, "array_api_strict", device="device1")
    assert str(s.device) == str(strict.Device("device1"))
    np.testing.assert_array_equal(anyrnn.to_numpy(s), t.numpy())
    back = anyrnn.to_backend(s, "torch")
    assert isinstance(back, torch.Tensor) and back.dtype == torch.float64


@settings(max_examples=25, deadline=None)
@given(
    X=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=4).map(
            lambda s: (s[0], s[1], 2)
        ),
        elements=st.floats(-3, 3),
    )
)
def test_batch_rows_are_independent(X):
    """Property: each row of a batch gives what running it alone gives."""
    rnn = anyrnn.SimpleRNN(2, 3, return_sequences=True, dtype="float64", random_state=5)
    together = rnn.forward(X)
    for i in range(X.shape[0]):
        alone = rnn.forward(X[i : i + 1])
        np.testing.assert_allclose(together[i : i + 1], alone, rtol=1e-12, atol=1e-14)


def test_a_resolved_backend_keeps_its_dtype_unless_one_is_asked_for():
    b64 = anyrnn.resolve_backend("numpy", dtype="float64")
    assert anyrnn.SimpleRNN(2, 3, backend=b64).dtype == np.float64
    assert anyrnn.Dense(2, 3, backend=b64).dtype == np.float64
    assert anyrnn.SimpleRNN(2, 3, backend=b64, dtype="float32").dtype == np.float32
    assert anyrnn.SimpleRNN(2, 3).dtype == np.float32  # the default stays float32


def test_bench_step_computes_in_the_dtype_asked_for():
    from anyrnn import bench

    for dtype in ("float32", "float64"):
        step = bench.anyrnn_step("simple", (3, 2, 2, 4), dtype)
        step()
        assert step.layer.dtype == np.dtype(dtype) and step.layer.dW_x.dtype == np.dtype(dtype)


# ----------------------------------------------------------------------------- CuPy probe


@pytest.mark.parametrize(
    "exc, words",
    [
        (
            RuntimeError('Failure finding "libnvrtc.so.13 or libnvrtc.so.12": No such file'),
            ["NVRTC", "pip install 'anyrnn[cuda12]'", "nvidia-cuda-nvrtc-cu12"],
        ),
        (
            ImportError('Failure finding "libcublasLt.so.13 or libcublasLt.so.12"'),
            ["cuBLAS", "nvidia-cublas-cu12"],
        ),
        (
            RuntimeError("Failed to find CUDA headers. Please install CUDA toolkit headers"),
            ["CUDA headers", "nvidia-cuda-runtime-cu12"],
        ),
        (
            RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient"),
            ["driver", "anyrnn[cuda13]"],
        ),
    ],
    ids=["nvrtc", "cublas", "headers", "driver"],
)
def test_cupy_problems_name_the_missing_piece_and_the_fix(exc, words):
    from anyrnn.backend import cupy_advice

    advice = cupy_advice(exc, 12)
    for w in words:
        assert w in advice, (w, advice)


def test_the_cupy_probe_runs_a_matmul_and_anyrnns_own_kernel(monkeypatch):
    """With a stand-in for CuPy (NumPy underneath, one GPU): a working set-up passes, and
    a failing registered probe (anyrnn's kernel) or a wrong matmul makes CuPy unusable."""
    import contextlib
    import importlib
    import sys
    import types

    from anyrnn.backend import probe  # where the probe state lives: patch it there

    class FakeArray(np.ndarray):
        def get(self):
            return np.asarray(self)

    fake = types.SimpleNamespace(
        asarray=lambda a: np.asarray(a).view(FakeArray),
        cuda=types.SimpleNamespace(
            runtime=types.SimpleNamespace(
                runtimeGetVersion=lambda: 12090, getDeviceCount=lambda: 1
            ),
            Device=lambda i=0: contextlib.nullcontext(types.SimpleNamespace(id=i)),
        ),
    )
    real_import = importlib.import_module
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(
        probe.importlib,
        "import_module",
        lambda name: np if name == "array_api_compat.cupy" else real_import(name),
    )
    calls = []
    monkeypatch.setattr(probe, "_PROBES", {"cupy": [lambda be: calls.append(be) or None]})
    probe._cupy_status.cache_clear()
    try:
        assert probe._cupy_status(0) == (True, "")
        assert len(calls) == 1 and calls[0].dtype_name == "float32"
        probe._PROBES["cupy"].append(lambda be: "anyrnn's CUDA kernel failed: boom")
        probe._cupy_status.cache_clear()
        assert probe._cupy_status(0) == (False, "anyrnn's CUDA kernel failed: boom")
        assert probe._cupy_status(3)[1].startswith("there is no GPU 3")
        fake.asarray = lambda a: (np.asarray(a) * 0).view(FakeArray)  # a broken matmul
        probe._PROBES["cupy"] = []
        probe._cupy_status.cache_clear()
        assert "wrong numbers" in probe._cupy_status(0)[1]
    finally:
        probe._cupy_status.cache_clear()


def test_every_computing_call_runs_under_the_objects_device(monkeypatch):
    """CuPy launches on the *current* device, so each call that computes must make the
    object's device current: forward, infer, backward of layers and wrappers, and the
    optimizers' updates all go through ``Backend.run``."""
    entered = []
    real_run = anyrnn.Backend.run

    def recording_run(self, fn, *args, **kwargs):
        entered.append(getattr(fn, "__name__", "?"))
        return real_run(self, fn, *args, **kwargs)

    monkeypatch.setattr(anyrnn.Backend, "run", recording_run)
    X = np.ones((2, 4, 3))
    rnn = anyrnn.GRU(3, 5, return_sequences=True)
    stack = anyrnn.Stacked([anyrnn.Bidirectional(anyrnn.LSTM(3, 2, return_sequences=True))])
    dense = anyrnn.Dense(3, 2)
    calls = [
        lambda: rnn.forward(X),
        lambda: rnn.infer(X),
        lambda: rnn.backward(np.ones((2, 4, 5))),
        lambda: stack.forward(X),
        lambda: stack.infer(X),
        lambda: stack.backward(np.ones((2, 4, 4))),
        lambda: dense.forward(X),
        lambda: dense.infer(X),
        lambda: dense.backward(np.ones((2, 4, 2))),
        lambda: anyrnn.optimizers.Adam(0.01, clip_norm=1.0).step([rnn, dense]),
    ]
    for k, call in enumerate(calls):
        entered.clear()
        call()
        assert entered, f"call {k} computed outside Backend.run"
