"""Warnings that point at the user's line, however deep inside anyrnn they are raised."""

from __future__ import annotations

import os
import sys
import warnings

__all__ = ["warn_user"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` at the first frame outside anyrnn: the call that entered the package.

    A fixed ``stacklevel`` breaks whenever a call gains a frame (a device context, a
    wrapper, a module split); this counts them. The frame found is the caller's (a
    script, a test, or scikit-learn's ``GridSearchCV`` calling ``fit``).
    """
    frame = sys._getframe(1)  # the anyrnn function that warns
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level + 1)  # + 1: this function's frame
