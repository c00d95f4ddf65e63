"""Backend fast paths against the generic Array API path, interleaved in one process.

    python benchmarks/fast_vs_generic.py lstm float32 100,64,64,256

Prints the median ms of each and the median per-round ratio fast/generic (one library,
so no thread-pool interference between the two).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anyrnn  # noqa: E402
from anyrnn.bench import interleaved, median_ratio  # noqa: E402


def main(argv: list[str]) -> int:
    cell, dtype, dims = argv
    T, B, I, H = (int(v) for v in dims.split(","))  # noqa: E741
    cls = {"simple": anyrnn.SimpleRNN, "lstm": anyrnn.LSTM, "gru": anyrnn.GRU}[cell]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(B, T, I)).astype(dtype)
    d = rng.normal(size=(B, T, H)).astype(dtype)
    fast = cls(I, H, return_sequences=True, dtype=dtype, random_state=0)
    generic = cls(I, H, return_sequences=True, dtype=dtype, random_state=0, fast_path=False)

    def run(layer):
        return lambda: (layer.forward(X), layer.backward(d))

    t = interleaved({"fast": run(fast), "generic": run(generic)}, repeats=7, warmup=1, settle=0.0)
    med = {k: round(float(np.median(v)) * 1e3, 1) for k, v in t.items()}
    print(
        cell,
        dtype,
        (T, B, I, H),
        med,
        "fast/generic",
        round(median_ratio(t["fast"], t["generic"]), 2),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
