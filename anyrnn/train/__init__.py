"""Training: losses with their gradients, and optimizers."""

from . import losses, optimizers

__all__ = ["losses", "optimizers"]
