"""Engines: the one place that decides how a recurrent layer's pass runs.

* :class:`~anyrnn.engine.inplace.InplaceEngine`: NumPy and CuPy, preallocated buffers,
  kernels generated from the cells' step functions;
* :class:`~anyrnn.engine.jaxjit.JaxJitEngine`: JAX, the generic engine traced and
  compiled by ``jax.jit``;
* :class:`~anyrnn.engine.generic.GenericEngine`: every backend, cell and option (masks,
  ``return_all_states``), in Array API calls only, run eagerly.

:func:`select` asks each engine in turn whether it can run the call; an engine that
cannot says why, and the next one is used. A layer's ``fast_path`` option decides how
far down it may go: ``"auto"`` (the first that can), ``True`` (the in-place engine or,
on JAX, the jitted one, else an error naming why not), ``False`` (the generic engine,
eagerly).

A :class:`Tape` is what a forward pass keeps for its backward: the engine that ran it,
the parameters it used, and that engine's own record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..cells.base import Cell
from .generic import GenericEngine
from .inplace import InplaceEngine
from .jaxjit import JaxJitEngine

__all__ = ["GENERIC", "INPLACE", "JAX_JIT", "FastPathError", "Tape", "select", "FAST_PATH_CHOICES"]

INPLACE = InplaceEngine()
JAX_JIT = JaxJitEngine()
GENERIC = GenericEngine()
FAST_PATH_CHOICES = ("auto", True, False)


class FastPathError(ValueError):
    """``fast_path=True`` was asked for a call the in-place engine cannot run."""


@dataclass
class Tape:
    """What backward needs from one forward pass."""

    engine: Any
    cell: Cell
    params: dict  # the parameters as they were during the forward pass
    shape: tuple[int, int, int]  # (batch, n_steps, n_features)
    data: Any  # the engine's own record


def select(cell: Cell, backend: Any, fast_path: Any, *, masked: bool, all_states: bool) -> Any:
    """The engine for one pass (see the module docstring)."""
    if fast_path is False:
        return GENERIC
    reasons = []
    for engine in (INPLACE, JAX_JIT):  # the compiled ones, in order of preference
        why = engine.unsupported(cell, backend, masked=masked, all_states=all_states)
        if why is None:
            return engine
        reasons.append(f"the {engine.name} engine cannot run this call: {why}")
    if fast_path is True:
        raise FastPathError("fast_path=True, but " + "; ".join(reasons))
    return GENERIC
