"""This checkout's layers against another checkout's, alternating in one process.

    git worktree add /tmp/anyrnn-old 3550910
    python benchmarks/compare_commits.py [--cpu-time] /tmp/anyrnn-old simple,lstm,gru \\
        float32,float64 50,32,16,64 100,64,64,256

Prints the median ms of forward + BPTT for each and the median per-round ratio new/old
(one process and one BLAS, so no thread-pool interference between the two).
``--cpu-time``: one BLAS thread, and the process's CPU time instead of wall-clock time
(robust to other processes on a shared machine). The other checkout is imported first
and its modules renamed ``old_anyrnn...``; it must import what it needs at module level
(a lazy ``from .x import y`` would find this checkout's).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

CELLS = {"simple": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


def _import_pair(old_root: str):
    here = str(Path(__file__).resolve().parents[1])
    sys.path.insert(0, old_root)
    import anyrnn as old

    for name in list(sys.modules):
        if name == "anyrnn" or name.startswith("anyrnn."):
            sys.modules["old_" + name] = sys.modules.pop(name)
    sys.path[0] = here
    import anyrnn as new

    assert Path(new.__file__).resolve().is_relative_to(here), new.__file__
    return old, new


def main(argv: list[str]) -> int:
    clock = time.perf_counter
    if argv and argv[0] == "--cpu-time":  # one BLAS thread, process CPU time
        import threadpoolctl

        threadpoolctl.threadpool_limits(1)
        clock, argv = time.process_time, argv[1:]
    old_root, cells, dtypes, *shapes = argv
    old, new = _import_pair(old_root)
    from anyrnn.bench import interleaved, median_ratio

    for shape in shapes:
        T, B, I, H = (int(v) for v in shape.split(","))  # noqa: E741
        for cell in cells.split(","):
            for dtype in dtypes.split(","):
                rng = np.random.default_rng(0)
                X = rng.normal(size=(B, T, I)).astype(dtype)
                d = rng.normal(size=(B, T, H)).astype(dtype)

                def make(module, dtype=dtype, cell=cell, I=I, H=H, X=X, d=d):  # noqa: E741
                    layer = getattr(module, CELLS[cell])(
                        I, H, return_sequences=True, dtype=dtype, random_state=0
                    )
                    return lambda: (layer.forward(X), layer.backward(d))

                t = interleaved(
                    {"old": make(old), "new": make(new)},
                    repeats=7,
                    warmup=1,
                    settle=0.0,
                    clock=clock,
                )
                med = {k: round(float(np.median(v)) * 1e3, 2) for k, v in t.items()}
                ratio = median_ratio(t["new"], t["old"])
                print(cell, dtype, shape, med, "new/old", round(ratio, 3), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
