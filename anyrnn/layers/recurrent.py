"""The recurrent layers SimpleRNN, LSTM and GRU, and how to pick one by cell name.

Each layer is a thin shell over a cell and an engine: it names its cell
(:mod:`anyrnn.cells`) and the cell's options, nothing else. Input checks, engine
selection, the passes, the tape and the sequence options (``return_sequences``,
``return_state``, ``go_backwards``, ``mask``/``lengths``, ``return_all_states``,
``fast_path``) are :class:`~anyrnn.layers.recurrent_base.RecurrentLayer`'s, in
:mod:`anyrnn.layers.recurrent_base`. :data:`CELLS` and :func:`make_recurrent` give the
layer class of a cell name.
"""

from __future__ import annotations

from typing import Any

from .. import io
from .._checks import check_choice
from ..cells.base import Cell
from ..cells.gru import GRUCell
from ..cells.lstm import LSTMCell
from ..cells.simple import ACTIVATIONS, SimpleCell
from .base import Gradient
from .recurrent_base import RecurrentLayer

# RecurrentLayer stays importable from here, where it was defined before the split
__all__ = ["RecurrentLayer", "SimpleRNN", "LSTM", "GRU", "CELLS", "make_recurrent"]


@io.register
class SimpleRNN(RecurrentLayer):
    """A fully connected recurrent layer with hand-written BPTT.

    ``a_t = x_t·W_x + h_{t-1}·W_h + B``,  ``h_t = tanh(a_t)`` (or relu): the cell is
    :mod:`anyrnn.cells.simple`. (Seed 003's next-step regressor, with its own signature,
    is the other class of this name: :class:`anyrnn.scratch.SimpleRNN`.)

    Parameters
    ----------
    n_features, n_nodes : int
    activation : {"tanh", "relu"}
    return_sequences, return_state, go_backwards, return_all_states, fast_path
    backend, device, dtype, random_state
        As for :class:`RecurrentLayer`.

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

    _config_keys = RecurrentLayer._config_keys + ("activation",)
    #: the choices of each cell option (the tests run every combination)
    cell_options = {"activation": ACTIVATIONS}

    def __init__(self, n_features: int, n_nodes: int, *, activation: str = "tanh", **kwargs: Any):
        super().__init__(n_features, n_nodes, activation=activation, **kwargs)
        self.activation = self._cell.activation

    @classmethod
    def _cell_for(cls, config: dict) -> Cell:
        return SimpleCell(config.get("activation", "tanh"))

    def _extra_repr(self) -> str:
        return f", activation={self.activation!r}"


@io.register
class LSTM(RecurrentLayer):
    """Long short-term memory layer with hand-written BPTT.

    Equations and gate order (``i, f, g, o``) in :mod:`anyrnn.cells.lstm`. The state is
    ``(h, c)``: :meth:`forward` takes ``c0`` beside ``h0``, ``backward`` sets ``dc0``
    beside ``dh0`` and takes ``dc_last`` with ``return_state=True``. Parameters as for
    :class:`RecurrentLayer`; the forget-gate bias starts at 1.

    Attributes
    ----------
    W_x : array of shape (n_features, 4·n_nodes)
    W_h : array of shape (n_nodes, 4·n_nodes)
    B : array of shape (4·n_nodes,)
    dW_x, dW_h, dB, dh0, dc0 : arrays
    """

    def __init__(self, n_features: int, n_nodes: int, **kwargs: Any):
        super().__init__(n_features, n_nodes, **kwargs)

    @classmethod
    def _cell_for(cls, config: dict) -> Cell:
        return LSTMCell()

    def forward(
        self, X: Any, h0: Any = None, c0: Any = None, *, mask: Any = None, lengths: Any = None
    ) -> Any:
        """As :meth:`RecurrentLayer.forward`, with the initial cell state ``c0`` too."""
        return self._forward(X, (h0, c0), mask, lengths)

    __call__ = forward

    def infer(
        self, X: Any, h0: Any = None, c0: Any = None, *, mask: Any = None, lengths: Any = None
    ) -> Any:
        """As :meth:`RecurrentLayer.infer`, with ``c0``."""
        return self._forward(X, (h0, c0), mask, lengths, keep_tape=False)

    def backward(self, d_out: Any, dh_last: Any = None, dc_last: Any = None) -> Any:
        """As :meth:`RecurrentLayer.backward`; ``dc_last`` is the gradient on the final c."""
        return self._backward(d_out, (dh_last, dc_last))

    @property
    def dc0(self) -> Any:
        """Gradient on the initial cell state from the last backward (None before)."""
        return self._d_state0[1] if self._d_state0 else None


@io.register
class GRU(RecurrentLayer):
    """Gated recurrent unit layer with hand-written BPTT.

    Equations and gate order (``r, z, n``) in :mod:`anyrnn.cells.gru`.

    Parameters
    ----------
    n_features, n_nodes : int
    reset_after : bool
        The cuDNN/PyTorch form (default), or the original one (the generic engine only).
    return_sequences, return_state, go_backwards, return_all_states, fast_path
    backend, device, dtype, random_state
        As for :class:`RecurrentLayer`.

    Attributes
    ----------
    W_x : array of shape (n_features, 3·n_nodes)
    W_h : array of shape (n_nodes, 3·n_nodes)
    B : array of shape (3·n_nodes,)
        Input-side bias.
    B_h : array of shape (3·n_nodes,)
        Recurrent-side bias (only with ``reset_after=True``).
    dW_x, dW_h, dB, dB_h, dh0 : arrays
    """

    _config_keys = RecurrentLayer._config_keys + ("reset_after",)
    cell_options = {"reset_after": (True, False)}
    dB_h = Gradient("B_h")

    def __init__(self, n_features: int, n_nodes: int, *, reset_after: bool = True, **kwargs: Any):
        super().__init__(n_features, n_nodes, reset_after=reset_after, **kwargs)
        self.reset_after = self._cell.reset_after

    @classmethod
    def _cell_for(cls, config: dict) -> Cell:
        return GRUCell(config.get("reset_after", True))

    def _extra_repr(self) -> str:
        return "" if self.reset_after else ", reset_after=False"

    @property
    def B_h(self) -> Any:
        if not self.reset_after:
            raise AttributeError("B_h exists only with reset_after=True")
        return self._params["B_h"]

    @B_h.setter
    def B_h(self, value: Any) -> None:
        if not self.reset_after:
            raise AttributeError("B_h exists only with reset_after=True")
        self._set_param("B_h", value)


#: recurrent layer classes by cell name, one for every cell of :data:`anyrnn.cells.CELLS`
CELLS: dict[str, type[RecurrentLayer]] = {"simple": SimpleRNN, "lstm": LSTM, "gru": GRU}


def make_recurrent(cell: str, n_features: int, n_nodes: int, **kwargs: Any) -> RecurrentLayer:
    """A recurrent layer by cell name (``"simple"``, ``"lstm"``, ``"gru"``).

    ``activation`` is used by the simple cell only.
    """
    key = check_choice(cell, "cell", CELLS, lower=True)
    if key != "simple":
        kwargs.pop("activation", None)
    return CELLS[key](n_features, n_nodes, **kwargs)
