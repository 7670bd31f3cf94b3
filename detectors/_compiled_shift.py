"""The model-level drift detector (compiled): two-window likelihood-ratio tests on a model's own
prequential record, the operator-facing ``drift`` event of ``adaptive``.

Each record brings its 0/1 error and its label. At each of two scales, a *test* window of the
last ``W`` records is compared with the *reference* window of the ``R`` records before it:

- error: a one-sided G-test (Bernoulli likelihood ratio), a change only when the error rose;
- labels: a G-test of homogeneity on the class mix (K - 1 degrees of freedom, K classes seen),
  reported with a flag as evidence (did the class mix move too?), never a flag alone: a real
  stream's class mix swings by itself (Electricity's, week to week, with the error flat or
  falling: 11 flags in 45,312 records, none a change a person would accept, when it counted).

A change is flagged when the error statistic passes the chi-square quantile of ``P_VALUE``; the
label statistic is compared with its own (Wilson-Hilferty approximation for K - 1 > 1). The short scale (3,000 / 300) finds abrupt
changes within a few hundred records, the middle one (3,000 / 1,000) smaller ones, the long one
(6,000 / 3,000) gradual ones while they ramp.
After a flag every window restarts empty, so no scale tests before it has ``R + W`` records: a
warm-up gate at the start (a fresh pool's first 3,300 records) and a refractory gap after each
flag, one flag per change. Memory: a ring of the last 9,001 errors and labels (144 KB), window
counts per class. Why this and not R-BOCPD or ADWIN on the error stream: on the bench streams a
concept change lifts the error of an adapting ensemble by a few points for a few hundred
records only; the windowed tests flag those with no false alarm on the stationary stretches
(bench/model_drift.py), where both sequential detectors either missed them or fired on the
ensemble's own ups and downs (bench/DETECTORS.md, model-level table).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

SCALES = ((3000, 300), (3000, 1000), (6000, 3000))   # (reference, test) lengths, records
P_VALUE = 1e-6       # per test; with tests every _EVERY records, < 1 false alarm per 50,000
_Z = 4.753424        # the standard normal quantile of 1 - P_VALUE
_EVERY = 8           # records between tests (the delay's resolution)
# ints: records since the last restart, records seen, flags, scale of the last flag
_SINCE, _SEEN, _FLAGS, _SCALE = range(4)
# evidence of the last flag: error rate in the reference and test windows, the two G
# statistics, the label test's threshold, reference and test lengths
EVIDENCE = ("error_before", "error_after", "g_error", "g_labels", "label_threshold",
            "reference", "window")


class ShiftState(NamedTuple):
    """Rings of the recent errors and labels and the window counts at each scale."""

    errors: np.ndarray      # (ring,) int64: 1 = the record was mispredicted
    labels: np.ndarray      # (ring,) int64: class index
    err_counts: np.ndarray  # (scales, 2) float64: errors in the reference, test window
    lab_counts: np.ndarray  # (scales, 2, class capacity) float64
    ints: np.ndarray        # (4,) int64: _SINCE, _SEEN, _FLAGS, _SCALE
    evidence: np.ndarray    # (len(EVIDENCE),) float64: the last flag's


def new_shift(n_classes: int) -> ShiftState:
    """A fresh detector with room for ``n_classes`` label columns."""
    ring = max(r + w for r, w in SCALES) + 1   # + 1: the new record is written first
    return ShiftState(np.zeros(ring, np.int64), np.zeros(ring, np.int64),
                      np.zeros((len(SCALES), 2)), np.zeros((len(SCALES), 2, max(n_classes, 2))),
                      np.zeros(4, np.int64), np.zeros(len(EVIDENCE)))


def grow_shift(state: ShiftState, n_classes: int) -> ShiftState:
    """The same detector with room for ``n_classes`` label columns (new ones counted zero)."""
    counts = np.zeros((len(SCALES), 2, n_classes))
    counts[:, :, : state.lab_counts.shape[2]] = state.lab_counts
    return state._replace(lab_counts=counts)


@njit(cache=True, nogil=True)
def _g_term(a: float, b: float, n_a: float, n_b: float) -> float:
    """One cell's share of the two-sample G statistic: counts ``a`` of ``n_a``, ``b`` of
    ``n_b``."""
    total = a + b
    g = 0.0
    if a > 0.0:
        g += a * math.log(a * (n_a + n_b) / (total * n_a))
    if b > 0.0:
        g += b * math.log(b * (n_a + n_b) / (total * n_b))
    return 2.0 * g


@njit(cache=True, nogil=True)
def g_rise(e_ref: float, n_ref: float, e_win: float, n_win: float) -> float:
    """One-sided two-sample G statistic of an error rate: ``e_win`` errors in ``n_win``
    records against ``e_ref`` in ``n_ref``; 0 unless the rate rose."""
    if e_win * n_ref <= e_ref * n_win:
        return 0.0
    return (_g_term(e_ref, e_win, n_ref, n_win)
            + _g_term(n_ref - e_ref, n_win - e_win, n_ref, n_win))


@njit(cache=True, nogil=True)
def _threshold(dof: int) -> float:
    """The chi-square quantile of 1 - P_VALUE (Wilson-Hilferty; exact z^2 for one degree)."""
    if dof <= 1:
        return _Z * _Z
    c = 2.0 / (9.0 * dof)
    return dof * (1.0 - c + _Z * math.sqrt(c)) ** 3


@njit(cache=True, nogil=True)
def _test(st: ShiftState, s: int, n_classes: int) -> bool:
    """Scale ``s``'s error test; on a flag, its evidence (with the class-mix test's) is
    written."""
    ref, win = SCALES[s]
    e_ref, e_win = st.err_counts[s, 0], st.err_counts[s, 1]
    g_err = g_rise(e_ref, ref, e_win, win)
    if g_err <= _Z * _Z:
        return False
    g_lab = 0.0
    for k in range(n_classes):
        g_lab += _g_term(st.lab_counts[s, 0, k], st.lab_counts[s, 1, k], ref, win)
    thr_lab = _threshold(n_classes - 1)
    ev = st.evidence
    ev[0], ev[1], ev[2], ev[3] = e_ref / ref, e_win / win, g_err, g_lab
    ev[4], ev[5], ev[6] = thr_lab, ref, win
    return True


@njit(cache=True, nogil=True)
def shift_update(st: ShiftState, error: bool, y: int, n_classes: int) -> bool:
    """Feed one record's error and label (``n_classes`` classes seen); True when a change was
    flagged (then every window restarts empty)."""
    ints = st.ints
    ring = st.errors.shape[0]
    n = ints[_SEEN]
    st.errors[n % ring] = 1 if error else 0
    st.labels[n % ring] = y
    ints[_SEEN] = n + 1
    ints[_SINCE] += 1
    since = ints[_SINCE]
    flagged = False
    for s in range(len(SCALES)):
        ref, win = SCALES[s]
        st.err_counts[s, 1] += st.errors[n % ring]
        st.lab_counts[s, 1, y] += 1.0
        if since > win:   # the record W back moves from the test window to the reference
            j = (n - win) % ring
            st.err_counts[s, 1] -= st.errors[j]
            st.err_counts[s, 0] += st.errors[j]
            st.lab_counts[s, 1, st.labels[j]] -= 1.0
            st.lab_counts[s, 0, st.labels[j]] += 1.0
        if since > win + ref:   # and the one R + W back leaves the reference
            j = (n - win - ref) % ring
            st.err_counts[s, 0] -= st.errors[j]
            st.lab_counts[s, 0, st.labels[j]] -= 1.0
        if (not flagged and since >= win + ref and since % _EVERY == 0
                and _test(st, s, max(n_classes, 2))):
            flagged = True
            ints[_SCALE] = s
    if flagged:
        ints[_FLAGS] += 1
        shift_restart(st)
    return flagged


@njit(cache=True, nogil=True)
def shift_restart(st: ShiftState) -> None:
    """Every window restarts empty (after a flag, this detector's or another's): the warm-up
    gate of R + W records before each scale tests again."""
    st.ints[_SINCE] = 0
    st.err_counts[:] = 0.0
    st.lab_counts[:] = 0.0
