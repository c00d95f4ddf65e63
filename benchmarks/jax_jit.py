"""JAX's jitted engine against JAX eager and against NumPy, interleaved in one process.

    python benchmarks/jax_jit.py [--cpu-time] simple,lstm,gru float32,float64 S M

``--cpu-time``: one BLAS thread, the process's CPU time instead of wall-clock time; run it
with ``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"`` so
that XLA runs on one thread too.

For each case: the seconds the first jitted forward + BPTT took (trace and XLA compile),
then the median ms of one forward + BPTT for JAX jitted (``fast_path="auto"``), JAX eager
(``fast_path=False``) and NumPy (its default engine), and the median per-round ratios
jit/eager and jit/numpy.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402

import anyrnn  # noqa: E402
from anyrnn.bench import SHAPES, interleaved, median_ratio  # noqa: E402

jax.config.update("jax_enable_x64", True)
LAYERS = {"simple": anyrnn.SimpleRNN, "lstm": anyrnn.LSTM, "gru": anyrnn.GRU}


def _step(cell: str, shape: tuple, dtype: str, backend: str, fast_path):
    T, B, I, H = shape  # noqa: E741
    rng = np.random.default_rng(0)
    layer = LAYERS[cell](
        I,
        H,
        return_sequences=True,
        dtype=dtype,
        backend=backend,
        random_state=0,
        fast_path=fast_path,
    )
    X = layer._backend.from_host(rng.normal(size=(B, T, I)))
    d = layer._backend.from_host(rng.normal(size=(B, T, H)))

    def run() -> None:
        layer.forward(X)
        dX = layer.backward(d)
        if backend == "jax":
            dX.block_until_ready()

    return run


def main(argv: list[str]) -> int:
    clock = time.perf_counter
    if argv and argv[0] == "--cpu-time":  # one thread each, process CPU time
        import threadpoolctl

        threadpoolctl.threadpool_limits(1)
        clock, argv = time.process_time, argv[1:]
    cells, dtypes, *shapes = argv
    for shape_name in shapes:
        shape = SHAPES[shape_name]
        for cell in cells.split(","):
            for dtype in dtypes.split(","):
                jit = _step(cell, shape, dtype, "jax", "auto")
                t0 = time.perf_counter()
                jit()
                compile_s = time.perf_counter() - t0
                contenders = {
                    "jit": jit,
                    "eager": _step(cell, shape, dtype, "jax", False),
                    "numpy": _step(cell, shape, dtype, "numpy", "auto"),
                }
                t = interleaved(contenders, repeats=5, warmup=1, block=2, settle=0.1, clock=clock)
                med = {k: round(float(np.median(v)) * 1e3, 2) for k, v in t.items()}
                print(
                    cell,
                    dtype,
                    shape_name,
                    f"first call {compile_s:.1f} s",
                    "ms",
                    med,
                    "jit/eager",
                    round(median_ratio(t["jit"], t["eager"]), 3),
                    "jit/numpy",
                    round(median_ratio(t["jit"], t["numpy"]), 3),
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
