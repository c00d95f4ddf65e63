"""The saveable classes, by name: :mod:`anyrnn.io` imports none of them.

This package knows no model class. Every saveable class registers itself by name
(:func:`register`) and describes itself through these methods:

* ``get_config()``: its constructor arguments, as JSON;
* ``_saved_state()``: fitted scalars (estimators; ``{}`` for layers);
* ``_saved_arrays()``: its arrays, as NumPy arrays keyed by name;
* ``_array_specs(config, state)`` (classmethod): the name -> shape of every parameter
  array that configuration has, computed from the configuration alone, without
  building anything;
* ``_from_saved(config, state, arrays, backend)`` (classmethod): the object rebuilt
  with those arrays (no random initialisation);
* optionally ``_check_savable_config()``: ``ValueError`` when the configuration no longer
  describes the object's arrays in a way their shapes cannot show (an estimator whose
  ``activation`` was changed with ``set_params`` after fit).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: saveable classes by name (filled by :func:`register`)
_REGISTRY: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: ``cls`` can be saved and is loaded back by its name."""
    _REGISTRY[cls.__name__] = cls
    return cls


def registered(name: Any, allowed: tuple[str, ...] | None = None) -> type:
    """The registered class called ``name`` (``ValueError`` if it is not one, or not allowed)."""
    if not isinstance(name, str) or name not in _REGISTRY or (allowed and name not in allowed):
        choices = sorted(allowed or _REGISTRY)
        raise ValueError(f"unknown model class {name!r}; expected one of {choices}")
    return _REGISTRY[name]


def json_value(value: Any, name: str) -> Any:
    """``value`` as JSON (numbers, strings, None, lists), or ``ValueError`` naming it."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [json_value(v, name) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: json_value(v, f"{name}.{k}") for k, v in value.items()}
    raise ValueError(f"{name}={value!r} cannot be saved (only numbers, strings, None and lists)")
