"""Training building blocks, hardened (issue 11, items 6-8).

* A layer can appear only once in a container or an optimizer step.
* NumPy masked arrays are refused wherever an array goes in (their mask would be lost).
* Optimizer steps are all or nothing; ``update``/optimizer hyper-parameters are checked
  (NaN, inf, negative, out of range), NumPy scalars and ``np.True_`` are accepted.
* Losses check target shapes and label ranges, with expected vs received.

Each failing call leaves every object it was given unchanged (``fingerprint``).
"""

from __future__ import annotations

import numpy as np
import pytest
from _state import fingerprint

import anyrnn
from anyrnn import losses
from anyrnn.train.optimizers import SGD, AdaGrad, Adam, Momentum, RMSProp, make_optimizer

X = np.random.default_rng(0).normal(size=(2, 5, 4))


def _trained(layer, X=X):
    out = layer.forward(X)
    layer.backward(np.ones_like(out))
    return layer


# ----------------------------------------------------------------------------- item 6: sharing


def _shared_cases():
    a = anyrnn.GRU(4, 4, return_sequences=True, random_state=0)
    b = anyrnn.LSTM(4, 4, return_sequences=True, random_state=1)
    bi = anyrnn.Bidirectional(a, "sum", random_state=2)
    return [
        ("Stacked([l, l])", lambda: anyrnn.Stacked([a, a]), ["layer 0", "layer 1"]),
        ("Stacked([l, m, l])", lambda: anyrnn.Stacked([a, b, a]), ["layer 0", "layer 2"]),
        ("Stacked([bi, bi])", lambda: anyrnn.Stacked([bi, bi]), ["forward direction"]),
        (
            "Stacked([bi, its own forward layer])",
            lambda: anyrnn.Stacked([bi, a]),
            ["layer 0 (forward direction)", "layer 1"],
        ),
        (
            "Stacked([bi, its backward layer])",
            lambda: anyrnn.Stacked([bi, b, bi.backward_layer]),
            ["backward direction", "layer 2"],
        ),
    ], [a, b, bi]


@pytest.mark.parametrize("k", range(5))
def test_a_layer_twice_in_a_container_is_refused(k):
    cases, parts = _shared_cases()
    name, build, words = cases[k]
    before = [fingerprint(p) for p in parts]
    with pytest.raises(ValueError) as info:
        build()
    for w in words + ["same", "only once"]:
        assert w in str(info.value), (name, w, str(info.value))
    assert [fingerprint(p) for p in parts] == before


def test_two_layers_with_the_same_weights_are_fine():
    a = anyrnn.GRU(4, 4, return_sequences=True, random_state=0)
    twin = anyrnn.GRU(4, 4, return_sequences=True, random_state=0)
    st = anyrnn.Stacked([a, twin])
    out = st.forward(X)
    assert st.backward(np.ones_like(out)).shape == X.shape


def test_optimizer_refuses_a_layer_listed_twice():
    a = _trained(anyrnn.SimpleRNN(4, 3, random_state=0))
    st = _trained(
        anyrnn.Stacked([anyrnn.GRU(4, 4, return_sequences=True, random_state=1), anyrnn.LSTM(4, 2)])
    )
    for name in ("sgd", "adam"):
        opt = make_optimizer(name, 0.1)
        for layers in ([a, a], [st, st[1]], [st, a, st]):
            before = [fingerprint(x) for x in (a, st, opt)]
            with pytest.raises(ValueError, match="twice"):
                opt.step(layers)
            assert [fingerprint(x) for x in (a, st, opt)] == before


# ----------------------------------------------------------------------------- item 6: masked arrays


MASKED = np.ma.masked_array(X, mask=np.zeros_like(X, dtype=bool))


@pytest.mark.parametrize(
    "name, call",
    [
        ("forward X", lambda r: r.forward(MASKED)),
        ("infer X", lambda r: r.infer(MASKED)),
        ("h0", lambda r: r.forward(X, np.ma.masked_array(np.zeros((2, 3))))),
        ("mask", lambda r: r.forward(X, mask=np.ma.masked_array(np.ones((2, 5), bool)))),
        ("lengths", lambda r: r.forward(X, lengths=np.ma.masked_array([5, 3]))),
        ("d_out", lambda r: r.backward(np.ma.masked_array(np.ones((2, 3))))),
        ("parameter", lambda r: setattr(r, "W_x", np.ma.masked_array(np.zeros((4, 3))))),
    ],
)
def test_masked_arrays_are_refused_not_silently_unmasked(name, call):
    rnn = _trained(anyrnn.SimpleRNN(4, 3, random_state=0))
    before = fingerprint(rnn)
    with pytest.raises(TypeError, match="masked array") as info:
        call(rnn)
    assert "mask=" in str(info.value) or "mask" in str(info.value)
    assert fingerprint(rnn) == before


def test_masked_arrays_elsewhere():
    with pytest.raises(TypeError, match="masked"):
        anyrnn.to_numpy(MASKED)
    with pytest.raises(TypeError, match="masked"):
        anyrnn.Dense(4, 2).forward(MASKED)
    clf = anyrnn.RNNClassifier(n_nodes=3, epochs=1, random_state=0)
    with pytest.raises(TypeError, match="masked"):
        clf.fit(MASKED, [0, 1])
    assert not hasattr(clf, "network_")
    # what the message suggests works
    rnn = anyrnn.SimpleRNN(4, 3, random_state=0)
    np.testing.assert_array_equal(rnn.infer(MASKED.filled(0)), rnn.infer(X))


# ----------------------------------------------------------------------------- item 7: steps


def test_an_optimizer_step_is_all_or_nothing():
    """A failing layer late in the list: no earlier layer moved, no state or count."""
    a = _trained(anyrnn.Dense(3, 2, random_state=0), np.ones((4, 3)))
    b = _trained(anyrnn.Dense(2, 5, random_state=1), np.ones((4, 2)))
    c = _trained(anyrnn.Dense(3, 2, random_state=2), np.ones((4, 3)))
    for name in ("sgd", "momentum", "adagrad", "rmsprop", "adam"):
        opt = make_optimizer(name, 0.1, clip_norm=1.0)
        opt.step([a, b])  # the state now holds a's shapes at 0 and b's at 1
        before = [fingerprint(x) for x in (a, b, c, opt)]
        if name != "sgd":  # SGD keeps no state, so swapping positions is harmless
            with pytest.raises(ValueError, match="same layers in the same order"):
                opt.step([a, c, b])  # position 1 now holds c, whose W is (3, 2) not (2, 5)
            assert [fingerprint(x) for x in (a, b, c, opt)] == before
        # a gradient that does not fit its parameter, in the last layer
        good = b._grads["W"]
        b._grads["W"] = np.zeros((5, 2))
        with pytest.raises(ValueError, match=r"\(2, 5\)"):
            opt.step([a, b])
        b._grads["W"] = good
        assert [fingerprint(x) for x in (a, b, c, opt)] == before


def test_a_gradient_of_another_library_or_dtype_is_refused():
    a = _trained(anyrnn.Dense(3, 2, dtype="float64", random_state=0), np.ones((4, 3)))
    before = fingerprint(a)
    a._grads["B"] = a._grads["B"].astype(np.float32)
    with pytest.raises(ValueError, match="float64"):
        SGD(0.1).step([a])
    with pytest.raises(ValueError, match="float64"):
        a.update(0.1)
    a._grads["B"] = a._grads["B"].astype(np.float64)
    assert fingerprint(a) == before


def test_clip_norm_over_two_backends_is_refused():
    a = _trained(anyrnn.Dense(3, 2, dtype="float64"), np.ones((4, 3)))
    b = _trained(anyrnn.Dense(3, 2, dtype="float32"), np.ones((4, 3)))
    opt = SGD(0.1, clip_norm=1.0)
    before = [fingerprint(x) for x in (a, b, opt)]
    with pytest.raises(ValueError, match="one backend"):
        opt.step([a, b])
    assert [fingerprint(x) for x in (a, b, opt)] == before
    SGD(0.1).step([a, b])  # without a global norm, mixing is fine


def test_step_without_a_list():
    a = _trained(anyrnn.Dense(3, 2), np.ones((4, 3)))
    SGD(0.1).step(a)  # one layer on its own is fine
    with pytest.raises(TypeError, match="list of layers"):
        SGD(0.1).step(3)
    with pytest.raises(TypeError, match="item 1"):
        SGD(0.1).step([a, "b"])


BAD_LR = [float("nan"), float("inf"), -float("inf"), -1, 0, -1e-9, "0.1", None, True, np.nan]


@pytest.mark.parametrize("lr", BAD_LR, ids=repr)
def test_update_refuses_a_bad_lr(lr):
    rnn = _trained(anyrnn.SimpleRNN(4, 3, random_state=0))
    before = fingerprint(rnn)
    with pytest.raises(ValueError, match="lr"):
        rnn.update(lr)
    assert fingerprint(rnn) == before


@pytest.mark.parametrize("lr", BAD_LR, ids=repr)
def test_optimizers_refuse_a_bad_lr(lr):
    for cls in (SGD, Momentum, AdaGrad, RMSProp, Adam):
        with pytest.raises(ValueError, match="lr"):
            cls(lr)
    opt = Adam(0.1)
    with pytest.raises(ValueError, match="lr"):
        opt.lr = lr  # also when set later
    assert opt.lr == 0.1


def test_update_before_backward():
    rnn = anyrnn.SimpleRNN(4, 3)
    before = fingerprint(rnn)
    with pytest.raises(RuntimeError, match="backward"):
        rnn.update(0.1)
    assert fingerprint(rnn) == before


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: Adam(eps=-1), ["eps", "-1"]),
        (lambda: Adam(eps=0), ["eps", "0"]),
        (lambda: Adam(eps=float("nan")), ["eps", "nan"]),
        (lambda: Adam(beta1=1.0), ["beta1", "1.0"]),
        (lambda: Adam(beta2=-0.1), ["beta2", "-0.1"]),
        (lambda: Adam(beta1="0.9"), ["beta1", "'0.9'"]),
        (lambda: RMSProp(rho=1), ["rho", "1"]),
        (lambda: RMSProp(eps=float("inf")), ["eps", "inf"]),
        (lambda: AdaGrad(eps=-1e-7), ["eps"]),
        (lambda: Momentum(momentum=1.5), ["momentum", "1.5"]),
        (lambda: Momentum(momentum=float("nan")), ["momentum", "nan"]),
        (lambda: SGD(0.1, clip_norm=0), ["clip_norm", "0"]),
        (lambda: SGD(0.1, clip_norm=float("inf")), ["clip_norm", "inf"]),
        (lambda: SGD(0.1, clip_norm=-1), ["clip_norm", "-1"]),
        (lambda: make_optimizer("adamw", 0.1), ["optimizer", "adamw", "adam"]),
        (lambda: make_optimizer(3, 0.1), ["optimizer", "3"]),
    ],
)
def test_optimizer_hyperparameters_are_checked(make, words):
    with pytest.raises(ValueError) as info:
        make()
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_numpy_scalars_and_bools_are_accepted_everywhere():
    layer = _trained(anyrnn.Dense(np.int64(3), np.int32(2), random_state=0), np.ones((4, 3)))
    layer.update(np.float32(0.01))
    for opt in (
        SGD(np.float32(0.01), clip_norm=np.float64(1.0)),
        Momentum(np.float64(0.01), momentum=np.float32(0.5)),
        AdaGrad(np.float16(0.01), eps=np.float64(1e-7)),
        RMSProp(np.float32(0.01), rho=np.float32(0.9), eps=np.float32(1e-7)),
        Adam(np.int64(1), beta1=np.float32(0.9), beta2=np.float64(0.99), eps=np.float32(1e-8)),
        make_optimizer(np.str_("ADAM"), np.float32(0.01), np.float32(2.0)),
    ):
        opt.step([layer])
        assert type(opt.lr) is float
    rnn = anyrnn.GRU(
        np.int64(4),
        np.int32(3),
        reset_after=np.False_,
        return_sequences=np.True_,
        go_backwards=np.False_,
    )
    assert rnn.reset_after is False and rnn.return_sequences is True
    assert rnn.get_config()["reset_after"] is False
    st = anyrnn.Stacked([rnn, anyrnn.LSTM(3, 2)], dropout=np.float32(0.25))
    assert type(st.dropout) is float
    bi = anyrnn.Bidirectional(anyrnn.SimpleRNN(4, 2), np.str_("sum"))
    assert bi.infer(X).shape == (2, 2)
    rnn.forward(X, lengths=np.array([5, 3], dtype=np.int16))


# ----------------------------------------------------------------------------- item 8: losses

Z = np.random.default_rng(1).normal(size=(4, 3))
LOSS_CASES = [
    (
        "label too big",
        lambda: losses.softmax_cross_entropy(Z, np.array([0, 1, 2, 3])),
        ValueError,
        ["[0, 2]", "[0.0, 3.0]"],
    ),
    (
        "label negative",
        lambda: losses.softmax_cross_entropy(Z, np.array([0, -1, 2, 1])),
        ValueError,
        ["[0, 2]", "-1"],
    ),
    (
        "labels float",
        lambda: losses.softmax_cross_entropy(Z, np.array([0.0, 1.0, 2.0, 1.0])),
        TypeError,
        ["integer", "float64"],
    ),
    (
        "labels too few",
        lambda: losses.softmax_cross_entropy(Z, np.array([0, 1, 2])),
        ValueError,
        ["(4,)", "(3,)"],
    ),
    (
        "one-hot too wide",
        lambda: losses.softmax_cross_entropy(Z, np.eye(4)),
        ValueError,
        ["(4, 3)", "(4, 4)"],
    ),
    (
        "one-hot out of range",
        lambda: losses.softmax_cross_entropy(Z, 2 * np.eye(4, 3)),
        ValueError,
        ["[0, 1]", "2.0"],
    ),
    (
        "logits 1-D",
        lambda: losses.softmax_cross_entropy(Z[:, 0], np.array([0, 1, 2, 1])),
        ValueError,
        ["2-D", "(4,)"],
    ),
    (
        "logits 3-D",
        lambda: losses.softmax_cross_entropy(Z[None], np.array([0])),
        ValueError,
        ["2-D", "(1, 4, 3)"],
    ),
    (
        "logits int",
        lambda: losses.softmax_cross_entropy(np.ones((4, 3), int), np.array([0, 1, 2, 1])),
        TypeError,
        ["floating", "int64"],
    ),
    (
        "empty batch",
        lambda: losses.softmax_cross_entropy(np.ones((0, 3)), np.zeros(0, int)),
        ValueError,
        ["at least one sample", "(0, 3)"],
    ),
    (
        "BCE (4,1) vs (4,)",
        lambda: losses.sigmoid_binary_cross_entropy(Z[:, :1], np.array([0.0, 1.0, 1.0, 0.0])),
        ValueError,
        ["(4, 1)", "(4,)", "broadcast"],
    ),
    (
        "BCE target 2",
        lambda: losses.sigmoid_binary_cross_entropy(Z[:, :1], np.array([[0.0], [2.0], [1], [0]])),
        ValueError,
        ["[0, 1]", "2.0"],
    ),
    (
        "BCE target -1",
        lambda: losses.sigmoid_binary_cross_entropy(Z, -np.ones((4, 3))),
        ValueError,
        ["[0, 1]", "-1.0"],
    ),
    (
        "MSE (4,1) vs (4,)",
        lambda: losses.mean_squared_error(Z[:, :1], np.zeros(4)),
        ValueError,
        ["(4, 1)", "(4,)"],
    ),
    (
        "MSE (4,3) vs (3,)",
        lambda: losses.mean_squared_error(Z, np.zeros(3)),
        ValueError,
        ["(4, 3)", "(3,)"],
    ),
    (
        "MSE 0-D",
        lambda: losses.mean_squared_error(np.float64(1.0) + np.zeros(()), np.zeros(())),
        ValueError,
        ["at least one sample", "()"],
    ),
    (
        "MSE y strings",
        lambda: losses.mean_squared_error(Z, np.full((4, 3), "a")),
        TypeError,
        ["y"],
    ),
    ("MSE y a list", lambda: losses.mean_squared_error(Z, Z.tolist()), TypeError, ["one array"]),
]


@pytest.mark.parametrize("case", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_losses_check_targets(case):
    _, call, exc, words = case
    with pytest.raises(exc) as info:
        call()
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_losses_refuse_mixed_libraries():
    torch = pytest.importorskip("torch", reason="torch not installed")
    with pytest.raises(TypeError, match="one array library"):
        losses.mean_squared_error(torch.zeros((4, 1)), np.zeros((4, 1)))


def test_check_values_false_skips_only_the_value_check():
    labels = np.array([0, 1, 2, 1])
    ref = losses.softmax_cross_entropy(Z, labels)
    got = losses.softmax_cross_entropy(Z, labels, check_values=False)
    np.testing.assert_array_equal(got[1], ref[1])
    with pytest.raises(ValueError, match="broadcast"):  # shapes are still checked
        losses.sigmoid_binary_cross_entropy(Z[:, :1], np.zeros(4), check_values=False)


def test_bool_targets_on_every_backend(backend):
    b = anyrnn.resolve_backend(backend.name, backend.device, "float64")
    z = b.from_host(Z[:, :2])
    y = b.from_host(np.eye(4, 2) > 0, dtype=b.xp.bool)
    ref = losses.sigmoid_binary_cross_entropy(Z[:, :2], np.eye(4, 2))
    got = losses.sigmoid_binary_cross_entropy(z, y)
    np.testing.assert_allclose(anyrnn.to_numpy(got[1]), ref[1], rtol=1e-12)
    losses.softmax_cross_entropy(z, y)  # bool rows are probabilities in [0, 1]


def test_mse_gradient_keeps_the_prediction_dtype():
    pred = Z.astype(np.float32)
    loss, grad = losses.mean_squared_error(pred, Z)  # float64 targets
    assert grad.dtype == np.float32 and loss.dtype == np.float32
    assert losses.mean_squared_error(pred, np.ones((4, 3), int))[1].dtype == np.float32


def test_fingerprint_sees_what_matters():
    """The helper itself: a forward/backward/step changes it, infer and predict do not."""
    rnn = anyrnn.LSTM(4, 3, random_state=0)
    start = fingerprint(rnn)
    rnn.infer(X)
    assert fingerprint(rnn) == start
    rnn.forward(X)
    after_forward = fingerprint(rnn)
    assert after_forward != start
    rnn.backward(np.ones((2, 3)))
    assert fingerprint(rnn) not in (start, after_forward)
    before = fingerprint(rnn)
    rnn.update(0.1)
    assert fingerprint(rnn) != before
    clf = anyrnn.RNNClassifier(n_nodes=3, epochs=1, random_state=0).fit(X, [0, 1])
    fitted = fingerprint(clf)
    clf.predict(X)
    assert fingerprint(clf) == fitted
    clf.classes_ = np.array([1, 0])
    assert fingerprint(clf) != fitted
