"""What a recurrent cell is: its gates, states and parameters, and one time step.

A cell keeps no arrays. Its parameters come in as a dict; everything a step's backward
needs goes into the step's ``cache`` (a dict of named values). The elementwise
arithmetic of a step is a function of :mod:`anyrnn.cells.pointwise`; a cell adds the
matmuls, the slicing into gate blocks and the gate layout around it.

Shapes: ``n_gates`` blocks of ``n_nodes`` columns, in the order of ``gates``:
``W_x`` is ``(n_features, n_gates·n_nodes)``, ``W_h`` is ``(n_nodes, n_gates·n_nodes)``,
``B`` (and a recurrent bias ``B_h``) ``(n_gates·n_nodes,)``.

A standard cell declares ``gates``, ``sigmoid_gates``, ``state_names`` and the names of
its ``forward_program``/``backward_program`` in :mod:`~anyrnn.cells.pointwise`, and the
base class does the rest by the naming conventions described there: ``a_<gate>`` is a
block of the input side ``x_t·W_x + B``, ``w_<gate>`` of the recurrent product
``h_{t-1}·W_h`` (``a``/``w`` for a one-gate cell), ``b_<gate>`` of ``B_h``,
``<state>_prev`` a previous state; backward parameters named after a forward value are
that value, ``dh_mm`` the gradient through ``W_h`` from the next step, ``dy`` the
output's, and any other ``d*`` parameter a gradient the cell carries from step to step
(returned again as ``<name>_prev``); ``da_<gate>`` and ``du_<gate>`` are the gradients on
the input side and (where they differ) on the recurrent product. The in-place engines
read the same declarations (:mod:`anyrnn.engine.inplace`).

Every sigmoid gate's weight and bias columns are scaled by 0.5 once per pass
(:meth:`Cell.prepare`), which is exact, so a single ``tanh`` gives every gate:
``σ(z) = ½·tanh(z/2) + ½``.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import array_api_compat
import numpy as np

from . import pointwise
from .init import glorot_uniform, orthogonal
from .language import program

__all__ = ["Cell", "CONSTANTS", "constants"]

#: scalar parameters of the step functions, and their values
CONSTANTS = {"half": 0.5, "one": 1.0, "zero": 0.0}


@functools.cache
def constants(dtype: Any) -> dict:
    """:data:`CONSTANTS` as NumPy scalars of ``dtype`` (what the kernels are passed)."""
    return {k: np.dtype(dtype).type(v) for k, v in CONSTANTS.items()}


class Cell:
    """Base class: one time step's forward and backward (see the module docstring)."""

    #: the registry name (``"simple"``, ``"lstm"``, ``"gru"``)
    name: str = ""
    gates: tuple[str, ...] = ("",)
    sigmoid_gates: tuple[str, ...] = ()
    state_names: tuple[str, ...] = ("h",)
    param_names: tuple[str, ...] = ("W_x", "W_h", "B")
    #: per-step values ``return_all_states`` shows besides the states
    value_names: tuple[str, ...] = ()
    #: step functions of :mod:`anyrnn.cells.pointwise` (None: the cell overrides
    #: :meth:`step`/:meth:`step_backward` and the in-place engines cannot run it)
    forward_program: str | None = None
    backward_program: str | None = None

    # two cells of one class with the same step functions and parameters are the same
    def _key(self) -> tuple:
        return (type(self), self.forward_program, self.backward_program, self.param_names)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cell) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    # parameters -----------------------------------------------------------------
    @property
    def n_gates(self) -> int:
        return len(self.gates)

    def param_shapes(self, n_features: int, n_nodes: int) -> dict[str, tuple[int, ...]]:
        g = self.n_gates * n_nodes
        shapes = {"W_x": (n_features, g), "W_h": (n_nodes, g), "B": (g,), "B_h": (g,)}
        return {k: shapes[k] for k in self.param_names}

    def init_params(
        self, n_features: int, n_nodes: int, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Initial float64 host arrays: Glorot-uniform W_x, orthogonal W_h, zero biases."""
        shapes = self.param_shapes(n_features, n_nodes)
        p = {"W_x": glorot_uniform(rng, shapes["W_x"]), "W_h": orthogonal(rng, shapes["W_h"])}
        p.update({k: np.zeros(shapes[k]) for k in self.param_names if k.startswith("B")})
        return p

    def gate_scale(self, n_nodes: int) -> np.ndarray | None:
        """Column scale: 0.5 on the sigmoid gates, 1 elsewhere (None: no sigmoid gate)."""
        if not self.sigmoid_gates:
            return None
        return np.repeat([0.5 if g in self.sigmoid_gates else 1.0 for g in self.gates], n_nodes)

    def block(self, gate: str) -> int:
        return self.gates.index(gate)

    # conventions ----------------------------------------------------------------------
    def carries(self) -> tuple[str, ...]:
        """Gradients carried from step to step besides ``dh_mm`` (e.g. LSTM's ``dc``)."""
        if self.backward_program is None:
            return ()
        params = _params(self.backward_program)
        known = set(self.state_names) | set(self.gates) | {"dh_mm", "dy"}
        return tuple(p for p in params if p.startswith("d") and p not in known)

    def has_u(self) -> bool:
        """Whether the recurrent product's gradient differs from the input side's."""
        return any(name.startswith("du_") for name in _returns(self.backward_program))

    def stored(self) -> tuple[str, ...]:
        """Forward outputs kept for backward that are neither gates nor states."""
        known = set(self.gates) | set(self.state_names)
        return tuple(v for v in _returns(self.forward_program) if v not in known)

    # forward --------------------------------------------------------------------
    def prepare(self, p: dict, *, xp: Any) -> dict:
        """What every step of a pass uses, made once: the sigmoid gates' columns scaled
        by 0.5, the constants as 0-D arrays of the parameters' dtype and device, and the
        transposed weights the reverse pass multiplies by."""
        w = p["W_h"]
        q = dict(p)
        n = w.shape[0]
        scale = self.gate_scale(n)
        if scale is not None:
            s = _like(xp, scale, w)
            for k in ("W_x", "W_h", "B", "B_h"):
                if k in q:
                    q[k] = p[k] * s
        q.update({k: _like(xp, np.asarray(v), w) for k, v in CONSTANTS.items()})
        q["W_hT"] = xp.matrix_transpose(w)
        q["W_xT"] = xp.matrix_transpose(p["W_x"])
        return q

    def project(self, q: dict, x2: Any, *, xp: Any) -> Any:
        """Input side of every step at once: ``(N, n_features) -> (N, n_gates·n_nodes)``."""
        return x2 @ q["W_x"] + q["B"]

    def _blocks(self, a: Any, prefix: str) -> dict:
        n = a.shape[1] // self.n_gates
        if self.n_gates == 1:
            return {prefix: a}
        return {f"{prefix}_{g}": a[:, k * n : (k + 1) * n] for k, g in enumerate(self.gates)}

    def step(self, q: dict, a: Any, state: tuple, *, xp: Any) -> tuple[tuple, dict]:
        """One step: ``(a_t, state_{t-1}) -> (state_t, cache_t)``; ``a_t`` from :meth:`project`."""
        prev = {f"{s}_prev": v for s, v in zip(self.state_names, state)}
        w = state[0] @ q["W_h"]  # the recurrent product h_{t-1}·W_h
        values = {**self._blocks(a, "a"), **self._blocks(w, "w"), **prev}
        if "B_h" in q:
            values.update(self._blocks(xp.reshape(q["B_h"], (1, -1)), "b"))
        out = _call(self.forward_program, values, q, xp)
        cache = {**prev, **out}
        return tuple(out[s] for s in self.state_names), cache

    # backward -------------------------------------------------------------------
    def step_backward(
        self, q: dict, cache: dict, carries: tuple, dy: Any, *, xp: Any
    ) -> tuple[Any, Any, tuple]:
        """Reverse of :meth:`step`.

        ``carries`` is ``(dh_mm, *self.carries())`` as the next step left them. Returns
        ``(d_a, d_u, carries_before)``: the gradient on the input side ``a_t`` (all gate
        blocks), the one on the recurrent product (what multiplies into ``W_h``; the same
        array when they agree), and the carries for step t-1.
        """
        names = self.carries()
        values = {**cache, **dict(zip(("dh_mm",) + names, carries)), "dy": dy}
        out = _call(self.backward_program, values, q, xp)
        d_a = self._join(out, "da", xp)
        d_u = self._join(out, "du", xp) if self.has_u() else d_a
        dh_mm = d_u @ q["W_hT"]  # w = h_{t-1}·W_h
        return d_a, d_u, (dh_mm,) + tuple(out[f"{c}_prev"] for c in names)

    def _join(self, out: dict, prefix: str, xp: Any) -> Any:
        if self.n_gates == 1:
            return out[prefix]
        return xp.concat([out[f"{prefix}_{g}"] for g in self.gates], axis=1)

    def state_grads(self, q: dict, carries: tuple, *, xp: Any) -> tuple:
        """The gradients on the initial state from the carries left after step 0."""
        by_name = dict(zip(self.carries(), carries[1:]))
        return (carries[0],) + tuple(by_name[f"d{s}"] for s in self.state_names[1:])

    def recurrent_grads(self, h_prev2: Any, cached: Any, d_u2: Any, *, xp: Any) -> dict:
        """Gradients of the recurrent parameters from the stacked deltas (one matmul).

        ``h_prev2`` is ``(N, n_nodes)``: every step's previous hidden state, stacked
        time-major; ``d_u2`` is ``(N, n_gates·n_nodes)`` in the same order; ``cached(name)``
        stacks a value of the steps' caches the same way.
        """
        grads = {"W_h": xp.matrix_transpose(h_prev2) @ d_u2}  # w = h_{t-1}·W_h
        if "B_h" in self.param_names:
            grads["B_h"] = xp.sum(d_u2, axis=0)
        return grads


def _like(xp: Any, host: np.ndarray, ref: Any) -> Any:
    """``host`` as an array of ``ref``'s namespace, dtype and device."""
    return xp.asarray(host, dtype=ref.dtype, device=array_api_compat.device(ref))


@functools.cache
@functools.cache
def _params(prog: str | None) -> tuple[str, ...]:
    """The step function's parameters after ``m`` (read once per program: every time step
    of the generic engine asks)."""
    if prog is None:
        return ()
    return tuple(inspect.signature(pointwise.FUNCTIONS[prog]).parameters)[1:]


@functools.cache
def _returns(prog: str | None) -> tuple[str, ...]:
    if prog is None:
        return ()
    return program(prog).returns


def _call(prog: str, values: dict, q: dict, xp: Any) -> dict:
    """Run ``pointwise.<prog>`` on named values (constants from ``q``)."""
    fn = pointwise.FUNCTIONS[prog]
    args = [values[p] if p in values else q[p] for p in _params(prog)]
    out = fn(xp, *args)
    out = out if isinstance(out, tuple) else (out,)
    return dict(zip(_returns(prog), out))
