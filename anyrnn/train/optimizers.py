"""Optimizers: SGD, momentum, AdaGrad, RMSProp and Adam, with optional clipping.

An optimizer updates the parameters of a list of layers from their ``grads``. Its
state (velocities, squared-gradient averages) lives on the layers' backend and device,
and every update rebinds arrays instead of writing into them, so it runs on JAX and
array-api-strict too. Clipping by global norm (``clip_norm``) scales all gradients
together by ``min(1, clip_norm / ‖g‖₂)``, computed as an array: no device sync.
"""

from __future__ import annotations

import math
from typing import Any

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


class Optimizer:
    """Base class. Subclasses implement :meth:`_update` for one parameter."""

    def __init__(self, lr: float = 0.01, *, clip_norm: float | None = None):
        if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive finite number; got lr={lr!r}")
        if clip_norm is not None and not (isinstance(clip_norm, int | float) and clip_norm > 0):
            raise ValueError(
                f"clip_norm must be None or a positive number; got clip_norm={clip_norm!r}"
            )
        self.lr = float(lr)
        self.clip_norm = clip_norm
        self.state: dict[tuple[int, str], Any] = {}
        self.iterations = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr}, clip_norm={self.clip_norm})"

    def step(self, layers: list) -> None:
        """Apply one update to every layer from its current ``grads``.

        ``layers`` may hold containers (:class:`~anyrnn.Stacked`,
        :class:`~anyrnn.Bidirectional`); their plain layers are updated. Pass the same
        list in the same order at every step: the state is keyed by position.
        """
        layers = [sub for layer in layers for sub in getattr(layer, "layers", [layer])]
        grads = [layer._grads for layer in layers]
        if any(not g for g in grads):
            raise RuntimeError(
                "optimizer step needs gradients: call backward() on every layer first"
            )
        self.iterations += 1
        if self.clip_norm is not None:
            grads = self._clip(layers[0].xp, grads)
        for i, (layer, g) in enumerate(zip(layers, grads)):
            layer._params = {
                name: self._update((i, name), value, g[name], layer.xp)
                for name, value in layer._params.items()
            }

    def _clip(self, xp: Any, grads: list[dict]) -> list[dict]:
        total = sum(xp.sum(g * g) for gs in grads for g in gs.values())
        norm = xp.sqrt(total)
        scale = self.clip_norm / xp.maximum(
            norm, xp.asarray(self.clip_norm, dtype=norm.dtype, device=_device(norm))
        )
        return [{k: v * scale for k, v in gs.items()} for gs in grads]

    def _update(self, key: tuple[int, str], p: Any, g: Any, xp: Any) -> Any:
        raise NotImplementedError


def _device(x: Any) -> Any:
    import array_api_compat

    return array_api_compat.device(x)


class SGD(Optimizer):
    """``p <- p - lr * g``."""

    def _update(self, key, p, g, xp):
        return p - self.lr * g


class Momentum(Optimizer):
    """Heavy-ball momentum: ``v <- μ v - lr g``, ``p <- p + v``."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.9, *, clip_norm: float | None = None):
        super().__init__(lr, clip_norm=clip_norm)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1); got momentum={momentum!r}")
        self.momentum = momentum

    def _update(self, key, p, g, xp):
        v = self.state.get(key)
        v = -self.lr * g if v is None else self.momentum * v - self.lr * g
        self.state[key] = v
        return p + v


class AdaGrad(Optimizer):
    """``s <- s + g²``, ``p <- p - lr g / (√s + ε)``."""

    def __init__(self, lr: float = 0.01, eps: float = 1e-7, *, clip_norm: float | None = None):
        super().__init__(lr, clip_norm=clip_norm)
        self.eps = eps

    def _update(self, key, p, g, xp):
        s = self.state.get(key)
        s = g * g if s is None else s + g * g
        self.state[key] = s
        return p - self.lr * g / (xp.sqrt(s) + self.eps)


class RMSProp(Optimizer):
    """``s <- ρ s + (1-ρ) g²``, ``p <- p - lr g / (√s + ε)``."""

    def __init__(
        self,
        lr: float = 0.001,
        rho: float = 0.9,
        eps: float = 1e-7,
        *,
        clip_norm: float | None = None,
    ):
        super().__init__(lr, clip_norm=clip_norm)
        if not 0 <= rho < 1:
            raise ValueError(f"rho must be in [0, 1); got rho={rho!r}")
        self.rho, self.eps = rho, eps

    def _update(self, key, p, g, xp):
        s = self.state.get(key)
        s = (1 - self.rho) * g * g if s is None else self.rho * s + (1 - self.rho) * g * g
        self.state[key] = s
        return p - self.lr * g / (xp.sqrt(s) + self.eps)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction."""

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
        for name, b in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= b < 1:
                raise ValueError(f"{name} must be in [0, 1); got {name}={b!r}")
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _update(self, key, p, g, xp):
        m, v = self.state.get(key, (None, None))
        m = (1 - self.beta1) * g if m is None else self.beta1 * m + (1 - self.beta1) * g
        v = (1 - self.beta2) * g * g if v is None else self.beta2 * v + (1 - self.beta2) * g * g
        self.state[key] = (m, v)
        t = self.iterations
        m_hat = m / (1 - self.beta1**t)  # bias correction, as in the paper and torch.optim
        v_hat = v / (1 - self.beta2**t)
        return p - self.lr * m_hat / (xp.sqrt(v_hat) + self.eps)


OPTIMIZERS = {
    "sgd": SGD,
    "momentum": Momentum,
    "adagrad": AdaGrad,
    "rmsprop": RMSProp,
    "adam": Adam,
}


def make_optimizer(name: str, lr: float, clip_norm: float | None = None) -> Optimizer:
    """An optimizer by name (``"sgd"``, ``"momentum"``, ``"adagrad"``, ``"rmsprop"``, ``"adam"``)."""
    key = name.lower() if isinstance(name, str) else name
    if key not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}; got optimizer={name!r}")
    return OPTIMIZERS[key](lr, clip_norm=clip_norm)
