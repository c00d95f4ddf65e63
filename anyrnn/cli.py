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
import os
import sys
import tempfile
import time

import numpy as np

from . import bench, diagnose
from .backend import BackendUnavailableError, available_backends, resolve_backend
from .cells import CELLS as CELL_CLASSES
from .engine.inplace import show_kernels
from .estimators import ScratchSimpleRNNClassifier
from .layers.recurrent import make_recurrent

__all__ = ["main"]


def _enable_x64_if_needed(backend: str, dtype: str) -> None:
    """Turn JAX's 64-bit mode on for ``--backend jax --dtype float64``, and say so."""
    if backend.lower().replace("-", "_") != "jax" or dtype != "float64":
        return
    try:
        import jax
    except ImportError:
        return  # resolving the backend says that JAX is missing
    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)  # this process only
        print("note: turned on JAX's 64-bit mode (jax_enable_x64) in this process, for float64")


def _check_backend(parser: argparse.ArgumentParser, backend: str, dtype: str) -> None:
    """Exit with a one-line error (no traceback) if ``--backend`` cannot be used here."""
    _enable_x64_if_needed(backend, dtype)
    try:
        resolve_backend(backend, None, dtype)
    except (ValueError, TypeError, BackendUnavailableError) as exc:
        parser.error(f"--backend {backend}: {exc}")


def _plot_target(parser: argparse.ArgumentParser, plot: str) -> tuple[str, str] | None:
    """``(absolute path, format)`` for ``--plot``, checked *before* training; None: no plot.

    Exits with a one-line error if the file could not be written (no such directory, a
    directory, not writable, a format matplotlib cannot write).
    """
    if plot.lower() == "none":
        return None
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print(
            "note: no plot will be written: matplotlib is not installed (pip install 'anyrnn[plot]')"
        )
        return None
    path = os.path.abspath(os.path.expanduser(plot))
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    formats = Figure().canvas.get_supported_filetypes()
    if suffix and suffix not in formats:
        parser.error(
            f"--plot {plot}: matplotlib cannot write .{suffix} files; use a .png path "
            f"(or one of {', '.join('.' + f for f in sorted(formats))}), or 'none'"
        )
    fmt = suffix or "png"  # no suffix: PNG, written to exactly the path given
    parent = os.path.dirname(path)
    if os.path.isdir(path):
        parser.error(f"--plot {plot}: that is a directory; give a file name such as curves.png")
    if not os.path.isdir(parent):
        what = "is not a directory" if os.path.exists(parent) else "does not exist"
        parser.error(f"--plot {plot}: {parent} {what}")
    try:  # can a file be created there? (a probe, removed at once)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".anyrnn-plot-probe-"):
            pass
    except OSError as exc:
        parser.error(f"--plot {plot}: cannot write in {parent} ({exc.strerror or exc})")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        parser.error(f"--plot {plot}: the file exists and is not writable")
    return path, fmt


def _demo(args: argparse.Namespace, plot: tuple[str, str] | None) -> int:
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
    if plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        path, fmt = plot
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        epochs = np.arange(1, clf.n_iter_ + 1)
        ax1.plot(epochs, clf.loss_curve_)
        ax1.set(title="training loss", xlabel="epoch", ylabel="cross-entropy")
        ax2.plot(epochs, clf.validation_scores_, label="validation")
        ax2.axhline(accuracy, color="k", linestyle="--", label=f"held-out {accuracy:.3f}")
        ax2.set(title="accuracy", xlabel="epoch", ylabel="accuracy")
        ax2.legend()
        fig.tight_layout()
        try:
            fig.savefig(path, dpi=100, format=fmt)
        except OSError as exc:
            print(f"error: the curves could not be written to {path}: {exc}", file=sys.stderr)
            return 1
        finally:
            plt.close(fig)
        print(f"curves written to {path}")
    return 0


def _check(args: argparse.Namespace) -> int:
    if args.backend == "all":
        names = available_backends()
    else:
        names = [args.backend]
        if args.backend != "cupy":  # CuPy's problems are reported in its verdict
            try:
                resolve_backend(args.backend)
            except (ValueError, BackendUnavailableError) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
    if "jax" in names:
        import jax

        jax.config.update("jax_enable_x64", True)  # this process only: to check float64
    print(f"checking: {', '.join(names)} (reference: NumPy's generic engine)")
    return 0 if diagnose.check(names, args.verbose) else 1


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
        "--plot",
        default="anyrnn-demo.png",
        help="path for the curves (PNG unless the suffix names another format), or 'none'",
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    check = sub.add_parser("check", help="compare every available backend with NumPy")
    check.add_argument("--verbose", action="store_true", help="every quantity, not just the worst")
    check.add_argument(
        "--backend",
        default="all",
        help="all (default: every backend usable here), numpy, cupy, torch, jax, array_api_strict",
    )
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
    try:
        return _run(parser, args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Check every argument before any work starts, then run the command."""
    if args.command == "kernels":
        return _kernels(args)
    if args.command == "bench":
        if args.repeats < 1:
            parser.error(f"--repeats must be at least 1; got {args.repeats}")
        _check_backend(parser, args.backend, args.dtype)
        return _bench(args)
    if args.command == "demo":
        if args.epochs < 1:
            parser.error(f"--epochs must be at least 1; got {args.epochs}")
        if not 0 <= args.seed <= 2**32 - 1:
            parser.error(f"--seed must be in [0, 2**32 - 1]; got {args.seed}")
        _check_backend(parser, args.backend, args.dtype)
        plot = _plot_target(parser, args.plot)
        return _demo(args, plot)
    return _check(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
