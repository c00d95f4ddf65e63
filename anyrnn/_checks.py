"""One place for checking the numbers and flags users pass: hyper-parameters, options.

Every public constructor and call checks its scalar arguments through these, so the
messages read alike (``name must be …; got name=value``) and NumPy scalars
(``np.float32(0.01)``, ``np.int64(3)``, ``np.True_``) are accepted wherever the Python
ones are. Each returns the value as a plain Python ``bool``/``int``/``float``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = ["check_bool", "check_int", "check_real", "check_choice"]


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a bool; ``ValueError`` unless it is ``True``/``False`` (or NumPy's)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise ValueError(f"{name} must be True or False; got {name}={value!r}")


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    return f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def check_int(value: Any, name: str, *, low: int = 1, high: float = math.inf) -> int:
    """``value`` as an int in ``[low, high]``; ``ValueError`` naming ``name`` otherwise."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)
    if not (ok and low <= value <= high):
        what = (
            "a positive int"
            if (low, high) == (1, math.inf)
            else "an int in " + _interval(low, high, False, False)
        )
        raise ValueError(f"{name} must be {what}; got {name}={value!r}")
    return int(value)


def check_real(
    value: Any,
    name: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite float in the interval; ``ValueError`` naming ``name`` otherwise.

    NaN and infinities are always refused, whatever the interval.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if ok:
        v = float(value)
        ok = math.isfinite(v)
        ok = ok and (v > low if low_open else v >= low)
        ok = ok and (v < high if high_open else v <= high)
    if not ok:
        raise ValueError(
            f"{name} must be a finite number in {_interval(low, high, low_open, high_open)}; "
            f"got {name}={value!r}"
        )
    return float(value)


def check_choice(value: Any, name: str, choices: Any, *, lower: bool = False) -> Any:
    """``value`` if it is one of ``choices`` (compared lower-cased with ``lower``)."""
    key = value.lower() if lower and isinstance(value, str) else value
    if isinstance(key, np.bool_):
        key = bool(key)
    # 1 is not True and 0 is not False here, although Python says they are equal
    ok = any(isinstance(key, bool) == isinstance(c, bool) and key == c for c in choices)
    if not ok:
        raise ValueError(f"{name} must be one of {list(choices)}; got {name}={value!r}")
    return key
