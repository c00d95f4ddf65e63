"""Fixtures that run every test over every backend usable on this machine.

``backend`` yields a :class:`Case`: NumPy, array-api-strict at its default API version,
at 2023.12 and on its non-default device ``device1``, torch (CPU), JAX (64-bit mode on,
so float64 is really float64), and CuPy when a GPU really runs a kernel. Backends that
are missing are skipped with the reason.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import anyrnn
from anyrnn.backend import _status


def pytest_configure(config):
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
    except ImportError:
        pass


@dataclass(frozen=True)
class Case:
    name: str
    device: Any = None
    api_version: str | None = None

    @property
    def id(self) -> str:
        extra = f"@{self.api_version}" if self.api_version else ""
        extra += f"-{self.device}" if self.device else ""
        return self.name + extra

    @contextlib.contextmanager
    def context(self):
        if self.api_version is None:
            yield
            return
        import array_api_strict

        with array_api_strict.ArrayAPIStrictFlags(api_version=self.api_version):
            yield


CASES = [
    Case("numpy"),
    Case("array_api_strict"),
    Case("array_api_strict", api_version="2023.12"),
    Case("array_api_strict", device="device1"),
    Case("torch"),
    Case("jax"),
    Case("cupy"),
]


def _skip_reason(case: Case) -> str | None:
    ok, why = _status(case.name)
    return None if ok else f"backend {case.name} unavailable here: {why}"


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def backend(request) -> Case:
    case: Case = request.param
    reason = _skip_reason(case)
    if reason:
        pytest.skip(reason)
    with case.context():
        yield case


@pytest.fixture(params=["float32", "float64"])
def dtype(request) -> str:
    return request.param


def tolerance(dtype: str) -> float:
    """Relative tolerance against NumPy: 1e-12 in float64, 1e-5 in float32 (the project's
    cross-backend targets; `python -m anyrnn check` uses the same)."""
    return 1e-12 if dtype == "float64" else 1e-5


def rel_err(a: Any, b: Any) -> float:
    """max |a - b| / max |b| (0 when both are zero)."""
    a = np.asarray(anyrnn.to_numpy(a), dtype=np.float64)
    b = np.asarray(anyrnn.to_numpy(b), dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = np.max(np.abs(b)) if b.size else 0.0
    diff = np.max(np.abs(a - b)) if a.size else 0.0
    return float(diff / scale) if scale > 0 else float(diff)


def assert_on_backend(x: Any, layer: Any) -> None:
    """``x`` is an array of the layer's namespace, device and dtype."""
    assert layer._backend.owns(x), f"{type(x)} is not a {layer.backend} array"
    import array_api_compat

    assert str(array_api_compat.device(x)) == str(layer.device)
    assert x.dtype == layer.dtype
