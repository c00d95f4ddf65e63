"""Recurrent layers, every registered cell and option: BPTT against finite differences
(float64), every backend against NumPy, masks, sequence options, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from cases import B_, CELL_KW, H_, I_, LEFT, RIGHT, T_, X0, states
from cases import make as _make
from conftest import assert_on_backend, rel_err, tolerance
from gradcheck import max_rel_error, numerical_gradient

import anyrnn

_states = states


def _check_layer_gradients(
    cell,
    *,
    return_sequences,
    go_backwards=False,
    mask=None,
    with_states=True,
    return_state=False,
    fast_path="auto",
):
    """Every parameter's, X's and the initial states' gradients against central finite
    differences (without given states: against the zero states the layer starts from)."""
    layer = _make(
        cell,
        return_sequences=return_sequences,
        go_backwards=go_backwards,
        return_state=return_state,
        fast_path=fast_path,
    )
    given = _states(layer) if with_states else {}
    zeros = {f"{n}0": np.zeros((B_, H_)) for n in layer.state_names}
    states = given or zeros
    out = layer.forward(X0, **given, mask=mask)
    outs = out if isinstance(out, tuple) else (out,)
    rng = np.random.default_rng(9)
    d_outs = [rng.normal(size=o.shape) for o in outs]
    if return_state:
        dX = layer.backward(d_outs[0], *d_outs[1:])
    else:
        dX = layer.backward(d_outs[0])
    params = {k: np.array(v) for k, v in layer.params.items()}

    def loss(**over):
        probe = _make(
            cell,
            return_sequences=return_sequences,
            go_backwards=go_backwards,
            return_state=return_state,
        )
        probe.set_params_from({**params, **{k: v for k, v in over.items() if k in params}})
        kw = {k: over.get(k, v) for k, v in states.items()}  # the same values, passed
        res = probe.forward(over.get("X", X0), **kw, mask=mask)
        res = res if isinstance(res, tuple) else (res,)
        return float(sum(np.sum(r * d) for r, d in zip(res, d_outs)))

    for name in params:
        num = numerical_gradient(lambda v, n=name: loss(**{n: v}), params[name])
        assert max_rel_error(layer.grads[name], num) < 1e-7, name
    assert max_rel_error(dX, numerical_gradient(lambda v: loss(X=v), X0)) < 1e-7
    for k, n in enumerate(layer.state_names):
        num = numerical_gradient(lambda v, s=f"{n}0": loss(**{s: v}), states[f"{n}0"])
        assert max_rel_error(layer._d_state0[k], num) < 1e-7, f"d{n}0"
    return layer, dX


@pytest.mark.parametrize("cell", list(CELL_KW))
@pytest.mark.parametrize(
    "return_sequences, with_states, fast_path",
    [(False, True, "auto"), (True, True, "auto"), (True, False, "auto"), (True, True, False)],
    ids=["last", "sequences", "zero-states", "generic-engine"],
)
def test_bptt_matches_finite_differences(cell, return_sequences, with_states, fast_path):
    _check_layer_gradients(
        cell, return_sequences=return_sequences, with_states=with_states, fast_path=fast_path
    )


@pytest.mark.parametrize("cell", list(CELL_KW))
@pytest.mark.parametrize("mask", [RIGHT, LEFT], ids=["right-padded", "left-padded"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_bptt_with_masks_and_go_backwards(cell, mask, go_backwards):
    layer, dX = _check_layer_gradients(
        cell, return_sequences=True, go_backwards=go_backwards, mask=mask
    )
    assert np.all(dX[~mask] == 0), "gradients at padded positions are exactly zero"


@pytest.mark.parametrize("cell", ["lstm", "gru-reset_after=True", "simple-activation=tanh"])
def test_bptt_with_return_state(cell):
    _check_layer_gradients(cell, return_sequences=True, return_state=True)
    _check_layer_gradients(cell, return_sequences=False, return_state=True, with_states=False)


def test_lstm_forget_bias_starts_at_one():
    lstm = anyrnn.LSTM(2, 4, random_state=0)
    np.testing.assert_array_equal(lstm.B, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    assert lstm.W_x.shape == (2, 16) and lstm.W_h.shape == (4, 16)
    gru = anyrnn.GRU(2, 4)
    assert set(gru.params) == {"W_x", "W_h", "B", "B_h"}
    assert set(anyrnn.GRU(2, 4, reset_after=False).params) == {"W_x", "W_h", "B"}


# ----------------------------------------------------------------------------- masks


@pytest.mark.parametrize("cell", list(CELL_KW))
@pytest.mark.parametrize("mask", [RIGHT, LEFT], ids=["right-padded", "left-padded"])
def test_masked_batch_equals_each_sequence_alone(cell, mask):
    layer = _make(cell, return_sequences=True)
    X = X0.copy()
    X[~mask] = np.nan  # padding that holds NaN must not leak
    out = layer.forward(X, mask=mask)
    d_out = np.random.default_rng(1).normal(size=out.shape)
    d_out[~mask] = np.inf  # nor may an inf gradient on a padded output
    dX = layer.backward(d_out)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(dX))
    assert np.all(out[~mask] == 0) and np.all(dX[~mask] == 0)
    for g in layer.grads.values():
        assert np.all(np.isfinite(g))
    for i in range(B_):
        real = mask[i]
        alone = _make(cell, return_sequences=True)
        out_i = alone.forward(X0[i : i + 1, real])
        np.testing.assert_allclose(out[i, real], out_i[0], rtol=1e-13, atol=1e-15)
        d_i = alone.backward(d_out[i : i + 1, real])
        np.testing.assert_allclose(dX[i, real], d_i[0], rtol=1e-12, atol=1e-15)
    last = _make(cell).forward(X, mask=mask)  # final state = state at the last real step
    for i in range(B_):
        np.testing.assert_allclose(
            last[i], _make(cell).forward(X0[i : i + 1, mask[i]])[0], rtol=1e-13
        )


def test_lengths_is_right_padding():
    layer = _make("lstm", return_sequences=True)
    a = layer.forward(X0, lengths=[5, 3, 1])
    b = layer.forward(X0, mask=RIGHT)
    np.testing.assert_array_equal(a, b)


def test_full_mask_equals_no_mask():
    layer = _make("gru-reset_after=True", return_sequences=True)
    np.testing.assert_array_equal(
        layer.forward(X0, mask=np.ones((B_, T_), bool)), layer.forward(X0)
    )


# ----------------------------------------------------------------------------- options


@pytest.mark.parametrize("cell", list(CELL_KW))
def test_go_backwards_is_forward_on_the_reversed_sequence(cell):
    back = _make(cell, return_sequences=True, go_backwards=True)
    fwd = _make(cell, return_sequences=True)
    np.testing.assert_array_equal(back.forward(X0), fwd.forward(X0[:, ::-1]))


@pytest.mark.parametrize("cell", ["lstm", "gru-reset_after=True", "simple-activation=tanh"])
def test_return_state_and_all_states_come_from_the_same_pass(cell):
    layer = _make(cell, return_sequences=True, return_state=True, return_all_states=True)
    res = layer.forward(X0, mask=RIGHT)
    out, finals, values = res[0], res[1:-1], res[-1]
    np.testing.assert_array_equal(values["h"], out)
    assert len(finals) == len(layer.state_names)
    for k, n in enumerate(layer.state_names):
        assert values[n].shape == (B_, T_, H_)
        for i in range(B_):  # the final state is the one at each row's last real step
            np.testing.assert_array_equal(finals[k][i], values[n][i, RIGHT[i].sum() - 1])
    gates = {"lstm": "ifgo", "gru-reset_after=True": "rzn", "simple-activation=tanh": ""}[cell]
    for g in gates:
        v = values[g][RIGHT]
        assert v.shape == (RIGHT.sum(), H_)
        lo, hi = (-1, 1) if g in "gn" else (0, 1)
        assert np.all((v >= lo) & (v <= hi))
        assert np.all(values[g][~RIGHT] == 0)
    again = layer.infer(X0, mask=RIGHT)  # infer returns the same, and keeps nothing
    for a, b in zip(again[:-1], res[:-1]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", list(CELL_KW))
@pytest.mark.parametrize("mask", [None, LEFT], ids=["unmasked", "left-padded"])
def test_repeated_backward_is_identical(cell, mask):
    layer = _make(cell, return_sequences=True)
    layer.forward(X0, mask=mask)
    d = np.ones((B_, T_, H_))
    first = layer.backward(d)
    grads = {k: np.array(v) for k, v in layer.grads.items()}
    for _ in range(4):
        np.testing.assert_array_equal(layer.backward(d), first)
        for k, v in layer.grads.items():
            np.testing.assert_array_equal(v, grads[k])


@pytest.mark.parametrize("cell", list(CELL_KW))
def test_gradient_attributes_match_grads_dict(cell):
    layer = _make(cell)
    assert layer.dW_x is None and layer.grads == {} and layer.dh0 is None
    layer.forward(X0, **_states(layer))
    layer.backward(np.ones((B_, H_)))
    assert set(layer.grads) == set(layer.params)
    for name, g in layer.grads.items():
        assert getattr(layer, "d" + name) is g
        assert g.shape == layer.params[name].shape
    for k, n in enumerate(layer.state_names):
        assert getattr(layer, f"d{n}0") is layer._d_state0[k]


@pytest.mark.parametrize("cell", list(CELL_KW))
@pytest.mark.parametrize("fast_path", ["auto", False])
def test_backward_uses_the_weights_of_its_forward_pass(cell, fast_path):
    layer = _make(cell, return_sequences=True, fast_path=fast_path)
    layer.forward(X0)
    d = np.ones((B_, T_, H_))
    expected = layer.backward(d)
    layer.W_h = layer.W_h * 2  # changing a weight after forward must not change this backward
    layer.W_x = layer.W_x * 2
    np.testing.assert_array_equal(layer.backward(d), expected)


@pytest.mark.parametrize("cell", list(CELL_KW))
def test_update_is_a_plain_gradient_step(cell):
    layer = _make(cell)
    before = {k: np.array(v) for k, v in layer.params.items()}
    with pytest.raises(RuntimeError, match="backward"):
        layer.update(0.1)
    layer.forward(X0)
    layer.backward(np.ones((B_, H_)))
    layer.update(0.1)
    for k in before:
        np.testing.assert_allclose(layer.params[k], before[k] - 0.1 * layer.grads[k])


@pytest.mark.parametrize("cell", list(CELL_KW))
def test_nan_in_X_propagates_to_its_row_only(cell):
    X = X0.copy()
    X[1, 2, 0] = np.nan
    out = _make(cell).forward(X)
    assert np.all(np.isnan(out[1])) and np.all(np.isfinite(out[[0, 2]]))


# ----------------------------------------------------------------------------- backends


@pytest.mark.parametrize("cell", list(CELL_KW))
@pytest.mark.parametrize("mask", [None, LEFT], ids=["unmasked", "left-padded"])
def test_every_backend_matches_numpy(backend, dtype, cell, mask):
    cls, extra = CELL_KW[cell]
    kw = dict(return_sequences=True, return_state=True, dtype=dtype, random_state=7, **extra)
    ref = cls(I_, H_, **kw)
    layer = cls(I_, H_, backend=backend.name, device=backend.device, **kw)
    for name in ref.params:
        np.testing.assert_array_equal(anyrnn.to_numpy(layer.params[name]), ref.params[name])
    states = _states(ref)
    d_out = np.random.default_rng(3).normal(size=(B_, T_, H_))
    outs_ref = ref.forward(X0, **states, mask=mask)
    outs = layer.forward(X0, **states, mask=mask)
    dX_ref, dX = ref.backward(d_out), layer.backward(d_out)
    tol = tolerance(dtype)
    for a, b in zip(outs, outs_ref):
        assert rel_err(a, b) <= tol
        assert_on_backend(a, layer)
    assert rel_err(dX, dX_ref) <= tol
    for k in range(len(ref.state_names)):
        assert rel_err(layer._d_state0[k], ref._d_state0[k]) <= tol
    for name in ref.grads:
        assert rel_err(layer.grads[name], ref.grads[name]) <= tol, name
        assert_on_backend(layer.grads[name], layer)


@pytest.mark.parametrize("cell", list(CELL_KW))
def test_inputs_of_the_layers_own_library_are_accepted(backend, cell):
    cls, extra = CELL_KW[cell]
    layer = cls(I_, H_, backend=backend.name, device=backend.device, random_state=0, **extra)
    native = anyrnn.to_backend(X0, backend.name, device=backend.device)
    out_native = layer.forward(native)
    out_numpy = layer.forward(X0)
    out_list = layer.forward(X0.tolist())
    np.testing.assert_array_equal(anyrnn.to_numpy(out_native), anyrnn.to_numpy(out_numpy))
    np.testing.assert_array_equal(anyrnn.to_numpy(out_list), anyrnn.to_numpy(out_numpy))
    assert_on_backend(out_native, layer)


def test_layers_of_every_cell_save_and_load(tmp_path):
    for cell in CELL_KW:
        layer = _make(cell, return_sequences=True, go_backwards=True)
        layer.save(tmp_path / "l.npz")
        again = anyrnn.load(tmp_path / "l.npz")
        assert repr(again) == repr(layer)
        np.testing.assert_array_equal(again.forward(X0), layer.forward(X0))


# ----------------------------------------------------------------------------- bad input


def _lstm():
    layer = _make("lstm", return_sequences=True)
    layer.forward(X0)
    return layer


BAD = [
    (
        "mask wrong shape",
        lambda: _lstm().forward(X0, mask=RIGHT[:, :4]),
        ValueError,
        ["(3, 5)", "(3, 4)"],
    ),
    (
        "mask int dtype",
        lambda: _lstm().forward(X0, mask=RIGHT.astype(int)),
        TypeError,
        ["boolean", "int"],
    ),
    (
        "mask float dtype",
        lambda: _lstm().forward(X0, mask=RIGHT * 1.0),
        TypeError,
        ["boolean", "float64"],
    ),
    (
        "mask row empty",
        lambda: _lstm().forward(X0, mask=np.c_[RIGHT[:2].T, np.zeros(5, bool)].T),
        ValueError,
        ["row 2", "no real step"],
    ),
    (
        "mask hole",
        lambda: _lstm().forward(X0, mask=np.array([[1, 0, 1, 1, 1]] * 3, bool)),
        ValueError,
        ["row 0", "hole", "[1, 0, 1, 1, 1]"],
    ),
    (
        "mask padded both sides",
        lambda: _lstm().forward(X0, mask=np.array([[0, 1, 1, 0, 0]] * 3, bool)),
        None,
        [],
    ),
    (
        "mask and lengths",
        lambda: _lstm().forward(X0, mask=RIGHT, lengths=[5, 3, 1]),
        ValueError,
        ["mask or lengths"],
    ),
    (
        "lengths too long",
        lambda: _lstm().forward(X0, lengths=[6, 3, 1]),
        ValueError,
        ["[1, 5]", "row 0", "6"],
    ),
    ("lengths zero", lambda: _lstm().forward(X0, lengths=[5, 0, 1]), ValueError, ["row 1", "0"]),
    (
        "lengths float",
        lambda: _lstm().forward(X0, lengths=[5.0, 3.0, 1.0]),
        ValueError,
        ["float64"],
    ),
    (
        "lengths wrong count",
        lambda: _lstm().forward(X0, lengths=[5, 3]),
        ValueError,
        ["3 integers", "(2,)"],
    ),
    (
        "c0 wrong shape",
        lambda: _lstm().forward(X0, None, np.ones((3, 4))),
        ValueError,
        ["c0", "(3, 3)", "(3, 4)"],
    ),
    (
        "dh_last without return_state",
        lambda: _lstm().backward(np.ones((3, 5, 3)), np.ones((3, 3))),
        ValueError,
        ["dh_last", "return_state=False"],
    ),
    (
        "unknown merge mode",
        lambda: anyrnn.Bidirectional(_make("gru-reset_after=True"), "max"),
        ValueError,
        ["max", "concat", "ave"],
    ),
    (
        "bidirectional of a Dense",
        lambda: anyrnn.Bidirectional(anyrnn.Dense(2, 3)),
        TypeError,
        ["Dense"],
    ),
    (
        "bidirectional with return_state",
        lambda: anyrnn.Bidirectional(_make("gru-reset_after=True", return_state=True)),
        ValueError,
        ["return_state"],
    ),
    (
        "stack sizes do not chain",
        lambda: anyrnn.Stacked(
            [_make("gru-reset_after=True", return_sequences=True), anyrnn.LSTM(4, 2)]
        ),
        ValueError,
        ["outputs 3", "n_features=4"],
    ),
    (
        "stack needs sequences",
        lambda: anyrnn.Stacked([_make("gru-reset_after=True"), anyrnn.LSTM(3, 2)]),
        ValueError,
        ["return_sequences=True"],
    ),
    ("stack empty", lambda: anyrnn.Stacked([]), ValueError, ["at least one"]),
    ("stack of a Dense", lambda: anyrnn.Stacked([anyrnn.Dense(2, 2)]), TypeError, ["Dense"]),
    (
        "stack dropout 1",
        lambda: anyrnn.Stacked([_make("gru-reset_after=True")], dropout=1.0),
        ValueError,
        ["[0, 1)", "1.0"],
    ),
    (
        "stack mixed backends",
        lambda: anyrnn.Stacked(
            [
                _make("gru-reset_after=True", return_sequences=True),
                anyrnn.LSTM(3, 2, backend="array_api_strict", dtype="float64"),
            ]
        ),
        ValueError,
        ["one backend"],
    ),
    (
        "reset_after not bool",
        lambda: anyrnn.GRU(2, 3, reset_after="yes"),
        ValueError,
        ["reset_after", "'yes'"],
    ),
    (
        "B_h without reset_after",
        lambda: anyrnn.GRU(2, 3, reset_after=False).B_h,
        AttributeError,
        ["reset_after"],
    ),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input(case):
    _, call, exc, words = case
    if exc is None:  # allowed: contiguous real steps with padding on both sides
        call()
        return
    with pytest.raises(exc) as info:
        call()
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_rejected_mask_leaves_layer_unchanged():
    layer = _lstm()
    tape, shape = layer._tape, layer._out_shape
    with pytest.raises(ValueError):
        layer.forward(X0, mask=np.zeros((B_, T_), bool))
    assert layer._tape is tape and layer._out_shape == shape
