"""The network an estimator fits, and how the hyper-parameters build it.

:class:`Network` is recurrent layers (a layer, :class:`~anyrnn.Bidirectional` or
:class:`~anyrnn.Stacked`) followed by a :class:`~anyrnn.Dense` head. ``_build_network``
builds one from the checked hyper-parameters (weights drawn in a fixed order);
``_param_specs`` gives the name and shape of every parameter it would have, without
building anything (what a model file is checked against); ``_describe_changes`` words the
hyper-parameters that no longer describe a fitted network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..layers.dense import Dense
from ..layers.recurrent import CELLS, make_recurrent
from ..layers.wrappers import Bidirectional, Stacked

if TYPE_CHECKING:
    from .base import _Hyper

__all__ = ["Network", "_build_network", "_describe_changes", "_param_specs"]

_CELL_OF = {cls.__name__: name for name, cls in CELLS.items()}


class Network:
    """Recurrent layers (a layer, ``Bidirectional`` or ``Stacked``) followed by a Dense head.

    The head maps the last state, or every step with sequence targets.
    """

    def __init__(self, recurrent: Any, head: Dense):
        self.recurrent, self.head = recurrent, head

    @property
    def layers(self) -> list:
        """The plain layers, in order (what an optimizer updates)."""
        return [layer for _, layer in self.named_layers()]

    def named_layers(self) -> list[tuple[str, Any]]:
        """``(name, layer)`` of every plain layer; names as in the model file's arrays."""
        out = []

        def walk(obj: Any, prefix: str) -> None:
            if isinstance(obj, Stacked | Bidirectional):
                for key, sub in obj._named():
                    walk(sub, f"{prefix}/{key}")
            else:
                out.append((prefix, obj))

        walk(self.recurrent, "recurrent")
        out.append(("head", self.head))
        return out

    def forward(self, X: Any, lengths: Any = None) -> Any:
        return self.head.forward(self.recurrent.forward(X, lengths=lengths))

    def backward(self, d_out: Any) -> Any:
        return self.recurrent.backward(self.head.backward(d_out))

    def infer(self, X: Any, lengths: Any = None) -> Any:
        return self.head.infer(self.recurrent.infer(X, lengths=lengths))

    def clear(self) -> None:
        """Drop what the last forward pass kept (tapes, dropout masks)."""
        self.recurrent.clear()
        self.head.clear()
        if isinstance(self.recurrent, Stacked):
            self.recurrent._keeps = []

    def get_weights(self) -> list[dict]:
        return [layer.params for layer in self.layers]

    def set_weights(self, weights: list[dict]) -> None:
        for layer, w in zip(self.layers, weights):
            layer._params = dict(w)

    def architecture(self) -> dict:
        """What a continued fit must keep: cell, sizes, depth, directions, activation."""
        first = self.layers[0]
        return {
            "cell": _CELL_OF[type(first).__name__],
            "n_nodes": first.n_nodes,
            "num_layers": len(self.recurrent) if isinstance(self.recurrent, Stacked) else 1,
            "bidirectional": isinstance(
                self.recurrent[0] if isinstance(self.recurrent, Stacked) else self.recurrent,
                Bidirectional,
            ),
            "activation": getattr(first, "activation", None),
        }


def _param_specs(hp: _Hyper, n_features: int, n_out: int) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every parameter, from the hyper-parameters alone (nothing built).

    The names are those :meth:`Network.named_layers` gives the built network.
    """
    specs: dict[str, tuple[int, ...]] = {}
    n_in = n_features
    width = hp.n_nodes * (2 if hp.bidirectional else 1)
    for k in range(hp.num_layers):
        base = "recurrent" if hp.num_layers == 1 else f"recurrent/{k}"
        shapes = CELLS[hp.cell]._param_shapes_for(
            {"n_features": n_in, "n_nodes": hp.n_nodes, "activation": hp.activation}
        )
        for direction in ("forward", "backward") if hp.bidirectional else (None,):
            prefix = base if direction is None else f"{base}/{direction}"
            specs.update({f"{prefix}/{name}": shape for name, shape in shapes.items()})
        n_in = width
    specs.update(
        {
            f"head/{k}": v
            for k, v in Dense._param_shapes_for({"n_in": width, "n_out": n_out}).items()
        }
    )
    return specs


def _build_network(
    hp: _Hyper, backend: Any, n_features: int, n_out: int, sequences: bool, rng: Any
) -> Network:
    """A fresh network; weights drawn from ``rng`` in a fixed order (layer by layer)."""
    kw = dict(backend=backend, dtype=backend.dtype_name, random_state=rng)
    layers = []
    n_in = n_features
    for k in range(hp.num_layers):
        layer = make_recurrent(
            hp.cell,
            n_in,
            hp.n_nodes,
            activation=hp.activation,
            return_sequences=sequences or k < hp.num_layers - 1,
            **kw,
        )
        if hp.bidirectional:
            layer = Bidirectional(layer, random_state=rng)
        layers.append(layer)
        n_in = layer.n_outputs
    if hp.num_layers == 1:
        recurrent = layers[0]
    else:
        seed = None if rng is None else int(rng.integers(2**31 - 1))
        recurrent = Stacked(layers, dropout=hp.dropout, random_state=seed)
    return Network(recurrent, Dense(n_in, n_out, **kw))


def _describe_changes(changed: dict[str, tuple[Any, Any]]) -> str:
    """``"n_nodes: 3 when fitted, 7 now; ..."`` (from ``_architecture_changes``)."""
    return "; ".join(f"{k}: {a!r} when fitted, {b!r} now" for k, (a, b) in changed.items())
