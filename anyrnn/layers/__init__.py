"""Layers: recurrent (SimpleRNN, LSTM, GRU), Dense, and the Stacked/Bidirectional wrappers."""

from .base import Layer
from .dense import Dense
from .recurrent import GRU, LSTM, RecurrentLayer, SimpleRNN
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
