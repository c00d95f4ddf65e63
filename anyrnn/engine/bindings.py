"""Where the values of a step function live in the in-place engine's buffers.

A :class:`Binding` gives each parameter and returned value of a step function of
:mod:`anyrnn.cells.pointwise` a :class:`Ref`: a column block of a named buffer, at step
``t + time`` or not. The in-place engine lays its buffers out this way
(:mod:`anyrnn.engine.inplace`); the generators (:mod:`anyrnn.engine.codegen`,
:mod:`anyrnn.engine.loops`, :mod:`anyrnn.engine.cudagen`) read them. Which value goes
where follows the naming conventions of :mod:`anyrnn.cells.base`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..cells.base import CONSTANTS, Cell, _params, _returns
from ..cells.language import ProgramError

__all__ = ["Binding", "Ref", "backward_binding", "forward_binding"]


@dataclass(frozen=True)
class Ref:
    """Where a value lives: a column block of a buffer, at a step or not.

    ``buf`` names an array of shape ``(steps, rows, width·n)`` when ``time`` is set (the
    value is at index ``t + time``), ``(rows, width·n)`` when it is None, and
    ``(width·n,)`` for a ``vector`` (broadcast over rows). ``block`` is the column block,
    in units of ``n``. A ``const`` is a scalar argument (``half``, ``one``, ``zero``).
    """

    buf: str
    block: int = 0
    time: int | None = None
    vector: bool = False
    const: bool = False
    writable: bool = False  # may hold another value (scratch, or consumed)

    def key(self) -> tuple:
        return (self.buf, self.block, self.time, self.vector)


@dataclass
class Binding:
    """Refs of a program's parameters and returned values, and the buffers' widths."""

    params: dict[str, Ref]
    returns: tuple[Ref, ...]
    widths: dict[str, int]  # buffer -> number of column blocks

    def signature(self) -> tuple:
        """A hashable form (for caches keyed by binding); :meth:`from_signature` undoes it."""
        return (
            tuple(sorted((k, v) for k, v in self.params.items())),
            self.returns,
            tuple(sorted(self.widths.items())),
        )

    @classmethod
    def from_signature(cls, signature: tuple) -> Binding:
        params, returns, widths = signature
        return cls(dict(params), returns, dict(widths))


def _gate_block(cell: Cell, name: str, prefix: str) -> int | None:
    """The gate block a parameter ``<prefix>_<gate>`` (or ``<prefix>``) refers to."""
    if cell.n_gates == 1 and name == prefix:
        return 0
    if name.startswith(prefix + "_") and name[len(prefix) + 1 :] in cell.gates:
        return cell.block(name[len(prefix) + 1 :])
    return None


def forward_binding(cell: Cell) -> Binding:
    """Where every parameter and returned value of the forward program lives."""
    G = cell.n_gates
    params: dict[str, Ref] = {}
    for p in _params(cell.forward_program):
        if p in CONSTANTS:
            params[p] = Ref(p, const=True)
        elif (k := _gate_block(cell, p, "a")) is not None:
            params[p] = Ref("gates", k, time=0, writable=True)
        elif (k := _gate_block(cell, p, "w")) is not None:
            params[p] = Ref("w", k, writable=True)
        elif (k := _gate_block(cell, p, "b")) is not None:
            params[p] = Ref("bias", k, vector=True)
        elif p.endswith("_prev") and p[:-5] in cell.state_names:
            params[p] = Ref(p[:-5], 0, time=0)
        else:
            raise ProgramError(f"{cell.forward_program}: no in-place place for {p!r}")
    returns = []
    for v in _returns(cell.forward_program):
        if v in cell.gates:
            returns.append(Ref("gates", cell.block(v), time=0, writable=True))
        elif v in cell.state_names:
            returns.append(Ref(v, 0, time=1, writable=True))
        else:
            returns.append(Ref(v, 0, time=0, writable=True))
    widths = {"gates": G, "w": G, "bias": G}
    widths.update({r.buf: 1 for r in list(params.values()) + returns if r.buf not in widths})
    return Binding(params, tuple(returns), widths)


def backward_binding(cell: Cell, dy_steps: bool) -> Binding:
    """Where every parameter and returned value of the backward program lives."""
    carries = cell.carries()
    params: dict[str, Ref] = {}
    for p in _params(cell.backward_program):
        if p in CONSTANTS:
            params[p] = Ref(p, const=True)
        elif p in cell.gates:
            params[p] = Ref("gates", cell.block(p), time=0)
        elif p in cell.state_names:
            params[p] = Ref(p, 0, time=1)
        elif p.endswith("_prev") and p[:-5] in cell.state_names:
            params[p] = Ref(p[:-5], 0, time=0)
        elif p in cell.stored():
            params[p] = Ref(p, 0, time=0)
        elif p == "dh_mm":
            params[p] = Ref("dh", 0, writable=True)
        elif p == "dy":
            params[p] = Ref("dy", 0, time=0 if dy_steps else None)
        elif p in carries:
            params[p] = Ref(p, 0, writable=True)
        else:
            raise ProgramError(f"{cell.backward_program}: no in-place place for {p!r}")
    returns = []
    for v in _returns(cell.backward_program):
        if (k := _gate_block(cell, v, "da")) is not None:
            returns.append(Ref("dz", k, writable=True))
        elif (k := _gate_block(cell, v, "du")) is not None:
            returns.append(Ref("du", k, writable=True))
        elif v.endswith("_prev") and v[:-5] in carries:
            returns.append(Ref(v[:-5], 0, writable=True))
        else:
            raise ProgramError(f"{cell.backward_program}: no in-place place for {v!r}")
    G = cell.n_gates
    widths = {"gates": G, "dz": G, "du": G}
    widths.update({r.buf: 1 for r in list(params.values()) + returns if r.buf not in widths})
    return Binding(params, tuple(returns), widths)


@functools.cache
def _bindings(cell: Cell) -> dict:
    """The cell's bindings, made once per kind of cell (cells are hashable by their
    configuration): forward, and backward with and without per-step output gradients."""
    return {
        "forward": (cell.forward_program, forward_binding(cell)),
        "backward": (cell.backward_program, backward_binding(cell, True)),
        "backward-last": (cell.backward_program, backward_binding(cell, False)),
    }
