"""Command line: ``python -m anyrnn demo | check | bench | kernels``.

* ``demo`` trains :class:`anyrnn.ScratchSimpleRNNClassifier` on scikit-learn's handwritten
  digits (each 8×8 image read row by row: 8 steps × 8 features), prints the held-out
  accuracy and the time per epoch, and writes a PNG of the loss and accuracy curves.
* ``check`` runs the same small models on every available backend and prints the
  largest difference from NumPy in outputs and every gradient, in float64 and float32;
  it exits 1 if any backend disagrees beyond the test suite's tolerances.
* ``bench`` times one forward + BPTT of a layer on a backend and prints the median time
  and the achieved matmul GFLOP/s against the matmul peak measured in the same run. The
  full comparison with PyTorch lives in the repository's ``benchmarks/`` harness.
* ``kernels`` lists each cell's step functions (:mod:`anyrnn.cells.pointwise`);
  ``--show`` prints the CPU and CUDA kernels generated from them; ``--compile`` compiles
  (or loads from the cache) the CPU kernels this machine runs, for both dtypes, and says
  how long each took (for a container image, or a cluster's shared cache folder).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from . import bench
from .backend import available_backends, to_numpy
from .cells import CELLS as CELL_CLASSES
from .engine.inplace import show_kernels
from .estimators import ScratchSimpleRNNClassifier
from .layers.recurrent import CELLS, make_recurrent

__all__ = ["main"]

#: the tolerances of the test suite (tests/conftest.py: relative to NumPy's result)
TOLERANCE = {"float64": 1e-12, "float32": 1e-5}


def _demo(args: argparse.Namespace) -> int:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = digits.images / 16.0  # (1797, 8, 8): 8 rows as 8 time steps of 8 pixels
    y = digits.target
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=args.seed
    )
    clf = ScratchSimpleRNNClassifier(
        n_nodes=64,
        optimizer="adam",
        lr=0.005,
        batch_size=32,
        epochs=args.epochs,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        verbose=not args.quiet,
        random_state=args.seed,
        backend=args.backend,
        dtype=args.dtype,
    )
    print(
        f"anyrnn demo: SimpleRNN(64) on {X_train.shape[0]} handwritten digits "
        f"(8 steps x 8 features), backend={clf.backend}, dtype={args.dtype}"
    )
    t0 = time.perf_counter()
    clf.fit(X_train, y_train)
    seconds = time.perf_counter() - t0
    accuracy = clf.score(X_test, y_test)
    per_epoch = 1000 * float(np.mean(clf.epoch_times_))
    print(f"held-out accuracy: {accuracy:.4f} on {X_test.shape[0]} digits")
    print(f"time per epoch: {per_epoch:.1f} ms ({clf.n_iter_} epochs, {seconds:.1f} s in all)")
    if args.plot != "none":
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("no plot: matplotlib is not installed (pip install 'anyrnn[plot]')")
            return 0
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        epochs = np.arange(1, clf.n_iter_ + 1)
        ax1.plot(epochs, clf.loss_curve_)
        ax1.set(title="training loss", xlabel="epoch", ylabel="cross-entropy")
        ax2.plot(epochs, clf.validation_scores_, label="validation")
        ax2.axhline(accuracy, color="k", linestyle="--", label=f"held-out {accuracy:.3f}")
        ax2.set(title="accuracy", xlabel="epoch", ylabel="accuracy")
        ax2.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        plt.close(fig)
        print(f"curves written to {args.plot}")
    return 0


def _check_case(cell: str, backend: str, dtype: str) -> dict[str, float]:
    """Largest relative difference from NumPy for one cell, backend and dtype."""
    rng = np.random.default_rng(0)
    batch, steps, n_features, n_nodes = 4, 6, 3, 5
    X = rng.normal(size=(batch, steps, n_features))
    h0 = rng.normal(size=(batch, n_nodes)) * 0.5
    d_out = rng.normal(size=(batch, steps, n_nodes))

    def run(name: str) -> dict[str, Any]:
        layer = make_recurrent(
            cell,
            n_features,
            n_nodes,
            return_sequences=True,
            backend=name,
            dtype=dtype,
            random_state=1,
        )
        out = layer.forward(X, h0)
        dX = layer.backward(d_out)
        res = {"output": out, "dX": dX, "dh0": layer.dh0}
        res.update({f"d{k}": v for k, v in layer.grads.items()})
        return {k: to_numpy(v).astype(np.float64) for k, v in res.items()}

    ref, got = run("numpy"), run(backend)
    return {
        k: float(np.max(np.abs(got[k] - ref[k])) / max(np.max(np.abs(ref[k])), 1e-300)) for k in ref
    }


def _check(args: argparse.Namespace) -> int:
    names = [b for b in available_backends() if b != "numpy"]
    if "jax" in names:
        import jax

        jax.config.update("jax_enable_x64", True)  # this process only: to check float64
    print(f"backends here: numpy (reference), {', '.join(names) or 'no other'}")
    print(f"tolerance: largest |x - numpy| / max|numpy| <= {TOLERANCE}")
    failed = False
    header = f"{'cell':8} {'backend':18} {'dtype':8} {'worst':>10}  {'quantity':10} status"
    print(header)
    print("-" * len(header))
    for cell in CELLS:
        for backend in names:
            for dtype in ("float64", "float32"):
                errors = _check_case(cell, backend, dtype)
                worst = max(errors, key=errors.get)
                ok = errors[worst] <= TOLERANCE[dtype]
                failed |= not ok
                status = "ok" if ok else "DISAGREES"
                print(f"{cell:8} {backend:18} {dtype:8} {errors[worst]:10.2e}  {worst:10} {status}")
                if args.verbose or not ok:
                    for k, v in errors.items():
                        print(f"{'':38} {k:10} {v:.2e}")
    if not names:
        print("(only NumPy is available: nothing to compare)")
    print("all backends agree with NumPy" if not failed else "some backend disagrees with NumPy")
    return 1 if failed else 0


def _bench(args: argparse.Namespace) -> int:
    SHAPES, anyrnn_step, flops = bench.SHAPES, bench.anyrnn_step, bench.flops
    interleaved, matmul_peak = bench.interleaved, bench.matmul_peak
    if args.shape in SHAPES:
        shape = SHAPES[args.shape]
    else:
        try:
            shape = tuple(int(v) for v in args.shape.split(","))
            if len(shape) != 4 or min(shape) < 1:
                raise ValueError
        except ValueError:
            print(
                f"--shape must be S, M, L or four positive ints T,B,I,H; got {args.shape!r}",
                file=sys.stderr,
            )
            return 2
    if args.backend == "jax" and args.dtype == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)  # this process only
    step = anyrnn_step(args.cell, shape, args.dtype, args.backend)
    times = interleaved({"anyrnn": step}, repeats=args.repeats, warmup=2, settle=0.0)["anyrnn"]
    median = float(np.median(times))
    peak = matmul_peak(args.dtype, args.backend)
    gf = flops(args.cell, *shape) / median / 1e9
    T, B, I, H = shape  # noqa: E741
    print(
        f"{args.cell} T={T} batch={B} features={I} nodes={H} {args.dtype} on "
        f"{step.layer.backend}: {1e3 * median:.2f} ms per forward + BPTT "
        f"(median of {args.repeats}), {gf:.1f} GFLOP/s = {100 * gf / peak:.0f}% of the "
        f"measured matmul peak ({peak:.0f} GFLOP/s)"
    )
    return 0


def _compile(cells: list) -> int:
    """Run a tiny forward + BPTT of every cell, dtype and output form once."""
    from .backend import resolve_backend
    from .engine import INPLACE
    from .engine.kernel_cache import cache_dir

    total = time.perf_counter()
    for cell in cells:
        if cell.forward_program is None:
            continue
        for dtype in ("float32", "float64"):
            flavor = INPLACE.flavor(resolve_backend("numpy", None, dtype))
            t0 = time.perf_counter()
            kw = {"activation": cell.activation} if hasattr(cell, "activation") else {}
            for sequences in (True, False):
                layer = make_recurrent(
                    cell.name, 2, 3, dtype=dtype, return_sequences=sequences, **kw
                )
                out = layer.forward(np.ones((2, 3, 2)))
                layer.backward(np.ones(out.shape))
            label = f"{cell.name} ({cell.activation})" if hasattr(cell, "activation") else cell.name
            print(f"{label} {dtype}: {flavor} kernels ready in {time.perf_counter() - t0:.1f} s")
    print(f"all in {time.perf_counter() - total:.1f} s; cache folder: {cache_dir()}")
    return 0


def _kernels(args: argparse.Namespace) -> int:
    names = list(CELL_CLASSES) if args.cell == "all" else [args.cell]
    cells = []
    for name in names:
        cls = CELL_CLASSES[name]
        cells += [cls("tanh"), cls("relu")] if name == "simple" else [cls()]
    if args.compile:
        return _compile(cells)
    if not args.show:
        for cell in cells:
            progs = [p for p in (cell.forward_program, cell.backward_program) if p]
            label = f"{cell.name} ({cell.activation})" if hasattr(cell, "activation") else cell.name
            print(f"{label}: {', '.join(progs) or 'generic engine only'}")
        print("(--show prints the generated source)")
        return 0
    targets = ("cpu", "cuda") if args.target == "all" else (args.target,)
    print(show_kernels(cells, targets))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m anyrnn", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a classifier on handwritten digits")
    demo.add_argument(
        "--backend",
        default="numpy",
        help="numpy (default), cupy, torch, jax, array_api_strict, auto",
    )
    demo.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    demo.add_argument(
        "--epochs", type=int, default=60, help="most epochs (early stopping may end sooner)"
    )
    demo.add_argument(
        "--plot", default="anyrnn-demo.png", help="PNG path for the curves, or 'none'"
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    check = sub.add_parser("check", help="compare every available backend with NumPy")
    check.add_argument("--verbose", action="store_true", help="every quantity, not just the worst")
    bench = sub.add_parser("bench", help="time forward + BPTT of one layer")
    bench.add_argument("--cell", default="simple", choices=["simple", "lstm", "gru"])
    bench.add_argument("--shape", default="M", help="S, M, L (as in benchmarks/) or T,B,I,H")
    bench.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    bench.add_argument("--backend", default="numpy")
    bench.add_argument("--repeats", type=int, default=7)
    kernels = sub.add_parser(
        "kernels", help="list the step functions, or print the kernels generated from them"
    )
    kernels.add_argument("--show", action="store_true", help="print the generated source")
    kernels.add_argument(
        "--compile", action="store_true", help="compile the CPU kernels now (both dtypes)"
    )
    kernels.add_argument("--cell", default="all", choices=["all", "simple", "lstm", "gru"])
    kernels.add_argument("--target", default="all", choices=["all", "cpu", "cuda"])
    args = parser.parse_args(argv)
    if args.command == "kernels":
        return _kernels(args)
    if args.command == "bench":
        if args.repeats < 1:
            parser.error(f"--repeats must be at least 1; got {args.repeats}")
        return _bench(args)
    if args.command == "demo":
        if args.epochs < 1:
            parser.error(f"--epochs must be at least 1; got {args.epochs}")
        return _demo(args)
    return _check(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
