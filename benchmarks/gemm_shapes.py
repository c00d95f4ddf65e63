"""NumPy's matmul against torch's on the engine's shapes, and two half-height products
against one whole one, one thread each, process CPU time.

    python benchmarks/gemm_shapes.py

Part 1 says whether PyTorch's advantage on the float32 LSTM comes from its general
matmul (``torch.mm``) or from its fused RNN kernel; part 2 what splitting a step's
product by rows costs (each call packs the weights again).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

SHAPES = [(1024, 1024, 1024), (128, 512, 2048), (64, 256, 1024), (32, 64, 256)]


def _cpu(fn, reps: int) -> float:
    start = time.process_time()
    for _ in range(reps):
        fn()
    return (time.process_time() - start) / reps


def measure(dtype: str, m: int, k: int, n: int, torch, rounds: int = 7) -> str:
    """One line: NumPy's and torch's GFLOP/s on (m×k)·(k×n), and the halves/whole ratio."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(m, k)).astype(dtype)
    w = rng.normal(size=(k, n)).astype(dtype)
    c = np.empty((m, n), dtype)
    h = m // 2
    reps = max(1, int(2e9 / (2 * m * k * n)))
    gflop = 2 * m * k * n / 1e9

    def whole() -> None:
        np.matmul(a, w, out=c)

    def halves() -> None:
        np.matmul(a[:h], w, out=c[:h])
        np.matmul(a[h:], w, out=c[h:])

    contenders = {"numpy": whole, "halves": halves}
    if torch is not None:
        ta, tw, tc = (torch.from_numpy(v) for v in (a, w, c.copy()))
        contenders["torch"] = lambda: torch.mm(ta, tw, out=tc)
    times: dict = {name: [] for name in contenders}
    for _ in range(rounds):  # interleaved
        for name, fn in contenders.items():
            times[name].append(_cpu(fn, reps))
    line = f"{dtype} ({m}x{k})·({k}x{n}): numpy {gflop / statistics.median(times['numpy']):.0f}"
    if torch is not None:
        line += f", torch.mm {gflop / statistics.median(times['torch']):.0f}"
    ratio = statistics.median(x / y for x, y in zip(times["halves"], times["numpy"]))
    return line + f" GFLOP/s; two half-height products / one whole: {ratio:.2f}"


def main() -> int:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    for dtype in ("float32", "float64"):
        for m, k, n in SHAPES:
            print(measure(dtype, m, k, n, torch), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
