"""Recurrent cells: the equations of one time step, as pure functions of ``xp``."""

from .base import Cell
from .simple import SimpleCell

__all__ = ["Cell", "SimpleCell"]
