"""SimpleRNN: the seed example, BPTT against finite differences, every backend against
NumPy, and the layer's contract (namespace, device, dtype, repeated backward)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_on_backend, rel_err, tolerance
from gradcheck import max_rel_error, numerical_gradient

import anyrnn

SEED_X = np.array([[[1, 2], [2, 3], [3, 4]]]) / 100
SEED_WX = np.array([[1, 3, 5, 7], [3, 5, 7, 8]]) / 100
SEED_WH = np.array([[1, 3, 5, 7], [2, 4, 6, 8], [3, 5, 7, 8], [4, 6, 8, 10]]) / 100
SEED_H = np.array([[0.79494228, 0.81839002, 0.83939649, 0.85584174]])


def seed_reference() -> np.ndarray:
    """Seed 004's loop, transcribed: the expected value is computed, not pasted."""
    h = np.zeros((1, 4))
    for t in range(3):
        h = np.tanh(SEED_X[:, t, :] @ SEED_WX + h @ SEED_WH + np.array([1, 1, 1, 1]))
    return h


def test_seed_reference_matches_published_numbers():
    np.testing.assert_allclose(seed_reference(), SEED_H, atol=5e-9)


def test_seed_example_every_backend(backend, dtype):
    rnn = anyrnn.SimpleRNN(2, 4, backend=backend.name, device=backend.device, dtype=dtype)
    rnn.W_x = SEED_WX
    rnn.W_h = SEED_WH
    rnn.B = np.array([1, 1, 1, 1])
    h = rnn.forward(SEED_X)
    assert_on_backend(h, rnn)
    atol = 5e-9 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(anyrnn.to_numpy(h), SEED_H, atol=atol)
    np.testing.assert_allclose(anyrnn.to_numpy(h), seed_reference(), rtol=tolerance(dtype))


# ----------------------------------------------------------------------------- gradients

B_, T_, I_, H_ = 3, 4, 3, 5


def _problem(seed=0, return_sequences=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(B_, T_, I_))
    h0 = rng.normal(size=(B_, H_)) * 0.5
    d_out = rng.normal(size=(B_, T_, H_) if return_sequences else (B_, H_))
    return X, h0, d_out


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("with_h0", [False, True])
def test_bptt_matches_finite_differences(activation, return_sequences, with_h0):
    X, h0, d_out = _problem(1, return_sequences)
    h0 = h0 if with_h0 else None
    rnn = anyrnn.SimpleRNN(
        I_,
        H_,
        activation=activation,
        return_sequences=return_sequences,
        dtype="float64",
        random_state=3,
    )
    # Scale weights up so that relu units are active and tanh is non-linear.
    rnn.W_h = rnn.W_h * 0.9
    rnn.B = np.linspace(-0.3, 0.6, H_)
    rnn.forward(X, h0)
    dX = rnn.backward(d_out)
    params = {k: np.array(v) for k, v in rnn.params.items()}

    def loss(**over):
        probe = anyrnn.SimpleRNN(
            I_, H_, activation=activation, return_sequences=return_sequences, dtype="float64"
        )
        probe.set_params_from({**params, **{k: v for k, v in over.items() if k in params}})
        out = probe.forward(over.get("X", X), over.get("h0", h0))
        return float(np.sum(out * d_out))

    for name in ("W_x", "W_h", "B"):
        num = numerical_gradient(lambda v, n=name: loss(**{n: v}), params[name])
        assert max_rel_error(rnn.grads[name], num) < 1e-7, name
    assert max_rel_error(dX, numerical_gradient(lambda v: loss(X=v), X)) < 1e-7
    if with_h0:
        assert max_rel_error(rnn.dh0, numerical_gradient(lambda v: loss(h0=v), h0)) < 1e-7
    else:
        # dh0 is still the gradient with respect to the (zero) initial state
        num = numerical_gradient(lambda v: loss(h0=v), np.zeros((B_, H_)))
        assert max_rel_error(rnn.dh0, num) < 1e-7


def test_gradient_attributes_match_grads_dict():
    X, h0, d_out = _problem(2)
    rnn = anyrnn.SimpleRNN(I_, H_, dtype="float64", random_state=0)
    assert rnn.dW_x is None and rnn.grads == {} and rnn.dh0 is None
    rnn.forward(X, h0)
    rnn.backward(d_out)
    assert set(rnn.grads) == set(rnn.params) == {"W_x", "W_h", "B"}
    assert (
        rnn.dW_x is rnn.grads["W_x"] and rnn.dW_h is rnn.grads["W_h"] and rnn.dB is rnn.grads["B"]
    )
    for name, g in rnn.grads.items():
        assert g.shape == rnn.params[name].shape


def test_repeated_backward_is_identical():
    X, h0, d_out = _problem(3)
    rnn = anyrnn.SimpleRNN(I_, H_, dtype="float64", random_state=0)
    rnn.forward(X, h0)
    first = [rnn.backward(d_out)] + [rnn.grads[k] for k in ("W_x", "W_h", "B")]
    for _ in range(4):
        again = [rnn.backward(d_out)] + [rnn.grads[k] for k in ("W_x", "W_h", "B")]
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a, b)


def test_backward_uses_weights_of_its_forward_pass():
    X, h0, d_out = _problem(4)
    rnn = anyrnn.SimpleRNN(I_, H_, dtype="float64", random_state=0)
    rnn.forward(X, h0)
    expected = rnn.backward(d_out)
    rnn.W_h = rnn.W_h * 2  # changing a weight after forward must not change this backward
    np.testing.assert_array_equal(rnn.backward(d_out), expected)


def test_update_is_plain_gradient_step():
    X, h0, d_out = _problem(5)
    rnn = anyrnn.SimpleRNN(I_, H_, dtype="float64", random_state=0)
    before = {k: np.array(v) for k, v in rnn.params.items()}
    rnn.forward(X, h0)
    rnn.backward(d_out)
    rnn.update(0.1)
    for k in before:
        np.testing.assert_allclose(rnn.params[k], before[k] - 0.1 * rnn.grads[k])


def test_update_before_backward_raises():
    rnn = anyrnn.SimpleRNN(2, 3)
    with pytest.raises(RuntimeError, match="backward"):
        rnn.update(0.1)


def test_nan_in_X_propagates():
    X, h0, _ = _problem(6)
    X[1, 2, 0] = np.nan
    rnn = anyrnn.SimpleRNN(I_, H_, dtype="float64", random_state=0)
    out = rnn.forward(X)
    assert np.all(np.isnan(out[1])) and np.all(np.isfinite(out[[0, 2]]))


# ----------------------------------------------------------------------------- backends


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_every_backend_matches_numpy(backend, dtype, return_sequences, activation):
    X, h0, d_out = _problem(7, return_sequences)
    kw = dict(
        activation=activation, return_sequences=return_sequences, dtype=dtype, random_state=11
    )
    ref = anyrnn.SimpleRNN(I_, H_, **kw)
    rnn = anyrnn.SimpleRNN(I_, H_, backend=backend.name, device=backend.device, **kw)
    for name in ref.params:  # same seed: bit-identical initial weights
        np.testing.assert_array_equal(anyrnn.to_numpy(rnn.params[name]), ref.params[name])
        assert_on_backend(rnn.params[name], rnn)
    out_ref, out = ref.forward(X, h0), rnn.forward(X, h0)
    dX_ref, dX = ref.backward(d_out), rnn.backward(d_out)
    tol = tolerance(dtype)
    assert rel_err(out, out_ref) <= tol
    assert rel_err(dX, dX_ref) <= tol
    assert rel_err(rnn.dh0, ref.dh0) <= tol
    for name in ref.grads:
        assert rel_err(rnn.grads[name], ref.grads[name]) <= tol, name
    for arr in [out, dX, rnn.dh0, *rnn.grads.values()]:
        assert_on_backend(arr, rnn)


def test_inputs_of_the_layers_own_library_are_accepted(backend):
    rnn = anyrnn.SimpleRNN(I_, H_, backend=backend.name, device=backend.device, random_state=0)
    X, _, _ = _problem(8)
    native = anyrnn.to_backend(X, backend.name, device=backend.device)
    out_native = rnn.forward(native)
    out_numpy = rnn.forward(X)
    out_list = rnn.forward(X.tolist())
    np.testing.assert_array_equal(anyrnn.to_numpy(out_native), anyrnn.to_numpy(out_numpy))
    np.testing.assert_array_equal(anyrnn.to_numpy(out_list), anyrnn.to_numpy(out_numpy))
    assert_on_backend(out_native, rnn)


def test_seed_002_layer_script_runs_on_core_layer():
    """Seed 002's SimpleRNN experiment, with the seeds' calls, on the core layer."""
    rnn = anyrnn.SimpleRNN(2, 4, dtype="float64")
    rnn.W_x = SEED_WX.copy()
    rnn.W_h = SEED_WH.copy()
    rnn.B = np.array([1, 1, 1, 1]).copy()
    h = np.zeros((1, 4))
    output = rnn.forward(SEED_X, h)
    assert np.allclose(output, SEED_H, rtol=1e-5, atol=1e-5)
