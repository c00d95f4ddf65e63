"""The in-place engine's CPU flavours against each other, interleaved in one process.

    python benchmarks/flavours.py simple,lstm,gru float32,float64 S M L [--flavours loop,numba]

Flavours: ``loop`` (the compiled time loop), ``numba`` (a call of the generated kernels
per step), ``numpy`` (NumPy calls per step). Prints the median ms of one forward + BPTT
for each and the median per-round ratio of each flavour to the first (one process and
one BLAS, so no thread-pool interference), with the process CPU time per call too:
``cpu`` is robust to other processes on a shared machine, wall-clock time is not.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anyrnn import engine  # noqa: E402
from anyrnn.bench import SHAPES, anyrnn_step, interleaved, median_ratio  # noqa: E402


def _flavoured(step, flavour: str):
    def run() -> None:
        engine.INPLACE.use_numba = flavour != "numpy"
        engine.INPLACE.compiled_loops = flavour == "loop"
        step()

    return run


def _cpu_timed(f, seconds: list):
    """``f``, appending the process CPU time of each call to ``seconds``."""

    def run() -> None:
        c0 = time.process_time()
        f()
        seconds.append(time.process_time() - c0)

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cells")
    parser.add_argument("dtypes")
    parser.add_argument("shapes", nargs="+", help="S, M, L or T,B,I,H")
    parser.add_argument("--flavours", default="loop,numba")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    flavours = args.flavours.split(",")
    for shape_name in args.shapes:
        shape = SHAPES.get(shape_name) or tuple(int(v) for v in shape_name.split(","))
        for cell in args.cells.split(","):
            for dtype in args.dtypes.split(","):
                step = anyrnn_step(cell, shape, dtype)
                contenders = {f: _flavoured(step, f) for f in flavours}
                cpu: dict[str, list[float]] = {f: [] for f in flavours}
                t = interleaved(
                    {f: _cpu_timed(contenders[f], cpu[f]) for f in flavours},
                    repeats=args.repeats,
                    warmup=1,
                    settle=0.0,
                )
                med = {k: round(float(np.median(v)) * 1e3, 2) for k, v in t.items()}
                cpu_ms = {k: round(float(np.median(v)) * 1e3, 2) for k, v in cpu.items()}
                ratios = {
                    f"{k}/{flavours[0]}": round(median_ratio(t[k], t[flavours[0]]), 3)
                    for k in flavours[1:]
                }
                print(cell, dtype, shape_name, "ms", med, "cpu ms", cpu_ms, ratios, flush=True)
    engine.INPLACE.use_numba = engine.INPLACE.compiled_loops = None
    return 0


if __name__ == "__main__":
    sys.exit(main())
