"""JAX runs the generic engine traced by ``jax.jit`` (``jax.lax.scan`` loops): the eager
engine's numbers, one trace per cell kind, and eager when a step cannot be traced."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import rel_err

import anyrnn
from anyrnn import engine
from anyrnn.backend import _status
from anyrnn.engine import jaxjit
from anyrnn.layers.recurrent import CELLS

pytestmark = pytest.mark.skipif(not _status("jax")[0], reason="JAX is not installed")

VARIANTS = [
    (cls, kw)
    for cls in CELLS.values()
    for kw in ([{"reset_after": True}, {"reset_after": False}] if cls is anyrnn.GRU else [{}])
]


def _run(layer, X, d, mask):
    out, *finals, values = layer.forward(X, mask=mask)
    dX = layer.backward(d)
    got = {"out": out, "dX": dX, **{f"final{k}": f for k, f in enumerate(finals)}}
    got.update({f"value_{k}": v for k, v in values.items()})
    got.update({f"d{k}": g for k, g in layer.grads.items()})
    return {k: anyrnn.to_numpy(v) for k, v in got.items()}, layer._tape.engine.name


@pytest.mark.parametrize("cls, kw", VARIANTS)
def test_jit_gives_the_eager_engines_numbers(cls, kw):
    """Masked, every output: the paths unmasked layers take are a subset (and the
    every-backend tests compare JAX's unmasked layers with NumPy's)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 6, 2))
    d = rng.normal(size=(3, 6, 4))
    mask = np.arange(6) < np.array([[6], [4], [1]])
    opts = dict(return_sequences=True, return_state=True, return_all_states=True, **kw)
    results = {}
    for fast_path in ("auto", False):
        layer = cls(
            2, 4, backend="jax", dtype="float64", random_state=0, fast_path=fast_path, **opts
        )
        results[fast_path] = _run(layer, X, d, mask)
    (jit, jit_engine), (eager, eager_engine) = results["auto"], results[False]
    assert (jit_engine, eager_engine) == ("jax-jit", "generic")
    for key in eager:
        assert rel_err(jit[key], eager[key]) <= 1e-12, key


def test_one_trace_per_cell_kind():
    X = np.ones((2, 5, 3))
    before = len(jaxjit._TRACED)
    for seed in range(3):  # three layers of one kind (an estimator refitting, say)
        layer = anyrnn.LSTM(3, 4, backend="jax", random_state=seed, return_sequences=True)
        layer.forward(X)
        layer.backward(np.ones((2, 5, 4)))
    assert len(jaxjit._TRACED) - before <= 2  # forward and backward


def test_a_step_that_cannot_be_traced_runs_eagerly():
    layer = anyrnn.SimpleRNN(3, 4, backend="jax", dtype="float64", random_state=0)
    cell = layer._cell
    original = type(cell).step

    def step(self, q, a, state, *, xp):
        if float(xp.sum(a)) > 1e300:  # needs a concrete value: fails under jit
            raise AssertionError
        return original(self, q, a, state, xp=xp)

    kind = type("ConcreteCell", (type(cell),), {"step": step})
    cell.__class__ = kind
    X = np.random.default_rng(1).normal(size=(2, 5, 3))
    out = layer.forward(X)
    assert engine.JAX_JIT.eager.get(jaxjit._cell_key(cell), "").endswith("while tracing")
    assert layer.engine_for() == "generic"
    reference = anyrnn.SimpleRNN(3, 4, backend="jax", dtype="float64", random_state=0)
    np.testing.assert_allclose(anyrnn.to_numpy(out), anyrnn.to_numpy(reference.forward(X)))


def test_cells_that_differ_only_in_an_option_get_their_own_trace():
    """A traced function captures the first cell of its key: an option left out of the key
    would give the second cell the first one's numbers. An option that is not a plain
    value (here a NumPy float32 scalar) makes the cell eager."""
    layer = anyrnn.SimpleRNN(3, 4, backend="jax", dtype="float64", random_state=0)
    cell = layer._cell
    kind = type("ScaledCell", (type(cell),), {})
    twin = kind(cell.activation)
    cell.__class__ = kind
    cell.scale, twin.scale = 1.0, 2.0
    assert jaxjit._cell_key(cell) != jaxjit._cell_key(twin)
    twin.scale = np.float32(2.0)
    backend = layer._backend
    why = engine.JAX_JIT.unsupported(twin, backend, masked=False, all_states=False)
    assert why is not None and "not a plain value" in why
    assert engine.JAX_JIT.unsupported(cell, backend, masked=False, all_states=False) is None
