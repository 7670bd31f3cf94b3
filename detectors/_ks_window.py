"""Windowed two-sample Kolmogorov-Smirnov test on a real value: an input-drift detector.

A reference window holds the first ``window`` values after a (re)start; a sliding window holds
the ``window`` most recent values. Every ``stride`` records the two are compared with the KS
distance D = max_v |F_ref(v) - F_recent(v)|, which sees any change of the distribution (mean,
spread, shape) and assumes no model of the data (input features are rarely Gaussian). D above
the two-sample critical value at level ``alpha``, c(alpha) * sqrt(2 / window) with
c(alpha) = sqrt(-ln(alpha / 2) / 2), is a drift; the detector then restarts empty, so it is
blind for 2 * window records after a start (both windows fill first). Because the reference is
fixed, a gradual change accumulates until it shows.

Memory bound: 2 * ``window`` floats per channel (feature) plus O(1); time per record O(1), plus
an O(window log window) sort of the recent window every ``stride`` records (compiled, numba).

``KSWindow`` is the univariate detector of the registry (``ks-window``); ``KSWindowBank`` runs
the same kernel over many features at once (the input-drift monitor feeds it one array a record).
"""
from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

import numpy as np

from ._base import InputKind
from ._checks import as_real, check_window_settings
from ._ks_kernels import EVIDENCE, bank_step, bank_steps
from ._mixin import DetectorMixin

__all__ = ["KSWindow", "KSWindowBank", "ks_critical"]

_STATE_ARRAYS = ("_ref", "_ref_n", "_win", "_win_n", "_win_pos", "_stat", "_evidence")


def ks_critical(alpha: float, n: int, m: int) -> float:
    """Asymptotic two-sample KS critical distance at level ``alpha`` for samples of n and m."""
    return math.sqrt(-0.5 * math.log(alpha / 2.0)) * math.sqrt((n + m) / (n * m))


class KSWindowBank:
    """The KS window test over ``channels`` features at once (one compiled call a record).

    ``update(values, present)`` feeds one record; the returned array of channel indices is the
    channels that drifted at it, ``stat`` their D, and ``evidence(c)`` the before/after mean and
    sd of a fired channel. Channels can be added while running (``add_channel``); every channel
    tests on the same records (each ``stride``-th record the bank sees), so features that shift
    together fire together. Memory: 2 * window floats per channel.
    """

    def __init__(self, channels: int = 1, window: int = 1000, stride: int = 50,
                 alpha: float = 1e-5) -> None:
        check_window_settings("KSWindowBank", window, stride, alpha)
        self.window, self.stride, self.alpha = window, stride, alpha
        self._crit = ks_critical(alpha, window, window)
        self._n = 0
        self._ref = np.zeros((0, window))
        self._ref_n = np.zeros(0, dtype=np.int64)
        self._win = np.zeros((0, window))
        self._win_n = np.zeros(0, dtype=np.int64)
        self._win_pos = np.zeros(0, dtype=np.int64)
        self._stat = np.zeros(0)
        self._evidence = np.zeros((0, EVIDENCE))
        self._fired = np.zeros(0, dtype=np.bool_)
        self._hit_row = np.zeros(0, dtype=np.int64)
        for _ in range(channels):
            self.add_channel()

    @property
    def channels(self) -> int:
        return self._ref_n.size

    def add_channel(self) -> int:
        """One more (empty) channel; returns its index."""
        w = self.window
        self._ref = np.vstack((self._ref, np.zeros((1, w))))
        self._win = np.vstack((self._win, np.zeros((1, w))))
        self._evidence = np.vstack((self._evidence, np.zeros((1, EVIDENCE))))
        for name in ("_ref_n", "_win_n", "_win_pos"):
            setattr(self, name, np.append(getattr(self, name), np.int64(0)))
        self._stat = np.append(self._stat, 0.0)
        self._fired = np.zeros(self.channels, dtype=np.bool_)
        return self.channels - 1

    def update(self, values: np.ndarray, present: np.ndarray) -> np.ndarray:
        """Feed one record (float64 values, bool presence, one per channel); return the indices
        of the channels that drifted at it (usually empty)."""
        self._n += 1
        n_fired = bank_step(self._ref, self._ref_n, self._win, self._win_n, self._win_pos,
                            values, present, self._n % self.stride == 0, self._crit,
                            self._stat, self._fired, self._evidence)
        return np.flatnonzero(self._fired) if n_fired else _NONE

    def update_many(self, values: np.ndarray, present: np.ndarray
                    ) -> list[tuple[int, int, dict[str, Any]]]:
        """`update` over the rows of ``values`` / ``present`` (records x channels) in one
        compiled call; returns (row, channel, evidence) for every drift, in order."""
        rows = values.shape[0]
        hits = rows * self.channels
        if self._hit_row.size < hits:   # scratch, reused across calls (not state)
            self._hit_row, self._hit_chan = np.zeros(hits, np.int64), np.zeros(hits, np.int64)
            self._hit_evidence, self._hit_stat = np.zeros((hits, EVIDENCE)), np.zeros(hits)
        hit_row, hit_chan, hit_evidence, hit_stat = (
            self._hit_row, self._hit_chan, self._hit_evidence, self._hit_stat)
        n_hits = bank_steps(self._ref, self._ref_n, self._win, self._win_n, self._win_pos,
                            values, present, self._n, self.stride, self._crit, self._stat,
                            self._fired, self._evidence, hit_row, hit_chan, hit_evidence,
                            hit_stat)
        self._n += rows
        return [(int(hit_row[i]), int(hit_chan[i]), _evidence(hit_stat[i], hit_evidence[i]))
                for i in range(n_hits)]

    def statistic(self, channel: int) -> float:
        """The KS distance D at the channel's last test."""
        return float(self._stat[channel])

    def evidence(self, channel: int) -> dict[str, Any]:
        """A fired channel's D, direction ("mean" or "spread") and before/after mean and sd."""
        return _evidence(self._stat[channel], self._evidence[channel])

    def to_state(self) -> dict[str, Any]:
        """Settings and learned state as plain numbers and numpy arrays (no pickle needed)."""
        state: dict[str, Any] = {"window": self.window, "stride": self.stride,
                                 "alpha": self.alpha, "n": self._n}
        state.update({name[1:]: getattr(self, name).copy() for name in _STATE_ARRAYS})
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> KSWindowBank:
        """The bank ``to_state`` described; it continues exactly where that one was."""
        bank = cls(0, state["window"], state["stride"], state["alpha"])
        bank._n = int(state["n"])
        for name in _STATE_ARRAYS:
            setattr(bank, name, np.array(state[name[1:]], dtype=getattr(bank, name).dtype))
        bank._fired = np.zeros(bank.channels, dtype=np.bool_)
        return bank


def _evidence(stat: float, moments: np.ndarray) -> dict[str, Any]:
    """D, direction ("mean" or "spread": whichever moved more, the mean in reference sds or
    the sd as a log ratio) and the before/after mean and sd of one drift."""
    b_mean, b_sd, a_mean, a_sd = (float(v) for v in moments)
    scale = b_sd if b_sd > 0 else max(a_sd, 1e-12)
    mean_move = abs(a_mean - b_mean) / scale
    spread_move = abs(math.log(max(a_sd, 1e-12) / max(b_sd, 1e-12)))
    return {"statistic": round(float(stat), 4),
            "direction": "mean" if mean_move >= spread_move else "spread",
            "before": {"mean": round(b_mean, 4), "sd": round(b_sd, 4)},
            "after": {"mean": round(a_mean, 4), "sd": round(a_sd, 4)}}


_NONE = np.zeros(0, dtype=np.int64)
_TRUE = np.ones(1, dtype=np.bool_)


class KSWindow(DetectorMixin):
    """Windowed two-sample KS test on one real-valued stream (see the module docstring).

    Parameters
    ----------
    window
        Records in the reference and in the recent window (>= 20); memory 2 * window floats.
    stride
        Records between two tests (1..window); a delay costs up to stride - 1 more records.
    alpha
        Level of each test; the stream-wide false-alarm rate is far lower than alpha per test
        would suggest because overlapping windows make tests strongly dependent (measured in
        bench/DETECTORS.md).
    """

    input_kinds: tuple[InputKind, ...] = ("real",)

    def __init__(self, window: int = 1000, stride: int = 50, alpha: float = 1e-5) -> None:
        check_window_settings("KSWindow", window, stride, alpha)
        self.window, self.stride, self.alpha = window, stride, alpha
        self.reset()

    def reset(self) -> None:
        """Forget everything learned; settings kept."""
        self._bank = KSWindowBank(1, self.window, self.stride, self.alpha)
        self._value = np.zeros(1)
        self._drift = False
        self._n_seen = 0
        self._n_detections = 0

    def update(self, value: float | Hashable) -> None:
        """Feed one real value."""
        self._value[0] = as_real(value, "KSWindow")
        self._n_seen += 1
        self._drift = self._bank.update(self._value, _TRUE).size > 0
        self._n_detections += self._drift

    @property
    def statistic(self) -> float:
        """The KS distance at the last test."""
        return self._bank.statistic(0)

    def evidence(self) -> dict[str, Any]:
        """After a detection: D, direction ("mean" or "spread"), before/after mean and sd."""
        return self._bank.evidence(0)

    def to_state(self) -> dict[str, Any]:
        """Settings, counters and the windows as plain numbers and arrays."""
        return {"bank": self._bank.to_state(), "drift": self._drift, "n_seen": self._n_seen,
                "n_detections": self._n_detections}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> KSWindow:
        bank = state["bank"]
        det = cls(bank["window"], bank["stride"], bank["alpha"])
        det._bank = KSWindowBank.from_state(bank)
        det._drift, det._n_seen = bool(state["drift"]), int(state["n_seen"])
        det._n_detections = int(state["n_detections"])
        return det
