"""Stacking and bidirectional wrappers around recurrent layers.

* :class:`Stacked` chains recurrent layers (each one's sequence output is the next one's
  input), with optional inverted dropout between them.
* :class:`Bidirectional` runs a layer forwards and a copy of it backwards and merges
  the two (``concat``, ``sum``, ``mul``, ``ave``). The backward copy's sequence output is
  flipped back into input order, so step t of both halves belongs to input step t;
  with a mask, the backward direction starts at each sequence's own last real step.

Both have the layers' ``forward``/``infer``/``backward`` interface, take ``mask`` or
``lengths``, and expose ``params``/``grads`` keyed ``"<k>.<name>"`` (Stacked) or
``"forward.<name>"``/``"backward.<name>"`` (Bidirectional). An optimizer's ``step``
takes them like a layer. What they share (prefixed parameters, backend, nesting in
model files, the checks on the layers they take) is :mod:`anyrnn.layers.container`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import io
from .._checks import check_choice, check_real
from .base import on_device
from .container import _check_distinct, _check_plain, _Container
from .recurrent_base import RecurrentLayer

__all__ = ["Stacked", "Bidirectional", "MERGE_MODES"]

MERGE_MODES = ("concat", "sum", "mul", "ave")


def _is_recurrent(layer: Any) -> bool:
    return isinstance(layer, RecurrentLayer | Bidirectional)


@io.register
class Bidirectional(_Container):
    """Run ``layer`` forwards and a copy backwards over the sequence, and merge.

    Parameters
    ----------
    layer : SimpleRNN, LSTM or GRU
        The forward direction (``go_backwards=False``, no ``return_state``).
    merge_mode : {"concat", "sum", "mul", "ave"}
        How the two directions are combined; ``concat`` doubles the features.
    backward_layer : optional
        The backward direction (``go_backwards=True``, same class and sizes). By default
        a copy of ``layer``'s configuration with fresh weights from ``random_state``.
    random_state : None, int or numpy.random.Generator
        Initial weights of the default backward layer.
    """

    def __init__(
        self,
        layer: RecurrentLayer,
        merge_mode: str = "concat",
        *,
        backward_layer: RecurrentLayer | None = None,
        random_state: Any = None,
    ):
        if not isinstance(layer, RecurrentLayer):
            raise TypeError(
                f"Bidirectional wraps a SimpleRNN, LSTM or GRU; got {type(layer).__name__}"
            )
        merge_mode = check_choice(merge_mode, "merge_mode", MERGE_MODES)
        if layer.go_backwards:
            raise ValueError("the forward layer of Bidirectional must have go_backwards=False")
        _check_plain(layer, "Bidirectional")
        if backward_layer is None:
            config = {k: getattr(layer, k) for k in layer._config_keys}
            config["go_backwards"] = True
            n_features, n_nodes = config.pop("n_features"), config.pop("n_nodes")
            backward_layer = type(layer)(
                n_features,
                n_nodes,
                **config,
                fast_path=layer.fast_path,
                backend=layer._backend,
                dtype=layer._backend.dtype_name,
                random_state=random_state,
            )
        else:
            if type(backward_layer) is not type(layer) or not backward_layer.go_backwards:
                raise ValueError(
                    f"backward_layer must be a {type(layer).__name__} with go_backwards=True; "
                    f"got {backward_layer!r}"
                )
            for k in ("n_features", "n_nodes", "return_sequences"):
                if getattr(backward_layer, k) != getattr(layer, k):
                    raise ValueError(
                        f"backward_layer.{k}={getattr(backward_layer, k)!r} differs from the "
                        f"forward layer's {getattr(layer, k)!r}"
                    )
            if backward_layer._backend != layer._backend:
                raise ValueError(
                    f"both directions must use one backend; got {layer._backend} and "
                    f"{backward_layer._backend}"
                )
            _check_plain(backward_layer, "Bidirectional")
        self.forward_layer, self.backward_layer = layer, backward_layer
        self.merge_mode = merge_mode
        self._outs: tuple | None = None

    def _named(self) -> list[tuple[str, Any]]:
        return [("forward", self.forward_layer), ("backward", self.backward_layer)]

    _nestable = ("SimpleRNN", "LSTM", "GRU")

    def get_config(self) -> dict:
        return {
            "merge_mode": self.merge_mode,
            "forward": self._child_config(self.forward_layer),
            "backward": self._child_config(self.backward_layer),
        }

    @classmethod
    def _children(cls, config: dict) -> list[tuple[str, Any]]:
        if set(config) != {"merge_mode", "forward", "backward"}:
            raise ValueError(
                "a Bidirectional config has exactly 'merge_mode', 'forward', 'backward'"
            )
        return [("forward", config["forward"]), ("backward", config["backward"])]

    @classmethod
    def _from_saved(cls, config: dict, state: dict, arrays: dict, backend: Any) -> Bidirectional:
        fwd, bwd = (cls._build_child(k, e, arrays, backend) for k, e in cls._children(config))
        return cls(fwd, config["merge_mode"], backward_layer=bwd)

    @property
    def n_features(self) -> int:
        return self.forward_layer.n_features

    @property
    def n_outputs(self) -> int:
        n = self.forward_layer.n_nodes
        return 2 * n if self.merge_mode == "concat" else n

    @property
    def return_sequences(self) -> bool:
        return self.forward_layer.return_sequences

    def __repr__(self) -> str:
        return f"Bidirectional({self.forward_layer!r}, merge_mode={self.merge_mode!r})"

    def _merge(self, a: Any, b: Any) -> Any:
        xp = self.xp
        if self.merge_mode == "concat":
            return xp.concat([a, b], axis=-1)
        if self.merge_mode == "sum":
            return a + b
        if self.merge_mode == "mul":
            return a * b
        return (a + b) * 0.5

    @on_device
    def _run(self, X: Any, mask: Any, lengths: Any, keep: bool) -> Any:
        fwd, bwd = self.forward_layer, self.backward_layer
        call_f = fwd.forward if keep else fwd.infer
        call_b = bwd.forward if keep else bwd.infer
        a = call_f(X, mask=mask, lengths=lengths)
        b = call_b(X, mask=mask, lengths=lengths)
        if self.return_sequences:
            b = self.xp.flip(b, axis=1)  # back into input order
        if keep:
            self._outs = (a, b)
        return self._merge(a, b)

    @on_device
    def forward(self, X: Any, *, mask: Any = None, lengths: Any = None) -> Any:
        """Both directions over X (batch, n_steps, n_features), merged.

        Returns (batch, n_outputs) or, with ``return_sequences``, (batch, n_steps,
        n_outputs); ``n_outputs`` is ``2·n_nodes`` for ``concat``, else ``n_nodes``.
        """
        return self._run(X, mask, lengths, keep=True)

    __call__ = forward

    @on_device
    def infer(self, X: Any, *, mask: Any = None, lengths: Any = None) -> Any:
        """Like :meth:`forward`, keeping nothing for backward."""
        return self._run(X, mask, lengths, keep=False)

    @on_device
    def backward(self, d_out: Any) -> Any:
        """Gradients of both directions; returns dX (the sum of both directions' dX)."""
        if self._outs is None:
            raise RuntimeError("Bidirectional.backward() was called before forward()")
        xp = self.xp
        a, b = self._outs
        d_out = self.forward_layer._backend.asarray(d_out, name="d_out")
        expected = tuple(a.shape[:-1]) + (self.n_outputs,)
        if tuple(d_out.shape) != expected:
            raise ValueError(
                f"d_out must have the shape of forward's output {expected}; got {tuple(d_out.shape)}"
            )
        n = self.forward_layer.n_nodes
        if self.merge_mode == "concat":
            da, db = d_out[..., :n], d_out[..., n:]
        elif self.merge_mode == "sum":
            da, db = d_out, d_out
        elif self.merge_mode == "mul":
            da, db = d_out * b, d_out * a
        else:
            da = db = d_out * 0.5
        if self.return_sequences:
            db = xp.flip(db, axis=1)  # into the backward layer's processing order
        return self.forward_layer.backward(da) + self.backward_layer.backward(db)

    def clear(self) -> None:
        super().clear()
        self._outs = None


@io.register
class Stacked(_Container):
    """Recurrent layers in sequence, each feeding its sequence output to the next.

    Parameters
    ----------
    layers : list of SimpleRNN, LSTM, GRU or Bidirectional
        Every layer but the last must have ``return_sequences=True`` and
        ``go_backwards=False``; each one's ``n_features`` must equal the previous one's
        output features. All on one backend, device and dtype.
    dropout : float in [0, 1)
        Inverted dropout on the outputs between layers, in :meth:`forward` only
        (never in :meth:`infer`).
    random_state : None, int or numpy.random.Generator
        Draws the dropout masks (on the host, like the weights).
    """

    def __init__(self, layers: list, *, dropout: float = 0.0, random_state: Any = None):
        layers = list(layers)
        if not layers:
            raise ValueError("Stacked needs at least one layer; got an empty list")
        for k, layer in enumerate(layers):
            if not _is_recurrent(layer):
                raise TypeError(
                    f"Stacked takes SimpleRNN, LSTM, GRU or Bidirectional layers; layer {k} is a "
                    f"{type(layer).__name__}"
                )
            _check_plain(layer, "Stacked")
        _check_distinct(layers)
        for k in range(1, len(layers)):
            prev, layer = layers[k - 1], layers[k]
            if not prev.return_sequences:
                raise ValueError(
                    f"layer {k - 1} must have return_sequences=True to feed layer {k}; got {prev!r}"
                )
            if getattr(prev, "go_backwards", False):
                raise ValueError(
                    f"layer {k - 1} has go_backwards=True, which would feed layer {k} a reversed "
                    "sequence; use Bidirectional instead"
                )
            if layer.n_features != prev.n_outputs:
                raise ValueError(
                    f"layer sizes do not chain: layer {k - 1} outputs {prev.n_outputs} features, "
                    f"but layer {k} expects n_features={layer.n_features}"
                )
            if (
                layer.backend != prev.backend
                or layer.dtype != prev.dtype
                or str(layer.device) != str(prev.device)
            ):
                raise ValueError(
                    f"all layers must share one backend, device and dtype; layer {k} differs from "
                    f"layer {k - 1}"
                )
        dropout = check_real(dropout, "dropout", low=0, high=1, high_open=True)
        self._layers = layers
        self.dropout = float(dropout)
        self.random_state = random_state
        self._rng = np.random.default_rng(random_state)
        self._keeps: list = []

    def _named(self) -> list[tuple[str, Any]]:
        return [(str(k), layer) for k, layer in enumerate(self._layers)]

    _nestable = ("SimpleRNN", "LSTM", "GRU", "Bidirectional")

    def get_config(self) -> dict:
        return {
            "dropout": self.dropout,
            "layers": [self._child_config(layer) for layer in self._layers],
        }

    @classmethod
    def _children(cls, config: dict) -> list[tuple[str, Any]]:
        if set(config) != {"dropout", "layers"} or not isinstance(config["layers"], list):
            raise ValueError("a Stacked config has exactly 'dropout' and a list of 'layers'")
        return [(str(k), entry) for k, entry in enumerate(config["layers"])]

    @classmethod
    def _from_saved(cls, config: dict, state: dict, arrays: dict, backend: Any) -> Stacked:
        layers = [cls._build_child(k, e, arrays, backend) for k, e in cls._children(config)]
        return cls(layers, dropout=config["dropout"])

    def __len__(self) -> int:
        return len(self._layers)

    def __getitem__(self, k: int) -> Any:
        return self._layers[k]

    @property
    def n_features(self) -> int:
        return self._layers[0].n_features

    @property
    def n_outputs(self) -> int:
        return self._layers[-1].n_outputs

    @property
    def return_sequences(self) -> bool:
        return self._layers[-1].return_sequences

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self._layers)
        return f"Stacked([{inner}], dropout={self.dropout})"

    @on_device
    def forward(self, X: Any, *, mask: Any = None, lengths: Any = None) -> Any:
        """Every layer in turn, with dropout between them."""
        h = X
        keeps = []
        for k, layer in enumerate(self._layers):
            h = layer.forward(h, mask=mask, lengths=lengths)
            if k < len(self._layers) - 1 and self.dropout > 0:
                keep = self._rng.random(tuple(h.shape)) >= self.dropout
                scale = layer._backend.from_host(keep / (1 - self.dropout))  # inverted dropout
                h = h * scale
                keeps.append(scale)
        self._keeps = keeps
        return h

    __call__ = forward

    @on_device
    def infer(self, X: Any, *, mask: Any = None, lengths: Any = None) -> Any:
        """Every layer in turn, without dropout, keeping nothing."""
        h = X
        for layer in self._layers:
            h = layer.infer(h, mask=mask, lengths=lengths)
        return h

    @on_device
    def backward(self, d_out: Any) -> Any:
        """Backward through every layer; returns dX."""
        d = d_out
        for k in range(len(self._layers) - 1, -1, -1):
            if k < len(self._layers) - 1 and self.dropout > 0:
                d = d * self._keeps[k]
            d = self._layers[k].backward(d)
        return d
