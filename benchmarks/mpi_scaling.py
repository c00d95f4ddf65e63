"""Data-parallel scaling over MPI: training samples per second on 1 and 2 ranks.

    OPENBLAS_NUM_THREADS=1 python benchmarks/mpi_scaling.py --cell simple --rounds 3

The driver (this command) starts ``mpiexec -n N python benchmarks/mpi_scaling.py worker
...`` in alternating rounds (1 rank, 2 ranks weak, 2 ranks strong, again ...), so a slow
patch of a shared machine hits all configurations alike, and reports the median over
rounds. Each rank uses one BLAS thread (the driver sets OPENBLAS_NUM_THREADS=1 etc. for
the ranks), so N ranks use N cores.

One step, timed on every rank between barriers: forward + BPTT of one layer at the M
shape (T=100, 64 features, 256 nodes; ``return_sequences=True``, a gradient at every
step), ``allreduce_grads`` (one all-reduce of all the layer's gradients) and an SGD
update. *Weak* scaling: each rank a local batch of 64 (global batch 64·N). *Strong*:
the global batch of 64 split over the ranks. Samples/s = global batch / step time;
efficiency = samples/s on N ranks / (N × samples/s on 1 rank).

Reported twice: from the median step time (median over rounds of each launch's mean
step) and from the best single step seen in any round (the fastest step is the least
disturbed by other work on a shared machine). The all-reduce is timed inside the steps
(including any wait for a slower rank) and alone (50 back-to-back calls, ranks in step).
A third estimate counts CPU seconds per step on each rank (``time.process_time``; MPICH
busy-waits, so a rank's wait for the other is counted): the CPU-time efficiency,
(1-rank CPU per sample) / (N-rank CPU per sample on a rank), is what the wall-clock
efficiency would be with a dedicated core per rank.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(args: argparse.Namespace) -> None:
    from mpi4py import MPI

    from anyrnn.bench import anyrnn_step
    from anyrnn.distributed import Sync
    from anyrnn.train.optimizers import SGD

    comm = MPI.COMM_WORLD
    sync = Sync.create(comm)
    T, I, H = 100, 64, 256  # noqa: E741 - the M shape but for the batch
    step = anyrnn_step(args.cell, (T, args.batch, I, H), args.dtype, seed=comm.Get_rank())
    layer, opt = step.layer, SGD(1e-4)
    sync.broadcast_params([layer])

    def train_step() -> float:
        step()
        t0 = time.perf_counter()
        sync.allreduce_grads([layer], args.batch)
        t_reduce = time.perf_counter() - t0
        opt.step([layer])
        return t_reduce

    for _ in range(args.warmup):
        train_step()
    comm.Barrier()
    t0 = time.perf_counter()
    reduce_s, step_times = 0.0, []
    cpu0 = time.process_time()
    for _ in range(args.steps):
        t_step = time.perf_counter()
        reduce_s += train_step()
        step_times.append(time.perf_counter() - t_step)  # ends in the all-reduce: global
    cpu_per_step = (time.process_time() - cpu0) / args.steps
    comm.Barrier()
    elapsed = time.perf_counter() - t0
    cpu_all = comm.gather(cpu_per_step, root=0)
    reduce_all = comm.gather(reduce_s / args.steps, root=0)
    # the all-reduce alone, ranks in step (no waiting for a slower rank's backward)
    comm.Barrier()
    t0 = time.perf_counter()
    for _ in range(50):
        sync.allreduce_grads([layer], args.batch)
    comm.Barrier()
    pure = (time.perf_counter() - t0) / 50
    if comm.Get_rank() == 0:
        n_params = sum(int(v.size) for v in layer.params.values())
        itemsize = 4 if args.dtype == "float32" else 8
        print(
            "RESULT "
            + json.dumps(
                {
                    "ranks": comm.Get_size(),
                    "local_batch": args.batch,
                    "step_s": elapsed / args.steps,
                    "step_s_min": min(step_times),
                    "cpu_s_per_step_per_rank": cpu_all,
                    "allreduce_s_per_rank": reduce_all,
                    "allreduce_alone_s": pure,
                    "n_params": n_params,
                    "message_bytes": (n_params + 1) * itemsize,
                    "transport": sync.transport_name([layer]),
                }
            ),
            flush=True,
        )


def launch(n: int, batch: int, args: argparse.Namespace) -> dict:
    mpiexec = Path(sys.executable).with_name("mpiexec")
    mpiexec = str(mpiexec) if mpiexec.exists() else shutil.which("mpiexec")
    threads = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env = {**os.environ, **threads, "PYTHONPATH": str(ROOT)}
    cmd = [mpiexec, "-n", str(n), sys.executable, __file__, "worker"]
    cmd += ["--cell", args.cell, "--dtype", args.dtype, "--batch", str(batch)]
    cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=True)
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def _loadavg() -> float | None:
    """The 1-minute load average (other work on a shared machine skews the figures)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def driver(args: argparse.Namespace) -> None:
    configs = {"1 rank": (1, 64), "2 ranks weak": (2, 64), "2 ranks strong": (2, 32)}
    runs: dict[str, list[dict]] = {name: [] for name in configs}
    load_before = _loadavg()
    for _ in range(args.rounds):
        for name, (n, batch) in configs.items():
            runs[name].append(launch(n, batch, args))
    rows = {}
    for name, (n, batch) in configs.items():
        step = statistics.median(r["step_s"] for r in runs[name])
        best = min(r["step_s_min"] for r in runs[name])
        cpu = statistics.median(max(r["cpu_s_per_step_per_rank"]) for r in runs[name])
        reduce_s = statistics.median(max(r["allreduce_s_per_rank"]) for r in runs[name])
        alone = statistics.median(r["allreduce_alone_s"] for r in runs[name])
        rows[name] = {
            "ranks": n,
            "local_batch": batch,
            "global_batch": n * batch,
            "step_ms": 1e3 * step,
            "allreduce_in_step_ms": 1e3 * reduce_s,
            "allreduce_alone_ms": 1e3 * alone,
            "samples_per_s": n * batch / step,
            "best_step_ms": 1e3 * best,
            "cpu_ms_per_step": 1e3 * cpu,
            "samples_per_cpu_s_per_rank": batch / cpu,
            "best_samples_per_s": n * batch / best,
            "step_ms_rounds": [round(1e3 * r["step_s"], 2) for r in runs[name]],
        }
    load_after = _loadavg()
    base = rows["1 rank"]["samples_per_s"]
    best_base = rows["1 rank"]["best_samples_per_s"]
    for row in rows.values():
        row["efficiency"] = row["samples_per_s"] / (row["ranks"] * base)
        row["best_efficiency"] = row["best_samples_per_s"] / (row["ranks"] * best_base)
        # the same work per rank on dedicated cores: CPU seconds per step (MPICH busy-waits,
        # so waiting for the other rank is counted too)
        row["cpu_efficiency"] = (
            rows["1 rank"]["cpu_ms_per_step"] * row["local_batch"] / 64 / row["cpu_ms_per_step"]
        )
    first = runs["2 ranks weak"][0]
    print(f"cell={args.cell} dtype={args.dtype} M shape (T=100, 64 features, 256 nodes)")
    print(f"load average (1 min) before/after: {load_before} / {load_after}, {os.cpu_count()} CPUs")
    print(
        f"message per step: {first['message_bytes']} bytes ({first['n_params']} parameters), "
        f"transport {first['transport']}"
    )
    print(
        "| configuration | global batch | step ms | all-reduce in step ms (with wait) "
        "| all-reduce alone ms | samples/s | efficiency | best step ms | best samples/s "
        "| best efficiency | CPU ms per step and rank | CPU-time efficiency |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['global_batch']} | {r['step_ms']:.1f} "
            f"| {r['allreduce_in_step_ms']:.2f} | {r['allreduce_alone_ms']:.3f} "
            f"| {r['samples_per_s']:.0f} | {r['efficiency']:.2f} | {r['best_step_ms']:.1f} "
            f"| {r['best_samples_per_s']:.0f} | {r['best_efficiency']:.2f} "
            f"| {r['cpu_ms_per_step']:.1f} | {r['cpu_efficiency']:.2f} |"
        )
    if args.json:
        payload = {
            "cell": args.cell,
            "dtype": args.dtype,
            "loadavg_before_after": [load_before, load_after],
            "cpus": os.cpu_count(),
            "rows": rows,
            "raw": runs,
        }
        Path(args.json).write_text(json.dumps(payload, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="driver", choices=["driver", "worker"])
    parser.add_argument("--cell", default="simple", choices=["simple", "lstm", "gru"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--batch", type=int, default=64, help="local batch (worker)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None, help="write the figures here (driver)")
    args = parser.parse_args()
    worker(args) if args.mode == "worker" else driver(args)


if __name__ == "__main__":
    main()
