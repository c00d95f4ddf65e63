"""``python -m anyrnn check``: does this machine compute what NumPy computes?

Runs small models of every cell forward and backward on a backend, with each engine the
backend offers (``fast_path="auto"``, the in-place engine where it applies, and
``fast_path=False``, the generic engine), and reports the largest relative difference
from NumPy's generic engine in the outputs and every gradient. On CuPy it first reports
the set-up (versions, device, CUDA) and the self-check of every generated kernel, so the
whole output is one verdict a user can paste into a bug report.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from .backend import BackendUnavailableError, resolve_backend, to_numpy
from .cells import CELLS as CELL_CLASSES
from .engine import cuda, inplace
from .layers.recurrent import CELLS, make_recurrent

__all__ = ["TOLERANCE", "compare", "cupy_setup", "kernel_checks"]

#: the tolerances of the test suite (tests/conftest.py), relative to NumPy's result
TOLERANCE = {"float64": 1e-12, "float32": 1e-5}


def compare(cell: str, backend: str, dtype: str, fast_path: Any) -> dict[str, float]:
    """Largest relative difference from NumPy's generic engine, per quantity."""
    rng = np.random.default_rng(0)
    batch, steps, n_features, n_nodes = 4, 6, 3, 5
    X = rng.normal(size=(batch, steps, n_features))
    h0 = rng.normal(size=(batch, n_nodes)) * 0.5
    d_out = rng.normal(size=(batch, steps, n_nodes))

    def run(name: str, fast: Any) -> dict[str, np.ndarray]:
        layer = make_recurrent(
            cell,
            n_features,
            n_nodes,
            return_sequences=True,
            backend=name,
            dtype=dtype,
            random_state=1,
            fast_path=fast,
        )
        out = layer.forward(X, h0)
        dX = layer.backward(d_out)
        res = {"output": out, "dX": dX, "dh0": layer.dh0}
        res.update({f"d{k}": v for k, v in layer.grads.items()})
        return {k: to_numpy(v).astype(np.float64) for k, v in res.items()}

    ref, got = run("numpy", False), run(backend, fast_path)
    return {
        k: float(np.max(np.abs(got[k] - ref[k])) / max(np.max(np.abs(ref[k])), 1e-300)) for k in ref
    }


def cupy_setup() -> list[str]:
    """Lines describing the CuPy set-up: versions, the device, CUDA."""
    lines = [
        f"anyrnn {_package_version()}, NumPy {np.__version__}, Python {platform.python_version()}"
    ]
    try:
        import cupy

        rt = cupy.cuda.runtime
        lines.append(f"CuPy {cupy.__version__}, CUDA runtime {rt.runtimeGetVersion()}")
        lines.append(f"driver supports CUDA {rt.driverGetVersion()}")
        count = rt.getDeviceCount()
        for i in range(count):
            props = rt.getDeviceProperties(i)
            name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
            lines.append(f"GPU {i}: {name}, compute capability {props['major']}.{props['minor']}")
    except Exception as exc:  # noqa: BLE001 - a report, whatever fails
        lines.append(f"CuPy set-up: {type(exc).__name__}: {exc}")
    return lines


def _package_version() -> str:
    try:
        return version("anyrnn")
    except PackageNotFoundError:
        return "(not installed)"


def kernel_checks(backend: Any) -> list[tuple[str, str | None]]:
    """``(kernel, None or why it failed)`` for every generated kernel on ``backend``."""
    out = []
    seen = set()
    for name, cls in CELL_CLASSES.items():
        for cell in [cls("tanh"), cls("relu")] if name == "simple" else [cls()]:
            if cell.forward_program is None:
                continue
            for key, (prog, binding) in inplace._bindings(cell).items():
                label = f"{prog} ({key})"
                if label not in seen:
                    seen.add(label)
                    out.append((label, cuda.check_kernel(prog, binding, backend)))
    return out


def check(names: list[str], verbose: bool, emit: Any = print) -> bool:
    """Run the comparison for ``names``; print the report; True when all agree."""
    ok_all = True
    if "cupy" in names:
        emit("CuPy set-up:")
        for line in cupy_setup():
            emit(f"  {line}")
        for dtype in ("float32", "float64"):
            try:
                be = resolve_backend("cupy", None, dtype)
            except BackendUnavailableError as exc:
                emit(f"VERDICT: CuPy cannot be used here: {exc}")
                return False
            for label, why in kernel_checks(be):
                status = "ok" if why is None else f"FAILED: {why}"
                ok_all &= why is None
                emit(f"  kernel {label:38} {dtype:8} {status}")
    emit(f"tolerance: largest |x - numpy| / max|numpy| <= {TOLERANCE}")
    header = (
        f"{'cell':8} {'backend':18} {'engine':8} {'dtype':8} {'worst':>10}  {'quantity':10} status"
    )
    emit(header)
    emit("-" * len(header))
    for cell in CELLS:
        for backend in names:
            for fast in ("auto", False):
                for dtype in ("float64", "float32"):
                    errors = compare(cell, backend, dtype, fast)
                    worst = max(errors, key=errors.get)
                    ok = errors[worst] <= TOLERANCE[dtype]
                    ok_all &= ok
                    engine = "generic" if fast is False else "auto"
                    status = "ok" if ok else "DISAGREES"
                    emit(
                        f"{cell:8} {backend:18} {engine:8} {dtype:8} {errors[worst]:10.2e}  "
                        f"{worst:10} {status}"
                    )
                    if verbose or not ok:
                        for k, v in errors.items():
                            emit(f"{'':47} {k:10} {v:.2e}")
    emit(
        "VERDICT: "
        + ("every backend agrees with NumPy" if ok_all else "something disagrees (above)")
    )
    return ok_all
