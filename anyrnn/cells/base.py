"""What a recurrent cell contributes to the one time loop in :mod:`anyrnn.scan`.

A cell is the equations of one time step, as pure functions of ``xp``. It keeps no
arrays: parameters come in as a dict of arrays, and everything a step needs for its
backward goes into the per-step ``cache`` it returns.

Every cell shares the input side ``ax_t = x_t · W_x + B``, which does not depend on
the recurrence: :func:`anyrnn.scan.scan_forward` computes it for all time steps in one
matmul, and the weight gradients ``dW_x``, ``dB`` (and ``dW_h`` through
:meth:`Cell.recurrent_grads`) are single matmuls over the stacked per-step deltas.

Shapes: ``n_gates`` blocks of ``n_nodes`` columns, so ``W_x`` is
``(n_features, n_gates * n_nodes)`` and ``W_h`` is ``(n_nodes, n_gates * n_nodes)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .init import glorot_uniform, orthogonal

__all__ = ["Cell", "sigmoid_tanh"]


def sigmoid_tanh(x: Any, *, xp: Any) -> Any:
    """Logistic sigmoid as ``0.5 * tanh(0.5 x) + 0.5``.

    Exactly the sigmoid, one transcendental call, and it cannot overflow: for gates.
    (The losses use a log-domain form that is also exact in the far tails.)
    """
    return 0.5 * xp.tanh(0.5 * x) + 0.5


class Cell:
    """Base class: one time step's forward and backward.

    Subclasses set ``n_gates``, ``state_names``, ``param_names`` and implement
    :meth:`init_params`, :meth:`step` and :meth:`step_backward`.
    """

    n_gates: int = 1
    state_names: tuple[str, ...] = ("h",)
    param_names: tuple[str, ...] = ("W_x", "W_h", "B")
    #: names of the per-step values :meth:`step_values` can expose
    value_names: tuple[str, ...] = ()

    def param_shapes(self, n_features: int, n_nodes: int) -> dict[str, tuple[int, ...]]:
        g = self.n_gates * n_nodes
        return {"W_x": (n_features, g), "W_h": (n_nodes, g), "B": (g,)}

    def init_params(
        self, n_features: int, n_nodes: int, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Initial float64 host arrays: Glorot-uniform W_x, orthogonal W_h, zero B."""
        shapes = self.param_shapes(n_features, n_nodes)
        return {
            "W_x": glorot_uniform(rng, shapes["W_x"]),
            "W_h": orthogonal(rng, shapes["W_h"]),
            "B": np.zeros(shapes["B"]),
        }

    # forward --------------------------------------------------------------------
    def prepare(self, p: dict, *, xp: Any) -> dict:
        """Arrays derived from the parameters once per pass (hoisted out of the loop)."""
        return p

    def project(self, p: dict, x2: Any, *, xp: Any) -> Any:
        """Input side of every step at once: ``(N, n_features) -> (N, n_gates*n_nodes)``."""
        return x2 @ p["W_x"] + p["B"]

    def step(self, p: dict, ax: Any, state: tuple, *, xp: Any) -> tuple[tuple, Any]:
        """One step: ``(ax_t, state_{t-1}) -> (state_t, cache_t)``."""
        raise NotImplementedError

    # backward -------------------------------------------------------------------
    def prepare_backward(self, p: dict, *, xp: Any) -> dict:
        """Transposed weights and other constants of the reverse scan, made once."""
        return {"W_hT": xp.matrix_transpose(p["W_h"])}

    def step_backward(self, q: dict, cache: Any, d_state: tuple, *, xp: Any) -> tuple:
        """Reverse of :meth:`step`.

        Returns ``(d_ax_t, d_ah_t, d_state_{t-1})``: the gradient on the input-side
        pre-activation, on the recurrent pre-activation (what multiplies into
        ``W_h``), and on the previous state.
        """
        raise NotImplementedError

    def recurrent_grads(self, p: dict, h_prev2: Any, caches: list, d_ah2: Any, *, xp: Any) -> dict:
        """Gradients of the recurrent parameters from the stacked deltas (one matmul).

        ``h_prev2`` is ``(N, n_nodes)``: every step's previous hidden state, stacked
        time-major; ``d_ah2`` is ``(N, n_gates*n_nodes)`` in the same order.
        """
        return {"W_h": xp.matrix_transpose(h_prev2) @ d_ah2}

    def step_values(self, cache: Any, *, xp: Any) -> dict:
        """Named per-step values (gate activations, ...) for ``return_all_states``."""
        return {}
