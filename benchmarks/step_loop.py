"""What one recurrent step costs on this machine, part by part (no anyrnn layer involved).

    python benchmarks/step_loop.py

1. A dependent loop of T=100 products (128×512)·(512×512) float32, then with the add and
   tanh of a SimpleRNN step: NumPy (OpenBLAS) against torch (MKL) on the same arrays.
2. The forward step of a float32 LSTM at the S shape (batch 32, 64 units), one call added
   at a time: matmul, add, tanh, the fused Numba kernel, tanh(c), o ⊙ tanh(c).
3. The two per-step matmuls of that step with one OpenBLAS thread and with two.

Times are µs per step, the median of 5 repetitions; run it more than once, the machine is
noisy.
"""

from __future__ import annotations

import time

import numpy as np


def per_step(fn, n_steps: int, repeats: int = 5) -> float:
    fn()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) / n_steps * 1e6)
    return float(np.median(runs))


def blas_loop() -> None:
    import torch

    T, B, H = 100, 128, 512
    rng = np.random.default_rng(0)
    W = (rng.standard_normal((H, H)) * 0.03).astype(np.float32)
    hb = np.zeros((T + 1, B, H), np.float32)
    ax = rng.standard_normal((T, B, H)).astype(np.float32)
    tmp = np.empty((B, H), np.float32)
    tW, th, tt, tax = (torch.from_numpy(a) for a in (W, hb, tmp, ax))

    def np_gemm():
        for t in range(T):
            np.matmul(hb[t], W, out=hb[t + 1])

    def np_step():
        for t in range(T):
            np.matmul(hb[t], W, out=tmp)
            np.add(ax[t], tmp, out=hb[t + 1])
            np.tanh(hb[t + 1], out=hb[t + 1])

    def torch_gemm():
        for t in range(T):
            torch.mm(th[t], tW, out=th[t + 1])

    def torch_step():
        for t in range(T):
            torch.mm(th[t], tW, out=tt)
            torch.add(tax[t], tt, out=th[t + 1])
            torch.tanh(th[t + 1], out=th[t + 1])

    print("1. dependent (128x512)·(512x512) float32 loop, µs per step")
    for name, fn in [("numpy matmul", np_gemm), ("numpy matmul+add+tanh", np_step)] + [
        ("torch mm", torch_gemm),
        ("torch mm+add+tanh", torch_step),
    ]:
        print(f"   {name:24s} {per_step(fn, T):8.1f}")


def lstm_small_step() -> None:
    from anyrnn.cells.base import CONSTANTS
    from anyrnn.cells.lstm import LSTMCell
    from anyrnn.engine import codegen
    from anyrnn.engine.inplace import forward_binding

    cell = LSTMCell()
    step = codegen.cpu_step(cell.forward_program, forward_binding(cell), codegen.numba_available())
    T, B, n = 50, 32, 64
    rng = np.random.default_rng(0)
    W = (rng.standard_normal((n, 4 * n)) * 0.05).astype(np.float32)
    buffers = {
        "gates": rng.standard_normal((T, B, 4 * n)).astype(np.float32),
        "h": np.zeros((T + 1, B, n), np.float32),
        "c": np.zeros((T + 1, B, n), np.float32),
        "w": np.empty((B, 4 * n), np.float32),
    }
    const = {k: np.float32(v) for k, v in CONSTANTS.items()}
    args = [buffers[b] for b in step.buffers]
    consts = [const[c] for c in step.consts]
    hb, w = buffers["h"], buffers["w"]

    def upto(k: int):
        def run():
            for t in range(T):
                np.matmul(hb[t], W, out=w)
                if k >= 1:
                    step.fn(*args, t, n, B, *consts)

        return run

    print("2. float32 LSTM forward step at S (batch 32, 64 units), µs per step, cumulative")
    print(
        "   the generated step:\n" + "\n".join("      " + line for line in step.source.splitlines())
    )
    for k, name in enumerate(["matmul", "+ the generated step"]):
        print(f"   {name:24s} {per_step(upto(k), T, repeats=50):8.1f}")


def small_matmul_threads() -> None:
    from threadpoolctl import threadpool_limits

    B, n = 32, 64
    h = np.ones((B, n), np.float32)
    W = np.ones((n, 4 * n), np.float32)
    out = np.empty((B, 4 * n), np.float32)
    dz = np.ones((B, 4 * n), np.float32)
    WT = np.ones((4 * n, n), np.float32)
    out2 = np.empty((B, n), np.float32)

    def fwd():
        for _ in range(100):
            np.matmul(h, W, out=out)

    def bwd():
        for _ in range(100):
            np.matmul(dz, WT, out=out2)

    print("3. the LSTM S step's matmuls, µs per call (forward, backward)")
    for threads in (2, 1):
        with threadpool_limits(threads, user_api="blas"):
            f, b = per_step(fwd, 100, 20), per_step(bwd, 100, 20)
        print(f"   {threads} OpenBLAS thread(s)      {f:8.1f} {b:8.1f}")


if __name__ == "__main__":
    blas_loop()
    lstm_small_step()
    small_matmul_threads()
