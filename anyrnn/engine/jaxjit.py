"""The generic engine traced by ``jax.jit``: compiled forward and BPTT on the JAX backend.

Eagerly, JAX dispatches every small operation of the generic engine's loops on its own
(2–30× slower than NumPy). Here the same two functions, :meth:`GenericEngine.forward
<anyrnn.engine.generic.GenericEngine.forward>` and ``backward``, hand-written BPTT
included, are traced by ``jax.jit`` and compiled by XLA as a whole, their time loops run
by ``jax.lax.scan`` (the step traced once, not unrolled: compiling takes seconds, not
minutes). A traced function is kept per cell kind (class and options) and output
option; ``jax.jit`` keeps one compiled program per input shape and dtype (a new batch
size or sequence length compiles again).

If tracing fails (a cell whose step needs concrete values), the call runs eagerly
instead, and that cell kind stays eager.
"""

from __future__ import annotations

from typing import Any

from ..cells.base import Cell
from .generic import GenericEngine

__all__ = ["JaxJitEngine"]


def lax_scan(body: Any, carry: Any, xs: tuple, n_steps: int, reverse: bool = False) -> tuple:
    import jax

    return jax.lax.scan(body, carry, xs, length=n_steps, reverse=reverse)


_GENERIC = GenericEngine()  # eager, the fallback
_SCANNED = GenericEngine(scan=lax_scan)  # traced


_PLAIN = (str, bool, int, float, tuple, type(None))


def _cell_key(cell: Cell) -> tuple:
    """What makes two cells compute alike: their class and every attribute. A traced
    function captures the first cell of its key, so nothing may be left out of it: an
    attribute that is not a plain value makes the key ``(class, None)``, which the engine
    runs eagerly (its cells cannot be told apart)."""
    options = tuple(sorted(vars(cell).items()))
    try:
        hash(options)
    except TypeError:
        return (type(cell), None)
    if not all(isinstance(v, _PLAIN) for _, v in options):
        return (type(cell), None)
    return (type(cell), options)


_TRACED: dict[tuple, Any] = {}


def _forward(engine: GenericEngine, cell: Cell, backend: Any, keep_tape: bool, all_states: bool):
    """``engine``'s forward for one cell and output option, as a function of the arrays."""

    def forward(params: dict, X: Any, state0: tuple, mask: Any) -> tuple:
        return engine.forward(
            cell,
            backend,
            params,
            X,
            state0,
            mask=mask,
            keep_tape=keep_tape,
            all_states=all_states,
            workspace=None,
        )

    return forward


def _backward(engine: GenericEngine, cell: Cell, backend: Any):
    """``engine``'s BPTT for one cell, as a function of the arrays (``shape`` static)."""

    def backward(params: dict, shape: tuple, tape: dict, d_seq: Any, d_finals: tuple):
        return engine.backward(cell, backend, params, shape, tape, d_seq, d_finals, None)

    return backward


def _traced(cell: Cell, backend: Any, keep_tape: bool, all_states: bool) -> Any:
    """The jitted forward for cells like ``cell`` (one per cell kind and options)."""
    key = ("forward", _cell_key(cell), backend, keep_tape, all_states)
    if key not in _TRACED:
        import jax

        _TRACED[key] = jax.jit(_forward(_SCANNED, cell, backend, keep_tape, all_states))
    return _TRACED[key]


def _traced_backward(cell: Cell, backend: Any) -> Any:
    """The jitted BPTT for cells like ``cell``."""
    key = ("backward", _cell_key(cell), backend)
    if key not in _TRACED:
        import jax

        _TRACED[key] = jax.jit(_backward(_SCANNED, cell, backend), static_argnums=1)
    return _TRACED[key]


class JaxJitEngine:
    """The generic engine, compiled by ``jax.jit`` (JAX backend only)."""

    name = "jax-jit"

    def __init__(self) -> None:
        self.eager: dict[tuple, str] = {}  # cell kinds that failed to trace, and why

    def unsupported(
        self, cell: Cell, backend: Any, *, masked: bool, all_states: bool
    ) -> str | None:
        if backend.name != "jax":
            return f"it runs on JAX, and this layer's backend is {backend.name}"
        key = _cell_key(cell)
        if key[1] is None:
            return f"{type(cell).__name__} has an attribute that is not a plain value"
        return self.eager.get(key)

    def _run(self, cell: Cell, traced: Any, eager: Any, *args: Any) -> Any:
        """``traced(*args)``; ``eager(*args)`` for a cell kind that cannot be traced."""
        import jax

        key = _cell_key(cell)
        if key not in self.eager:
            try:
                return traced(*args)
            except jax.errors.JAXTypeError as exc:  # needs concrete values: run eagerly
                self.eager[key] = f"{type(exc).__name__} while tracing"
        return eager(*args)

    def forward(
        self,
        cell: Cell,
        backend: Any,
        params: dict,
        X: Any,
        state0: tuple,
        *,
        mask: Any,
        keep_tape: bool,
        all_states: bool,
        workspace: Any,
    ) -> tuple:
        keep_tape, all_states = bool(keep_tape), bool(all_states)
        traced = _traced(cell, backend, keep_tape, all_states)
        eager = _forward(_GENERIC, cell, backend, keep_tape, all_states)
        return self._run(cell, traced, eager, params, X, tuple(state0), mask)

    def backward(
        self,
        cell: Cell,
        backend: Any,
        params: dict,
        shape: tuple,
        tape: dict,
        d_seq: Any,
        d_finals: tuple,
        workspace: Any,
    ) -> tuple:
        traced = _traced_backward(cell, backend)
        eager = _backward(_GENERIC, cell, backend)
        return self._run(cell, traced, eager, params, tuple(shape), tape, d_seq, tuple(d_finals))
