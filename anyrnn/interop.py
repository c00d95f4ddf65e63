"""Converting between PyTorch's ``nn.RNN``/``nn.LSTM``/``nn.GRU`` and anyrnn layers.

PyTorch computes ``x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh`` with the gate order of anyrnn
(LSTM ``i, f, g, o``; GRU ``r, z, n`` with the reset gate after the recurrent matmul), so

* ``W_x = W_ihᵀ``, ``W_h = W_hhᵀ``;
* SimpleRNN and LSTM: ``B = b_ih + b_hh`` (one bias: the two only ever appear summed);
* GRU: ``B = b_ih`` and ``B_h = b_hh`` (``b_hn`` sits inside ``r ⊙ (·)``, so it must stay
  separate: ``reset_after=True``).

``num_layers > 1`` becomes :class:`~anyrnn.Stacked` (with the module's ``dropout``
between layers), ``bidirectional=True`` becomes :class:`~anyrnn.Bidirectional` with
``merge_mode="concat"`` (PyTorch's ``[forward, backward]`` feature order). anyrnn takes
batch-first input, whatever the module's ``batch_first``. torch is imported only here.

``bias=False``: anyrnn layers always have biases; those of a ``bias=False`` module are
zero, and the layers remember where they came from, so :func:`to_torch` gives back a
``bias=False`` module (whose ``state_dict`` loads strictly into the original). If
training has made those biases non-zero, ``to_torch`` says so instead of dropping them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import check_bool
from .backend import to_numpy
from .layers.recurrent import GRU, LSTM, SimpleRNN
from .layers.recurrent_base import RecurrentLayer
from .layers.wrappers import Bidirectional, Stacked

__all__ = ["from_torch", "to_torch"]


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError(
            "this needs PyTorch, which is not installed: pip install 'anyrnn[torch]' "
            "(or a CPU build, e.g. pip install torch --index-url https://download.pytorch.org/whl/cpu)"
        ) from None
    return torch


def _host(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64)


def from_torch(module: Any, backend: Any = "numpy", device: Any = None, dtype: Any = None) -> Any:
    """The anyrnn equivalent of a ``torch.nn.RNN``, ``LSTM`` or ``GRU``.

    The result has ``return_steps=True``: for batch-first ``X`` of shape (batch,
    n_steps, input_size), ``infer(X)`` equals ``module.eval()(X)[0]``; so does
    ``forward(X)`` (equal to ``module(X)[0]``, and ``backward(d_out)`` returns dX) when
    the module has no dropout. With ``num_layers > 1`` and ``dropout > 0``, ``forward``
    applies dropout between the layers as the module does in training mode, with its
    own random masks, so its output is not the module's.

    Parameters
    ----------
    module : torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU
        Any ``num_layers``, ``bidirectional``, ``bias``, ``batch_first``, tanh or relu.
    backend, device : as for :class:`anyrnn.SimpleRNN`
    dtype : {"float32", "float64"}, optional
        Default: the module's parameter dtype.

    Raises
    ------
    TypeError
        ``module`` is not one of those three.
    ValueError
        An option anyrnn does not implement (``proj_size > 0``).
    """
    torch = _torch()
    kinds = {torch.nn.RNN: "rnn", torch.nn.LSTM: "lstm", torch.nn.GRU: "gru"}
    kind = kinds.get(type(module))
    if kind is None:
        raise TypeError(
            "from_torch takes a torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU; got "
            f"{type(module).__module__}.{type(module).__name__}"
        )
    if getattr(module, "proj_size", 0):
        raise ValueError(
            f"LSTM with proj_size > 0 (projected hidden state) is not supported; got "
            f"proj_size={module.proj_size}"
        )
    if dtype is None:
        dtype = str(next(module.parameters()).dtype).replace("torch.", "")
    n_dir = 2 if module.bidirectional else 1
    layers = []
    for k in range(module.num_layers):
        n_in = module.input_size if k == 0 else module.hidden_size * n_dir
        directions = []
        for d in range(n_dir):
            suffix = f"_l{k}" + ("_reverse" if d else "")
            kw = dict(
                return_sequences=True,
                go_backwards=bool(d),
                backend=backend,
                device=device,
                dtype=dtype,
            )
            if kind == "rnn":
                layer = SimpleRNN(n_in, module.hidden_size, activation=module.nonlinearity, **kw)
            elif kind == "lstm":
                layer = LSTM(n_in, module.hidden_size, **kw)
            else:
                layer = GRU(n_in, module.hidden_size, reset_after=True, **kw)
            w_ih = _host(getattr(module, "weight_ih" + suffix))
            w_hh = _host(getattr(module, "weight_hh" + suffix))
            values = {"W_x": w_ih.T, "W_h": w_hh.T}
            zeros = np.zeros(w_ih.shape[0])
            b_ih = _host(getattr(module, "bias_ih" + suffix)) if module.bias else zeros
            b_hh = _host(getattr(module, "bias_hh" + suffix)) if module.bias else zeros
            if kind == "gru":
                values.update(B=b_ih, B_h=b_hh)
            else:
                values["B"] = b_ih + b_hh
            layer.set_params_from(values)
            layer._torch_bias = bool(module.bias)  # to_torch gives the same structure back
            directions.append(layer)
        if n_dir == 2:
            layers.append(Bidirectional(directions[0], "concat", backward_layer=directions[1]))
        else:
            layers.append(directions[0])
    if len(layers) == 1:
        return layers[0]
    return Stacked(layers, dropout=float(module.dropout))


def _plain_layers(obj: Any) -> tuple[list[list[RecurrentLayer]], float]:
    """[[fwd] or [fwd, bwd] per level], dropout."""
    levels = list(obj) if isinstance(obj, Stacked) else [obj]
    dropout = obj.dropout if isinstance(obj, Stacked) else 0.0
    out = []
    for level in levels:
        if isinstance(level, Bidirectional):
            if level.merge_mode != "concat":
                raise ValueError(
                    f"PyTorch's bidirectional RNNs concatenate; got merge_mode={level.merge_mode!r}"
                )
            out.append([level.forward_layer, level.backward_layer])
        elif isinstance(level, RecurrentLayer):
            if level.go_backwards:
                raise ValueError("PyTorch has no go_backwards layer outside bidirectional=True")
            out.append([level])
        else:
            raise TypeError(f"to_torch takes anyrnn recurrent layers; got {type(level).__name__}")
    return out, dropout


def _choose_bias(layers: list[RecurrentLayer], bias: Any) -> bool:
    """``bias=`` for the module: as asked, or as from_torch found it (default True)."""
    if bias is None:
        bias = not all(getattr(layer, "_torch_bias", True) is False for layer in layers)
        asked = "the module these layers came from had bias=False"
    else:
        bias = check_bool(bias, "bias")
        asked = "bias=False was asked for"
    if not bias:
        for layer in layers:
            for name in ("B", "B_h"):
                if name in layer.params:
                    worst = float(np.max(np.abs(to_numpy(layer.params[name]))))
                    if worst != 0:
                        raise ValueError(
                            f"{asked}, but {layer!r} has a non-zero {name} (max |{name}| = "
                            f"{worst:.3g}), which a bias-free module cannot hold; pass "
                            "bias=True to keep it"
                        )
    return bias


def to_torch(obj: Any, *, bias: bool | None = None) -> Any:
    """The ``torch.nn.RNN``/``LSTM``/``GRU`` (``batch_first=True``) equivalent of ``obj``.

    ``obj`` is a SimpleRNN, LSTM or GRU (``reset_after=True``), a Bidirectional of one
    (``merge_mode="concat"``), or a Stacked of those with the same cell, size and
    direction at every level. The module computes in the layers' dtype on the CPU.

    Parameters
    ----------
    bias : bool or None
        Whether the module has biases. None (default): ``False`` when every layer came
        from a ``bias=False`` module through :func:`from_torch`, else ``True``.
        ``False`` requires every bias to be zero (``ValueError`` otherwise: nothing is
        dropped silently).
    """
    torch = _torch()
    levels, dropout = _plain_layers(obj)
    first = levels[0][0]
    cls = type(first)
    n_dir = len(levels[0])
    for level in levels:
        for layer in level:
            if type(layer) is not cls or layer.n_nodes != first.n_nodes or len(level) != n_dir:
                raise ValueError(
                    "to_torch needs the same cell, n_nodes and direction at every level; got "
                    f"{obj!r}"
                )
            if isinstance(layer, SimpleRNN) and layer.activation != first.activation:
                raise ValueError("to_torch needs one activation at every level")
    if isinstance(first, GRU) and not first.reset_after:
        raise ValueError(
            "PyTorch's GRU is the reset_after=True form; a reset_after=False GRU has no "
            "PyTorch equivalent"
        )
    dtype = getattr(torch, first._backend.dtype_name)
    kw = dict(
        input_size=first.n_features,
        hidden_size=first.n_nodes,
        num_layers=len(levels),
        bias=_choose_bias([layer for level in levels for layer in level], bias),
        batch_first=True,
        dropout=dropout,
        bidirectional=n_dir == 2,
        dtype=dtype,
    )
    if cls is SimpleRNN:
        module = torch.nn.RNN(nonlinearity=first.activation, **kw)
    elif cls is LSTM:
        module = torch.nn.LSTM(**kw)
    else:
        module = torch.nn.GRU(**kw)
    with torch.no_grad():
        for k, level in enumerate(levels):
            for d, layer in enumerate(level):
                suffix = f"_l{k}" + ("_reverse" if d else "")
                p = {n: to_numpy(v).astype(np.float64) for n, v in layer.params.items()}
                getattr(module, "weight_ih" + suffix).copy_(torch.from_numpy(p["W_x"].T.copy()))
                getattr(module, "weight_hh" + suffix).copy_(torch.from_numpy(p["W_h"].T.copy()))
                if module.bias:
                    getattr(module, "bias_ih" + suffix).copy_(torch.from_numpy(p["B"]))
                    b_hh = p["B_h"] if "B_h" in p else np.zeros_like(p["B"])
                    getattr(module, "bias_hh" + suffix).copy_(torch.from_numpy(b_hh))
    return module
