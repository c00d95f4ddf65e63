"""Recurrent layers: thin shells over a cell and the one time loop.

A layer holds its parameters and the tape of the last forward pass; the equations
live in :mod:`anyrnn.cells`, the time loop in :mod:`anyrnn.scan`. SimpleRNN, LSTM and
GRU differ only in the cell they build.

Sequence options, the same for every cell:

* ``return_sequences``: every step's ``h`` (batch, n_sequences, n_nodes) instead of the last.
* ``return_state``: forward also returns the final state(s): ``(out, h_T)``, or
  ``(out, h_T, c_T)`` for LSTM; ``backward`` then takes their gradients too.
* ``go_backwards``: process the sequence from its last step to its first. As in Keras,
  sequence outputs are in processing order (reversed); ``dX`` is in input order.
* ``mask`` / ``lengths``: variable-length batches (see :meth:`RecurrentLayer.forward`).
* ``return_all_states``: forward also returns a dict of per-step values from the same
  pass: ``h`` (and ``c``) and the gate activations, each (batch, n_sequences, n_nodes).
  They are for inspection; gradients flow through the other outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import io
from .._checks import check_bool, check_int
from ..backend import to_numpy
from ..cells.base import Cell
from ..cells.gru import GRUCell
from ..cells.lstm import LSTMCell
from ..cells.simple import SimpleCell
from ..engine import compile as _fused
from ..engine import inplace as _inplace
from ..engine.generic import scan_backward, scan_forward
from .base import Gradient, Layer, Parameter

__all__ = ["RecurrentLayer", "SimpleRNN", "LSTM", "GRU", "CELLS", "make_recurrent"]


def _import_cupy() -> Any:
    import cupy

    return cupy


class RecurrentLayer(Layer):
    """Base of SimpleRNN, LSTM and GRU: input checks, states, forward and backward."""

    _config_keys = (
        "n_features",
        "n_nodes",
        "return_sequences",
        "return_state",
        "go_backwards",
        "return_all_states",
    )
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
        backend: Any = "numpy",
        device: Any = None,
        dtype: Any = None,
        random_state: Any = None,
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
        cell = self._make_cell()
        super().__init__(backend=backend, device=device, dtype=dtype)
        self.n_features = n_features
        self.n_nodes = n_nodes
        self.return_sequences = flags["return_sequences"]
        self.return_state = flags["return_state"]
        self.go_backwards = flags["go_backwards"]
        self.return_all_states = flags["return_all_states"]
        self.random_state = random_state
        self._cell: Cell = cell
        self._param_names = cell.param_names
        rng = np.random.default_rng(random_state)
        init = cell.init_params(n_features, n_nodes, rng)
        self._params = {name: self._backend.from_host(init[name]) for name in cell.param_names}
        self._tape = None
        self._out_shape: tuple[int, ...] | None = None
        self._d_state0: tuple = ()
        #: Backend-specific fast paths (True by default): on NumPy and CuPy, the in-place
        #: loops of anyrnn._inplace (SimpleRNN, LSTM, GRU with reset_after=True; no mask,
        #: no return_all_states); on NumPy otherwise, reused buffers for the generic
        #: scan's temporaries. False: the generic Array API path everywhere. Both give
        #: the same results to rounding (the tests compare them).
        self.use_fast_path = True
        self._workspace: dict = {}

    def _fast_workspace(self) -> dict | None:
        """Reused buffers of the NumPy fast paths (None: take the generic path)."""
        return self._workspace if self.use_fast_path and self._backend.name == "numpy" else None

    def _inplace_plan(self) -> tuple[Any, Any] | None:
        """``(module, kernel)`` when the in-place path applies (module ``numpy`` or
        ``cupy``, the kernel with its fused kernels set), else None."""
        if not self.use_fast_path or self._backend.name not in ("numpy", "cupy"):
            return None
        kernel = _inplace.kernel_for(self._cell)
        if kernel is None:
            return None
        if self._backend.name == "numpy":
            m, kernel.fused = np, _fused.load()
        else:
            m, kernel.fused = _import_cupy(), _fused.load_cupy()
        return m, kernel

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_workspace"] = {}  # scratch buffers: not worth pickling
        state["_tape"] = state["_out_shape"] = None  # a pickle holds the model, not a pass
        return state

    def _make_cell(self) -> Cell:
        return self._cell_for(self.__dict__)

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
    def state_names(self) -> tuple[str, ...]:
        """Names of the state tensors: ``("h",)``, or ``("h", "c")`` for LSTM."""
        return self._cell.state_names

    @property
    def n_outputs(self) -> int:
        """Features per step of the output (``n_nodes``)."""
        return self.n_nodes

    def __repr__(self) -> str:
        flags = "".join(
            f", {k}=True"
            for k in ("return_sequences", "return_state", "go_backwards", "return_all_states")
            if getattr(self, k)
        )
        return (
            f"{type(self).__name__}(n_features={self.n_features}, n_nodes={self.n_nodes}"
            f"{self._extra_repr()}{flags}, backend={self.backend!r}, "
            f"dtype={self._backend.dtype_name!r})"
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

    def _check_mask(self, mask: Any, lengths: Any, batch: int, n_steps: int) -> Any:
        """The boolean (batch, n_sequences) mask on this backend, or None."""
        if mask is not None and lengths is not None:
            raise ValueError("give mask or lengths, not both")
        if lengths is not None:
            lens = np.asarray(
                to_numpy(lengths) if not isinstance(lengths, list | tuple) else lengths
            )
            if lens.dtype.kind not in "iu" or lens.shape != (batch,):
                raise ValueError(
                    f"lengths must be {batch} integers, one per row of X; got dtype {lens.dtype} "
                    f"and shape {lens.shape}"
                )
            bad = np.flatnonzero((lens < 1) | (lens > n_steps))
            if bad.size:
                raise ValueError(
                    f"lengths must be in [1, {n_steps}] (the n_sequences of X); row {bad[0]} has "
                    f"length {lens[bad[0]]}"
                )
            host = np.arange(n_steps)[None, :] < lens[:, None]
        elif mask is not None:
            host = np.asarray(to_numpy(mask) if not isinstance(mask, list | tuple) else mask)
            if host.dtype != np.bool_:
                raise TypeError(
                    f"mask must be a boolean array (True on real steps); got dtype {host.dtype}"
                )
            if host.shape != (batch, n_steps):
                raise ValueError(
                    f"mask must have shape (batch, n_sequences) = {(batch, n_steps)}; got shape {host.shape}"
                )
            empty = np.flatnonzero(~host.any(axis=1))
            if empty.size:
                raise ValueError(
                    f"mask row {empty[0]} has no real step (all False); every sequence needs at least one"
                )
            starts = host.astype(np.int8)
            runs = (np.diff(starts, axis=1) == 1).sum(axis=1) + starts[:, 0]
            holes = np.flatnonzero(runs > 1)
            if holes.size:
                raise ValueError(
                    f"mask row {holes[0]} has a hole in the middle of its sequence "
                    f"({host[holes[0]].astype(int).tolist()}); padding may only sit on the left or "
                    "the right"
                )
        else:
            return None
        if host.all():
            return None  # nothing is padded: the unmasked loop is the same and faster
        return self._backend.from_host(host, dtype=self.xp.bool)

    # the passes -------------------------------------------------------------------
    def forward(self, X: Any, h0: Any = None, *, mask: Any = None, lengths: Any = None) -> Any:
        """Run the layer over a batch of sequences.

        Parameters
        ----------
        X : array of shape (batch, n_sequences, n_features)
            Any array of this layer's library, a NumPy array or nested lists; it is
            moved to the layer's device and cast to its dtype. NaN and inf are not
            checked for: they propagate into the outputs, as in NumPy arithmetic
            (except at masked steps, which they never reach).
        h0 : array of shape (batch, n_nodes), optional
            Initial hidden state (zeros by default).
        mask : bool array of shape (batch, n_sequences), optional
            True on real steps. Padding may sit on the left or the right, not in the
            middle. A masked step carries the state through unchanged; its output is
            zero; its input is never read.
        lengths : int array of shape (batch,), optional
            Shortcut for right padding: row i has ``lengths[i]`` real steps.

        Returns
        -------
        out : array of shape (batch, n_nodes), or (batch, n_sequences, n_nodes) with
            ``return_sequences=True``
            On NumPy, without a mask or ``return_all_states``, the sequence output of
            ``forward`` is a read-only view of the states kept for backward (no copy;
            writing into it would corrupt the gradients): copy it to change it.
            ``infer``'s output is writable.
        Followed by the final state(s) with ``return_state=True`` and by a dict of
        per-step values with ``return_all_states=True``.
        """
        return self._forward(X, (h0,), mask, lengths)

    __call__ = forward

    def infer(self, X: Any, h0: Any = None, *, mask: Any = None, lengths: Any = None) -> Any:
        """Like :meth:`forward`, but keeps nothing for backward: the layer is not changed."""
        return self._forward(X, (h0,), mask, lengths, keep_tape=False)

    def _forward(self, X: Any, init: tuple, mask: Any, lengths: Any, keep_tape: bool = True) -> Any:
        xp = self.xp
        X = self._check_X(X)
        batch, n_steps, _ = X.shape
        names = self._cell.state_names
        state0 = tuple(self._check_state(v, f"{n}0", batch) for v, n in zip(init, names))
        mask = self._check_mask(mask, lengths, batch, n_steps)
        if self.go_backwards:
            X = xp.flip(X, axis=1)
            mask = None if mask is None else xp.flip(mask, axis=1)
        plan = None if mask is not None or self.return_all_states else self._inplace_plan()
        if plan is not None:
            return self._forward_inplace(*plan, X, state0, keep_tape)
        workspace = self._fast_workspace()
        states, final, tape, caches = scan_forward(
            self._cell,
            self.params,
            X,
            state0,
            xp=xp,
            mask=mask,
            keep_tape=keep_tape,
            keep_caches=self.return_all_states,
            workspace=workspace,
        )
        mask3 = None if mask is None else xp.expand_dims(mask, axis=2)

        def seq(arrays: list) -> Any:
            out = xp.stack(arrays, axis=1)
            return out if mask3 is None else xp.where(mask3, out, xp.zeros_like(out))

        out = seq([s[0] for s in states]) if self.return_sequences else final[0]
        result: tuple = (out,)
        if self.return_state:
            result += tuple(final)
        if self.return_all_states:
            values = {n: seq([s[k] for s in states]) for k, n in enumerate(names)}
            gates = [self._cell.step_values(c, xp=xp) for c in caches]
            for n in self._cell.value_names:
                values[n] = seq([g[n] for g in gates])
            result += (values,)
        if keep_tape:
            self._tape = tape
            self._out_shape = tuple(out.shape)
        return result[0] if len(result) == 1 else result

    def _on_device(self, fn: Any, *args: Any) -> Any:
        """Run ``fn`` with this layer's CuPy device current (CuPy allocates there)."""
        if self._backend.name != "cupy":
            return fn(*args)
        with self.device:
            return fn(*args)

    def _forward_inplace(self, m: Any, kernel: Any, X: Any, state0: tuple, keep_tape: bool) -> Any:
        """The in-place NumPy/CuPy path (:mod:`anyrnn._inplace`); the generic scan's results."""
        tape = self._on_device(_inplace.forward, m, kernel, self.params, X, state0, self._workspace)
        bufs = tape.state_buffers()
        finals = tuple(b[-1].copy() for b in bufs)  # final states never alias the tape
        if not self.return_sequences:
            out = finals[0]
        elif m is np:
            # The states kept for backward, without a copy: a view the caller cannot
            # write to (a write would corrupt the gradients). Copy it to change it.
            out = bufs[0][1:].transpose(1, 0, 2)
            out.flags.writeable = not keep_tape
        else:
            out = m.ascontiguousarray(bufs[0][1:].transpose(1, 0, 2))  # CuPy: no read-only views
        result = (out,) + finals if self.return_state else out
        if keep_tape:
            self._tape = tape
            self._out_shape = tuple(out.shape)
        return result

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
        dX : array of shape (batch, n_sequences, n_features)
            In input order (also with ``go_backwards``); zero at masked steps.
        """
        return self._backward(d_out, (dh_last,))

    def _backward(self, d_out: Any, d_last: tuple) -> Any:
        name = type(self).__name__
        if self._tape is None:
            raise RuntimeError(
                f"{name}.backward() was called before forward(): there is no forward pass to "
                "differentiate"
            )
        xp = self.xp
        d_out = self._backend.asarray(d_out, name="d_out")
        if tuple(d_out.shape) != self._out_shape:
            raise ValueError(
                f"d_out must have the shape of forward's output {self._out_shape}; got shape "
                f"{tuple(d_out.shape)}"
            )
        names = self._cell.state_names
        batch = self._out_shape[0]
        checked = []
        for value, n in zip(d_last, names):
            if value is not None and not self.return_state:
                raise ValueError(
                    f"d{n}_last is the gradient on a returned final state: this {name} has "
                    "return_state=False"
                )
            checked.append(None if value is None else self._check_state(value, f"d{n}_last", batch))
        if self.return_sequences:
            d_hs, d_final = d_out, tuple(checked)
        else:
            d_hs = None
            d_final = (d_out if checked[0] is None else d_out + checked[0],) + tuple(checked[1:])
        if isinstance(self._tape, _inplace.Tape):
            m = np if self._backend.name == "numpy" else _import_cupy()  # as forward took
            dX, d_state0, grads = self._on_device(
                _inplace.backward, m, self._tape, d_hs, d_final, self._workspace
            )
        else:
            dX, d_state0, grads = scan_backward(
                self._cell, self._tape, d_hs, d_final, xp=xp, workspace=self._fast_workspace()
            )
        if self.go_backwards:
            dX = xp.flip(dX, axis=1)
        self._grads = {n: grads[n] for n in self._param_names}
        self._d_state0 = d_state0
        return dX

    @property
    def dh0(self) -> Any:
        """Gradient on the initial hidden state from the last backward (None before)."""
        return self._d_state0[0] if self._d_state0 else None


_LAYER_DOC = """
    Parameters
    ----------
    n_features : int
        Features per time step.
    n_nodes : int
        Hidden units.{extra}
    return_sequences, return_state, go_backwards, return_all_states : bool
        See :mod:`anyrnn.recurrent`.
    backend : str or namespace
        ``"numpy"`` (default), ``"cupy"``, ``"torch"``, ``"jax"``, ``"array_api_strict"``,
        ``"auto"``, or an array namespace. Fixed for the layer's life.
    device : optional
        A device of that backend (default: the backend's default).
    dtype : {{"float32", "float64"}} or None
        None: float32, or the dtype of ``backend`` when that is a resolved Backend.
    random_state : None, int or numpy.random.Generator
        Seeds the initial weights, drawn on the host with NumPy and then moved, so the
        same seed gives bit-identical weights on every backend. ``W_x`` is
        Glorot-uniform, ``W_h`` orthogonal, biases zero{bias_note} (the Keras defaults).
"""


@io.register
class SimpleRNN(RecurrentLayer):
    """A fully connected recurrent layer with hand-written BPTT.

    ``a_t = x_t·W_x + h_{t-1}·W_h + B``,  ``h_t = tanh(a_t)`` (or relu).
    {doc}
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

    def __init__(
        self,
        n_features: int,
        n_nodes: int,
        *,
        activation: str = "tanh",
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        return_all_states: bool = False,
        backend: Any = "numpy",
        device: Any = None,
        dtype: Any = None,
        random_state: Any = None,
    ):
        self.activation = activation
        super().__init__(
            n_features,
            n_nodes,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            return_all_states=return_all_states,
            backend=backend,
            device=device,
            dtype=dtype,
            random_state=random_state,
        )

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
    beside ``dh0`` and takes ``dc_last`` with ``return_state=True``.
    {doc}
    Attributes
    ----------
    W_x : array of shape (n_features, 4·n_nodes)
    W_h : array of shape (n_nodes, 4·n_nodes)
    B : array of shape (4·n_nodes,)
    dW_x, dW_h, dB, dh0, dc0 : arrays
    """

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
    {doc}
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
    dB_h = Gradient("B_h")

    def __init__(
        self,
        n_features: int,
        n_nodes: int,
        *,
        reset_after: bool = True,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        return_all_states: bool = False,
        backend: Any = "numpy",
        device: Any = None,
        dtype: Any = None,
        random_state: Any = None,
    ):
        self.reset_after = check_bool(reset_after, "reset_after")
        super().__init__(
            n_features,
            n_nodes,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            return_all_states=return_all_states,
            backend=backend,
            device=device,
            dtype=dtype,
            random_state=random_state,
        )

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


def _fill_doc(cls: type, extra: str = "", bias_note: str = "") -> None:
    if cls.__doc__:  # None under python -OO
        cls.__doc__ = cls.__doc__.replace(
            "{doc}", _LAYER_DOC.format(extra=extra, bias_note=bias_note)
        )


_fill_doc(SimpleRNN, extra='\n    activation : {"tanh", "relu"}')
_fill_doc(LSTM, bias_note=", but the forget-gate bias, which is 1")
_fill_doc(
    GRU,
    extra="\n    reset_after : bool\n        cuDNN/PyTorch form (default) or the original one.",
)

#: recurrent layer classes by the ``cell=`` name the estimators take
CELLS: dict[str, type[RecurrentLayer]] = {"simple": SimpleRNN, "lstm": LSTM, "gru": GRU}


def make_recurrent(cell: str, n_features: int, n_nodes: int, **kwargs: Any) -> RecurrentLayer:
    """A recurrent layer by cell name (``"simple"``, ``"lstm"``, ``"gru"``).

    ``activation`` is used by the simple cell only.
    """
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}; got cell={cell!r}")
    if cell != "simple":
        kwargs.pop("activation", None)
    return CELLS[cell](n_features, n_nodes, **kwargs)
