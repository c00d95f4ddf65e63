"""Recurrent cells: the equations of one time step, and the registry of cells by name.

Each cell module opens with its equations; the elementwise arithmetic of every cell is
in :mod:`anyrnn.cells.pointwise`. Adding a cell: its step functions in ``pointwise``,
a :class:`Cell` subclass declaring its gates and states, and an entry here (and a layer
class in :mod:`anyrnn.layers.recurrent` for its constructor arguments).
"""

from .base import Cell
from .gru import GRUCell
from .lstm import LSTMCell
from .simple import ACTIVATIONS, SimpleCell

#: cells by the ``cell=`` name the estimators take
CELLS: dict[str, type[Cell]] = {"simple": SimpleCell, "lstm": LSTMCell, "gru": GRUCell}

__all__ = ["ACTIVATIONS", "CELLS", "Cell", "GRUCell", "LSTMCell", "SimpleCell"]
