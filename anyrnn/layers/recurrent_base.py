"""RecurrentLayer: the machinery SimpleRNN, LSTM and GRU share.

A recurrent layer holds its parameters and the tape of its last forward pass. The
equations live in :mod:`anyrnn.cells`, the time loops in :mod:`anyrnn.engine`, which
picks the engine for each pass; this module checks the inputs and states, selects the
engine (``fast_path``), runs ``forward``/``infer``/``backward`` and keeps the tape. The
concrete layers, which differ only in the cell they build, are in
:mod:`anyrnn.layers.recurrent`.

Sequence options, the same for every cell:

* ``return_sequences``: every step's ``h`` (batch, n_steps, n_nodes) instead of the last.
* ``return_state``: forward also returns the final state(s): ``(out, h_T)``, or
  ``(out, h_T, c_T)`` for LSTM; ``backward`` then takes their gradients too.
* ``go_backwards``: process the sequence from its last step to its first. As in Keras,
  sequence outputs are in processing order (reversed); ``dX`` is in input order.
* ``mask`` / ``lengths``: variable-length batches (see :meth:`RecurrentLayer.forward`).
* ``return_all_states``: forward also returns a dict of per-step values from the same
  pass: ``h`` (and ``c``) and the gate activations, each (batch, n_steps, n_nodes).
  They are for inspection; gradients flow through the other outputs.
* ``fast_path``: ``"auto"`` (default) runs the in-place engine on NumPy and CuPy when the
  call allows it (no mask, no ``return_all_states``), the generic engine traced by
  ``jax.jit`` on JAX, and the generic engine eagerly otherwise; ``True`` requires one of
  the first two (an error says why neither can run); ``False`` runs the generic Array API
  engine eagerly everywhere. They agree to rounding.

Thread safety: ``infer`` (and the estimators' ``predict``) may run from several threads
at once on one layer: each thread has its own scratch buffers and nothing of the layer
changes. ``forward``/``backward`` pairs, parameter assignment and optimizer steps change
the layer: one thread at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import engine
from .._checks import check_bool, check_choice, check_int
from ..cells.base import Cell
from ..engine.workspace import Workspace
from ._inputs import check_mask, check_state, check_X
from .base import Gradient, Layer, Parameter, on_device

__all__ = ["RecurrentLayer"]

_FLAGS = ("return_sequences", "return_state", "go_backwards", "return_all_states")


class RecurrentLayer(Layer):
    """Base of SimpleRNN, LSTM and GRU: input checks, states, forward and backward.

    Parameters
    ----------
    n_features : int
        Features per time step.
    n_nodes : int
        Hidden units.
    return_sequences, return_state, go_backwards, return_all_states : bool
        See :mod:`anyrnn.layers.recurrent_base`.
    fast_path : {"auto", True, False}
        Which engine runs a pass (see :mod:`anyrnn.layers.recurrent_base`).
    backend : str or namespace
        ``"numpy"`` (default), ``"cupy"``, ``"torch"``, ``"jax"``, ``"array_api_strict"``,
        ``"auto"``, or an array namespace. Fixed for the layer's life.
    device : optional
        A device of that backend (default: the backend's default).
    dtype : {"float32", "float64"} or None
        None: float32, or the dtype of ``backend`` when that is a resolved Backend.
    random_state : None, int or numpy.random.Generator
        Seeds the initial weights, drawn on the host with NumPy and then moved, so the
        same seed gives bit-identical weights on every backend. ``W_x`` is
        Glorot-uniform, ``W_h`` orthogonal, biases zero (the Keras defaults; LSTM's
        forget-gate bias is 1).
    """

    _config_keys = ("n_features", "n_nodes") + _FLAGS
    #: the choices of each cell option (the tests run every combination)
    cell_options: dict[str, tuple] = {}
    # every cell has these (settable, validated; gradients None until backward)
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
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        return_all_states: bool = False,
        fast_path: Any = "auto",
        backend: Any = "numpy",
        device: Any = None,
        dtype: Any = None,
        random_state: Any = None,
        **cell_options: Any,
    ):
        n_features = check_int(n_features, "n_features")
        n_nodes = check_int(n_nodes, "n_nodes")
        flags = dict(
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            return_all_states=return_all_states,
        )
        flags = {name: check_bool(value, name) for name, value in flags.items()}
        unknown = set(cell_options) - set(self._config_keys)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}() got unexpected keyword argument(s) {sorted(unknown)}"
            )
        cell = self._cell_for(cell_options)
        super().__init__(backend=backend, device=device, dtype=dtype)
        self.n_features = n_features
        self.n_nodes = n_nodes
        for name, value in flags.items():
            setattr(self, name, value)
        self.fast_path = fast_path
        self.random_state = random_state
        self._cell: Cell = cell
        self._param_names = cell.param_names
        rng = np.random.default_rng(random_state)
        init = cell.init_params(n_features, n_nodes, rng)
        self._params = {name: self._backend.from_host(init[name]) for name in cell.param_names}
        self._tape: engine.Tape | None = None
        self._out_shape: tuple[int, ...] | None = None
        self._d_state0: tuple = ()
        self._workspace = Workspace()

    @classmethod
    def _cell_for(cls, config: dict) -> Cell:
        """The cell a configuration describes (cheap: a cell holds no arrays)."""
        raise NotImplementedError

    @classmethod
    def _param_shapes_for(cls, config: dict) -> dict[str, tuple[int, ...]]:
        n_features = check_int(config.get("n_features"), "n_features")
        n_nodes = check_int(config.get("n_nodes"), "n_nodes")
        return cls._cell_for(config).param_shapes(n_features, n_nodes)

    @property
    def fast_path(self) -> Any:
        """``"auto"``, ``True`` or ``False``: which engine runs a pass (settable)."""
        return self._fast_path

    @fast_path.setter
    def fast_path(self, value: Any) -> None:
        self._fast_path = check_choice(value, "fast_path", engine.FAST_PATH_CHOICES)

    def engine_for(self, *, masked: bool = False) -> str:
        """The name of the engine a pass with these options would run on."""
        return engine.select(
            self._cell,
            self._backend,
            self.fast_path,
            masked=masked,
            all_states=self.return_all_states,
        ).name

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_tape"] = state["_out_shape"] = None  # a pickle holds the model, not a pass
        return state

    @property
    def state_names(self) -> tuple[str, ...]:
        """Names of the state tensors: ``("h",)``, or ``("h", "c")`` for LSTM."""
        return self._cell.state_names

    @property
    def n_outputs(self) -> int:
        """Features per step of the output (``n_nodes``)."""
        return self.n_nodes

    def __repr__(self) -> str:
        flags = "".join(f", {k}=True" for k in _FLAGS if getattr(self, k))
        return (
            f"{type(self).__name__}(n_features={self.n_features}, n_nodes={self.n_nodes}"
            f"{self._extra_repr()}{flags}, backend={self.backend!r}, "
            f"dtype={self._backend.dtype_name!r})"
        )

    def _extra_repr(self) -> str:
        return ""

    # the passes -------------------------------------------------------------------
    def forward(self, X: Any, h0: Any = None, *, mask: Any = None, lengths: Any = None) -> Any:
        """Run the layer over a batch of sequences.

        Parameters
        ----------
        X : array of shape (batch, n_steps, n_features)
            Any array of this layer's library, a NumPy array or nested lists; it is
            moved to the layer's device and cast to its dtype. NaN and inf are not
            checked for: they propagate into the outputs, as in NumPy arithmetic
            (except at masked steps, which they never reach).
        h0 : array of shape (batch, n_nodes), optional
            Initial hidden state (zeros by default).
        mask : bool array of shape (batch, n_steps), optional
            True on real steps. Padding may sit on the left or the right, not in the
            middle. A masked step carries the state through unchanged; its output is
            zero; its input is never read.
        lengths : int array of shape (batch,), optional
            Shortcut for right padding: row i has ``lengths[i]`` real steps.

        Returns
        -------
        out : array of shape (batch, n_nodes), or (batch, n_steps, n_nodes) with
            ``return_sequences=True``
            On NumPy's in-place engine, the sequence output of ``forward`` is a
            read-only view of the states kept for backward (no copy; writing into it
            would corrupt the gradients): copy it to change it. ``infer``'s output is
            writable.
        Followed by the final state(s) with ``return_state=True`` and by a dict of
        per-step values with ``return_all_states=True``.
        """
        return self._forward(X, (h0,), mask, lengths)

    __call__ = forward

    def infer(self, X: Any, h0: Any = None, *, mask: Any = None, lengths: Any = None) -> Any:
        """Like :meth:`forward`, but keeps nothing for backward: the layer is not changed
        (and several threads may call it at once)."""
        return self._forward(X, (h0,), mask, lengths, keep_tape=False)

    @on_device
    def _forward(self, X: Any, init: tuple, mask: Any, lengths: Any, keep_tape: bool = True) -> Any:
        xp, be = self.xp, self._backend
        X = check_X(be, X, self.n_features, type(self).__name__)
        batch, n_steps, _ = X.shape
        names = self._cell.state_names
        state0 = tuple(
            check_state(be, v, f"{n}0", batch, self.n_nodes) for v, n in zip(init, names)
        )
        mask = check_mask(be, mask, lengths, batch, n_steps)
        run = engine.select(
            self._cell,
            be,
            self.fast_path,
            masked=mask is not None,
            all_states=self.return_all_states,
        )
        if self.go_backwards:
            X = xp.flip(X, axis=1)
            mask = None if mask is None else xp.flip(mask, axis=1)
        params = self.params
        seq, finals, values, data = run.forward(
            self._cell,
            be,
            params,
            X,
            state0,
            mask=mask,
            keep_tape=keep_tape,
            all_states=self.return_all_states,
            workspace=self._workspace.get(),
        )
        out = seq if self.return_sequences else finals[0]
        result: tuple = (out,)
        if self.return_state:
            result += tuple(finals)
        if self.return_all_states:
            result += (values,)
        if keep_tape:
            self._tape = engine.Tape(run, self._cell, params, tuple(X.shape), data)
            self._out_shape = tuple(out.shape)
        return result[0] if len(result) == 1 else result

    def clear(self) -> None:
        """Drop what the last forward pass kept for backward (frees its memory)."""
        self._tape = None
        self._out_shape = None

    def backward(self, d_out: Any, dh_last: Any = None) -> Any:
        """Backpropagation through time for the last :meth:`forward`.

        Computes gradients only (a sum over the batch): it sets :attr:`grads` (also as
        ``dW_x``, ``dW_h``, ``dB``, ...) and ``dh0``, and returns dX. Updating weights is
        an optimizer's job (or :meth:`update`). It can be called again for the same
        forward pass and gives the same result.

        Parameters
        ----------
        d_out : array of the shape of forward's ``out``
            Gradient of the loss with respect to forward's output.
        dh_last : array of shape (batch, n_nodes), optional
            With ``return_state=True``: gradient on the returned final ``h``.

        Returns
        -------
        dX : array of shape (batch, n_steps, n_features)
            In input order (also with ``go_backwards``); zero at masked steps.
        """
        return self._backward(d_out, (dh_last,))

    @on_device
    def _backward(self, d_out: Any, d_last: tuple) -> Any:
        name = type(self).__name__
        tape = self._tape
        if tape is None:
            raise RuntimeError(
                f"{name}.backward() was called before forward(): there is no forward pass to "
                "differentiate"
            )
        be = self._backend
        d_out = be.asarray(d_out, name="d_out")
        if tuple(d_out.shape) != self._out_shape:
            raise ValueError(
                f"d_out must have the shape of forward's output {self._out_shape}; got shape "
                f"{tuple(d_out.shape)}"
            )
        batch = self._out_shape[0]
        checked = []
        for value, n in zip(d_last, self._cell.state_names):
            if value is not None and not self.return_state:
                raise ValueError(
                    f"d{n}_last is the gradient on a returned final state: this {name} has "
                    "return_state=False"
                )
            d = None if value is None else check_state(be, value, f"d{n}_last", batch, self.n_nodes)
            checked.append(d)
        if self.return_sequences:
            d_seq, d_final = d_out, tuple(checked)
        else:
            d_seq = None
            d_final = (d_out if checked[0] is None else d_out + checked[0],) + tuple(checked[1:])
        dX, d_state0, grads = tape.engine.backward(
            tape.cell,
            be,
            tape.params,
            tape.shape,
            tape.data,
            d_seq,
            d_final,
            self._workspace.get(),
        )
        if self.go_backwards:
            dX = self.xp.flip(dX, axis=1)
        self._grads = {n: grads[n] for n in self._param_names}
        self._d_state0 = d_state0
        return dX

    @property
    def dh0(self) -> Any:
        """Gradient on the initial hidden state from the last backward (None before)."""
        return self._d_state0[0] if self._d_state0 else None
