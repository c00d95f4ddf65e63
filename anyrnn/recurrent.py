"""Recurrent layers: thin shells over a cell and the one time loop.

A layer holds its parameters and the tape of the last forward pass; the equations
live in :mod:`anyrnn.cells`, the time loop in :mod:`anyrnn.scan`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._layer import Gradient, Layer, Parameter, check_bool, check_positive_int
from .cells.base import Cell
from .cells.simple import SimpleCell
from .scan import scan_backward, scan_forward

__all__ = ["RecurrentLayer", "SimpleRNN", "CELLS", "make_recurrent"]


class RecurrentLayer(Layer):
    """Base of SimpleRNN, LSTM and GRU: input checks, states, forward and backward."""

    _config_keys = ("n_features", "n_nodes", "return_sequences")

    def __init__(
        self,
        n_features: int,
        n_nodes: int,
        *,
        return_sequences: bool = False,
        backend: Any = "numpy",
        device: Any = None,
        dtype: Any = "float32",
        random_state: Any = None,
    ):
        n_features = check_positive_int(n_features, "n_features")
        n_nodes = check_positive_int(n_nodes, "n_nodes")
        return_sequences = check_bool(return_sequences, "return_sequences")
        cell = self._make_cell()
        super().__init__(backend=backend, device=device, dtype=dtype)
        self.n_features = n_features
        self.n_nodes = n_nodes
        self.return_sequences = return_sequences
        self.random_state = random_state
        self._cell: Cell = cell
        self._param_names = cell.param_names
        rng = np.random.default_rng(random_state)
        init = cell.init_params(n_features, n_nodes, rng)
        self._params = {name: self._backend.from_host(init[name]) for name in cell.param_names}
        self._tape = None
        self._out_shape: tuple[int, ...] | None = None
        self._d_state0: tuple = ()

    def _make_cell(self) -> Cell:
        raise NotImplementedError

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return self._cell.param_shapes(self.n_features, self.n_nodes)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_features={self.n_features}, n_nodes={self.n_nodes}, "
            f"{self._extra_repr()}return_sequences={self.return_sequences}, "
            f"backend={self.backend!r}, dtype={self._backend.dtype_name!r})"
        )

    def _extra_repr(self) -> str:
        return ""

    # input checks ---------------------------------------------------------------
    def _check_X(self, X: Any) -> Any:
        X = self._backend.asarray(X, name="X")
        if X.ndim != 3:
            raise ValueError(
                f"X must be 3-D (batch, n_sequences, n_features); got {X.ndim}-D with shape "
                f"{tuple(X.shape)}"
            )
        batch, n_steps, n_features = X.shape
        if n_features != self.n_features:
            raise ValueError(
                f"X has {n_features} features, but this {type(self).__name__} was built for "
                f"{self.n_features} (X.shape={tuple(X.shape)})"
            )
        if n_steps == 0:
            raise ValueError(
                "X has n_sequences = 0 time steps; a recurrent layer needs at least one "
                f"(X.shape={tuple(X.shape)})"
            )
        if batch == 0:
            raise ValueError(f"X has an empty batch (X.shape={tuple(X.shape)})")
        return X

    def _check_state(self, value: Any, name: str, batch: int) -> Any:
        if value is None:
            return self._backend.zeros((batch, self.n_nodes))
        arr = self._backend.asarray(value, name=name)
        expected = (batch, self.n_nodes)
        if tuple(arr.shape) != expected:
            raise ValueError(
                f"{name} must have shape (batch, n_nodes) = {expected}; got shape {tuple(arr.shape)}"
            )
        return arr

    # the passes -------------------------------------------------------------------
    def forward(self, X: Any, h0: Any = None) -> Any:
        """Run the layer over a batch of sequences.

        Parameters
        ----------
        X : array of shape (batch, n_sequences, n_features)
            Any array of this layer's library, a NumPy array or nested lists; it is
            moved to the layer's device and cast to its dtype. NaN and inf are not
            checked for: they propagate into the outputs, as in NumPy arithmetic.
        h0 : array of shape (batch, n_nodes), optional
            Initial hidden state (zeros by default).

        Returns
        -------
        array of shape (batch, n_nodes), or (batch, n_sequences, n_nodes) with
        ``return_sequences=True``
        """
        X = self._check_X(X)
        state0 = (self._check_state(h0, "h0", X.shape[0]),)
        return self._run(X, state0)

    __call__ = forward

    def infer(self, X: Any, h0: Any = None) -> Any:
        """Like :meth:`forward`, but keeps nothing for backward: the layer is not changed."""
        X = self._check_X(X)
        state0 = (self._check_state(h0, "h0", X.shape[0]),)
        return self._run(X, state0, keep_tape=False)

    def _run(self, X: Any, state0: tuple, keep_tape: bool = True) -> Any:
        xp = self.xp
        hs, state, tape = scan_forward(
            self._cell, self.params, X, state0, xp=xp, keep_tape=keep_tape
        )
        out = xp.stack(hs, axis=1) if self.return_sequences else state[0]
        if keep_tape:
            self._tape = tape
            self._out_shape = tuple(out.shape)
        return out

    def clear(self) -> None:
        """Drop what the last forward pass kept for backward (frees its memory)."""
        self._tape = None
        self._out_shape = None

    def backward(self, d_out: Any) -> Any:
        """Backpropagation through time for the last :meth:`forward`.

        Computes gradients only (a sum over the batch): it sets :attr:`grads` (also as
        ``dW_x``, ``dW_h``, ``dB``, ...) and ``dh0``, and returns dX. Updating weights is
        an optimizer's job (or :meth:`update`). It can be called again for the same
        forward pass and gives the same result.

        Parameters
        ----------
        d_out : array of the shape forward returned
            Gradient of the loss with respect to forward's output.

        Returns
        -------
        dX : array of shape (batch, n_sequences, n_features)
        """
        if self._tape is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() was called before forward(): there is no "
                "forward pass to differentiate"
            )
        d_out = self._backend.asarray(d_out, name="d_out")
        if tuple(d_out.shape) != self._out_shape:
            raise ValueError(
                f"d_out must have the shape of forward's output {self._out_shape}; got shape "
                f"{tuple(d_out.shape)}"
            )
        n_states = len(self._cell.state_names)
        if self.return_sequences:
            d_hs, d_final = d_out, (None,) * n_states
        else:
            d_hs, d_final = None, (d_out,) + (None,) * (n_states - 1)
        dX, d_state0, grads = scan_backward(self._cell, self._tape, d_hs, d_final, xp=self.xp)
        self._grads = {name: grads[name] for name in self._param_names}
        self._d_state0 = d_state0
        return dX

    @property
    def dh0(self) -> Any:
        """Gradient on the initial hidden state from the last backward (None before)."""
        return self._d_state0[0] if self._d_state0 else None


class SimpleRNN(RecurrentLayer):
    """A fully connected recurrent layer with hand-written BPTT.

    ``a_t = x_t·W_x + h_{t-1}·W_h + B``,  ``h_t = tanh(a_t)`` (or relu).

    Parameters
    ----------
    n_features : int
        Features per time step.
    n_nodes : int
        Hidden units.
    activation : {"tanh", "relu"}
    return_sequences : bool
        Return every step's state (batch, n_sequences, n_nodes) instead of the last.
    backend : str or namespace
        ``"numpy"`` (default), ``"cupy"``, ``"torch"``, ``"jax"``, ``"array_api_strict"``,
        ``"auto"``, or an array namespace. Fixed for the layer's life.
    device : optional
        A device of that backend (default: the backend's default).
    dtype : {"float32", "float64"}
    random_state : None, int or numpy.random.Generator
        Seeds the initial weights, drawn on the host with NumPy and then moved, so the
        same seed gives bit-identical weights on every backend. ``W_x`` is
        Glorot-uniform, ``W_h`` orthogonal, ``B`` zero (the Keras defaults).

    Attributes
    ----------
    W_x : array of shape (n_features, n_nodes)
    W_h : array of shape (n_nodes, n_nodes)
    B : array of shape (n_nodes,)
        Settable with any array-like of the right shape (converted to the backend).
    dW_x, dW_h, dB, dh0 : arrays
        Gradients from the last :meth:`backward` (None before).

    Examples
    --------
    >>> import numpy as np, anyrnn
    >>> rnn = anyrnn.SimpleRNN(2, 4, dtype="float64")
    >>> rnn.W_x = np.array([[1, 3, 5, 7], [3, 5, 7, 8]]) / 100
    >>> rnn.W_h = np.array([[1, 3, 5, 7], [2, 4, 6, 8], [3, 5, 7, 8], [4, 6, 8, 10]]) / 100
    >>> rnn.B = [1, 1, 1, 1]
    >>> rnn.forward(np.array([[[1, 2], [2, 3], [3, 4]]]) / 100).round(8)
    array([[0.79494228, 0.81839002, 0.83939649, 0.85584174]])
    """

    _config_keys = ("n_features", "n_nodes", "activation", "return_sequences")
    W_x = Parameter()
    W_h = Parameter()
    B = Parameter()
    dW_x = Gradient("W_x")
    dW_h = Gradient("W_h")
    dB = Gradient("B")

    def __init__(
        self,
        n_features: int,
        n_nodes: int,
        *,
        activation: str = "tanh",
        return_sequences: bool = False,
        backend: Any = "numpy",
        device: Any = None,
        dtype: Any = "float32",
        random_state: Any = None,
    ):
        self.activation = activation
        super().__init__(
            n_features,
            n_nodes,
            return_sequences=return_sequences,
            backend=backend,
            device=device,
            dtype=dtype,
            random_state=random_state,
        )

    def _make_cell(self) -> Cell:
        return SimpleCell(self.activation)

    def _extra_repr(self) -> str:
        return f"activation={self.activation!r}, "


#: recurrent layer classes by the ``cell=`` name the estimators take
CELLS: dict[str, type[RecurrentLayer]] = {"simple": SimpleRNN}


def make_recurrent(cell: str, n_features: int, n_nodes: int, **kwargs: Any) -> RecurrentLayer:
    """A recurrent layer by cell name (``"simple"``, ...); ``activation`` only for simple."""
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}; got cell={cell!r}")
    if cell != "simple":
        kwargs.pop("activation", None)
    return CELLS[cell](n_features, n_nodes, **kwargs)
