"""Plumbing shared by every layer: backend, named parameters, gradients, saving."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .. import io
from .._checks import check_real
from ..backend import Backend, resolve_backend, to_numpy
from ..cells.init import zero_init

__all__ = ["Layer", "Parameter", "Gradient", "on_device"]


def on_device(method: Any) -> Any:
    """Run a method with its object's device current (CuPy launches every kernel on the
    current device, whatever arrays it is given): ``device=1`` is honoured by every
    operation of the call, not only by the arrays the object creates.

    The object's ``_backend`` says which: a layer's own, or a fitted estimator's model's
    (its predict, predict_proba, score and saving use this too)."""

    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        return self._backend.run(method, self, *args, **kwargs)

    return run


class Parameter:
    """A settable parameter attribute (``layer.W_x = w``).

    Assigning copies the value into the layer's backend, device and dtype after
    checking its shape (the layer never shares memory with the caller's array); a
    rejected value leaves the layer unchanged.
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


class Saveable:
    """What :mod:`anyrnn.io` asks of a layer: its configuration and its arrays."""

    #: constructor arguments that describe the architecture (saved in model files)
    _config_keys: tuple[str, ...] = ()

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that describe this object (JSON values)."""
        return {key: getattr(self, key) for key in self._config_keys}

    def save(self, path: Any) -> None:
        """Save the architecture and every parameter: the same as ``anyrnn.save(self, path)``."""
        io.save(self, path)

    def _saved_state(self) -> dict:
        return {}

    def _saved_arrays(self) -> dict[str, np.ndarray]:
        return {name: to_numpy(value) for name, value in self.params.items()}

    @classmethod
    def _check_no_state(cls, state: dict) -> None:
        if state:
            raise ValueError(f"a {cls.__name__} has no fitted state; got {sorted(state)}")


class Layer(Saveable):
    """Base of every layer: a fixed :class:`~anyrnn.Backend` and named parameters."""

    _param_names: tuple[str, ...] = ()

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
        return self._param_shapes_for(self.get_config())

    @classmethod
    def _param_shapes_for(cls, config: dict) -> dict[str, tuple[int, ...]]:
        """The parameter shapes a configuration has, without building the layer."""
        raise NotImplementedError

    def _set_param(self, name: str, value: Any) -> None:
        arr = self._backend.asarray(value, name=name, copy=True)  # never the caller's memory
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

    def update(self, lr: float) -> None:
        """Plain gradient step ``p <- p - lr * dp`` (optimizers live in anyrnn.optimizers).

        ``lr`` must be a finite positive number (NumPy scalars are fine). All or nothing:
        a rejected call leaves the layer as it was.
        """
        lr = check_real(lr, "lr", low=0, low_open=True)
        grads = self._checked_grads()
        self._params = {k: v - lr * grads[k] for k, v in self._params.items()}

    def _checked_grads(self) -> dict[str, Any]:
        """The gradients of the last backward, checked against the parameters.

        ``RuntimeError`` before any backward; ``ValueError`` if a gradient's names,
        shape, dtype or array library do not match its parameter's.
        """
        name = type(self).__name__
        if not self._grads:
            raise RuntimeError(f"{name} has no gradients to step with: call backward() first")
        if set(self._grads) != set(self._params):
            raise ValueError(
                f"{name} has gradients for {sorted(self._grads)} but parameters "
                f"{sorted(self._params)}"
            )
        for key, p in self._params.items():
            g = self._grads[key]
            if not (
                self._backend.owns(g)
                and tuple(getattr(g, "shape", ())) == tuple(p.shape)
                and g.dtype == p.dtype
            ):
                raise ValueError(
                    f"the gradient of {name}.{key} does not match the parameter: expected a "
                    f"{self.backend} array of shape {tuple(p.shape)} and dtype {p.dtype}; got "
                    f"{type(g).__name__} of shape {tuple(getattr(g, 'shape', ()))} and dtype "
                    f"{getattr(g, 'dtype', None)}"
                )
        return dict(self._grads)

    # model files ------------------------------------------------------------------
    @classmethod
    def _array_specs(cls, config: dict, state: dict) -> dict[str, tuple[int, ...]]:
        cls._check_no_state(state)
        return cls._param_shapes_for(config)

    @classmethod
    def _from_saved(cls, config: dict, state: dict, arrays: dict, backend: Backend) -> Layer:
        with zero_init():  # the file's weights replace the zeros: nothing is drawn
            layer = cls(**config, backend=backend)
        layer.set_params_from(arrays)
        return layer
