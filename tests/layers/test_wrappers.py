"""Stacked and Bidirectional: gradients, masks, dropout, backends."""

from __future__ import annotations

import numpy as np
import pytest
from cases import B_, H_, I_, LEFT, RIGHT, X0
from cases import make as _make
from conftest import rel_err
from gradcheck import max_rel_error, numerical_gradient

import anyrnn


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
def test_bidirectional_masked_rows_equal_each_sequence_alone(merge_mode):
    bi = anyrnn.Bidirectional(
        _make("gru-reset_after=True", return_sequences=True), merge_mode, random_state=3
    )
    X = X0.copy()
    X[~RIGHT] = np.nan
    out = bi.forward(X, mask=RIGHT)
    assert np.all(np.isfinite(out)) and np.all(out[~RIGHT] == 0)
    for i in range(B_):
        real = RIGHT[i]
        alone = bi.infer(X0[i : i + 1, real])
        np.testing.assert_allclose(out[i, real], alone[0], rtol=1e-13, atol=1e-15)
    # the backward direction starts at each row's own last real step: its output at the
    # last real step has seen only that step
    fwd_only = anyrnn.GRU(I_, H_, dtype="float64", return_sequences=True)
    fwd_only.set_params_from(bi.backward_layer.params)
    i, last = 1, 2
    seen = fwd_only.forward(X0[i : i + 1, last : last + 1])[0, 0]
    if merge_mode == "concat":
        np.testing.assert_allclose(out[i, last, H_:], seen, rtol=1e-13)


# ----------------------------------------------------------------------------- containers


def _container_gradcheck(make, X=X0, mask=None):
    obj = make()
    out = obj.forward(X, mask=mask)
    d_out = np.random.default_rng(4).normal(size=out.shape)
    dX = obj.backward(d_out)
    params = {k: np.array(v) for k, v in obj.params.items()}

    def loss(name=None, value=None, x=X):
        probe = make()
        for k, layer in probe._named():
            sub = {n: params[f"{k}.{n}"] for n in layer.params}
            if isinstance(layer, anyrnn.Bidirectional):
                for kk, inner in layer._named():
                    inner.set_params_from({n: params[f"{k}.{kk}.{n}"] for n in inner.params})
            else:
                layer.set_params_from(sub)
        if name is not None:
            target, pname = name.rsplit(".", 1)
            holder = probe
            for part in target.split("."):
                holder = dict(holder._named())[part]
            holder.set_params_from({pname: value})
        return float(np.sum(probe.infer(x, mask=mask) * d_out))

    for name in params:
        num = numerical_gradient(lambda v, n=name: loss(n, v), params[name])
        assert max_rel_error(obj.grads[name], num) < 1e-7, name
    assert max_rel_error(dX, numerical_gradient(lambda v: loss(x=v), X)) < 1e-7


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_gradients(merge_mode, return_sequences):
    _container_gradcheck(
        lambda: anyrnn.Bidirectional(
            _make("lstm", return_sequences=return_sequences), merge_mode, random_state=1
        ),
        mask=RIGHT,
    )


def test_stacked_gradients():
    def make():
        return anyrnn.Stacked(
            [
                _make("gru-reset_after=True", return_sequences=True),
                anyrnn.Bidirectional(
                    anyrnn.LSTM(H_, 2, dtype="float64", return_sequences=True, random_state=4),
                    random_state=5,
                ),
                anyrnn.SimpleRNN(4, 2, dtype="float64", random_state=6),
            ]
        )

    _container_gradcheck(make, mask=LEFT)


def test_stacked_dropout_only_in_forward_and_its_backward_matches():
    def make(p):
        top = anyrnn.SimpleRNN(H_, 2, dtype="float64", random_state=1)
        return anyrnn.Stacked(
            [_make("gru-reset_after=True", return_sequences=True), top], dropout=p, random_state=0
        )

    st = make(0.5)
    out = st.forward(X0)
    assert not np.allclose(out, st.infer(X0))  # dropout is on in forward
    np.testing.assert_array_equal(st.infer(X0), make(0.0).infer(X0))  # and off in infer
    d = np.ones_like(out)
    dX = st.backward(d)
    # the same pass by hand: layer 0, the recorded mask, layer 1
    l0, l1 = st[0], st[1]
    h = l0.forward(X0) * st._keeps[0]
    l1.forward(h)
    manual = l0.backward(l1.backward(d) * st._keeps[0])
    np.testing.assert_allclose(dX, manual, rtol=1e-14)


def test_optimizer_updates_every_layer_of_a_container():
    top = anyrnn.LSTM(H_, 2, dtype="float64", random_state=1)
    st = anyrnn.Stacked(
        [
            _make("gru-reset_after=True", return_sequences=True),
            anyrnn.Bidirectional(top, random_state=0),
        ]
    )
    before = {k: np.array(v) for k, v in st.params.items()}
    out = st.forward(X0)
    st.backward(np.ones_like(out))
    anyrnn.optimizers.SGD(0.1).step([st])
    for k, v in st.params.items():
        np.testing.assert_allclose(v, before[k] - 0.1 * st.grads[k])


def test_bidirectional_stacked_on_every_backend(backend):
    def make(**b):
        return anyrnn.Stacked(
            [
                anyrnn.Bidirectional(
                    anyrnn.LSTM(
                        I_, H_, return_sequences=True, dtype="float64", random_state=1, **b
                    ),
                    random_state=2,
                ),
                anyrnn.GRU(2 * H_, H_, dtype="float64", random_state=3, **b),
            ]
        )

    ref, obj = make(), make(backend=backend.name, device=backend.device)
    out = obj.forward(X0, mask=RIGHT)
    assert rel_err(out, ref.forward(X0, mask=RIGHT)) <= 1e-12
    d = np.ones((B_, H_))
    assert rel_err(obj.backward(d), ref.backward(d)) <= 1e-12
    for k in ref.grads:
        assert rel_err(obj.grads[k], ref.grads[k]) <= 1e-12


def test_dense_never_keeps_the_callers_input():
    """Changing X between forward and backward must not change the gradients."""
    dense = anyrnn.Dense(3, 2, dtype="float64", random_state=0)
    X = np.random.default_rng(0).normal(size=(4, 3))
    dense.forward(X)
    dense.backward(np.ones((4, 2)))
    expected = {k: np.array(v) for k, v in dense.grads.items()}
    dense.forward(X)
    X[...] = 5.0
    dense.backward(np.ones((4, 2)))
    for k, v in expected.items():
        np.testing.assert_array_equal(dense.grads[k], v, err_msg=k)
