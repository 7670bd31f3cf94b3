"""Correlation-shift detector: a multivariate input-drift detector for changes no single
feature shows (two features that become, or stop being, correlated while each keeps its own
distribution).

Feed one vector of d real features a record. Records are cut into blocks of ``block``; each
block's within-block scatter matrix (sum of (x - block mean)(x - block mean)^T) is kept, so a
mean shift of any feature between blocks leaves it untouched: only how features move *together*
counts. The reference holds the pooled scatter of the first ``window`` records after a
(re)start, a ring the last ``window / block`` blocks. At each block's end, with both full, every
pair's pooled correlation is compared through Fisher's z:

    z_ij = (atanh r_recent - atanh r_ref) / sqrt(1 / (N_ref - B - 2) + 1 / (N_recent - B - 2))

(B blocks per window; the pooled estimate loses one degree of freedom per block). Any
|z_ij| above the two-sided normal quantile at ``alpha / pairs`` (Bonferroni over the d(d-1)/2
pairs) is a drift; the pairs above it are the evidence; then the detector restarts empty.

Memory bound: (window / block + 2) * d^2 floats for d features (d <= ``max_features``; the
monitor feeds the first ``max_features`` numeric features). Per record an O(d^2) compiled
update; an O(d^2 * window / block) test at each block's end.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numba import njit
from scipy.special import ndtri

from ._base import InputKind
from ._checks import as_real
from ._mixin import DetectorMixin

__all__ = ["CorrelationShift"]

_R_MAX = 1.0 - 1e-9   # |r| clipped below 1 so atanh stays finite


@njit(cache=True, nogil=True)
def _accumulate(total: np.ndarray, outer: np.ndarray, x: np.ndarray) -> None:
    d = x.size
    for i in range(d):
        total[i] += x[i]
        for j in range(i, d):
            outer[i, j] += x[i] * x[j]


@njit(cache=True, nogil=True)
def _accumulate_rows(total: np.ndarray, outer: np.ndarray, rows: np.ndarray) -> None:
    for r in range(rows.shape[0]):
        _accumulate(total, outer, rows[r])


def _correlation(scatter: np.ndarray) -> np.ndarray:
    """Correlation matrix of an (upper-triangular) scatter matrix; 0 where a variance is 0."""
    full = np.triu(scatter) + np.triu(scatter, 1).T
    sd = np.sqrt(np.clip(np.diag(full), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = full / np.outer(sd, sd)
    return np.clip(np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0), -_R_MAX, _R_MAX)


class CorrelationShift(DetectorMixin):
    """Correlation change between any pair of d features (see the module docstring).

    Parameters
    ----------
    window
        Records in the reference and in the recent window; a multiple of ``block``.
    block
        Records per block (>= 10); the test runs at each block's end.
    alpha
        Level of each test over all pairs (Bonferroni).
    max_features
        Largest d accepted (memory (window / block + 2) * d^2 floats).
    """

    input_kinds: tuple[InputKind, ...] = ("vector",)

    def __init__(self, window: int = 1000, block: int = 50, alpha: float = 1e-5,
                 max_features: int = 16) -> None:
        if not (isinstance(block, int) and block >= 10):
            raise ValueError(f"CorrelationShift: block must be an int >= 10; got {block!r}")
        if not (isinstance(window, int) and window >= 2 * block and window % block == 0):
            raise ValueError(f"CorrelationShift: window must be a multiple of block, >= 2 "
                             f"blocks; got {window!r}")
        if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
            raise ValueError(f"CorrelationShift: alpha must be in (0, 1); got {alpha!r}")
        if not (isinstance(max_features, int) and max_features >= 2):
            raise ValueError(f"CorrelationShift: max_features must be an int >= 2; "
                             f"got {max_features!r}")
        self.window, self.block, self.alpha = window, block, alpha
        self.max_features = max_features
        self.reset()

    def reset(self) -> None:
        """Forget everything learned (the dimension too); settings kept."""
        self._d = 0
        self._drift = False
        self._n_seen = 0
        self._n_detections = 0
        self._stat = 0.0
        self._pairs: list[dict[str, Any]] = []

    def _allocate(self, d: int) -> None:
        if not 2 <= d <= self.max_features:
            raise ValueError(f"CorrelationShift: needs 2..{self.max_features} features; got {d}")
        self._d = d
        n_pairs = d * (d - 1) // 2
        self._crit = float(ndtri(1.0 - self.alpha / (2.0 * n_pairs)))
        self._restart()

    def _restart(self) -> None:
        d, blocks = self._d, self.window // self.block
        self._sum = np.zeros(d)
        self._outer = np.zeros((d, d))
        self._in_block = 0
        self._ref = np.zeros((d, d))
        self._ref_blocks = 0
        self._ring = np.zeros((blocks, d, d))
        self._ring_blocks = 0
        self._pos = 0

    def update(self, value: Sequence[float] | np.ndarray) -> None:  # type: ignore[override]
        """Feed one record's feature vector (same length every time)."""
        if isinstance(value, np.ndarray) and value.dtype == np.float64 and value.ndim == 1:
            x = value   # the monitor's fast path: already checked finite
            if not np.isfinite(x).all():
                raise ValueError("CorrelationShift consumes finite real numbers")
        elif isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__"):
            raise TypeError(f"CorrelationShift consumes vectors of reals; got "
                            f"{type(value).__name__}")
        else:
            x = np.array([as_real(v, "CorrelationShift") for v in value], dtype=np.float64)
        if self._d == 0:
            self._allocate(x.size)
        elif x.size != self._d:
            raise ValueError(f"CorrelationShift: expected {self._d} features; got {x.size}")
        self._n_seen += 1
        self._drift = False
        _accumulate(self._sum, self._outer, x)
        self._in_block += 1
        if self._in_block == self.block:
            self._close_block()

    def update_many(self, rows: np.ndarray) -> list[tuple[int, list[dict[str, Any]]]]:
        """`update` over the rows of a (records x features) float array, a block at a time in
        compiled code; returns (row, evidence) for every drift, in order."""
        x = np.ascontiguousarray(rows, dtype=np.float64)
        if x.ndim != 2 or not np.isfinite(x).all():
            raise ValueError("CorrelationShift.update_many takes a 2-D array of finite reals")
        if self._d == 0 and len(x):
            self._allocate(x.shape[1])
        elif len(x) and x.shape[1] != self._d:
            raise ValueError(f"CorrelationShift: expected {self._d} features; got {x.shape[1]}")
        out, i = [], 0
        while i < len(x):
            j = min(len(x), i + self.block - self._in_block)
            _accumulate_rows(self._sum, self._outer, x[i:j])
            self._in_block += j - i
            self._n_seen += j - i
            self._drift = False
            if self._in_block == self.block:
                self._close_block()
                if self._drift:
                    out.append((j - 1, self.evidence()))
            i = j
        return out

    def _close_block(self) -> None:
        scatter = np.triu(self._outer - np.outer(self._sum, self._sum) / self.block)
        self._sum[:] = 0.0
        self._outer[:] = 0.0
        self._in_block = 0
        blocks = self._ring.shape[0]
        if self._ref_blocks < blocks:
            self._ref += scatter
            self._ref_blocks += 1
            return
        self._ring[self._pos] = scatter
        self._pos = (self._pos + 1) % blocks
        self._ring_blocks = min(self._ring_blocks + 1, blocks)
        if self._ring_blocks == blocks:
            self._test()

    def _test(self) -> None:
        blocks = self._ring.shape[0]
        before, after = _correlation(self._ref), _correlation(self._ring.sum(axis=0))
        dof = self.window - blocks - 2
        z = (np.arctanh(after) - np.arctanh(before)) / math.sqrt(2.0 / dof)
        iu = np.triu_indices(self._d, 1)
        self._stat = float(np.abs(z[iu]).max())
        if self._stat > self._crit:
            hit = [(int(i), int(j)) for i, j in zip(*iu) if abs(z[i, j]) > self._crit]
            self._pairs = [{"pair": (i, j), "statistic": round(float(z[i, j]), 2),
                            "before": round(float(before[i, j]), 4),
                            "after": round(float(after[i, j]), 4)} for i, j in hit]
            self._drift = True
            self._n_detections += 1
            self._restart()

    @property
    def n_features(self) -> int:
        """The vector length it watches (0 before the first record)."""
        return self._d

    @property
    def statistic(self) -> float:
        """Largest |z| over the pairs at the last test."""
        return self._stat

    def evidence(self) -> list[dict[str, Any]]:
        """After a detection: each pair (feature indices) whose correlation moved, its z and
        its pooled correlation before and after."""
        return [dict(p) for p in self._pairs]

    def to_state(self) -> dict[str, Any]:
        """Settings, dimension, block sums, reference and ring as plain numbers and arrays."""
        state: dict[str, Any] = {"settings": self._get_params(), "d": self._d,
                                 "counters": [self._n_seen, self._n_detections, int(self._drift)],
                                 "stat": self._stat, "pairs": self.evidence()}
        if self._d:
            state.update(sum=self._sum.copy(), outer=self._outer.copy(), ref=self._ref.copy(),
                         ring=self._ring.copy(),
                         blocks=[self._in_block, self._ref_blocks, self._ring_blocks, self._pos])
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CorrelationShift:
        det = cls(**state["settings"])
        if state["d"]:
            det._allocate(int(state["d"]))
            det._sum, det._outer = np.array(state["sum"]), np.array(state["outer"])
            det._ref, det._ring = np.array(state["ref"]), np.array(state["ring"])
            det._in_block, det._ref_blocks, det._ring_blocks, det._pos = (
                int(v) for v in state["blocks"])
        det._n_seen, det._n_detections, drift = (int(v) for v in state["counters"])
        det._drift, det._stat = bool(drift), float(state["stat"])
        det._pairs = [dict(p, pair=tuple(p["pair"])) for p in state["pairs"]]
        return det
