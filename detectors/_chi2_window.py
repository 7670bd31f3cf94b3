"""Windowed chi-square test on a nominal value: an input-drift detector for category mixes.

A reference window counts the categories of the first ``window`` values after a (re)start; a
sliding window counts the ``window`` most recent. Every ``stride`` records the two count
vectors are compared with Pearson's chi-square test of homogeneity (2 x K table); categories
expected fewer than 5 times in either window are pooled into one cell first, so rare values do
not make the test over-confident. A p-value below ``alpha`` is a drift (then the detector
restarts empty: blind for 2 * window records). A new category that takes a real share of the
recent window shows as a change of mix like any other.

Memory bound: ``window`` small ints (the ring of category indices) plus 2 * ``max_categories``
counts and the category list; categories past ``max_categories`` share one "other" cell.
Time per record O(1), plus O(K) every ``stride`` records. Pure numpy: the per-record work is a
dict lookup and two counter updates.
"""
from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
from scipy.special import chdtrc

from ._base import InputKind
from ._checks import check_label, check_window_settings
from ._mixin import DetectorMixin

__all__ = ["ChiSquareWindow", "chi_square_test"]

#: Minimum expected count of a cell in the chi-square table (the textbook rule of thumb).
MIN_EXPECTED = 5.0
_OTHER = "(other)"


def chi_square_test(ref: np.ndarray, recent: np.ndarray) -> tuple[float, float]:
    """(statistic, p-value) of Pearson's homogeneity test between two count vectors, with cells
    expected fewer than ``MIN_EXPECTED`` times pooled; (0, 1) when fewer than two cells remain."""
    n_ref, n_win = ref.sum(), recent.sum()
    total = ref + recent
    share = total / (n_ref + n_win)
    big = (share * min(n_ref, n_win)) >= MIN_EXPECTED
    rows = np.vstack((ref, recent))
    table = np.hstack((rows[:, big], rows[:, ~big].sum(axis=1, keepdims=True)))
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    return stat, float(chdtrc(table.shape[1] - 1, stat))


class ChiSquareWindow(DetectorMixin):
    """Windowed chi-square test on one nominal stream (see the module docstring).

    Parameters
    ----------
    window
        Records in the reference and in the recent window (>= 20).
    stride
        Records between two tests (1..window).
    alpha
        Level of each test (tests on overlapping windows are strongly dependent; the measured
        false-alarm rate is in bench/DETECTORS.md).
    max_categories
        Distinct values kept apart (>= 2); later ones share an "other" cell.
    """

    input_kinds: tuple[InputKind, ...] = ("categorical",)

    def __init__(self, window: int = 1000, stride: int = 50, alpha: float = 1e-5,
                 max_categories: int = 64) -> None:
        check_window_settings("ChiSquareWindow", window, stride, alpha)
        if not (isinstance(max_categories, int) and max_categories >= 2):
            raise ValueError(f"ChiSquareWindow: max_categories must be an int >= 2; "
                             f"got {max_categories!r}")
        self.window, self.stride, self.alpha = window, stride, alpha
        self.max_categories = max_categories
        self.reset()

    def reset(self) -> None:
        """Forget everything learned; settings kept."""
        self._categories: list[Hashable] = []
        self._index: dict[Hashable, int] = {}
        self._ref = np.zeros(self.max_categories + 1)   # last cell: "other"
        self._recent = np.zeros(self.max_categories + 1)
        self._ring = np.zeros(self.window, dtype=np.int32)
        self._ref_n = self._win_n = self._pos = 0
        self._stat, self._p = 0.0, 1.0
        self._before = self._after = self._recent
        self._drift = False
        self._n_seen = 0
        self._n_detections = 0

    def _column(self, label: Hashable) -> int:
        k = self._index.get(label)
        if k is None:
            if len(self._categories) >= self.max_categories:
                return self.max_categories
            k = self._index[label] = len(self._categories)
            self._categories.append(label)
        return k

    def update(self, value: float | Hashable) -> None:
        """Feed one category (any hashable but None/NaN)."""
        k = self._column(check_label(value, "ChiSquareWindow"))
        self._n_seen += 1
        self._drift = False
        if self._ref_n < self.window:
            self._ref[k] += 1
            self._ref_n += 1
        else:
            if self._win_n == self.window:
                self._recent[self._ring[self._pos]] -= 1
            else:
                self._win_n += 1
            self._ring[self._pos] = k
            self._recent[k] += 1
            self._pos = (self._pos + 1) % self.window
        if self._n_seen % self.stride == 0 and self._win_n == self.window:
            self._test()

    def _test(self) -> None:
        self._stat, self._p = chi_square_test(self._ref, self._recent)
        if self._p < self.alpha:
            self._drift = True
            self._n_detections += 1
            self._before, self._after = self._ref / self.window, self._recent / self.window
            self._ref = np.zeros_like(self._ref)
            self._recent = np.zeros_like(self._recent)
            self._ref_n = self._win_n = self._pos = 0

    @property
    def statistic(self) -> float:
        """The chi-square statistic at the last test."""
        return self._stat

    def evidence(self, top: int = 5) -> dict[str, Any]:
        """After a detection: the statistic, its p-value, and the shares before and after of the
        ``top`` categories whose share moved most."""
        names = [*self._categories, _OTHER]
        moved = np.argsort(-np.abs(self._after - self._before)[: len(names) - 1], kind="stable")
        if self._after[-1] or self._before[-1]:
            moved = np.r_[moved, len(self._ref) - 1]
        pick = [int(k) for k in moved[:top]]
        label = [str(names[k]) if k < len(names) - 1 else _OTHER for k in pick]
        return {"statistic": round(self._stat, 2), "p_value": self._p, "direction": "category mix",
                "before": {n: round(float(self._before[k]), 4) for n, k in zip(label, pick)},
                "after": {n: round(float(self._after[k]), 4) for n, k in zip(label, pick)}}

    def to_state(self) -> dict[str, Any]:
        """Settings, categories, counts and ring as plain numbers, lists and arrays."""
        return {"settings": self._get_params(), "categories": list(self._categories),
                "ref": self._ref.copy(), "recent": self._recent.copy(), "ring": self._ring.copy(),
                "counters": [self._ref_n, self._win_n, self._pos, self._n_seen,
                             self._n_detections, int(self._drift)],
                "last": [self._stat, self._p], "before": self._before.copy(),
                "after": self._after.copy()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ChiSquareWindow:
        det = cls(**state["settings"])
        for label in state["categories"]:
            det._column(label)
        det._ref, det._recent = np.array(state["ref"]), np.array(state["recent"])
        det._ring = np.array(state["ring"], dtype=np.int32)
        (det._ref_n, det._win_n, det._pos, det._n_seen, det._n_detections,
         drift) = (int(v) for v in state["counters"])
        det._drift = bool(drift)
        det._stat, det._p = (float(v) for v in state["last"])
        det._before, det._after = np.array(state["before"]), np.array(state["after"])
        return det
