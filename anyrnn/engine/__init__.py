"""Engines: the generic Array API scan and the in-place NumPy/CuPy loops."""
