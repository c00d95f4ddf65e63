"""Optimizers: SGD, momentum, AdaGrad, RMSProp and Adam, with optional clipping.

An optimizer updates the parameters of a list of layers from their ``grads``. Its
state (velocities, squared-gradient averages) lives on the layers' backend and device,
and every update rebinds arrays instead of writing into them, so it runs on JAX and
array-api-strict too. Clipping by global norm (``clip_norm``) scales all gradients
together by ``min(1, clip_norm / ‖g‖₂)``, computed as an array: no device sync.

A step is all or nothing: every layer's gradients are checked against its parameters
(and the optimizer's state against both) and every new value is computed before any
parameter or state is replaced, so a step that raises leaves the layers and the
optimizer exactly as they were. Hyper-parameters are checked when set (also later, as
``opt.lr = ...``): NaN, infinities and out-of-range values raise ``ValueError``; NumPy
scalars are accepted like Python numbers.
"""

from __future__ import annotations

from typing import Any

from .._checks import check_choice, check_real

__all__ = [
    "Optimizer",
    "SGD",
    "Momentum",
    "AdaGrad",
    "RMSProp",
    "Adam",
    "OPTIMIZERS",
    "make_optimizer",
]


def _positive(value: Any, name: str) -> float:
    return check_real(value, name, low=0, low_open=True)


def _fraction(value: Any, name: str) -> float:
    return check_real(value, name, low=0, high=1, high_open=True)


def _clip_norm(value: Any, name: str) -> float | None:
    return None if value is None else _positive(value, name)


class _Hyper:
    """A hyper-parameter attribute, checked whenever it is set."""

    def __init__(self, check: Any):
        self.check = check

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.slot = name, "_" + name

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else getattr(obj, self.slot)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(obj, self.slot, self.check(value, self.name))


def _flatten(layers: Any) -> list:
    """The plain layers of ``layers`` (containers expanded), each at most once."""
    if hasattr(layers, "params"):  # one layer or container rather than a list
        layers = [layers]
    try:
        items = list(layers)
    except TypeError:
        raise TypeError(
            f"step takes a list of layers; got {type(layers).__name__} {layers!r:.80}"
        ) from None
    flat = []
    for k, layer in enumerate(items):
        if not hasattr(layer, "params"):
            raise TypeError(f"step takes layers; item {k} is a {type(layer).__name__}")
        flat.extend(getattr(layer, "layers", [layer]))
    seen: dict[int, int] = {}
    for k, layer in enumerate(flat):
        if id(layer) in seen:
            raise ValueError(
                f"the same {type(layer).__name__} object is in the list twice (plain layers "
                f"{seen[id(layer)]} and {k}); it would be stepped twice with one gradient"
            )
        seen[id(layer)] = k
    return flat


class Optimizer:
    """Base class. Subclasses implement :meth:`_update` for one parameter."""

    lr = _Hyper(_positive)
    clip_norm = _Hyper(_clip_norm)

    def __init__(self, lr: float = 0.01, *, clip_norm: float | None = None):
        self.lr = lr
        self.clip_norm = clip_norm
        self.state: dict[tuple[int, str], Any] = {}
        self.iterations = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr}, clip_norm={self.clip_norm})"

    def step(self, layers: list) -> None:
        """Apply one update to every layer from its current ``grads``, all or nothing.

        ``layers`` may hold containers (:class:`~anyrnn.Stacked`,
        :class:`~anyrnn.Bidirectional`); their plain layers are updated. Pass the same
        list in the same order at every step: the state is keyed by position.

        Raises
        ------
        RuntimeError
            A layer has no gradients (``backward`` was not called).
        ValueError
            A layer is listed twice; a gradient does not match its parameter (shape,
            dtype, library); the state kept for a position does not match the layer
            now there; ``clip_norm`` with layers on different backends.
        """
        layers = _flatten(layers)
        grads = [layer._checked_grads() for layer in layers]
        for i, layer in enumerate(layers):
            for name, p in layer._params.items():
                self._check_state((i, name), p, f"plain layer {i}'s {name}")
        if self.clip_norm is not None and layers:
            first = layers[0]._backend
            for k, layer in enumerate(layers):
                if layer._backend != first:
                    raise ValueError(
                        f"clip_norm needs every layer on one backend, device and dtype (one "
                        f"global norm); layer 0 is on {first} and layer {k} on {layer._backend}"
                    )
            grads = first.run(self._clip, first.xp, grads)
        t = self.iterations + 1
        new_params, new_state = [], {}
        for i, (layer, g) in enumerate(zip(layers, grads)):
            params = {}
            for name, value in layer._params.items():
                key = (i, name)
                params[name], state = layer._backend.run(
                    self._update, value, g[name], self.state.get(key), t, layer.xp
                )
                if state is not None:
                    new_state[key] = state
            new_params.append(params)
        # commit: nothing above changed a layer or the optimizer
        for layer, params in zip(layers, new_params):
            layer._params = params
        self.state.update(new_state)
        self.iterations = t

    def _check_state(self, key: tuple[int, str], p: Any, where: str) -> None:
        entry = self.state.get(key)
        for s in entry if isinstance(entry, tuple) else (entry,):
            if s is not None and (tuple(s.shape) != tuple(p.shape) or s.dtype != p.dtype):
                raise ValueError(
                    f"the optimizer's state for {where} has shape {tuple(s.shape)} and dtype "
                    f"{s.dtype}, but that parameter has shape {tuple(p.shape)} and dtype "
                    f"{p.dtype}: pass the same layers in the same order at every step (or "
                    "use a new optimizer)"
                )

    def _clip(self, xp: Any, grads: list[dict]) -> list[dict]:
        total = sum(xp.sum(g * g) for gs in grads for g in gs.values())
        norm = xp.sqrt(total)
        scale = self.clip_norm / xp.maximum(
            norm, xp.asarray(self.clip_norm, dtype=norm.dtype, device=_device(norm))
        )
        return [{k: v * scale for k, v in gs.items()} for gs in grads]

    def _update(self, p: Any, g: Any, state: Any, t: int, xp: Any) -> tuple[Any, Any]:
        """``(new p, new state)`` for one parameter at step ``t`` (1-based); pure."""
        raise NotImplementedError


def _device(x: Any) -> Any:
    import array_api_compat

    return array_api_compat.device(x)


class SGD(Optimizer):
    """``p <- p - lr * g``."""

    def _update(self, p, g, state, t, xp):
        return p - self.lr * g, None


class Momentum(Optimizer):
    """Heavy-ball momentum: ``v <- μ v - lr g``, ``p <- p + v``."""

    momentum = _Hyper(_fraction)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9, *, clip_norm: float | None = None):
        super().__init__(lr, clip_norm=clip_norm)
        self.momentum = momentum

    def _update(self, p, g, v, t, xp):
        v = -self.lr * g if v is None else self.momentum * v - self.lr * g
        return p + v, v


class AdaGrad(Optimizer):
    """``s <- s + g²``, ``p <- p - lr g / (√s + ε)``."""

    eps = _Hyper(_positive)

    def __init__(self, lr: float = 0.01, eps: float = 1e-7, *, clip_norm: float | None = None):
        super().__init__(lr, clip_norm=clip_norm)
        self.eps = eps

    def _update(self, p, g, s, t, xp):
        s = g * g if s is None else s + g * g
        return p - self.lr * g / (xp.sqrt(s) + self.eps), s


class RMSProp(Optimizer):
    """``s <- ρ s + (1-ρ) g²``, ``p <- p - lr g / (√s + ε)``."""

    rho = _Hyper(_fraction)
    eps = _Hyper(_positive)

    def __init__(
        self,
        lr: float = 0.001,
        rho: float = 0.9,
        eps: float = 1e-7,
        *,
        clip_norm: float | None = None,
    ):
        super().__init__(lr, clip_norm=clip_norm)
        self.rho, self.eps = rho, eps

    def _update(self, p, g, s, t, xp):
        s = (1 - self.rho) * g * g if s is None else self.rho * s + (1 - self.rho) * g * g
        return p - self.lr * g / (xp.sqrt(s) + self.eps), s


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction."""

    beta1 = _Hyper(_fraction)
    beta2 = _Hyper(_fraction)
    eps = _Hyper(_positive)

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        *,
        clip_norm: float | None = None,
    ):
        super().__init__(lr, clip_norm=clip_norm)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _update(self, p, g, state, t, xp):
        m, v = state if state is not None else (None, None)
        m = (1 - self.beta1) * g if m is None else self.beta1 * m + (1 - self.beta1) * g
        v = (1 - self.beta2) * g * g if v is None else self.beta2 * v + (1 - self.beta2) * g * g
        m_hat = m / (1 - self.beta1**t)  # bias correction, as in the paper and torch.optim
        v_hat = v / (1 - self.beta2**t)
        return p - self.lr * m_hat / (xp.sqrt(v_hat) + self.eps), (m, v)


OPTIMIZERS = {
    "sgd": SGD,
    "momentum": Momentum,
    "adagrad": AdaGrad,
    "rmsprop": RMSProp,
    "adam": Adam,
}


def make_optimizer(name: str, lr: float, clip_norm: float | None = None) -> Optimizer:
    """An optimizer by name (``"sgd"``, ``"momentum"``, ``"adagrad"``, ``"rmsprop"``, ``"adam"``)."""
    key = check_choice(name, "optimizer", OPTIMIZERS, lower=True)
    return OPTIMIZERS[key](lr, clip_norm=clip_norm)
