"""anyrnn: recurrent neural networks written once against the Python Array API standard.

The forward pass and the hand-written backpropagation through time run unchanged on
NumPy, CuPy, PyTorch, JAX and array-api-strict; the backend is fixed when a layer or
model is built.
"""

from . import losses, optimizers, scratch
from ._backend import (
    Backend,
    BackendUnavailableError,
    available_backends,
    resolve_backend,
    to_backend,
    to_numpy,
)
from .dense import Dense
from .estimators import RNNClassifier, RNNRegressor, ScratchSimpleRNNClassifier
from .io import ModelFileError, load
from .recurrent import SimpleRNN

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "Dense",
    "ModelFileError",
    "RNNClassifier",
    "RNNRegressor",
    "ScratchSimpleRNNClassifier",
    "SimpleRNN",
    "load",
    "losses",
    "optimizers",
    "scratch",
    "available_backends",
    "resolve_backend",
    "to_backend",
    "to_numpy",
]
