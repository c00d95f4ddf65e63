"""Timing forward + BPTT: shared by ``python -m anyrnn bench`` and ``benchmarks/``.

Machines are noisy, so contenders are timed *interleaved* (rounds A B A B ...) after a
warm-up, and compared by the median of the per-round ratios: a slow patch of the
machine slows both sides of a round alike. Absolute times are not comparable across
runs; ratios within one run are.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .backend import resolve_backend
from .layers.recurrent import make_recurrent

__all__ = [
    "SHAPES",
    "flops",
    "sync",
    "anyrnn_step",
    "interleaved",
    "matmul_call",
    "matmul_peak",
    "median_ratio",
]

#: (T, batch, n_features, n_nodes), as in the performance issue
SHAPES = {
    "S": (50, 32, 16, 64),
    "M": (100, 64, 64, 256),
    "L": (100, 128, 128, 512),
}
_GATES = {"simple": 1, "lstm": 4, "gru": 3}


def flops(cell: str, T: int, B: int, I: int, H: int) -> float:  # noqa: E741 - the usual names
    """Matmul FLOPs of one forward + BPTT (elementwise work not counted).

    Forward: ``x·W_x`` and ``h·W_h`` at every step, ``2·T·B·G·H·(I + H)`` with G gates.
    Backward: ``dW_x``, ``dX``, ``dW_h`` and ``dh_{t-1}``, twice the forward.
    """
    g = _GATES[cell]
    return 3 * 2.0 * T * B * g * H * (I + H)


def sync(backend_name: str) -> None:
    """Wait for queued device work (GPU backends run asynchronously)."""
    if backend_name == "cupy":
        import cupy

        cupy.cuda.Device().synchronize()
    elif backend_name == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()


def anyrnn_step(
    cell: str,
    shape: tuple[int, int, int, int],
    dtype: str,
    backend: str = "numpy",
    seed: int = 0,
) -> Callable[[], None]:
    """A callable running one forward + BPTT of an anyrnn layer on ``backend``.

    The layer is the callable's ``layer`` attribute.
    """
    T, B, I, H = shape  # noqa: E741
    rng = np.random.default_rng(seed)
    b = resolve_backend(backend, None, dtype)
    layer = make_recurrent(
        cell, I, H, return_sequences=True, backend=b, dtype=dtype, random_state=seed
    )
    X = b.from_host(rng.normal(size=(B, T, I)))
    d_out = b.from_host(rng.normal(size=(B, T, H)))

    def step() -> None:
        layer.forward(X)
        dX = layer.backward(d_out)
        if b.name == "jax":
            dX.block_until_ready()
        sync(b.name)

    step.layer = layer  # type: ignore[attr-defined]  # for inspection
    return step


def interleaved(
    contenders: dict[str, Callable[[], Any]],
    *,
    repeats: int = 7,
    warmup: int = 2,
    block: int = 3,
    settle: float = 0.2,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Seconds per call of each contender, timed in alternating rounds A B C, A B C, ...

    In each round every contender first makes untimed calls for at least ``settle``
    seconds (one at least), then ``block`` timed calls (their mean is that round's time).
    Thread pools busy-wait for a while after a call (OpenBLAS for about 0.1 s), so
    switching library on every call makes two pools fight for the cores and penalises
    whoever runs next (measured here: 24 ms for an alternating pair that takes 7 ms
    apart). The untimed calls outlast the previous contender's spinning threads while
    warming this one's; sleeping instead is worse, as waking idle threads is slow on a
    virtual machine.

    ``clock`` times the blocks: wall-clock by default; ``time.process_time`` (CPU time of
    the process, all its threads) is robust to other processes on a shared machine.
    """
    for _ in range(warmup):
        for f in contenders.values():
            f()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, f in contenders.items():
            t_settle = time.perf_counter() + settle
            f()  # untimed: the previous contender's thread pools go idle meanwhile
            while time.perf_counter() < t_settle:
                f()
            t0 = clock()
            for _ in range(block):
                f()
            times[name].append((clock() - t0) / block)
    return times


def median_ratio(a: list[float], b: list[float]) -> float:
    """Median over rounds of a_i / b_i (robust to the machine slowing down mid-run)."""
    return statistics.median(x / y for x, y in zip(a, b))


def matmul_call(dtype: str, backend: str = "numpy", n: int = 2048) -> Callable[[], None]:
    """A callable running one n×n matmul on ``backend`` (``2·n³`` FLOPs): the practical
    ceiling for the matmul-bound RNN work on this machine. Its ``flops`` attribute is
    the product's FLOP count."""
    b = resolve_backend(backend, None, dtype)
    rng = np.random.default_rng(0)
    x = b.from_host(rng.random((n, n)))
    y = b.from_host(rng.random((n, n)))

    def mm() -> None:
        z = x @ y
        if b.name == "jax":
            z.block_until_ready()
        sync(b.name)

    mm.flops = 2.0 * n**3  # type: ignore[attr-defined]
    return mm


def matmul_peak(
    dtype: str,
    backend: str = "numpy",
    n: int = 2048,
    repeats: int = 5,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Measured matmul throughput (GFLOP/s) of an n×n product on ``backend``, the best of
    ``repeats`` (see :func:`matmul_call`)."""
    mm = matmul_call(dtype, backend, n)
    times = interleaved({"mm": mm}, repeats=repeats, warmup=1, block=1, settle=0.0, clock=clock)
    best = min(times["mm"])
    return mm.flops / best / 1e9  # type: ignore[attr-defined]
