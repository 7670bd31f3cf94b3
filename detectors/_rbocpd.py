"""Restarted BOCPD (Alami, Maillard & Féraud, ICML 2020) for Bernoulli and categorical streams.

Since the last restart r, a forecaster is started at every record s. Forecaster s predicts with
the Krichevsky-Trofimov (KT) estimator of the class probabilities from the records it has seen,
P(x_t = k) = (n_k + 1/2) / (n + K/2), and its weight is multiplied by that predictive
probability at every record, as in BOCPD's message passing. We keep each weight relative to the
weight of the forecaster started at the restart, in log space:

    log L_s = log KT(x_r..x_{s-1}) + log KT(x_s..x_t) - log KT(x_r..x_t)

the Bayes factor of "a change at s" against "no change since r". R-BOCPD restarts when a
forecaster started after the restart comes to dominate the restart's forecaster, i.e. when
its prior-weighted log weight beats the restart's. Our prior weight (the paper's eta) for the
forecaster started j = s - r records after the restart is delta / (j (j + 1)), and the test is

    max_s  log L_s - log(j_s (j_s + 1) / delta)  >  (K - 1)/2 * log n + log K,     n = t - r + 1

The right-hand side is the KT estimator's worst-case regret over n records. Why this controls
false alarms: with no change, for a fixed s, KT(x_r..x_{s-1}) KT(x_s..x_t) / P_true(x_r..x_t) is
a nonnegative martingale of mean 1, so by Ville's inequality it exceeds j(j+1)/delta with
probability at most delta / (j(j+1)) over the whole infinite stream; KT(x_r..x_t) is within the
regret of the true likelihood; a union over j sums to delta. So a restarted detector raises a
false alarm, ever, with probability at most ``delta`` (for a fixed number of classes). Delay is
about (2 log(j/delta) + regret) / KL(after || before) records. The paper states its threshold
differently; this is our own derivation of the same shape (log(1/delta) plus log terms).

Memory bound: at most ``max_forecasters`` forecasters are kept; when full, the new forecaster
replaces the one with the lowest prior-weighted weight (never the restart's). State is
O(max_forecasters * K) floats: K counts, a total, a log weight and a threshold per forecaster.
After a detection the detector restarts from nothing at the next record.
"""
from __future__ import annotations

import math
from collections.abc import Hashable

import numpy as np

from ._base import InputKind
from ._checks import as_binary, check_label
from ._mixin import DetectorMixin

__all__ = ["RBOCPD", "MultinomialRBOCPD"]

_KT = 0.5  # Krichevsky-Trofimov pseudo-count per class


class _RestartedKT(DetectorMixin):
    """Shared R-BOCPD core over class indices 0..K-1 (K fixed or growing)."""

    _who = "RBOCPD"

    def __init__(self, delta: float = 0.01, max_forecasters: int = 64) -> None:
        if not (isinstance(delta, (int, float)) and 0 < delta < 1):
            raise ValueError(f"{self._who}: delta must be in (0, 1); got {delta!r}")
        if not (isinstance(max_forecasters, int) and max_forecasters >= 2):
            raise ValueError(
                f"{self._who}: max_forecasters must be an int >= 2; got {max_forecasters!r}"
            )
        self.delta = delta
        self.max_forecasters = max_forecasters
        self._log_delta = math.log(delta)
        self.reset()

    def _initial_classes(self) -> int:
        return 2

    def _restart(self) -> None:
        m_max = self.max_forecasters
        self._counts = np.zeros((m_max, max(self._k_cap, 2)))  # per-forecaster class counts
        self._totals = np.zeros(m_max)  # records seen per forecaster
        self._logw = np.zeros(m_max)  # log L_s: log weight relative to the restart's forecaster
        self._thr = np.zeros(m_max)  # log(j(j+1)/delta); +inf for the restart's forecaster
        self._thr[0] = math.inf
        self._m = 0  # active forecasters (rows 0..m-1)
        self._n = 0  # records since the restart

    def reset(self) -> None:
        """Forget everything learned; settings kept."""
        self._k_cap = self._initial_classes()
        self._restart()
        self._drift = False
        self._n_seen = 0
        self._n_detections = 0
        self._stat = -math.inf

    def _n_classes(self) -> int:
        return 2

    def _step(self, k: int) -> None:
        """One record of class index k: start a forecaster, update all, test for a restart."""
        if self._drift:
            self._drift = False
        self._n_seen += 1
        m = self._m
        n = self._n
        # Start the forecaster for this record (its KT estimate is still the prior).
        if m == 0:
            i = 0
            m = self._m = 1
        else:
            if m < self.max_forecasters:
                i = m
                m = self._m = m + 1
            else:  # full: replace the lowest prior-weighted weight, never row 0
                i = 1 + int((self._logw[1:] - self._thr[1:]).argmin())
            self._counts[i] = 0.0
            self._totals[i] = 0.0
            self._logw[i] = 0.0
            self._thr[i] = math.log(n * (n + 1.0)) - self._log_delta
        n_classes = self._n_classes()
        totals = self._totals[:m]
        col = self._counts[:m, k]
        lp = np.log((col + _KT) / (totals + _KT * n_classes))
        lp -= lp[0]  # relative to the restart's forecaster
        logw = self._logw[:m]
        logw += lp
        col += 1.0  # basic slicing: a view, so this updates self._counts in place
        totals += 1.0
        self._n = n + 1
        if m > 1:
            self._stat = float((logw - self._thr[:m]).max())
            regret = 0.5 * (n_classes - 1) * math.log(n + 1) + math.log(n_classes)
            if self._stat > regret:
                self._drift = True
                self._n_detections += 1
                self._restart()

    @property
    def n_forecasters(self) -> int:
        """Forecasters currently kept (<= max_forecasters)."""
        return self._m

    @property
    def records_since_restart(self) -> int:
        """Records consumed since the last restart (detection or reset)."""
        return self._n


class RBOCPD(_RestartedKT):
    """R-BOCPD on a 0/1 stream (e.g. a classifier's errors).

    Parameters
    ----------
    delta
        Bound on the probability of ever raising a false alarm after a restart, in (0, 1).
        Smaller = fewer false alarms, ~log(1/delta) / KL more records of delay.
    max_forecasters
        Forecasters kept (>= 2); memory O(max_forecasters) floats, time per update the same.
    """

    input_kinds: tuple[InputKind, ...] = ("binary",)
    _who = "RBOCPD"

    def update(self, value: float | Hashable) -> None:
        """Feed one 0/1 observation."""
        self._step(as_binary(value, "RBOCPD"))


class MultinomialRBOCPD(_RestartedKT):
    """R-BOCPD on a class-label stream (label shift): a Dirichlet(1/2) KT estimator per forecaster.

    Classes are discovered as they appear: a new label becomes a category every forecaster has
    counted zero times, and K (the number of categories in the estimator) grows by one. Labels are
    mapped to columns in order of first appearance, so runs are deterministic. Memory
    O(max_forecasters * K) floats plus the label map.

    Parameters are those of ``RBOCPD``; the false-alarm bound holds for a fixed set of classes.
    """

    input_kinds: tuple[InputKind, ...] = ("categorical",)
    _who = "MultinomialRBOCPD"

    def _initial_classes(self) -> int:
        self._index: dict[Hashable, int] = {}
        return 4  # column capacity; doubled when a fifth class shows up

    def _n_classes(self) -> int:
        return max(len(self._index), 1)

    def _restart(self) -> None:
        super()._restart()
        # The label map survives restarts: a known class stays known (zero counts again).

    def update(self, value: float | Hashable) -> None:
        """Feed one class label (any hashable but None/NaN)."""
        label = check_label(value, "MultinomialRBOCPD")
        k = self._index.get(label)
        if k is None:
            k = self._index[label] = len(self._index)
            if k >= self._counts.shape[1]:
                self._k_cap = 2 * self._counts.shape[1]
                grown = np.zeros((self.max_forecasters, self._k_cap))
                grown[:, : self._counts.shape[1]] = self._counts
                self._counts = grown
        self._step(k)

    @property
    def classes(self) -> list[Hashable]:
        """Labels seen so far, in order of first appearance."""
        return list(self._index)
