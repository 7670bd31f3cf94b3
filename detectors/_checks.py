"""Value checks shared by the detectors: one observation in, a clean number (or label) out.

Kept cheap because they run on every record: exact ``int``/``float``/``bool`` take a fast path,
anything else goes through the slower ``numbers`` checks. Wrong type -> ``TypeError``; right type,
wrong value (2 for a 0/1 stream, NaN, infinity, ``None`` label) -> ``ValueError``.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Hashable
from typing import Any

import numpy as np


def as_binary(x: Any, who: str) -> int:
    """Return 0 or 1 for a 0/1 observation (bool, int, float or numpy scalar)."""
    t = type(x)
    if t is bool or t is int or t is float:
        if x == 1:
            return 1
        if x == 0:
            return 0
        raise ValueError(f"{who} consumes 0/1 values (binary errors); got {x!r}")
    if isinstance(x, (numbers.Real, np.bool_)):
        v = float(x)
        if v == 1.0:
            return 1
        if v == 0.0:
            return 0
        raise ValueError(f"{who} consumes 0/1 values (binary errors); got {x!r}")
    raise TypeError(f"{who} consumes 0/1 numbers; got {type(x).__name__} {x!r}")


def as_real(x: Any, who: str) -> float:
    """Return a finite float for a real observation (bool, int, float or numpy scalar)."""
    t = type(x)
    if t is float or t is int or t is bool:
        v = float(x)
    elif isinstance(x, (numbers.Real, np.bool_)):
        v = float(x)
    else:
        raise TypeError(f"{who} consumes real numbers; got {type(x).__name__} {x!r}")
    if not math.isfinite(v):
        raise ValueError(f"{who} consumes finite real numbers; got {x!r}")
    return v


def check_label(x: Any, who: str) -> Hashable:
    """Return a class label unchanged after checking it is hashable and present."""
    if x is None:
        raise ValueError(f"{who} consumes class labels; got None (a missing label)")
    if not isinstance(x, Hashable) or isinstance(x, np.ndarray):
        raise TypeError(f"{who} consumes hashable class labels; got {type(x).__name__}")
    if isinstance(x, float) and math.isnan(x):
        raise ValueError(f"{who} consumes class labels; got NaN")
    return x


def check_window_settings(who: str, window: int, stride: int, alpha: float) -> None:
    """The settings of a windowed test (records per window, records between tests, level)."""
    if not (isinstance(window, int) and window >= 20):
        raise ValueError(f"{who}: window must be an int >= 20 records; got {window!r}")
    if not (isinstance(stride, int) and 1 <= stride <= window):
        raise ValueError(f"{who}: stride must be an int in [1, window]; got {stride!r}")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ValueError(f"{who}: alpha must be in (0, 1); got {alpha!r}")
