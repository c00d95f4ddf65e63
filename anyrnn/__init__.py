"""anyrnn: recurrent neural networks written once against the Python Array API standard.

The forward pass and the hand-written backpropagation through time run unchanged on
NumPy, CuPy, PyTorch, JAX and array-api-strict; the backend is fixed when a layer or
model is built.
"""

from . import distributed, scratch
from .backend import (
    Backend,
    BackendUnavailableError,
    available_backends,
    resolve_backend,
    to_backend,
    to_numpy,
)
from .estimators import RNNClassifier, RNNRegressor, ScratchSimpleRNNClassifier
from .interop import from_torch, to_torch
from .io import ModelFileError, load, save
from .layers import GRU, LSTM, Bidirectional, Dense, SimpleRNN, Stacked
from .train import losses, optimizers

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "Bidirectional",
    "Dense",
    "GRU",
    "LSTM",
    "ModelFileError",
    "RNNClassifier",
    "RNNRegressor",
    "ScratchSimpleRNNClassifier",
    "SimpleRNN",
    "Stacked",
    "load",
    "save",
    "losses",
    "optimizers",
    "scratch",
    "distributed",
    "available_backends",
    "from_torch",
    "resolve_backend",
    "to_backend",
    "to_torch",
    "to_numpy",
]
