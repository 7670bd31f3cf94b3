"""Compiled kernels of the windowed two-sample Kolmogorov-Smirnov detector, over flat arrays.

One bank holds C channels (features). Per channel: a reference window ``ref[c, :W]`` (the first
W values after a restart, sorted once it is full) and a ring buffer ``win[c, :W]`` of the W most
recent values. Every ``stride`` records (``test_now``) a channel whose two windows are full
compares them with the KS statistic D = max |F_ref - F_win|; D above ``crit`` is a drift: the
channel writes its evidence (reference mean and sd, recent mean and sd) and restarts empty.
"""
from __future__ import annotations

import numpy as np
from numba import njit

#: Rows of a fired channel's evidence: before mean, before sd, after mean, after sd.
EVIDENCE = 4


@njit(cache=True, nogil=True)
def ks_statistic(ref_sorted: np.ndarray, win_sorted: np.ndarray) -> float:
    """Two-sample KS distance between two sorted samples (ties handled: equal values step
    together)."""
    n, m = ref_sorted.size, win_sorted.size
    i = j = 0
    d = 0.0
    while i < n and j < m:
        v = min(ref_sorted[i], win_sorted[j])
        while i < n and ref_sorted[i] == v:
            i += 1
        while j < m and win_sorted[j] == v:
            j += 1
        gap = abs(i / n - j / m)
        d = max(d, gap)
    return d


@njit(cache=True, nogil=True)
def _mean_sd(values: np.ndarray) -> tuple[float, float]:
    mean = values.mean()
    return mean, np.sqrt(((values - mean) ** 2).mean())


@njit(cache=True, nogil=True)
def bank_step(ref: np.ndarray, ref_n: np.ndarray, win: np.ndarray, win_n: np.ndarray,
              win_pos: np.ndarray, values: np.ndarray, present: np.ndarray, test_now: bool,
              crit: float, stat: np.ndarray, fired: np.ndarray, evidence: np.ndarray) -> int:
    """Feed one value per channel (``present[c]`` False: channel c has none this record); on a
    test record compare full windows. Returns how many channels fired (``fired[c]`` says which;
    ``stat[c]`` holds each tested channel's D, ``evidence[c]`` a fired channel's means and sds)."""
    n_chan, w = ref.shape
    n_fired = 0
    for c in range(n_chan):
        fired[c] = False
        if present[c]:
            v = values[c]
            if ref_n[c] < w:
                ref[c, ref_n[c]] = v
                ref_n[c] += 1
                if ref_n[c] == w:
                    ref[c].sort()
            else:
                win[c, win_pos[c]] = v
                win_pos[c] = (win_pos[c] + 1) % w
                if win_n[c] < w:
                    win_n[c] += 1
        if test_now and win_n[c] == w:
            recent = np.sort(win[c])
            d = ks_statistic(ref[c], recent)
            stat[c] = d
            if d > crit:
                fired[c] = True
                n_fired += 1
                evidence[c, 0], evidence[c, 1] = _mean_sd(ref[c])
                evidence[c, 2], evidence[c, 3] = _mean_sd(recent)
                ref_n[c] = 0
                win_n[c] = 0
                win_pos[c] = 0
    return n_fired


@njit(cache=True, nogil=True)
def bank_steps(ref: np.ndarray, ref_n: np.ndarray, win: np.ndarray, win_n: np.ndarray,
               win_pos: np.ndarray, values: np.ndarray, present: np.ndarray, n_before: int,
               stride: int, crit: float, stat: np.ndarray, fired: np.ndarray,
               evidence: np.ndarray, hit_row: np.ndarray, hit_chan: np.ndarray,
               hit_evidence: np.ndarray, hit_stat: np.ndarray) -> int:
    """`bank_step` over the rows of ``values`` / ``present`` (records n_before + 1, ...), in
    order; every drift is written to the ``hit_*`` arrays (row, channel, evidence, D). Returns
    how many there were."""
    n_hits = 0
    for r in range(values.shape[0]):
        test_now = (n_before + r + 1) % stride == 0
        if bank_step(ref, ref_n, win, win_n, win_pos, values[r], present[r], test_now, crit,
                     stat, fired, evidence):
            for c in range(fired.size):
                if fired[c]:
                    hit_row[n_hits] = r
                    hit_chan[n_hits] = c
                    hit_evidence[n_hits] = evidence[c]
                    hit_stat[n_hits] = stat[c]
                    n_hits += 1
    return n_hits
