"""Shared problems of the layer tests: data, masks, and every registered cell variant."""

from __future__ import annotations

import itertools

import numpy as np

from anyrnn.layers.recurrent import CELLS

B_, T_, I_, H_ = 3, 5, 2, 3
RNG = np.random.default_rng(0)
X0 = RNG.normal(size=(B_, T_, I_))
RIGHT = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=bool)
LEFT = RIGHT[:, ::-1].copy()


def _variants() -> dict:
    out = {}
    for name, cls in CELLS.items():
        keys = sorted(cls.cell_options)
        for values in itertools.product(*(cls.cell_options[k] for k in keys)):
            kw = dict(zip(keys, values))
            label = "-".join([name] + [f"{k}={v}" for k, v in kw.items()])
            out[label] = (cls, kw)
    return out


#: every registered cell with every choice of its options, by label
CELL_KW = _variants()


def make(cell, **kw):
    cls, extra = CELL_KW[cell]
    layer = cls(I_, H_, dtype="float64", random_state=2, **extra, **kw)
    # non-trivial biases, so every bias gradient is exercised
    layer.set_params_from(
        {
            n: np.linspace(-0.5, 0.5, int(np.prod(s))).reshape(s)
            for n, s in layer.param_shapes().items()
            if n.startswith("B")
        }
    )
    return layer


def states(layer, seed=5):
    rng = np.random.default_rng(seed)
    return {f"{n}0": rng.normal(size=(B_, H_)) * 0.5 for n in layer.state_names}
