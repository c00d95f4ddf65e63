"""Plumbing shared by every layer: backend, named parameters, gradients, validation."""

from __future__ import annotations

import numbers
from typing import Any

from ._backend import Backend, resolve_backend

__all__ = ["Layer", "Parameter", "Gradient", "check_positive_int", "check_bool"]


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an int, or ``ValueError`` naming ``name`` and the value received."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {name}={value!r}")
    return int(value)


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {name}={value!r}")
    return value


class Parameter:
    """A settable parameter attribute (``layer.W_x = w``).

    Assigning converts the value to the layer's backend, device and dtype after
    checking its shape; a rejected value leaves the layer unchanged.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return obj._params[self.name]

    def __set__(self, obj: Any, value: Any) -> None:
        obj._set_param(self.name, value)


class Gradient:
    """Read-only gradient attribute (``layer.dW_x``): None until ``backward`` ran."""

    def __init__(self, param: str):
        self.param = param

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return obj._grads.get(self.param)


class Layer:
    """Base of every layer: a fixed :class:`~anyrnn.Backend` and named parameters."""

    _param_names: tuple[str, ...] = ()
    #: constructor arguments that describe the architecture (saved in model files)
    _config_keys: tuple[str, ...] = ()

    def __init__(self, *, backend: Any = "numpy", device: Any = None, dtype: Any = None):
        self._backend: Backend = resolve_backend(backend, device, dtype)
        self._params: dict[str, Any] = {}
        self._grads: dict[str, Any] = {}

    # the backend ---------------------------------------------------------------
    @property
    def backend(self) -> str:
        """Name of the backend (``"numpy"``, ``"cupy"``, ...)."""
        return self._backend.name

    @property
    def xp(self) -> Any:
        """The array namespace every array of this layer belongs to."""
        return self._backend.xp

    @property
    def device(self) -> Any:
        return self._backend.device

    @property
    def dtype(self) -> Any:
        return self._backend.dtype

    # parameters ----------------------------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        """Parameters by attribute name (a new dict; the arrays are the layer's own)."""
        return {name: self._params[name] for name in self._param_names}

    @property
    def grads(self) -> dict[str, Any]:
        """Gradients from the last ``backward``, keyed like :attr:`params` (empty before)."""
        return dict(self._grads)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def _set_param(self, name: str, value: Any) -> None:
        arr = self._backend.asarray(value, name=name)
        expected = self.param_shapes()[name]
        if tuple(arr.shape) != expected:
            raise ValueError(
                f"{name} of {type(self).__name__} must have shape {expected}; "
                f"got shape {tuple(arr.shape)}"
            )
        self._params[name] = arr

    def set_params_from(self, values: dict[str, Any]) -> None:
        """Assign several parameters at once, all or none."""
        unknown = set(values) - set(self._param_names)
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {sorted(unknown)} for {type(self).__name__}; "
                f"expected names from {list(self._param_names)}"
            )
        old = dict(self._params)
        try:
            for name, value in values.items():
                self._set_param(name, value)
        except Exception:
            self._params = old
            raise

    def save(self, path: Any) -> None:
        """Save the layer's architecture and parameters (see :func:`anyrnn.load`)."""
        from .io import save

        save(self, path)

    def update(self, lr: float) -> None:
        """Plain gradient step ``p <- p - lr * dp`` (optimizers live in anyrnn.optimizers)."""
        if not self._grads:
            raise RuntimeError(
                f"{type(self).__name__}.update() needs gradients: call backward() first"
            )
        self._params = {k: v - lr * self._grads[k] for k, v in self._params.items()}
