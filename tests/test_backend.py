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
