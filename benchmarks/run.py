"""Benchmark harness: anyrnn forward + BPTT against PyTorch and the seeds' naive loop.

    python -m benchmarks                      # every cell, shape, dtype, available backend
    python -m benchmarks --shapes S M --cells lstm --backends numpy --repeats 9
    python benchmarks/run.py --quick          # S only, fewer repeats

For each (cell, shape, dtype, backend) the contenders run interleaved (A B C, A B C,
...) after a warm-up: anyrnn on that backend, PyTorch's nn.RNN/LSTM/GRU forward +
``backward()`` on the same device (CPU; CUDA/cuDNN when the backend is CuPy), and on
NumPy a straight per-step loop in the seeds' style. Ratios are medians of per-round
ratios. Also reported: achieved matmul GFLOP/s against a matmul timed in the same
rounds (the peak), torch's fraction of that peak, the fraction anyrnn would need for the
CPU-speed issue's target ratio, and (NumPy) the peak memory of one training step against
the minimum BPTT needs. Prints a table; writes JSON (``--json``, default ``benchmarks/results/latest.json``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: python benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anyrnn  # noqa: E402
from anyrnn.bench import (  # noqa: E402
    SHAPES,
    anyrnn_step,
    flops,
    interleaved,
    matmul_call,
    matmul_peak,
    median_ratio,
)

HERE = Path(__file__).resolve().parent

#: per-step quantities BPTT must keep, (batch, n_nodes) each: simple h; LSTM h, c, i, f,
#: g, o; GRU h, r, z, n and the recurrent candidate term
STORED = {"simple": 1, "lstm": 6, "gru": 5}


# ----------------------------------------------------------------------------- peers


def torch_step(cell: str, shape: tuple, dtype: str, device: str, seed: int = 0):
    import torch

    T, B, I, H = shape  # noqa: E741
    torch.manual_seed(seed)
    cls = {"simple": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    tdtype = getattr(torch, dtype)
    module = cls(I, H, batch_first=True, dtype=tdtype, device=device)
    rng = np.random.default_rng(seed)
    X = torch.tensor(rng.normal(size=(B, T, I)), dtype=tdtype, device=device, requires_grad=True)
    d_out = torch.tensor(rng.normal(size=(B, T, H)), dtype=tdtype, device=device)
    cuda = device.startswith("cuda")

    def step() -> None:
        for p in module.parameters():
            p.grad = None
        X.grad = None
        out = module(X)[0]
        out.backward(d_out)
        if cuda:
            torch.cuda.synchronize()

    return step


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def naive_step(cell: str, shape: tuple, dtype: str, seed: int = 0):
    """The seeds' style: per-step x_t·W_x inside the loop, dict caches, per-step
    weight-gradient accumulation with ``+=`` (seed 002's loop, its BPTT line corrected;
    the same style for LSTM and GRU)."""
    T, B, I, H = shape  # noqa: E741
    rng = np.random.default_rng(seed)
    g = {"simple": 1, "lstm": 4, "gru": 3}[cell]
    W_x = (rng.normal(size=(I, g * H)) * 0.1).astype(dtype)
    W_h = (rng.normal(size=(H, g * H)) * 0.1).astype(dtype)
    b = np.zeros(g * H, dtype)
    X = rng.normal(size=(B, T, I)).astype(dtype)
    d_out = rng.normal(size=(B, T, H)).astype(dtype)

    def simple() -> None:
        hs, xs = {-1: np.zeros((B, H), dtype)}, {}
        for t in range(T):
            xs[t] = X[:, t, :]
            hs[t] = np.tanh(np.dot(xs[t], W_x) + np.dot(hs[t - 1], W_h) + b)
        dW_x, dW_h, db = np.zeros_like(W_x), np.zeros_like(W_h), np.zeros_like(b)
        dX = np.zeros((B, T, I), dtype)
        dh_next = np.zeros((B, H), dtype)
        for t in reversed(range(T)):
            da = (d_out[:, t, :] + dh_next) * (1 - hs[t] ** 2)
            db += np.sum(da, axis=0)
            dW_x += np.dot(xs[t].T, da)
            dW_h += np.dot(hs[t - 1].T, da)
            dX[:, t, :] = np.dot(da, W_x.T)
            dh_next = np.dot(da, W_h.T)

    def lstm() -> None:
        hs, cs, cache = {-1: np.zeros((B, H), dtype)}, {-1: np.zeros((B, H), dtype)}, {}
        for t in range(T):
            z = np.dot(X[:, t, :], W_x) + np.dot(hs[t - 1], W_h) + b
            i, f = _sigmoid(z[:, :H]), _sigmoid(z[:, H : 2 * H])
            gg, o = np.tanh(z[:, 2 * H : 3 * H]), _sigmoid(z[:, 3 * H :])
            cs[t] = f * cs[t - 1] + i * gg
            hs[t] = o * np.tanh(cs[t])
            cache[t] = (i, f, gg, o)
        dW_x, dW_h, db = np.zeros_like(W_x), np.zeros_like(W_h), np.zeros_like(b)
        dX = np.zeros((B, T, I), dtype)
        dh_next, dc_next = np.zeros((B, H), dtype), np.zeros((B, H), dtype)
        for t in reversed(range(T)):
            i, f, gg, o = cache[t]
            dh = d_out[:, t, :] + dh_next
            tc = np.tanh(cs[t])
            dc = dc_next + dh * o * (1 - tc**2)
            dz = np.concatenate(
                [
                    dc * gg * i * (1 - i),
                    dc * cs[t - 1] * f * (1 - f),
                    dc * i * (1 - gg**2),
                    dh * tc * o * (1 - o),
                ],
                axis=1,
            )
            db += dz.sum(axis=0)
            dW_x += np.dot(X[:, t, :].T, dz)
            dW_h += np.dot(hs[t - 1].T, dz)
            dX[:, t, :] = np.dot(dz, W_x.T)
            dh_next, dc_next = np.dot(dz, W_h.T), dc * f

    def gru() -> None:
        hs, cache = {-1: np.zeros((B, H), dtype)}, {}
        for t in range(T):
            a = np.dot(X[:, t, :], W_x) + b
            u = np.dot(hs[t - 1], W_h)
            r, z = _sigmoid(a[:, :H] + u[:, :H]), _sigmoid(a[:, H : 2 * H] + u[:, H : 2 * H])
            n = np.tanh(a[:, 2 * H :] + r * u[:, 2 * H :])
            hs[t] = (1 - z) * n + z * hs[t - 1]
            cache[t] = (r, z, n, u[:, 2 * H :])
        dW_x, dW_h, db = np.zeros_like(W_x), np.zeros_like(W_h), np.zeros_like(b)
        dX = np.zeros((B, T, I), dtype)
        dh_next = np.zeros((B, H), dtype)
        for t in reversed(range(T)):
            r, z, n, un = cache[t]
            dh = d_out[:, t, :] + dh_next
            dn = dh * (1 - z) * (1 - n**2)
            dz = dh * (hs[t - 1] - n) * z * (1 - z)
            dr = dn * un * r * (1 - r)
            da = np.concatenate([dr, dz, dn], axis=1)
            du = np.concatenate([dr, dz, dn * r], axis=1)
            db += da.sum(axis=0)
            dW_x += np.dot(X[:, t, :].T, da)
            dW_h += np.dot(hs[t - 1].T, du)
            dX[:, t, :] = np.dot(da, W_x.T)
            dh_next = dh * z + np.dot(du, W_h.T)

    return {"simple": simple, "lstm": lstm, "gru": gru}[cell]


# ----------------------------------------------------------------------------- memory


def memory_ratio(cell: str, shape: tuple, dtype: str) -> tuple[float, float]:
    """(peak MB of one training step, minimum MB BPTT needs), NumPy backend.

    NumPy reports its buffers to tracemalloc. The peak covers the inputs, the layer's
    parameters, the forward pass with its tape, and the backward pass with the
    gradients. The minimum: X, d_out and dX, the stored per-step quantities
    (``STORED[cell]`` arrays of T·B·H), and the parameters with their gradients.
    """
    T, B, I, H = shape  # noqa: E741
    itemsize = np.dtype(dtype).itemsize
    anyrnn_step(cell, (2, 2, 2, 2), dtype, "numpy")()  # compile any JIT kernels first
    tracemalloc.start()
    try:
        step = anyrnn_step(cell, shape, dtype, "numpy")
        step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    g = {"simple": 1, "lstm": 4, "gru": 3}[cell]
    n_params = g * H * (I + H + (2 if cell == "gru" else 1))
    minimum = (2 * B * T * I + B * T * H + STORED[cell] * T * B * H + 2 * n_params) * itemsize
    return peak / 2**20, minimum / 2**20


# ----------------------------------------------------------------------------- run

COLUMNS = [  # (key, header, format, width)
    ("anyrnn_ms", "anyrnn ms", ".2f", 10),
    ("torch_ms", "torch ms", ".2f", 9),
    ("ratio_torch", "/torch", ".2f", 7),
    ("naive_ms", "naive ms", ".2f", 9),
    ("ratio_naive", "/naive", ".2f", 7),
    ("gflops", "GFLOP/s", ".1f", 8),
    ("peak_gflops", "peak", ".0f", 5),
    ("pct_peak", "%peak", ".0f", 6),
    ("torch_pct_peak", "torch%", ".0f", 7),
    ("need_pct_peak", "need%", ".0f", 6),
    ("mem_ratio", "mem/min", ".2f", 8),
]

#: the CPU-speed issue's targets for anyrnn/torch per shape; ``need%`` is the fraction of
#: the row's matmul peak anyrnn's matmul FLOPs would have to run at to meet them
TARGETS = {"S": 0.6, "M": 0.6, "L": 0.8}
#: the matmul timed in every round beside the contenders (``peak``): one measured before
#: the run moves with the machine's load, which on a shared VM changes within minutes
PEAK_N = 1024


def format_row(row: dict | None) -> str:
    """One table line (the header when ``row`` is None)."""
    if row is None:
        left = f"{'cell':6} {'shape':5} {'dtype':7} {'backend':16}"
        return left + "".join(" " + h.rjust(w) for _, h, _, w in COLUMNS)
    left = f"{row['cell']:6} {row['shape']:5} {row['dtype']:7} {row['backend']:16}"
    cells = [format(row[k], f).rjust(w) if k in row else "-".rjust(w) for k, _, f, w in COLUMNS]
    return left + "".join(" " + c for c in cells)


def machine() -> dict[str, Any]:
    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "anyrnn": anyrnn.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
    }
    try:
        import threadpoolctl

        blas = [m for m in threadpoolctl.threadpool_info() if m.get("user_api") == "blas"]
        # NumPy's own BLAS (scipy and torch may load others into the process)
        blas.sort(key=lambda m: "numpy" not in m.get("filepath", ""))
        if blas:
            info["blas"] = (
                f"{blas[0]['internal_api']} {blas[0]['version']} ({blas[0].get('architecture')}), {blas[0]['num_threads']} threads"
            )
    except ImportError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument(
        "--cells", nargs="+", default=["simple", "lstm", "gru"], choices=["simple", "lstm", "gru"]
    )
    parser.add_argument(
        "--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"]
    )
    parser.add_argument(
        "--backends", nargs="+", default=None, help="default: every available backend"
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--block", type=int, default=3, help="timed calls per contender per round")
    parser.add_argument(
        "--settle",
        type=float,
        default=0.2,
        help="seconds of untimed calls before each block (thread pools settle)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS and torch threads (default: as installed); with --cpu-time, use 1",
    )
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time the process's CPU time, not wall-clock (robust on a shared machine)",
    )
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--no-naive", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--quick", action="store_true", help="S only, 3 repeats")
    parser.add_argument("--json", default=str(HERE / "results" / "latest.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.shapes, args.repeats, args.warmup = ["S"], 3, 1
    backends = args.backends or anyrnn.available_backends()
    if "jax" in backends:
        import jax

        jax.config.update("jax_enable_x64", True)  # float64 on JAX means float64
    have_torch = not args.no_torch and "torch" in anyrnn.available_backends()

    if args.threads is not None:
        import threadpoolctl

        threadpoolctl.threadpool_limits(args.threads)
        if "torch" in anyrnn.available_backends():
            import torch

            torch.set_num_threads(args.threads)
    clock = time.process_time if args.cpu_time else time.perf_counter
    info = machine()
    info["clock"] = "process CPU time" if args.cpu_time else "wall-clock"
    info["load_average"] = os.getloadavg()
    print("machine:", ", ".join(f"{k}={v}" for k, v in info.items()))
    peaks = {}
    for b in backends:
        for dt in args.dtypes:
            peaks[f"{b}/{dt}"] = matmul_peak(dt, b, clock=clock)
    print(
        "matmul peak before the rows (GFLOP/s, 2048x2048; each row's `peak` is an "
        f"{PEAK_N}x{PEAK_N} matmul timed in its rounds):",
        ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()),
    )

    head = format_row(None)
    print(head)
    print("-" * len(head))
    rows = []
    for shape_name in args.shapes:
        shape = SHAPES[shape_name]
        for cell in args.cells:
            for dt in args.dtypes:
                for b in backends:
                    contenders = {"anyrnn": anyrnn_step(cell, shape, dt, b)}
                    if have_torch:
                        device = "cpu"
                        if b == "cupy":
                            import torch

                            device = "cuda" if torch.cuda.is_available() else "cpu"
                        contenders["torch"] = torch_step(cell, shape, dt, device)
                    if b == "numpy" and not args.no_naive:
                        contenders["naive"] = naive_step(cell, shape, dt)
                    contenders["peak"] = matmul_call(dt, b, PEAK_N)
                    times = interleaved(
                        contenders,
                        repeats=args.repeats,
                        warmup=args.warmup,
                        block=args.block,
                        settle=args.settle,
                        clock=clock,
                    )
                    med = {k: statistics.median(v) for k, v in times.items()}
                    work = flops(cell, *shape)
                    gf = work / med["anyrnn"] / 1e9
                    peak = contenders["peak"].flops / med["peak"] / 1e9
                    row = {
                        "cell": cell,
                        "shape": shape_name,
                        "dims_T_B_I_H": list(shape),
                        "dtype": dt,
                        "backend": b,
                        "anyrnn_ms": 1e3 * med["anyrnn"],
                        "gflops": gf,
                        "peak_gflops": peak,
                        "pct_peak": 100 * gf / peak,
                    }
                    if "torch" in med and not (b == "cupy" and device == "cpu"):
                        # (torch on the CPU against a GPU's peak would say nothing)
                        row["torch_pct_peak"] = 100 * work / med["torch"] / 1e9 / peak
                        need = work / (TARGETS[shape_name] * med["torch"]) / 1e9
                        row["need_pct_peak"] = 100 * need / peak
                    for peer in ("torch", "naive"):
                        if peer in times:
                            row[f"{peer}_ms"] = 1e3 * med[peer]
                            row[f"ratio_{peer}"] = median_ratio(times["anyrnn"], times[peer])
                    if b == "numpy" and not args.no_memory:
                        peak_mb, min_mb = memory_ratio(cell, shape, dt)
                        row.update(
                            mem_peak_mb=peak_mb, mem_min_mb=min_mb, mem_ratio=peak_mb / min_mb
                        )
                    rows.append(row)

                    row["load_average_1min"] = os.getloadavg()[0]
                    print(format_row(row) + f"  load {os.getloadavg()[0]:.1f}", flush=True)
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": info,
        "matmul_peak_gflops": peaks,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "block": args.block,
        "settle_s": args.settle,
        "results": rows,
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
