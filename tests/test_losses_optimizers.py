"""Losses (values, gradients, hostile logits), optimizers, and the Dense layer."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from conftest import assert_on_backend, rel_err, tolerance
from gradcheck import max_rel_error, numerical_gradient

import anyrnn
from anyrnn import losses
from anyrnn.train.optimizers import OPTIMIZERS, make_optimizer

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(5, 4)) * 2
LABELS = np.array([0, 3, 1, 1, 2])
ONEHOT = np.eye(4)[LABELS]


def _reference_ce(z, labels):
    """Plain NumPy (z is moderate here, so the naive form is exact enough)."""
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return -np.mean(np.log(p[np.arange(len(labels)), labels]))


def test_softmax_cross_entropy_value_and_gradient():
    loss, d = losses.softmax_cross_entropy(LOGITS, LABELS)
    assert math.isclose(float(loss), _reference_ce(LOGITS, LABELS), rel_tol=1e-12)
    num = numerical_gradient(lambda z: float(losses.softmax_cross_entropy(z, LABELS)[0]), LOGITS)
    assert max_rel_error(d, num) < 1e-7
    loss1, d1 = losses.softmax_cross_entropy(LOGITS, ONEHOT)  # one-hot gives the same
    assert math.isclose(float(loss1), float(loss), rel_tol=1e-14)
    np.testing.assert_allclose(d1, d, rtol=1e-14)


def test_sigmoid_bce_value_and_gradient():
    z = LOGITS[:, :1]
    y = (LABELS[:, None] % 2).astype(float)
    loss, d = losses.sigmoid_binary_cross_entropy(z, y)
    p = 1 / (1 + np.exp(-z))
    ref = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)) * 1  # mean over samples, 1 output
    assert math.isclose(float(loss), ref, rel_tol=1e-12)
    num = numerical_gradient(lambda v: float(losses.sigmoid_binary_cross_entropy(v, y)[0]), z)
    assert max_rel_error(d, num) < 1e-7


def test_mse_value_and_gradient():
    y = RNG.normal(size=LOGITS.shape)
    loss, d = losses.mean_squared_error(LOGITS, y)
    assert math.isclose(float(loss), np.sum((LOGITS - y) ** 2) / LOGITS.shape[0], rel_tol=1e-12)
    num = numerical_gradient(lambda v: float(losses.mean_squared_error(v, y)[0]), LOGITS)
    assert max_rel_error(d, num) < 1e-7


@pytest.mark.parametrize("value", [88.0, 710.0, 1e4, np.inf])
@pytest.mark.parametrize("np_dtype", [np.float32, np.float64])
def test_hostile_logits_give_limits_without_warnings(value, np_dtype):
    z = np.array([[value, -value], [-value, value], [0.0, value]], dtype=np_dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        p = losses.softmax(z, axis=1)
        ce, d_ce = losses.softmax_cross_entropy(z, np.array([0, 1, 0]))
        s = losses.sigmoid(z[:, :1])
        bce, d_bce = losses.sigmoid_binary_cross_entropy(z[:, :1], np.array([[1.0], [0.0], [0.0]]))
        ls = losses.log_softmax(z, axis=1)
    np.testing.assert_allclose(p[:2], [[1, 0], [0, 1]], atol=1e-30)
    assert p.dtype == np_dtype and s.dtype == np_dtype and ce.dtype == np_dtype
    # rows 0 and 1 are right with certainty (loss 0); row 2 puts its label at -value
    assert float(ce) == pytest.approx(float(np.float64(np_dtype(value))) / 3, rel=1e-6)
    np.testing.assert_allclose(s[:, 0], [1, 0, 0.5], atol=1e-30)
    assert float(bce) == pytest.approx(math.log(2) / 3, rel=1e-6)
    assert np.all(np.isfinite(d_ce)) and np.all(np.isfinite(d_bce))
    assert np.all(ls <= 0)


def test_losses_on_every_backend(backend, dtype):
    b = anyrnn.resolve_backend(backend.name, backend.device, dtype)
    z = b.from_host(LOGITS)
    labels = b.from_host(LABELS, dtype=b.int_dtype)
    for fn, target in [
        (losses.softmax_cross_entropy, labels),
        (losses.softmax_cross_entropy, b.from_host(ONEHOT)),
        (losses.sigmoid_binary_cross_entropy, b.from_host((LABELS[:, None] % 2) * np.ones((1, 4)))),
        (losses.mean_squared_error, b.from_host(ONEHOT)),
    ]:
        loss, d = fn(z, target)
        ref_loss, ref_d = fn(LOGITS.astype(dtype), anyrnn.to_numpy(target))
        assert rel_err(loss, ref_loss) <= tolerance(dtype) * 10
        assert rel_err(d, ref_d) <= tolerance(dtype) * 10
        assert b.owns(d) and d.dtype == b.dtype


# ----------------------------------------------------------------------------- optimizers


def _quadratic_layer(backend="numpy", device=None, dtype="float64"):
    layer = anyrnn.Dense(3, 2, backend=backend, device=device, dtype=dtype, random_state=0)
    return layer


def _grad_step(layer):
    """Gradient of Σ (x·W + B)² on a fixed x: pulls W and B towards 0."""
    x = np.ones((4, 3))
    out = layer.forward(x)
    layer.backward(2 * out)
    return float(np.sum(anyrnn.to_numpy(out) ** 2))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_reduces_a_quadratic(name):
    layer = _quadratic_layer()
    opt = make_optimizer(name, 0.01)
    first = _grad_step(layer)
    for _ in range(50):
        opt.step([layer])
        last = _grad_step(layer)
    assert last < first * 0.9, (name, first, last)


def test_sgd_and_adam_match_hand_computation():
    layer = _quadratic_layer()
    w0 = np.array(layer.W)
    _grad_step(layer)
    g = np.array(layer.dW)
    make_optimizer("sgd", 0.1).step([layer])
    np.testing.assert_allclose(layer.W, w0 - 0.1 * g, rtol=1e-15)

    layer = _quadratic_layer()
    _grad_step(layer)
    adam = make_optimizer("adam", 0.1)
    adam.step([layer])
    m, v = 0.1 * g, 0.001 * g * g
    expected = w0 - 0.1 * (m / 0.1) / (np.sqrt(v / 0.001) + 1e-8)
    np.testing.assert_allclose(layer.W, expected, rtol=1e-12)


def test_clip_norm_scales_all_gradients_together():
    layer = _quadratic_layer()
    w0 = {k: np.array(v) for k, v in layer.params.items()}
    _grad_step(layer)
    grads = {k: np.array(v) for k, v in layer.grads.items()}
    norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
    assert norm > 0.5
    make_optimizer("sgd", 1.0, clip_norm=0.5).step([layer])
    for k in w0:
        np.testing.assert_allclose(layer.params[k], w0[k] - grads[k] * 0.5 / norm, rtol=1e-12)
    # a gradient already inside the norm is untouched
    layer = _quadratic_layer()
    _grad_step(layer)
    make_optimizer("sgd", 1.0, clip_norm=1e9).step([layer])
    for k in w0:
        np.testing.assert_allclose(layer.params[k], w0[k] - grads[k], rtol=1e-12)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_state_stays_on_the_backend(backend, name):
    layer = _quadratic_layer(backend.name, backend.device, "float32")
    opt = make_optimizer(name, 0.01, clip_norm=1.0)
    for _ in range(2):
        _grad_step(layer)
        opt.step([layer])
    for p in layer.params.values():
        assert_on_backend(p, layer)
    for state in opt.state.values():
        for s in state if isinstance(state, tuple) else (state,):
            assert_on_backend(s, layer)


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(name="adamw", lr=0.1), ["adamw", "sgd", "adam"]),
        (dict(name="sgd", lr=0.0), ["lr", "0.0"]),
        (dict(name="sgd", lr=float("nan")), ["lr", "nan"]),
        (dict(name="sgd", lr=0.1, clip_norm=-1), ["clip_norm", "-1"]),
    ],
)
def test_bad_optimizer_arguments(kw, words):
    with pytest.raises(ValueError) as info:
        make_optimizer(**kw)
    for w in words:
        assert w in str(info.value)


def test_optimizer_step_before_backward():
    with pytest.raises(RuntimeError, match="backward"):
        make_optimizer("sgd", 0.1).step([_quadratic_layer()])


# ----------------------------------------------------------------------------- Dense


@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 3)])
def test_dense_gradients_match_finite_differences(shape):
    x = RNG.normal(size=shape)
    d_out = RNG.normal(size=shape[:-1] + (2,))
    layer = anyrnn.Dense(3, 2, dtype="float64", random_state=1)
    layer.B = [0.3, -0.2]
    layer.forward(x)
    dx = layer.backward(d_out)
    params = {k: np.array(v) for k, v in layer.params.items()}

    def loss(**over):
        probe = anyrnn.Dense(3, 2, dtype="float64")
        probe.set_params_from({**params, **{k: v for k, v in over.items() if k in params}})
        return float(np.sum(probe.forward(over.get("x", x)) * d_out))

    for name in params:
        num = numerical_gradient(lambda v, n=name: loss(**{n: v}), params[name])
        assert max_rel_error(layer.grads[name], num) < 1e-7
    assert max_rel_error(dx, numerical_gradient(lambda v: loss(x=v), x)) < 1e-7


def test_dense_every_backend_matches_numpy(backend, dtype):
    x = RNG.normal(size=(2, 5, 3))
    d_out = RNG.normal(size=(2, 5, 2))
    ref = anyrnn.Dense(3, 2, dtype=dtype, random_state=4)
    layer = anyrnn.Dense(
        3, 2, backend=backend.name, device=backend.device, dtype=dtype, random_state=4
    )
    out = layer.forward(x)
    assert rel_err(out, ref.forward(x)) <= tolerance(dtype)
    assert rel_err(layer.backward(d_out), ref.backward(d_out)) <= tolerance(dtype)
    for k in ref.grads:
        assert rel_err(layer.grads[k], ref.grads[k]) <= tolerance(dtype)
        assert_on_backend(layer.grads[k], layer)


@pytest.mark.parametrize(
    "call, exc, words",
    [
        (lambda d: d.forward(np.ones(3)), ValueError, ["2-D", "1-D"]),
        (lambda d: d.forward(np.ones((4, 5))), ValueError, ["5 features", "built for 3"]),
        (lambda d: d.backward(np.ones((4, 3))), ValueError, ["(4, 2)", "(4, 3)"]),
        (lambda d: setattr(d, "W", np.ones((2, 3))), ValueError, ["(3, 2)", "(2, 3)"]),
        (lambda d: anyrnn.Dense(0, 2), ValueError, ["n_in", "0"]),
    ],
)
def test_dense_bad_input(call, exc, words):
    layer = anyrnn.Dense(3, 2, dtype="float64", random_state=0)
    layer.forward(np.ones((4, 3)))
    before = {k: np.array(v) for k, v in layer.params.items()}
    with pytest.raises(exc) as info:
        call(layer)
    for w in words:
        assert w in str(info.value)
    for k, v in before.items():
        np.testing.assert_array_equal(layer.params[k], v)


def test_dense_backward_before_forward():
    with pytest.raises(RuntimeError, match="before forward"):
        anyrnn.Dense(3, 2).backward(np.ones((1, 2)))
