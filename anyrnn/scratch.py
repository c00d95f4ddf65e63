"""The seeds' own classes, with their exact signatures and numbers, over the core.

* :class:`SimpleRNN` is seed 003's next-step regressor:
  ``SimpleRNN(input_size, hidden_size, output_size)``, ``forward(x)`` over one sequence
  of shape (T, input_size) returning (T, output_size, 1), and
  ``backward(x, y, learning_rate)`` doing BPTT on the summed per-step errors and plain
  SGD. Its initial weights come from NumPy's *global* random state in the seed's order
  and scale, so after ``np.random.seed(42)`` it reproduces the seed's reference code.
* :class:`ScratchSimpleRNNClassifier` is the assignment notebook's classifier:
  ``forward(X) -> (h, h_sequence, y)``, ``backward(X, y_true, y_pred) -> loss`` with the
  ``*_grad`` attributes, ``fit``, ``predict``, ``predict_proba`` and ``history``.

Both are thin adapters: the recurrence and its backward are :class:`anyrnn.SimpleRNN`,
the output layer :class:`anyrnn.Dense`. Both take ``backend=``, ``device=`` and
``dtype=`` (float64 by default, as NumPy computed in the seeds).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import check_bool, check_int, check_real
from .layers.dense import Dense
from .layers.recurrent import SimpleRNN as _CoreSimpleRNN
from .train import losses
from .train.optimizers import make_optimizer

__all__ = ["SimpleRNN", "ScratchSimpleRNNClassifier"]


class SimpleRNN:
    """Seed 003: many-to-many next-step prediction with MSE, one sequence at a time.

    ``h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h)``, ``y_t = W_hy h_t + b_y``; weights in the
    seed's column-vector layout: ``W_xh`` (hidden, input), ``W_hh`` (hidden, hidden),
    ``W_hy`` (output, hidden), ``b_h`` (hidden, 1), ``b_y`` (output, 1). They are views of
    the core layers' parameters (stored transposed, row-vector layout) and can be set.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        *,
        backend: Any = "numpy",
        device: Any = None,
        dtype: Any = "float64",
    ):
        kw = dict(backend=backend, device=device, dtype=dtype)
        self._rnn = _CoreSimpleRNN(input_size, hidden_size, return_sequences=True, **kw)
        self._head = Dense(hidden_size, output_size, **kw)
        self.hidden_size = hidden_size
        # the seed's draws, in its order and scale, from NumPy's global random state
        W_xh = np.random.randn(hidden_size, input_size) * 0.01
        W_hh = np.random.randn(hidden_size, hidden_size) * 0.01
        W_hy = np.random.randn(output_size, hidden_size) * 0.01
        self._rnn.set_params_from({"W_x": W_xh.T, "W_h": W_hh.T, "B": np.zeros(hidden_size)})
        self._head.set_params_from({"W": W_hy.T, "B": np.zeros(output_size)})
        self.last_outputs = None

    @property
    def xp(self) -> Any:
        return self._rnn.xp

    def _t(self, a: Any) -> Any:
        return self.xp.matrix_transpose(a)

    def _col(self, b: Any) -> Any:
        return self.xp.reshape(b, (-1, 1))

    def _set(self, layer: Any, name: str, seed_name: str, value: Any, transpose: bool) -> None:
        """Assign a weight given in the seed's layout (column vectors), on any backend: a
        CuPy or torch array is converted by the layer's backend, never through NumPy."""
        a = layer._backend.asarray(value, name=seed_name)
        xp = layer.xp
        if transpose:
            if a.ndim != 2:
                raise ValueError(f"{seed_name} must be 2-D; got shape {tuple(a.shape)}")
            a = xp.matrix_transpose(a)
        else:
            a = xp.reshape(a, (-1,))
        setattr(layer, name, a)

    W_xh = property(lambda s: s._t(s._rnn.W_x), lambda s, v: s._set(s._rnn, "W_x", "W_xh", v, True))
    W_hh = property(lambda s: s._t(s._rnn.W_h), lambda s, v: s._set(s._rnn, "W_h", "W_hh", v, True))
    W_hy = property(lambda s: s._t(s._head.W), lambda s, v: s._set(s._head, "W", "W_hy", v, True))
    b_h = property(lambda s: s._col(s._rnn.B), lambda s, v: s._set(s._rnn, "B", "b_h", v, False))
    b_y = property(lambda s: s._col(s._head.B), lambda s, v: s._set(s._head, "B", "b_y", v, False))

    def forward(self, x: Any) -> Any:
        """Outputs for one sequence ``x`` of shape (T, input_size): (T, output_size, 1)."""
        X = self._rnn._backend.asarray(x, name="x")
        if X.ndim != 2:
            raise ValueError(
                f"x must be one sequence of shape (T, input_size); got shape {tuple(X.shape)}"
            )
        xp = self.xp
        Y = self._head.forward(self._rnn.forward(xp.expand_dims(X, axis=0)))  # (1, T, out)
        self.last_outputs = Y
        return xp.expand_dims(Y[0, ...], axis=2)

    def backward(self, x: Any, y: Any, learning_rate: float) -> None:
        """BPTT on ``Σ_t ½‖ŷ_t − y_t‖²`` for the last forward pass, then plain SGD.

        As in the seed: per-step error ``ŷ_t − y_t`` summed over steps, no averaging and
        no clipping. ``y`` is (T, output_size) or (T, output_size, 1).
        """
        learning_rate = check_real(learning_rate, "learning_rate", low=0, low_open=True)
        if self.last_outputs is None:
            raise RuntimeError("SimpleRNN.backward() needs a forward() pass first")
        xp = self.xp
        Y = self.last_outputs
        target = self._rnn._backend.asarray(y, name="y")
        expected = tuple(Y.shape[1:])
        if (
            target.shape[:2] != expected
            or target.ndim not in (2, 3)
            or (target.ndim == 3 and target.shape[2] != 1)
        ):
            raise ValueError(
                f"y must have shape {expected} or {expected + (1,)}; got {tuple(target.shape)}"
            )
        target = xp.reshape(target, (1,) + expected)
        dy = Y - target  # dL/dy_t = ŷ_t − y_t
        self._rnn.backward(self._head.backward(dy))
        self._rnn.update(learning_rate)
        self._head.update(learning_rate)


class ScratchSimpleRNNClassifier:
    """The assignment notebook's classifier (seed "001"), over the core layers.

    Parameters
    ----------
    n_nodes, n_features : int
    n_output : int
        Output units (1 for a 0/1 target).
    activation : {"tanh", "relu"}
    optimizer : str
        ``"sgd"`` (the seed's plain update) or any of :mod:`anyrnn.optimizers`.
    lr, batch_size, epochs, verbose, random_state
        As in the seed. ``random_state`` seeds NumPy's global random state, which draws
        the initial weights (normal, σ = 0.01) and the shuffles of ``fit``.
    backend, device, dtype
        Where it computes (float64 by default).
    exact_bptt : bool
        The seed's backward adds the output gradient ``dh`` to *every* time step
        (``da = f'(a_t)·(dh + dh_next)`` inside the loop). By default that is reproduced,
        so notebooks give the seed's numbers. ``exact_bptt=True`` feeds ``dh`` into the
        last step only: the exact gradient of the seed's MSE.
    """

    def __init__(
        self,
        n_nodes: int,
        n_features: int,
        n_output: int = 1,
        activation: str = "tanh",
        optimizer: str = "sgd",
        lr: float = 0.01,
        batch_size: int = 32,
        epochs: int = 10,
        verbose: bool = True,
        random_state: int | None = None,
        *,
        backend: Any = "numpy",
        device: Any = None,
        dtype: Any = "float64",
        exact_bptt: bool = False,
    ):
        batch_size = check_int(batch_size, "batch_size")
        epochs = check_int(epochs, "epochs", low=0)
        verbose = check_bool(verbose, "verbose")
        exact_bptt = check_bool(exact_bptt, "exact_bptt")
        kw = dict(backend=backend, device=device, dtype=dtype)
        self._rnn = _CoreSimpleRNN(
            n_features, n_nodes, activation=activation, return_sequences=True, **kw
        )
        self._head = Dense(n_nodes, n_output, **kw)
        self._opt = make_optimizer(optimizer, lr)
        self.n_nodes, self.n_features, self.n_output = n_nodes, n_features, n_output
        self.activation, self.optimizer, self.lr = activation, optimizer, lr
        self.batch_size, self.epochs, self.verbose = batch_size, epochs, verbose
        self.random_state, self.exact_bptt = random_state, exact_bptt
        if random_state is not None:
            np.random.seed(random_state)
        W_x = np.random.normal(0, 0.01, (n_features, n_nodes))
        W_h = np.random.normal(0, 0.01, (n_nodes, n_nodes))
        W_out = np.random.normal(0, 0.01, (n_nodes, n_output))
        self._rnn.set_params_from({"W_x": W_x, "W_h": W_h, "B": np.zeros(n_nodes)})
        self._head.set_params_from({"W": W_out, "B": np.zeros(n_output)})
        self.history = {"loss": [], "accuracy": []}

    @property
    def xp(self) -> Any:
        return self._rnn.xp

    W_x = property(lambda s: s._rnn.W_x, lambda s, v: setattr(s._rnn, "W_x", v))
    W_h = property(lambda s: s._rnn.W_h, lambda s, v: setattr(s._rnn, "W_h", v))
    B = property(lambda s: s._rnn.B, lambda s, v: setattr(s._rnn, "B", v))
    W_out = property(lambda s: s._head.W, lambda s, v: setattr(s._head, "W", v))
    B_out = property(lambda s: s._head.B, lambda s, v: setattr(s._head, "B", v))

    def forward(self, X: Any) -> tuple[Any, Any, Any]:
        """Returns ``(h, h_sequence, y)``: final state, all states, output."""
        h_sequence = self._rnn.forward(X)
        h = h_sequence[:, -1, :]
        y = self._head.forward(h)
        self.X, self.h_sequence, self.h, self.y = X, h_sequence, h, y
        return h, h_sequence, y

    def backward(self, X: Any, y_true: Any, y_pred: Any) -> float:
        """The seed's backward and update; returns ``mean((y_pred - y_true)**2)``."""
        xp = self.xp
        be = self._rnn._backend
        y_true = be.asarray(y_true, name="y_true")
        y_pred = be.asarray(y_pred, name="y_pred")
        batch_size = y_pred.shape[0]
        dy = y_pred - y_true
        dh = self._head.backward(dy / batch_size)  # dW_out = hᵀ·dy / batch, dB_out = mean(dy)
        H = self.h_sequence
        if self.exact_bptt:
            zeros = xp.zeros_like(H[:, :-1, :])
            d_hs = xp.concat([zeros, xp.expand_dims(dh, axis=1)], axis=1)
        else:  # the seed: dh enters every time step
            d_hs = xp.broadcast_to(xp.expand_dims(dh, axis=1), H.shape)
        self._rnn.backward(d_hs)
        self.W_x_grad, self.W_h_grad, self.B_grad = self._rnn.dW_x, self._rnn.dW_h, self._rnn.dB
        self.W_out_grad, self.B_out_grad = self._head.dW, self._head.dB
        self._opt.step([self._rnn, self._head])
        return float(xp.mean(dy * dy))

    def fit(self, X: Any, y: Any) -> ScratchSimpleRNNClassifier:
        """The seed's loop: global-RNG shuffles, mini-batches, one line per epoch if verbose."""
        be = self._rnn._backend
        X = be.asarray(X, name="X")
        y = be.asarray(y, name="y")
        n_samples = X.shape[0]
        for epoch in range(self.epochs):
            indices = np.random.permutation(n_samples)
            idx = be.from_host(indices, dtype=be.int_dtype) if be.name != "numpy" else indices
            X_shuffled = self.xp.take(X, idx, axis=0)
            y_shuffled = self.xp.take(y, idx, axis=0)
            epoch_loss = 0.0
            for i in range(0, n_samples, self.batch_size):
                batch_end = min(i + self.batch_size, n_samples)
                X_batch = X_shuffled[i:batch_end, ...]
                y_batch = y_shuffled[i:batch_end, ...]
                _, _, y_pred = self.forward(X_batch)
                loss = self.backward(X_batch, y_batch, y_pred)
                epoch_loss += loss * (batch_end - i)
            avg_loss = epoch_loss / n_samples
            self.history["loss"].append(avg_loss)
            if self.verbose:
                print(f"Epoch {epoch + 1}/{self.epochs}, Loss: {avg_loss:.6f}")
        return self

    def predict(self, X: Any) -> Any:
        """The raw outputs y (as in the seed; threshold them for labels)."""
        return self.forward(X)[2]

    def predict_proba(self, X: Any) -> Any:
        """Sigmoid of the output for n_output == 1, softmax otherwise."""
        y = self.forward(X)[2]
        return losses.sigmoid(y) if self.n_output == 1 else losses.softmax(y, axis=1)
