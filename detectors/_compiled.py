"""The hot-path detectors as compiled kernels over arrays: R-BOCPD (Bernoulli and multinomial)
and ADWIN, one stack of ADWINs with a leading slot axis (one per expert).

Same algorithms as :mod:`detectors._rbocpd` and River's ADWIN (``river/drift/adwin_c.pyx``:
exponential histogram, ``clock`` 32, ``max_buckets`` 5, ``min_window_length`` 5, grace 10,
reset on the update after a detection), with state in a few arrays so a model snapshot holds
them as arrays and the prequential loop never leaves compiled code to feed them.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

# -- R-BOCPD ------------------------------------------------------------------------------------

_KT = 0.5   # Krichevsky-Trofimov pseudo-count per class (as detectors._rbocpd)
# ints of an RBOCPDState: forecasters kept, records since restart, classes seen, detections,
# drift flag of the last update, classes the log table was made for
_M, _N, _K, _DETECTIONS, _DRIFT, _K_TABLE = range(6)
# Counts below this read log(count + 1/2) and log(total + K/2) from a table: two lookups
# instead of a log per forecaster (128 a record for two detectors, ~10 % of a SEA record)
_LOG_TABLE = 4096


class RBOCPDState(NamedTuple):
    """R-BOCPD over class indices: per forecaster class counts, totals, log weight relative to
    the restart's forecaster and prior threshold log(j(j+1)/delta) (see detectors._rbocpd)."""

    counts: np.ndarray    # (max_forecasters, class capacity) float64
    totals: np.ndarray    # (max_forecasters,) float64
    logw: np.ndarray      # (max_forecasters,) float64
    thr: np.ndarray       # (max_forecasters,) float64
    ints: np.ndarray      # (6,) int64, indexed by _M, _N, _K, _DETECTIONS, _DRIFT, _K_TABLE
    log_count: np.ndarray  # (_LOG_TABLE,) float64: log(i + 1/2)
    log_total: np.ndarray  # (_LOG_TABLE,) float64: log(i + K/2) for K = ints[_K_TABLE]


def new_rbocpd(n_classes: int, max_forecasters: int = 64) -> RBOCPDState:
    """A fresh detector for ``n_classes`` columns (2 for a 0/1 stream; grown for labels)."""
    state = RBOCPDState(np.zeros((max_forecasters, max(n_classes, 2))),
                        np.zeros(max_forecasters), np.zeros(max_forecasters),
                        np.zeros(max_forecasters), np.zeros(6, dtype=np.int64),
                        np.zeros(_LOG_TABLE), np.zeros(_LOG_TABLE))
    state.thr[0] = math.inf
    return state


def grow_rbocpd(state: RBOCPDState, n_classes: int) -> RBOCPDState:
    """The same detector with room for ``n_classes`` label columns (new ones counted zero)."""
    counts = np.zeros((state.counts.shape[0], n_classes))
    counts[:, : state.counts.shape[1]] = state.counts
    return state._replace(counts=counts)


@njit(cache=True, nogil=True)
def _rbocpd_restart(st: RBOCPDState) -> None:
    st.counts[:] = 0.0
    st.totals[:] = 0.0
    st.logw[:] = 0.0
    st.thr[:] = 0.0
    st.thr[0] = math.inf
    st.ints[_M] = 0
    st.ints[_N] = 0


@njit(cache=True, nogil=True)
def _log_kt(st: RBOCPDState, count: float, total: float, n_classes: int) -> float:
    """log of the KT estimate (count + 1/2) / (total + K/2), from the tables when they hold
    both counts."""
    c, t = int(count), int(total)
    num = st.log_count[c] if c < _LOG_TABLE else math.log(count + _KT)
    den = st.log_total[t] if t < _LOG_TABLE else math.log(total + _KT * n_classes)
    return num - den


@njit(cache=True, nogil=True)
def rbocpd_update(st: RBOCPDState, k: int, multinomial: bool, log_delta: float) -> bool:
    """Feed class index ``k`` (0/1 for errors); True when this update detected a change (the
    detector then restarted). ``multinomial``: K is the number of classes seen (labels),
    else 2."""
    ints = st.ints
    ints[_DRIFT] = 0
    if multinomial and k + 1 > ints[_K]:
        ints[_K] = k + 1
    n_classes = max(ints[_K], 1) if multinomial else 2
    m, n = ints[_M], ints[_N]
    max_f = st.totals.shape[0]
    if m == 0:
        m = 1
    else:
        if m < max_f:
            i = m
            m += 1
        else:   # full: replace the lowest prior-weighted weight, never row 0
            i, worst = 1, math.inf
            for j in range(1, max_f):
                value = st.logw[j] - st.thr[j]
                if value < worst:
                    i, worst = j, value
        st.counts[i, :] = 0.0
        st.totals[i] = 0.0
        st.logw[i] = 0.0
        st.thr[i] = math.log(n * (n + 1.0)) - log_delta
    ints[_M] = m
    if ints[_K_TABLE] != n_classes:   # first update, or a new class: (re)make the tables
        for i in range(_LOG_TABLE):
            st.log_count[i] = math.log(i + _KT)
            st.log_total[i] = math.log(i + _KT * n_classes)
        ints[_K_TABLE] = n_classes
    base = _log_kt(st, st.counts[0, k], st.totals[0], n_classes)
    stat = -math.inf
    for j in range(m):
        lp = _log_kt(st, st.counts[j, k], st.totals[j], n_classes) - base
        st.logw[j] += lp
        st.counts[j, k] += 1.0
        st.totals[j] += 1.0
        stat = max(stat, st.logw[j] - st.thr[j])
    ints[_N] = n + 1
    if m > 1:
        regret = 0.5 * (n_classes - 1) * math.log(n + 1) + math.log(n_classes)
        if stat > regret:
            ints[_DRIFT] = 1
            ints[_DETECTIONS] += 1
            _rbocpd_restart(st)
            return True
    return False


# -- ADWIN, one per slot ------------------------------------------------------------------------

_LEVELS = 48        # bucket rows: row r holds buckets of 2**r records; 48 rows outlast any stream
_MAX_BUCKETS = 5    # River's default buckets per row before two merge into the next row
_CLOCK = 32         # River's default: look for a cut every 32 records
_MIN_WINDOW = 5     # River's default shortest sub-window
_GRACE = 10         # River's default records before the first check
# floats per slot: sum, variance, width, tick
_TOTAL, _VAR, _WIDTH, _TICK = range(4)


class AdwinStack(NamedTuple):
    """ADWINs with a leading slot axis (River's defaults, ``delta`` given at update)."""

    bucket_total: np.ndarray   # (slots, _LEVELS, _MAX_BUCKETS + 1) float64
    bucket_var: np.ndarray     # (slots, _LEVELS, _MAX_BUCKETS + 1) float64
    bucket_count: np.ndarray   # (slots, _LEVELS) int64: buckets in each row
    rows: np.ndarray           # (slots,) int64: rows in use
    stats: np.ndarray          # (slots, 4) float64: _TOTAL, _VAR, _WIDTH, _TICK
    drift: np.ndarray          # (slots,) int64: the last update detected a change


def new_adwin_stack(n_slots: int) -> AdwinStack:
    """``n_slots`` fresh ADWINs."""
    return AdwinStack(np.zeros((n_slots, _LEVELS, _MAX_BUCKETS + 1)),
                      np.zeros((n_slots, _LEVELS, _MAX_BUCKETS + 1)),
                      np.zeros((n_slots, _LEVELS), dtype=np.int64),
                      np.ones(n_slots, dtype=np.int64), np.zeros((n_slots, 4)),
                      np.zeros(n_slots, dtype=np.int64))


@njit(cache=True, nogil=True)
def adwin_reset(st: AdwinStack, s: int) -> None:
    """Slot ``s`` back to an empty window."""
    st.bucket_total[s] = 0.0
    st.bucket_var[s] = 0.0
    st.bucket_count[s] = 0
    st.rows[s] = 1
    st.stats[s] = 0.0
    st.drift[s] = 0


@njit(cache=True, nogil=True)
def _shift_out(st: AdwinStack, s: int, row: int, n: int) -> None:
    """Drop the ``n`` oldest buckets of ``row`` (River's ``Bucket.compress``)."""
    tot, var = st.bucket_total[s, row], st.bucket_var[s, row]
    size = tot.shape[0]
    for i in range(n, size):
        tot[i - n] = tot[i]
        var[i - n] = var[i]
    for i in range(size - n, size):
        tot[i] = 0.0
        var[i] = 0.0
    st.bucket_count[s, row] -= n


@njit(cache=True, nogil=True)
def _insert(st: AdwinStack, s: int, value: float) -> None:
    stats = st.stats[s]
    c = st.bucket_count[s, 0]
    st.bucket_total[s, 0, c] = value
    st.bucket_var[s, 0, c] = 0.0
    st.bucket_count[s, 0] = c + 1
    stats[_WIDTH] += 1.0
    width = stats[_WIDTH]
    if width > 1.0:
        d = value - stats[_TOTAL] / (width - 1.0)
        stats[_VAR] += (width - 1.0) * d * d / width
    stats[_TOTAL] += value
    row = 0
    while row < _LEVELS - 1 and st.bucket_count[s, row] == _MAX_BUCKETS + 1:
        if row + 1 >= st.rows[s]:
            st.rows[s] = row + 2
        n = 2.0 ** row
        t0, t1 = st.bucket_total[s, row, 0], st.bucket_total[s, row, 1]
        d = t0 / n - t1 / n
        v12 = st.bucket_var[s, row, 0] + st.bucket_var[s, row, 1] + n * n * d * d / (n + n)
        c = st.bucket_count[s, row + 1]
        st.bucket_total[s, row + 1, c] = t0 + t1
        st.bucket_var[s, row + 1, c] = v12
        st.bucket_count[s, row + 1] = c + 1
        _shift_out(st, s, row, 2)
        if st.bucket_count[s, row + 1] <= _MAX_BUCKETS:
            break
        row += 1


@njit(cache=True, nogil=True)
def _delete_oldest(st: AdwinStack, s: int) -> float:
    stats = st.stats[s]
    row = st.rows[s] - 1
    n = 2.0 ** row
    u = st.bucket_total[s, row, 0]
    mu = u / n
    v = st.bucket_var[s, row, 0]
    stats[_WIDTH] -= n
    stats[_TOTAL] -= u
    mu_window = stats[_TOTAL] / stats[_WIDTH]
    stats[_VAR] -= v + n * stats[_WIDTH] * (mu - mu_window) * (mu - mu_window) / (n + stats[_WIDTH])
    _shift_out(st, s, row, 1)
    if st.bucket_count[s, row] == 0 and row > 0:
        st.rows[s] = row
    return n


@njit(cache=True, nogil=True)
def _cut(width: float, variance: float, n0: float, n1: float, delta_mean: float,
         delta: float) -> bool:
    delta_prime = math.log(2.0 * math.log(width) / delta)
    m_recip = 1.0 / (n0 - _MIN_WINDOW + 1) + 1.0 / (n1 - _MIN_WINDOW + 1)
    epsilon = (math.sqrt(2.0 * m_recip * (variance / width) * delta_prime)
               + 2.0 / 3.0 * delta_prime * m_recip)
    return abs(delta_mean) > epsilon


@njit(cache=True, nogil=True)
def adwin_update(st: AdwinStack, s: int, value: float, delta: float) -> bool:
    """Feed ``value`` to slot ``s``'s ADWIN; True when it detected a change. As River's, a
    detector that fired starts from an empty window at its next update."""
    if st.drift[s]:
        adwin_reset(st, s)
    _insert(st, s, value)
    stats = st.stats[s]
    stats[_TICK] += 1.0
    detected = False
    if stats[_TICK] % _CLOCK == 0 and stats[_WIDTH] > _GRACE:
        reduce = True
        while reduce:
            reduce = False
            done = False
            n0, n1, u0, u1 = 0.0, stats[_WIDTH], 0.0, stats[_TOTAL]
            for row in range(st.rows[s] - 1, -1, -1):
                if done:
                    break
                n2 = 2.0 ** row
                for k in range(st.bucket_count[s, row]):
                    u2 = st.bucket_total[s, row, k]
                    n0 += n2
                    n1 -= n2
                    u0 += u2
                    u1 -= u2
                    if row == 0 and k == st.bucket_count[s, row] - 1:
                        done = True
                        break
                    if (n1 >= _MIN_WINDOW and n0 >= _MIN_WINDOW
                            and _cut(stats[_WIDTH], stats[_VAR], n0, n1, u0 / n0 - u1 / n1,
                                     delta)):
                        reduce = True
                        detected = True
                        if stats[_WIDTH] > 0:
                            _delete_oldest(st, s)
                            done = True
                            break
    st.drift[s] = 1 if detected else 0
    return detected
