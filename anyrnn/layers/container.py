"""What Stacked and Bidirectional share: a container of sub-layers.

:class:`_Container` exposes the sub-layers' parameters and gradients by prefixed name
(``"<key>.<name>"``), their backend, device and dtype, and their nesting in model
files: each child is saved as ``{"class", "config"}`` with its arrays under ``"<key>/"``;
the classes a wrapper may hold are its ``_nestable``, and a file may declare at most
``_MAX_LAYERS`` layers. :func:`_check_plain` and :func:`_check_distinct` are the checks
on the layers a container is given. The wrappers themselves are in
:mod:`anyrnn.layers.wrappers`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import io
from .base import Saveable

#: how many layers a model file may declare (nesting is bounded by ``_nestable``:
#: Stacked > Bidirectional > layer at most)
_MAX_LAYERS = 64


class _Container(Saveable):
    """Shared: parameters and gradients of the sub-layers, by prefixed name."""

    def _named(self) -> list[tuple[str, Any]]:
        raise NotImplementedError

    @property
    def layers(self) -> list:
        """The plain layers inside, in order (what an optimizer updates)."""
        out = []
        for _, layer in self._named():
            out.extend(layer.layers if isinstance(layer, _Container) else [layer])
        return out

    @property
    def params(self) -> dict[str, Any]:
        return {f"{k}.{n}": v for k, layer in self._named() for n, v in layer.params.items()}

    @property
    def grads(self) -> dict[str, Any]:
        return {f"{k}.{n}": v for k, layer in self._named() for n, v in layer.grads.items()}

    @property
    def _backend(self) -> Any:
        return self._named()[0][1]._backend

    @property
    def backend(self) -> str:
        return self._named()[0][1].backend

    @property
    def xp(self) -> Any:
        return self._named()[0][1].xp

    @property
    def device(self) -> Any:
        return self._named()[0][1].device

    @property
    def dtype(self) -> Any:
        return self._named()[0][1].dtype

    def clear(self) -> None:
        for _, layer in self._named():
            layer.clear()

    # model files ------------------------------------------------------------------
    def _saved_arrays(self) -> dict[str, np.ndarray]:
        return {
            f"{k}/{name}": a
            for k, layer in self._named()
            for name, a in layer._saved_arrays().items()
        }

    @staticmethod
    def _child_config(layer: Any) -> dict:
        return {"class": type(layer).__name__, "config": layer.get_config()}

    @classmethod
    def _array_specs(cls, config: dict, state: dict, _count: list | None = None) -> dict:
        cls._check_no_state(state)
        count = [0] if _count is None else _count
        specs = {}
        for key, entry in cls._children(config):
            child = cls._child_class(entry)
            count[0] += 1
            if count[0] > _MAX_LAYERS:
                raise ValueError(f"the architecture has more than {_MAX_LAYERS} layers")
            if issubclass(child, _Container):
                sub = child._array_specs(entry["config"], {}, count)
            else:
                sub = child._array_specs(entry["config"], {})
            specs.update({f"{key}/{name}": shape for name, shape in sub.items()})
        return specs

    @classmethod
    def _child_class(cls, entry: Any) -> type:
        if not isinstance(entry, dict) or set(entry) != {"class", "config"}:
            raise ValueError(f"a nested layer must be {{'class', 'config'}}; got {entry!r:.80}")
        if entry["class"] not in cls._nestable:
            raise ValueError(f"{entry['class']!r} cannot be nested in a {cls.__name__}")
        if not isinstance(entry["config"], dict):
            raise ValueError(f"the config of a nested {entry['class']} is not an object")
        return io.registered(entry["class"])

    @classmethod
    def _build_child(cls, key: str, entry: dict, arrays: dict, backend: Any) -> Any:
        head = key + "/"
        mine = {name[len(head) :]: a for name, a in arrays.items() if name.startswith(head)}
        return cls._child_class(entry)._from_saved(entry["config"], {}, mine, backend)


def _check_plain(layer: Any, where: str) -> None:
    for flag in ("return_state", "return_all_states"):
        if getattr(layer, flag, False):
            raise ValueError(f"{where} does not support {flag}=True layers; got {layer!r}")


def _check_distinct(layers: list) -> None:
    """``ValueError`` if one layer object sits twice in ``layers`` (nested ones included).

    A layer used twice in one model would keep only its last forward pass for
    backward and receive one gradient where it needs the sum of two: its gradients
    would be wrong and an optimizer would step it twice.
    """
    where: dict[int, str] = {}
    for k, layer in enumerate(layers):
        inner = layer._named() if isinstance(layer, _Container) else [("", layer)]
        for sub, plain in inner:
            here = f"layer {k}" + (f" ({sub} direction)" if sub else "")
            if id(plain) in where:
                raise ValueError(
                    f"the same {type(plain).__name__} object is both {where[id(plain)]} and "
                    f"{here}: a layer can appear only once in a model (its gradients would be "
                    "wrong); build a second layer, e.g. with the same random_state"
                )
            where[id(plain)] = here
