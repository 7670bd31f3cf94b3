"""The router protocol: per-record weights over the expert pool, co-trained with it."""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Router(Protocol):
    """Gives a weight vector over the ``n_experts`` experts for a record and learns from which
    experts were right.

    ``weights(x)`` returns a float array of shape ``(n_experts,)`` summing to 1.
    ``learn(x, correct_mask)`` takes a 0/1 float array of the same shape (1 = that expert was
    right, or is the target). ``add_expert()`` appends an output, ``remove_expert(i)`` drops
    output ``i``; both keep the other experts' learned preferences.
    """

    n_experts: int

    def weights(self, x: dict[str, Any]) -> np.ndarray: ...

    def learn(self, x: dict[str, Any], correct_mask: np.ndarray) -> None: ...

    def add_expert(self) -> None: ...

    def remove_expert(self, i: int) -> None: ...
