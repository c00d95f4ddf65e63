"""Backends: the array namespace, device and dtype, fixed once per object.

A :class:`Backend` is resolved when a layer or model is built and never changes
afterwards. Every array that object creates is made through it, so all of them live
in one namespace, on one device, in one dtype. There is no global "current backend".

- :mod:`.core`: the :class:`Backend` object and the conversion of arrays into it;
- :mod:`.probe`: which backends run on this machine (cached probes, CuPy advice);
- :mod:`.resolve`: ``backend``/``device``/``dtype`` arguments into a :class:`Backend`;
- :mod:`.transfer`: moving arrays between libraries (:func:`to_numpy`, :func:`to_backend`).

Everything is imported from here; patch a private name (``_PROBES``, ``_cupy_status``)
in the submodule that holds it.
"""

from .core import BACKEND_NAMES, DTYPE_NAMES, Backend, array_library, refuse_masked
from .probe import _status as _status  # whether a backend runs here, for the tests
from .probe import available_backends, cupy_advice, register_probe
from .resolve import BackendUnavailableError, resolve_backend
from .transfer import to_backend, to_numpy

# Backends pickle as a call to resolve_backend: record it under this public path, so
# saved models do not depend on which submodule holds it.
resolve_backend.__module__ = __name__

__all__ = [
    "BACKEND_NAMES",
    "DTYPE_NAMES",
    "Backend",
    "BackendUnavailableError",
    "array_library",
    "available_backends",
    "cupy_advice",
    "refuse_masked",
    "register_probe",
    "resolve_backend",
    "to_backend",
    "to_numpy",
]
