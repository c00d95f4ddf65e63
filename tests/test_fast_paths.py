"""Backend-specific fast paths give the generic Array API path's results."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
from conftest import rel_err
from hypothesis import given, settings
from hypothesis import strategies as st

import anyrnn
from anyrnn.backend import _status
from anyrnn.engine import compile as _fused
from anyrnn.engine import inplace as _inplace

BACKENDS = [
    "numpy",
    pytest.param(
        "cupy",
        marks=pytest.mark.skipif(
            not _status("cupy")[0], reason="CuPy's fast path needs a usable GPU"
        ),
    ),
]


@pytest.fixture(params=["fused", "out-ops"])
def fused(request, monkeypatch):
    """Run the in-place path with fused kernels (Numba on NumPy, ElementwiseKernel on
    CuPy) and with ``out=`` calls of NumPy or CuPy."""
    if request.param == "fused":
        if _fused.load() is None:
            pytest.skip("Numba is not installed (pip install anyrnn[fast])")
        return True
    monkeypatch.setattr(_fused, "load", lambda: None)
    monkeypatch.setattr(_fused, "load_cupy", lambda: None)
    return False


def _check_kernel(layer, fused):
    assert isinstance(layer._tape, _inplace.Tape)  # the fast path really ran
    assert (layer._tape.kernel.fused is not None) == fused


def _pair(cls, backend, dtype, **kw):
    fast = cls(3, 5, backend=backend, dtype=dtype, random_state=0, **kw)
    generic = cls(3, 5, backend=backend, dtype=dtype, random_state=0, **kw)
    generic.use_fast_path = False
    return fast, generic


def _compare(fast, generic, X, d_out, tol, **fw):
    out_f, out_g = fast.forward(X, **fw), generic.forward(X, **fw)
    outs_f = out_f if isinstance(out_f, tuple) else (out_f,)
    outs_g = out_g if isinstance(out_g, tuple) else (out_g,)
    for a, b in zip(outs_f, outs_g):
        assert rel_err(a, b) <= tol
    d = d_out(outs_f[0].shape)
    assert rel_err(fast.backward(d), generic.backward(d)) <= tol
    assert rel_err(fast.dh0, generic.dh0) <= tol
    for k in generic.grads:
        assert rel_err(fast.grads[k], generic.grads[k]) <= tol, k


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"return_sequences": True},
        {"go_backwards": True, "return_sequences": True},
        {"return_state": True},
    ],
    ids=["last", "sequences", "go_backwards", "return_state"],
)
def test_inplace_simple_rnn_equals_generic(backend, dtype, activation, options, fused):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4, 7, 3))
    h0 = rng.normal(size=(4, 5))
    fast, generic = _pair(anyrnn.SimpleRNN, backend, dtype, activation=activation, **options)
    tol = 1e-12 if dtype == "float64" else 1e-5
    _compare(fast, generic, X, lambda s: rng.normal(size=s), tol, h0=h0)
    _check_kernel(fast, fused)
    assert not isinstance(generic._tape, _inplace.Tape)


def test_numpy_workspace_is_bit_identical_on_the_generic_scan():
    """GRU with reset_after=False has no in-place kernel: the scan reuses NumPy buffers."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(4, 7, 3))
    fast, generic = _pair(anyrnn.GRU, "numpy", "float64", return_sequences=True, reset_after=False)
    _compare(fast, generic, X, lambda s: np.ones(s), 0.0)
    assert fast._workspace and not generic._workspace
    assert not isinstance(fast._tape, _inplace.Tape)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cls", [anyrnn.LSTM, anyrnn.GRU], ids=["lstm", "gru"])
@pytest.mark.parametrize("n_steps", [1, 7, 20])  # one chunk; chunks of 1 step; uneven chunks
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"return_sequences": True},
        {"go_backwards": True, "return_sequences": True},
        {"return_state": True, "return_sequences": True},
    ],
    ids=["last", "sequences", "go_backwards", "return_state"],
)
def test_inplace_gated_cells_equal_generic(backend, dtype, cls, n_steps, options, fused):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(4, n_steps, 3))
    fast, generic = _pair(cls, backend, dtype, **options)
    for name in fast.params:  # every bias nonzero, so a mixed-up gate column shows
        if name.startswith("B"):
            value = rng.uniform(-1, 1, size=tuple(fast.params[name].shape))
            setattr(fast, name, value)
            setattr(generic, name, value)
    init = [rng.normal(size=(4, 5)) for _ in fast._cell.state_names]
    tol = 1e-12 if dtype == "float64" else 1e-5
    out_f, out_g = fast.forward(X, *init), generic.forward(X, *init)
    outs_f = out_f if isinstance(out_f, tuple) else (out_f,)
    outs_g = out_g if isinstance(out_g, tuple) else (out_g,)
    for a, b in zip(outs_f, outs_g):
        assert rel_err(a, b) <= tol
    d = rng.normal(size=outs_f[0].shape)
    extra = [rng.normal(size=(4, 5)) for _ in outs_f[1:]]
    assert rel_err(fast.backward(d, *extra), generic.backward(d, *extra)) <= tol
    for name in fast._cell.state_names:
        assert rel_err(getattr(fast, f"d{name}0"), getattr(generic, f"d{name}0")) <= tol
    for k in generic.grads:
        assert rel_err(fast.grads[k], generic.grads[k]) <= tol, k
    _check_kernel(fast, fused)
    assert not isinstance(generic._tape, _inplace.Tape)


def test_masks_and_all_states_take_the_generic_path():
    fast, _ = _pair(anyrnn.SimpleRNN, "numpy", "float64", return_sequences=True)
    fast.forward(np.ones((2, 3, 3)), mask=np.array([[1, 1, 0], [1, 1, 1]], bool))
    assert not isinstance(fast._tape, _inplace.Tape)


@pytest.mark.parametrize("cls", [anyrnn.SimpleRNN, anyrnn.LSTM, anyrnn.GRU])
def test_outputs_cannot_corrupt_the_tape(cls):
    """The sequence output is the kept states (no copy), so NumPy makes it read-only."""
    layer = cls(3, 5, return_sequences=True, return_state=True, dtype="float64", random_state=0)
    X = np.random.default_rng(3).normal(size=(2, 4, 3))
    out, *finals = layer.forward(X)
    expected = layer.backward(np.ones_like(out))
    with pytest.raises(ValueError, match="read-only"):
        out[...] = 1e6  # the user scribbles on the output
    mine = out.copy()
    mine[...] = 1e6  # a copy is the user's to change
    for final in finals:  # final states are copies
        final[...] = 1e6
    np.testing.assert_array_equal(layer.backward(np.ones_like(out)), expected)
    assert layer.infer(X)[0].flags.writeable  # infer keeps nothing: its output is writable


def test_infer_between_forward_and_backward_changes_nothing():
    for cls in (anyrnn.SimpleRNN, anyrnn.LSTM):
        layer = cls(3, 5, return_sequences=True, dtype="float64", random_state=0)
        X = np.random.default_rng(4).normal(size=(2, 4, 3))
        layer.forward(X)
        expected = layer.backward(np.ones((2, 4, 5)))
        layer.forward(X)
        layer.infer(X * 3)  # reuses the scratch buffers, must not touch the tape
        np.testing.assert_array_equal(layer.backward(np.ones((2, 4, 5))), expected)


def test_switching_paths_between_forward_and_backward_is_safe():
    rnn = anyrnn.SimpleRNN(3, 5, dtype="float64", random_state=0)
    X = np.random.default_rng(5).normal(size=(2, 4, 3))
    rnn.forward(X)
    expected = rnn.backward(np.ones((2, 5)))
    rnn.forward(X)
    rnn.use_fast_path = False
    np.testing.assert_array_equal(rnn.backward(np.ones((2, 5))), expected)


def test_pickle_drops_the_pass_but_keeps_the_model():
    rnn = anyrnn.SimpleRNN(3, 5, random_state=0)
    X = np.ones((2, 4, 3))
    out = rnn.forward(X)
    clone = pickle.loads(pickle.dumps(rnn))
    assert clone._tape is None and clone._workspace == {}
    np.testing.assert_array_equal(clone.forward(X), out)
    with pytest.raises(RuntimeError, match="before forward"):
        pickle.loads(pickle.dumps(rnn)).backward(np.ones((2, 5)))


def test_without_numba_the_fused_kernels_are_absent(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba now raises ImportError
    assert _fused.load.__wrapped__() is None


@settings(max_examples=40, deadline=None)
@given(
    cls=st.sampled_from([anyrnn.SimpleRNN, anyrnn.LSTM, anyrnn.GRU]),
    batch=st.integers(1, 5),
    n_steps=st.integers(1, 30),
    n_features=st.integers(1, 4),
    n_nodes=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_inplace_equals_generic_for_any_shape(cls, batch, n_steps, n_features, n_nodes, seed):
    """Chunk boundaries, one-row batches, one-unit layers: the fused in-place path (or
    its out= calls without Numba) still gives the generic scan's numbers."""
    rng = np.random.default_rng(seed)
    fast = cls(n_features, n_nodes, return_sequences=True, dtype="float64", random_state=seed)
    generic = cls(n_features, n_nodes, return_sequences=True, dtype="float64", random_state=seed)
    generic.use_fast_path = False
    X = rng.normal(size=(batch, n_steps, n_features))
    d = rng.normal(size=(batch, n_steps, n_nodes))
    np.testing.assert_allclose(fast.forward(X), generic.forward(X), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(fast.backward(d), generic.backward(d), rtol=1e-11, atol=1e-12)
    for k in generic.grads:
        np.testing.assert_allclose(fast.grads[k], generic.grads[k], rtol=1e-11, atol=1e-12)
    assert isinstance(fast._tape, _inplace.Tape)
