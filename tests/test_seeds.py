"""Each seed's script replayed on anyrnn and compared with a straight NumPy transcription
of the seed's own reference code (kept here, unchanged but for formatting)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_on_backend, rel_err, tolerance
from gradcheck import max_rel_error, numerical_gradient

import anyrnn
from anyrnn import scratch

# ----------------------------------------------------------------------------- seed 004

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


def test_seed_002_layer_script_runs_on_core_layer():
    """Seed 002's SimpleRNN experiment, with the seeds' calls, on the core layer."""
    rnn = anyrnn.SimpleRNN(2, 4, dtype="float64")
    rnn.W_x = SEED_WX.copy()
    rnn.W_h = SEED_WH.copy()
    rnn.B = np.array([1, 1, 1, 1]).copy()
    h = np.zeros((1, 4))
    output = rnn.forward(SEED_X, h)
    assert np.allclose(output, SEED_H, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- seed 003


class Seed003SimpleRNN:
    """Seed 003's reference implementation, transcribed."""

    def __init__(self, input_size, hidden_size, output_size):
        self.hidden_size = hidden_size
        self.W_xh = np.random.randn(hidden_size, input_size) * 0.01
        self.W_hh = np.random.randn(hidden_size, hidden_size) * 0.01
        self.W_hy = np.random.randn(output_size, hidden_size) * 0.01
        self.b_h = np.zeros((hidden_size, 1))
        self.b_y = np.zeros((output_size, 1))

    def forward(self, x):
        h = np.zeros((self.hidden_size, 1))
        outputs = []
        self.last_inputs = []
        self.last_hiddens = [h]
        for t in range(len(x)):
            self.last_inputs.append(x[t].reshape(-1, 1))
            h = np.tanh(np.dot(self.W_xh, self.last_inputs[t]) + np.dot(self.W_hh, h) + self.b_h)
            y = np.dot(self.W_hy, h) + self.b_y
            outputs.append(y)
            self.last_hiddens.append(h)
        self.last_outputs = outputs
        return np.array(outputs)

    def backward(self, x, y, learning_rate):
        dW_xh = np.zeros_like(self.W_xh)
        dW_hh = np.zeros_like(self.W_hh)
        dW_hy = np.zeros_like(self.W_hy)
        db_h = np.zeros_like(self.b_h)
        db_y = np.zeros_like(self.b_y)
        dh_next = np.zeros((self.hidden_size, 1))
        for t in reversed(range(len(x))):
            dy = self.last_outputs[t] - y[t].reshape(-1, 1)
            dW_hy += np.dot(dy, self.last_hiddens[t + 1].T)
            db_y += dy
            dh = np.dot(self.W_hy.T, dy) + dh_next
            dh_raw = (1 - self.last_hiddens[t + 1] ** 2) * dh
            dW_xh += np.dot(dh_raw, self.last_inputs[t].T)
            dW_hh += np.dot(dh_raw, self.last_hiddens[t].T)
            db_h += dh_raw
            dh_next = np.dot(self.W_hh.T, dh_raw)
        self.W_xh -= learning_rate * dW_xh
        self.W_hh -= learning_rate * dW_hh
        self.W_hy -= learning_rate * dW_hy
        self.b_h -= learning_rate * db_h
        self.b_y -= learning_rate * db_y


def test_seed_003_reproduced_epoch_after_epoch():
    input_sequence = np.array([[1.0], [2.0], [3.0], [4.0]])
    expected_output = np.array([[2.0], [3.0], [4.0], [5.0]])
    np.random.seed(42)
    ref = Seed003SimpleRNN(input_size=1, hidden_size=5, output_size=1)
    np.random.seed(42)
    rnn = scratch.SimpleRNN(input_size=1, hidden_size=5, output_size=1)
    for name in ("W_xh", "W_hh", "W_hy", "b_h", "b_y"):
        np.testing.assert_array_equal(getattr(rnn, name), getattr(ref, name))
    for _epoch in range(200):
        out_ref = ref.forward(input_sequence)
        out = rnn.forward(input_sequence)
        assert out.shape == out_ref.shape == (4, 1, 1)
        np.testing.assert_allclose(out, out_ref, rtol=1e-12, atol=1e-15)
        ref.backward(input_sequence, expected_output, learning_rate=0.01)
        rnn.backward(input_sequence, expected_output, learning_rate=0.01)
    for name in ("W_xh", "W_hh", "W_hy", "b_h", "b_y"):
        np.testing.assert_allclose(getattr(rnn, name), getattr(ref, name), rtol=1e-11, atol=1e-14)
    # it learned the task, as the seed's does
    final = rnn.forward(input_sequence)[:, :, 0]
    assert np.mean((final - expected_output) ** 2) < np.mean(expected_output**2) * 0.5


def test_seed_003_runs_on_every_backend(backend):
    seq = np.linspace(0, 1, 6)[:, None]
    np.random.seed(7)
    ref = scratch.SimpleRNN(1, 4, 1)
    np.random.seed(7)
    rnn = scratch.SimpleRNN(1, 4, 1, backend=backend.name, device=backend.device)
    for _ in range(3):
        out, out_ref = rnn.forward(seq), ref.forward(seq)
        assert rel_err(out, out_ref) < 1e-12
        rnn.backward(seq, seq + 0.1, 0.05)
        ref.backward(seq, seq + 0.1, 0.05)
    assert rel_err(rnn.W_hh, ref.W_hh) < 1e-12


def test_seed_003_errors():
    rnn = scratch.SimpleRNN(1, 3, 1)
    with pytest.raises(RuntimeError, match="forward"):
        rnn.backward(np.ones((4, 1)), np.ones((4, 1)), 0.1)
    with pytest.raises(ValueError, match=r"\(T, input_size\)"):
        rnn.forward(np.ones((1, 4, 1)))
    rnn.forward(np.ones((4, 1)))
    with pytest.raises(ValueError, match=r"\(4, 1\).*\(3, 1\)"):
        rnn.backward(np.ones((4, 1)), np.ones((3, 1)), 0.1)


# ----------------------------------------------------------------------------- seed "001"


class Seed001Classifier:
    """The assignment notebook's ScratchSimpleRNNClassifier (tanh/relu, MSE), transcribed."""

    def __init__(
        self,
        n_nodes,
        n_features,
        n_output=1,
        activation="tanh",
        lr=0.01,
        batch_size=32,
        epochs=10,
        random_state=None,
    ):
        self.n_nodes, self.activation, self.lr = n_nodes, activation, lr
        self.batch_size, self.epochs = batch_size, epochs
        if random_state is not None:
            np.random.seed(random_state)
        self.W_x = np.random.normal(0, 0.01, (n_features, n_nodes))
        self.W_h = np.random.normal(0, 0.01, (n_nodes, n_nodes))
        self.B = np.zeros(n_nodes)
        self.W_out = np.random.normal(0, 0.01, (n_nodes, n_output))
        self.B_out = np.zeros(n_output)
        self.history = {"loss": []}

    def _f(self, x):
        return np.tanh(x) if self.activation == "tanh" else np.maximum(0, x)

    def _df(self, x):
        return 1 - np.tanh(x) ** 2 if self.activation == "tanh" else (x > 0).astype(float)

    def forward(self, X):
        batch_size, n_sequences = X.shape[0], X.shape[1]
        h = np.zeros((batch_size, self.n_nodes))
        h_sequence = np.zeros((batch_size, n_sequences, self.n_nodes))
        for t in range(n_sequences):
            h = self._f(X[:, t, :] @ self.W_x + h @ self.W_h + self.B)
            h_sequence[:, t, :] = h
        y = h @ self.W_out + self.B_out
        self.h_sequence, self.h = h_sequence, h
        return h, h_sequence, y

    def backward(self, X, y_true, y_pred):
        batch_size, n_sequences = X.shape[0], X.shape[1]
        dy = y_pred - y_true
        dW_out = self.h.T @ dy / batch_size
        dB_out = np.mean(dy, axis=0)
        dh = dy @ self.W_out.T
        dW_x, dW_h, dB = np.zeros_like(self.W_x), np.zeros_like(self.W_h), np.zeros_like(self.B)
        dh_next = np.zeros((batch_size, self.n_nodes))
        for t in range(n_sequences - 1, -1, -1):
            h_prev = (
                np.zeros((batch_size, self.n_nodes)) if t == 0 else self.h_sequence[:, t - 1, :]
            )
            x_t = X[:, t, :]
            a_t = x_t @ self.W_x + h_prev @ self.W_h + self.B
            da = self._df(a_t) * (dh + dh_next)
            dW_x += x_t.T @ da / batch_size
            dW_h += h_prev.T @ da / batch_size
            dB += np.mean(da, axis=0)
            dh_next = da @ self.W_h.T
        self.W_x_grad, self.W_h_grad, self.B_grad = dW_x, dW_h, dB
        self.W_out -= self.lr * dW_out
        self.B_out -= self.lr * dB_out
        self.W_x -= self.lr * dW_x
        self.W_h -= self.lr * dW_h
        self.B -= self.lr * dB
        return np.mean((y_pred - y_true) ** 2)

    def fit(self, X, y):
        n_samples = X.shape[0]
        for _epoch in range(self.epochs):
            indices = np.random.permutation(n_samples)
            X_shuffled, y_shuffled = X[indices], y[indices]
            epoch_loss = 0
            for i in range(0, n_samples, self.batch_size):
                batch_end = min(i + self.batch_size, n_samples)
                _, _, y_pred = self.forward(X_shuffled[i:batch_end])
                loss = self.backward(X_shuffled[i:batch_end], y_shuffled[i:batch_end], y_pred)
                epoch_loss += loss * (batch_end - i)
            self.history["loss"].append(epoch_loss / n_samples)
        return self


def _seed001_data():
    np.random.seed(42)
    X = np.random.randn(100, 5, 3)
    y = (np.mean(X, axis=(1, 2)) > 0).astype(float).reshape(-1, 1)
    return X, y


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_seed_001_notebook_training_reproduced(activation, capsys):
    X, y = _seed001_data()
    kw = dict(
        n_nodes=10,
        n_features=3,
        n_output=1,
        activation=activation,
        lr=0.01,
        batch_size=32,
        epochs=20,
        random_state=42,
    )
    ref = Seed001Classifier(**kw).fit(X, y)
    rnn = scratch.ScratchSimpleRNNClassifier(**kw, verbose=True).fit(X, y)
    np.testing.assert_allclose(rnn.history["loss"], ref.history["loss"], rtol=1e-12)
    for name in ("W_x", "W_h", "B", "W_out", "B_out"):
        np.testing.assert_allclose(getattr(rnn, name), getattr(ref, name), rtol=1e-11, atol=1e-15)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("Epoch 1/20, Loss: ") and len(lines) == 20


def test_seed_001_notebook_cells_run_unchanged():
    """The notebook's forward experiment and gradient-shape check, but for the import."""
    x = np.array([[[1, 2], [2, 3], [3, 4]]]) / 100
    w_x = np.array([[1, 3, 5, 7], [3, 5, 7, 8]]) / 100
    w_h = np.array([[1, 3, 5, 7], [2, 4, 6, 8], [3, 5, 7, 8], [4, 6, 8, 10]]) / 100
    b = np.array([1, 1, 1, 1])
    rnn = scratch.ScratchSimpleRNNClassifier(
        n_nodes=4, n_features=2, n_output=1, activation="tanh", random_state=42
    )
    rnn.W_x, rnn.W_h, rnn.B = w_x, w_h, b
    h_final, h_sequence, y_pred = rnn.forward(x)
    assert np.allclose(
        h_final, np.array([[0.79494228, 0.81839002, 0.83939649, 0.85584174]]), atol=1e-6
    )
    assert h_sequence.shape == (1, 3, 4) and y_pred.shape == (1, 1)
    np.random.seed(42)
    X = np.random.randn(1, 2, 2) * 0.1
    y = np.random.randn(1, 1) * 0.1
    rnn = scratch.ScratchSimpleRNNClassifier(
        n_nodes=3, n_features=2, n_output=1, lr=0.01, random_state=42
    )
    _, _, y_pred = rnn.forward(X)
    loss = rnn.backward(X, y, y_pred)
    assert isinstance(loss, float)
    assert (
        rnn.W_x_grad.shape == (2, 3) and rnn.W_h_grad.shape == (3, 3) and rnn.B_grad.shape == (3,)
    )
    proba = rnn.predict_proba(X)
    assert np.all((0 < proba) & (proba < 1))


def test_seed_001_exact_bptt_option_gives_the_true_gradient():
    X, y = _seed001_data()
    X, y = X[:4], y[:4]
    rnn = scratch.ScratchSimpleRNNClassifier(
        n_nodes=3, n_features=3, exact_bptt=True, random_state=1, lr=1e-300, verbose=False
    )
    rng = np.random.default_rng(0)  # weights of order 1, so the gradient is well above FD noise
    rnn.W_x, rnn.W_h, rnn.W_out = (
        rng.normal(size=(3, 3)),
        rng.normal(size=(3, 3)) * 0.5,
        rng.normal(size=(3, 1)),
    )
    params = {k: np.array(getattr(rnn, k)) for k in ("W_x", "W_h", "B", "W_out", "B_out")}

    def loss_of(W_h):
        probe = scratch.ScratchSimpleRNNClassifier(n_nodes=3, n_features=3, verbose=False)
        for k, v in params.items():
            setattr(probe, k, v)
        probe.W_h = W_h
        y_pred = probe.forward(X)[2]
        return float(np.sum((y_pred - y) ** 2) / (2 * X.shape[0]))  # the seed's dy scaling

    _, _, y_pred = rnn.forward(X)
    rnn.backward(X, y, y_pred)
    num = numerical_gradient(loss_of, params["W_h"])
    assert max_rel_error(rnn.W_h_grad, num) < 1e-7


# ----------------------------------------------------------------------------- seed 002


def _seed002_softmax(x):
    e = np.exp(x - np.max(x, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


def _seed002_train(X, y, W_x, W_h, b, W, b_fc, lr, epochs, batch_size, fixed):
    """Seed 002's classifier loop (SimpleRNN + FullyConnected + softmax CE), transcribed.

    ``fixed=False`` keeps the seed's line ``dh_next = dh_next + dh_t``, which accumulates
    every earlier step's recurrent gradient; ``fixed=True`` uses ``dh_next = dh_t`` (BPTT).
    """
    W_x, W_h, b, W, b_fc = (a.copy() for a in (W_x, W_h, b, W, b_fc))
    n = X.shape[0]
    for _ in range(epochs):
        idx = np.random.permutation(n)
        Xs, ys = X[idx], y[idx]
        for i in range(0, n, batch_size):
            x, yb = Xs[i : i + batch_size], ys[i : i + batch_size]
            bs, T, _ = x.shape
            h = np.zeros((bs, W_x.shape[1]))
            hs, hs_prev = {}, {}
            for t in range(T):
                hs_prev[t] = h
                h = np.tanh(x[:, t, :] @ W_x + h @ W_h + b)
                hs[t] = h
            scores = h @ W + b_fc
            probs = _seed002_softmax(scores)
            dscores = probs.copy()
            dscores[np.arange(bs), yb] -= 1
            dscores /= bs
            dh = dscores @ W.T
            dW_fc, db_fc = h.T @ dscores, dscores.sum(axis=0)
            W, b_fc = W - lr * dW_fc, b_fc - lr * db_fc
            dW_x, dW_h, db = np.zeros_like(W_x), np.zeros_like(W_h), np.zeros_like(b)
            dh_t = None
            for t in reversed(range(T)):
                if t == T - 1:
                    dh_next = dh
                else:
                    dh_next = dh_t if fixed else dh_next + dh_t
                da = dh_next * (1 - hs[t] ** 2)
                db += da.sum(axis=0)
                dW_x += x[:, t, :].T @ da
                dW_h += hs_prev[t].T @ da
                dh_t = da @ W_h.T
            W_x, W_h, b = W_x - lr * dW_x, W_h - lr * dW_h, b - lr * db
    return W_x, W_h, b, W, b_fc


def test_seed_002_classifier_replayed_with_the_core_layer():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(10, 5, 2))
    y = rng.integers(0, 3, 10)
    rnn = anyrnn.SimpleRNN(2, 4, dtype="float64", random_state=0)
    fc = anyrnn.Dense(4, 3, dtype="float64", random_state=1)
    init = [np.array(a) for a in (rnn.W_x, rnn.W_h, rnn.B, fc.W, fc.B)]
    lr, epochs, batch_size = 0.05, 20, 4

    np.random.seed(0)
    fixed = _seed002_train(X, y, *init, lr, epochs, batch_size, fixed=True)
    np.random.seed(0)
    as_written = _seed002_train(X, y, *init, lr, epochs, batch_size, fixed=False)

    np.random.seed(0)  # the same shuffles, now with anyrnn's layers and loss
    for _ in range(epochs):
        idx = np.random.permutation(X.shape[0])
        Xs, ys = X[idx], y[idx]
        for i in range(0, X.shape[0], batch_size):
            scores = fc.forward(rnn.forward(Xs[i : i + batch_size]))
            _, d_scores = anyrnn.losses.softmax_cross_entropy(scores, ys[i : i + batch_size])
            rnn.backward(fc.backward(d_scores))
            fc.update(lr)
            rnn.update(lr)
    got = [rnn.W_x, rnn.W_h, rnn.B, fc.W, fc.B]
    for a, b in zip(got, fixed):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    # the seed's accumulating line is not BPTT: it drifts away from the exact gradient
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(got, as_written)) > 1e-4
