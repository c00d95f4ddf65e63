"""Layers: recurrent (SimpleRNN, LSTM, GRU), Dense, and the Stacked/Bidirectional wrappers."""

from .base import Layer
from .dense import Dense
from .recurrent import GRU, LSTM, SimpleRNN
from .recurrent_base import RecurrentLayer
from .wrappers import Bidirectional, Stacked

__all__ = [
    "Bidirectional",
    "Dense",
    "GRU",
    "LSTM",
    "Layer",
    "RecurrentLayer",
    "SimpleRNN",
    "Stacked",
]
