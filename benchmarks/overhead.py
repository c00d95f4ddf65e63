"""The fixed cost of one forward + BPTT: a layer on tiny arrays, where the arithmetic is
negligible and what is left is Python, dispatch and per-call setup.

    python benchmarks/overhead.py                  # every cell, float32 and float64
    PYTHONPATH=/tmp/anyrnn-old python benchmarks/overhead.py   # another checkout

Prints the median process CPU time per call over rounds (T=50 steps, batch 2, 2
features, 2 units by default; ``--shape T,B,I,H``).
"""

from __future__ import annotations

import argparse
import statistics
import time

from anyrnn.bench import anyrnn_step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="50,2,2,2")
    parser.add_argument("--calls", type=int, default=200, help="calls per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    shape = tuple(int(v) for v in args.shape.split(","))
    for cell in ("simple", "lstm", "gru"):
        for dtype in ("float32", "float64"):
            step = anyrnn_step(cell, shape, dtype)
            for _ in range(5):
                step()
            per_call = []
            for _ in range(args.rounds):
                start = time.process_time()
                for _ in range(args.calls):
                    step()
                per_call.append((time.process_time() - start) / args.calls)
            ms = 1e3 * statistics.median(per_call)
            print(f"{cell:6} {dtype:7} {shape}: {ms:.3f} ms per forward + BPTT", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
