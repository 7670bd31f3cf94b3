"""A context-free exponentially weighted forecaster with fixed share."""
from __future__ import annotations

from typing import Any

import numpy as np


class ExpWeightsRouter:
    """Exponentially weighted average forecaster with fixed-share mixing (Herbster and Warmuth,
    1998), ignoring the features.

    After each record every weight is multiplied by ``exp(-eta * loss)`` with
    ``loss = 1 - mask`` (0 when the expert was right), renormalised, then mixed with the
    uniform distribution: ``w = (1 - alpha) * w + alpha / n``. The mixing keeps every weight
    at least ``alpha / n``, so a formerly poor expert regains the lead within about
    ``log(n / alpha) / eta`` records of becoming the best (about 15 records at the defaults,
    n = 12): it tracks a switching best expert. A new expert starts at weight ``1 / n``.
    """

    def __init__(self, n_experts: int = 12, eta: float = 0.5, alpha: float = 0.01) -> None:
        if n_experts < 0 or eta <= 0 or not 0.0 <= alpha < 1.0:
            raise ValueError("need n_experts >= 0, eta > 0 and 0 <= alpha < 1")
        self.eta = eta
        self.alpha = alpha
        self._w = np.full(n_experts, 1.0 / n_experts) if n_experts else np.zeros(0)

    @property
    def n_experts(self) -> int:
        """Current number of experts."""
        return len(self._w)

    def weights(self, x: dict[str, Any]) -> np.ndarray:
        """Current weights (the same for every ``x``)."""
        return self._w.copy()

    def learn(self, x: dict[str, Any], correct_mask: np.ndarray) -> None:
        """Exponential update on the losses ``1 - correct_mask``, then fixed-share mixing."""
        mask = np.asarray(correct_mask, dtype=float)
        if mask.shape != self._w.shape:
            raise ValueError(f"mask shape {mask.shape} != {self._w.shape}")
        if not len(mask):
            return
        w = self._w * np.exp(-self.eta * (1.0 - mask))
        w /= w.sum()
        self._w = (1.0 - self.alpha) * w + self.alpha / len(w)

    def add_expert(self) -> None:
        """Appends an expert at weight ``1 / n`` (the others scaled to make room)."""
        n = len(self._w) + 1
        self._w = np.append(self._w * (1.0 - 1.0 / n), 1.0 / n)

    def remove_expert(self, i: int) -> None:
        """Drops expert ``i`` and renormalises the rest (uniform if nothing is left to scale)."""
        w = np.delete(self._w, i)
        total = w.sum()
        self._w = w / total if total > 0 else np.full(len(w), 1.0 / max(len(w), 1))
