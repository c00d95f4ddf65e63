"""Every engine gives the generic engine's numbers: one test body over every registered
cell and cell option, every engine and kernel flavour, both dtypes, every output option,
and step counts that hit the reverse loop's chunk edges."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
from conftest import rel_err
from cxx_kernels import CXX, CxxFactory
from hypothesis import given, settings
from hypothesis import strategies as st

import anyrnn
from anyrnn import engine
from anyrnn.backend import _status
from anyrnn.cells import CELLS as CELL_CLASSES
from anyrnn.engine import loops
from anyrnn.engine.codegen import numba_available
from anyrnn.engine.inplace import InplaceEngine
from anyrnn.layers.recurrent import CELLS


def _variants(inplace: bool) -> list:
    """(layer class, cell options) for every registered cell and option choice whose cell
    has (or, with ``inplace=False``, has not) an in-place form."""
    assert set(CELLS) == set(CELL_CLASSES), "every registered cell needs a layer class"
    out = []
    for name, cls in CELLS.items():
        keys = sorted(cls.cell_options)
        for values in itertools.product(*(cls.cell_options[k] for k in keys)):
            kw = dict(zip(keys, values))
            if (cls(1, 1, **kw)._cell.forward_program is not None) == inplace:
                label = "-".join([name] + [f"{k}={v}" for k, v in kw.items()])
                out.append(pytest.param(cls, kw, id=label))
    return out


VARIANTS = _variants(inplace=True)
OPTIONS = {
    "last": {},
    "sequences": {"return_sequences": True},
    "go_backwards": {"go_backwards": True, "return_sequences": True},
    "return_state": {"return_state": True, "return_sequences": True},
    "state_only": {"return_state": True},
}
#: the in-place engine's flavours: (backend, how its steps run)
FLAVOURS = [
    pytest.param(
        ("numpy", "loop"),
        id="loop",
        marks=pytest.mark.skipif(
            loops.unavailable("float64") is not None, reason="no compiled loops here"
        ),
    ),
    pytest.param(
        ("numpy", "numba"),
        id="numba",
        marks=pytest.mark.skipif(not numba_available(), reason="Numba is not installed"),
    ),
    pytest.param(("numpy", "numpy-calls"), id="numpy-calls"),
    pytest.param(
        ("numpy", "cuda-on-cpu"),
        id="cuda-on-cpu",
        marks=pytest.mark.skipif(CXX is None, reason="no C++ compiler to build the CUDA kernels"),
    ),
    pytest.param(
        ("cupy", "cuda"),
        id="cuda",
        marks=pytest.mark.skipif(not _status("cupy")[0], reason="CuPy needs a usable GPU here"),
    ),
]


@pytest.fixture(scope="module")
def cxx_factory(tmp_path_factory):
    return CxxFactory(tmp_path_factory.mktemp("kernels"))


@pytest.fixture(params=FLAVOURS)
def flavour(request, monkeypatch, cxx_factory):
    """The backend to build layers on, with the in-place engine running its steps as one
    compiled time loop, Numba kernels per step, NumPy calls, the CUDA kernels built as C++
    (over NumPy arrays), or CuPy."""
    backend, how = request.param
    if how == "cuda-on-cpu":
        monkeypatch.setattr(engine, "INPLACE", InplaceEngine(cuda=cxx_factory))
    else:
        monkeypatch.setattr(engine.INPLACE, "use_numba", how in ("loop", "numba"))
        monkeypatch.setattr(engine.INPLACE, "compiled_loops", how == "loop")
    return backend


def _pair(cls, kw, backend, dtype, options, seed=0):
    """The same layer twice (nonzero biases, so a mixed-up gate block shows): on the
    in-place engine when it can run it, and on the generic engine."""
    rng = np.random.default_rng(seed)
    fast = cls(3, 5, backend=backend, dtype=dtype, random_state=seed, **kw, **options)
    generic = cls(
        3, 5, backend=backend, dtype=dtype, random_state=seed, fast_path=False, **kw, **options
    )
    for name in fast.params:
        if name.startswith("B"):
            value = rng.uniform(-1, 1, size=tuple(fast.params[name].shape))
            setattr(fast, name, value)
            setattr(generic, name, value)
    return fast, generic


def _run(layer, X, init, d_outs):
    out = layer.forward(X, *init)
    outs = out if isinstance(out, tuple) else (out,)
    dX = layer.backward(*d_outs)
    result = {f"out{k}": o for k, o in enumerate(outs)}
    result["dX"] = dX
    result.update({f"d{n}": g for n, g in layer.grads.items()})
    result.update({f"d{n}0": layer._d_state0[k] for k, n in enumerate(layer.state_names)})
    return result


@pytest.mark.parametrize("cls, kw", VARIANTS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("options", list(OPTIONS.values()), ids=list(OPTIONS))
@pytest.mark.parametrize("n_steps", [1, 7, 20])  # one step; one chunk; chunks 8, 8, 4
def test_every_engine_equals_the_generic_engine(flavour, cls, kw, dtype, options, n_steps):
    fast, generic = _pair(cls, kw, flavour, dtype, options)
    rng = np.random.default_rng(6)
    X = rng.normal(size=(4, n_steps, 3))
    X.flags.writeable = False  # a write into the caller's array would fail here
    init = [rng.normal(size=(4, 5)) for _ in fast.state_names]
    out_shape = (4, n_steps, 5) if options.get("return_sequences") else (4, 5)
    d_outs = [rng.normal(size=out_shape)]
    if options.get("return_state"):
        d_outs += [rng.normal(size=(4, 5)) for _ in fast.state_names]
    got, ref = _run(fast, X, init, d_outs), _run(generic, X, init, d_outs)
    assert fast._tape.engine is engine.INPLACE and generic._tape.engine.name == "generic"
    tol = 1e-12 if dtype == "float64" else 2e-6
    for key in ref:
        assert rel_err(got[key], ref[key]) <= tol, key


@pytest.mark.parametrize("cls, kw", _variants(inplace=False))
def test_cells_without_an_inplace_form_run_generic(cls, kw):
    """auto falls back to the generic engine; fast_path=True says why it cannot."""
    assert cls(3, 5, **kw).engine_for() == "generic"
    with pytest.raises(engine.FastPathError, match="has no in-place form"):
        cls(3, 5, fast_path=True, **kw).forward(np.ones((2, 4, 3)))


def test_masks_and_all_states_take_the_generic_engine():
    layer = anyrnn.SimpleRNN(3, 5, return_sequences=True, dtype="float64")
    assert layer.engine_for() == "inplace" and layer.engine_for(masked=True) == "generic"
    layer.forward(np.ones((2, 3, 3)), mask=np.array([[1, 1, 0], [1, 1, 1]], bool))
    assert layer._tape.engine.name == "generic"
    layer.fast_path = True
    with pytest.raises(engine.FastPathError, match="a mask was given"):
        layer.forward(np.ones((2, 3, 3)), mask=np.array([[1, 1, 0], [1, 1, 1]], bool))
    all_states = anyrnn.LSTM(3, 5, return_all_states=True, fast_path=True)
    with pytest.raises(engine.FastPathError, match="return_all_states"):
        all_states.forward(np.ones((2, 3, 3)))


@pytest.mark.parametrize("backend", ["torch", "array_api_strict"])
def test_other_backends_run_generic_and_refuse_fast_path_true(backend):
    if not _status(backend)[0]:
        pytest.skip(f"{backend} is not installed")
    assert anyrnn.GRU(3, 4, backend=backend).engine_for() == "generic"
    assert anyrnn.GRU(3, 4, backend=backend, fast_path=False).engine_for() == "generic"
    with pytest.raises(engine.FastPathError, match=f"backend is {backend}.*backend is {backend}"):
        anyrnn.GRU(3, 4, backend=backend, fast_path=True).forward(np.ones((2, 3, 3)))


def test_fast_path_true_on_jax_is_the_jitted_engine():
    if not _status("jax")[0]:
        pytest.skip("jax is not installed")
    layer = anyrnn.GRU(3, 4, backend="jax", fast_path=True)
    assert layer.engine_for() == "jax-jit" and layer.engine_for(masked=True) == "jax-jit"
    layer.forward(np.ones((2, 3, 3)))
    assert layer._tape.engine.name == "jax-jit"
    assert anyrnn.GRU(3, 4, backend="jax", fast_path=False).engine_for() == "generic"


@pytest.mark.parametrize("value", ["yes", 1, None, 2.0])
def test_fast_path_values_are_checked(value):
    with pytest.raises(ValueError, match="fast_path must be one of"):
        anyrnn.LSTM(3, 4, fast_path=value)
    layer = anyrnn.LSTM(3, 4)
    with pytest.raises(ValueError, match="fast_path"):
        layer.fast_path = value
    assert layer.fast_path == "auto"
    assert anyrnn.LSTM(3, 4, fast_path=np.False_).fast_path is False


@pytest.mark.parametrize("cls", list(CELLS.values()))
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


@pytest.mark.parametrize("cls", list(CELLS.values()))
@pytest.mark.parametrize("fast_path", ["auto", False])
def test_the_tape_never_keeps_the_callers_input(cls, fast_path):
    """With a batch of one, X's time-major layout is X itself: it must still be copied."""
    layer = cls(3, 5, return_sequences=True, dtype="float64", random_state=0, fast_path=fast_path)
    X = np.random.default_rng(4).normal(size=(1, 6, 3))
    layer.forward(X)
    expected = {k: np.array(v) for k, v in [("dX", layer.backward(np.ones((1, 6, 5))))]}
    expected.update({k: np.array(v) for k, v in layer.grads.items()})
    layer.forward(X)
    X[...] = 7.0  # the caller reuses its buffer between forward and backward
    got = {"dX": layer.backward(np.ones((1, 6, 5))), **layer.grads}
    for k, v in expected.items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)


def test_infer_between_forward_and_backward_changes_nothing():
    for cls in CELLS.values():
        layer = cls(3, 5, return_sequences=True, dtype="float64", random_state=0)
        X = np.random.default_rng(4).normal(size=(2, 4, 3))
        layer.forward(X)
        expected = layer.backward(np.ones((2, 4, 5)))
        layer.forward(X)
        layer.infer(X * 3)  # reuses the scratch buffers, must not touch the tape
        np.testing.assert_array_equal(layer.backward(np.ones((2, 4, 5))), expected)


def test_switching_engines_between_forward_and_backward_is_safe():
    """backward runs on the engine its forward ran on, whatever fast_path says now."""
    rnn = anyrnn.SimpleRNN(3, 5, dtype="float64", random_state=0)
    X = np.random.default_rng(5).normal(size=(2, 4, 3))
    rnn.forward(X)
    expected = rnn.backward(np.ones((2, 5)))
    rnn.forward(X)
    rnn.fast_path = False
    np.testing.assert_array_equal(rnn.backward(np.ones((2, 5))), expected)


def test_pickle_drops_the_pass_but_keeps_the_model():
    rnn = anyrnn.SimpleRNN(3, 5, random_state=0)
    X = np.ones((2, 4, 3))
    out = rnn.forward(X)
    clone = pickle.loads(pickle.dumps(rnn))
    assert clone._tape is None and clone._workspace.get() == {}
    np.testing.assert_array_equal(clone.forward(X), out)
    with pytest.raises(RuntimeError, match="before forward"):
        pickle.loads(pickle.dumps(rnn)).backward(np.ones((2, 5)))


@settings(max_examples=30, deadline=None)
@given(
    cls=st.sampled_from(list(CELLS.values())),
    batch=st.integers(1, 5),
    n_steps=st.integers(1, 30),
    n_features=st.integers(1, 4),
    n_nodes=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_inplace_equals_generic_for_any_shape(cls, batch, n_steps, n_features, n_nodes, seed):
    """Chunk boundaries, one-row batches, one-unit layers: the in-place engine still gives
    the generic engine's numbers."""
    rng = np.random.default_rng(seed)
    kw = dict(return_sequences=True, dtype="float64", random_state=seed)
    fast = cls(n_features, n_nodes, **kw)
    generic = cls(n_features, n_nodes, fast_path=False, **kw)
    X = rng.normal(size=(batch, n_steps, n_features))
    d = rng.normal(size=(batch, n_steps, n_nodes))
    np.testing.assert_allclose(fast.forward(X), generic.forward(X), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(fast.backward(d), generic.backward(d), rtol=1e-11, atol=1e-12)
    for k in generic.grads:
        np.testing.assert_allclose(fast.grads[k], generic.grads[k], rtol=1e-11, atol=1e-12)
    assert fast._tape.engine.name == "inplace"


def test_the_numpy_workspace_changes_no_bit():
    """The generic engine writes its transient stacks into reused buffers on NumPy only:
    array-api-strict (NumPy underneath, no workspace) must give identical bits."""
    if not _status("array_api_strict")[0]:
        pytest.skip("array-api-strict is not installed")
    rng = np.random.default_rng(2)
    X = rng.normal(size=(4, 7, 3))
    d = rng.normal(size=(4, 7, 5))
    results = []
    for backend in ("numpy", "array_api_strict"):
        layer = anyrnn.GRU(
            3,
            5,
            reset_after=False,
            return_sequences=True,
            dtype="float64",
            random_state=0,
            backend=backend,
        )
        out = layer.forward(X)
        dX = layer.backward(d)
        results.append([anyrnn.to_numpy(a) for a in (out, dX, *layer.grads.values())])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_a_cell_whose_d_u_differs_from_d_a_must_say_so():
    """The generic engine stacks d_a once when the cell says d_u is d_a (has_u() False); a
    cell that returns another d_u anyway would get a silently wrong W_h gradient."""
    layer = anyrnn.SimpleRNN(2, 3, dtype="float64", random_state=0, fast_path=False)
    cell = layer._cell
    original = type(cell).step_backward

    def step_backward(self, q, cache, carries, dy, *, xp):
        d_a, _, new = original(self, q, cache, carries, dy, xp=xp)
        return d_a, 2 * d_a, new

    cell.__class__ = type("SeparateU", (type(cell),), {"step_backward": step_backward})
    out = layer.forward(np.ones((2, 4, 2)))
    with pytest.raises(TypeError, match="has_u"):
        layer.backward(np.ones(out.shape))
