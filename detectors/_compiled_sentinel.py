"""The sentinel detector (compiled): a frozen copy of the pool's best tree keeps predicting, and
its errors are tested leaf by leaf, the second channel of ``adaptive``'s ``drift`` event.

Why a frozen copy: the pool learns every record (online bagging trains an expert ~6 times a
record), so a change lifts the *live* error for a few hundred records only and the windowed
tests on it (:mod:`._compiled_shift`) miss small changes (SEA's first drift on some seeds, LED's
third). A copy that never learns keeps erring on the old concept for as long as the new one
lasts, and on a stationary stretch its errors are independent draws at a fixed rate, so a
test's false-alarm rate is what its p-value says. Why per leaf: a concept change is often local
(SEA's threshold moving flips the labels of a thin band of inputs): the copy's error rises
sharply in the few leaves over that band and hardly overall. Each leaf, and the whole tree as
one more cell, is tested: the error in the last ``W`` records against the copy's error in all
records before them since it was taken, a one-sided G-test (a rise only) at three window
lengths, ``P_VALUE`` per test. The flagged leaf's path names the region that changed.

Life cycle: a copy is taken ``FIRST`` records after the start and ``SETTLE`` after every flag
(either channel's), when the pool has learned the concept; the host copies it when
:func:`sentinel_due` says so (``adaptive._take_sentinel``). A copy needs ``REFERENCE`` records
before its first test. (Measured and left out: replacing a copy every 5,000 records when the
pool held a tree 3 points better. It found as many bench drifts, different ones: each
replacement leaves the sentinel blind for its reference, and a drift falling there was missed.) Memory: the copy (one tree's arrays, at most ~0.9 MiB at the default 1,000-node
cap on 24 features and 10 classes) and ``scales x (nodes + 1) x 4`` counts (96 KB at 1,000
nodes) plus two rings of ``max(SCALES)`` records (48 KB).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from experts._compiled_tree_kernels import first_max, tree_predict_node

from ._compiled_shift import g_rise

SCALES = (300, 1000, 3000)   # test windows, records
SETTLE = 5000      # records after a flag before a copy is taken (the pool learns the new concept)
FIRST = 10_000     # records before the first copy (a fresh pool learns its first concept)
REFERENCE = 2000   # records of the copy's own before its first test
MIN_LEAF = 30      # reference records a leaf needs before it is tested
MIN_ERRORS = 5     # errors a leaf's window needs before it is tested
P_VALUE = 1e-7     # per test: each record tests its leaf and the tree at 3 scales
_Z = 5.199338      # the standard normal quantile of 1 - P_VALUE
RING = max(SCALES) + 1   # + 1: the new record is written before the oldest leaves
# ints: records since the copy was taken, taken (0/1), position a copy is due, scale and cell
# (leaf node, or nodes = the whole tree) of the last flag
_SINCE, _TAKEN, _DUE, _SCALE, _CELL = range(5)
EVIDENCE = ("error_before", "error_after", "g_error", "reference", "window")


class SentinelState(NamedTuple):
    """The copy's recent leaves and errors and each cell's counts (the copy itself is a
    one-slot ``TreePool`` beside it)."""

    cells: np.ndarray     # (RING,) int64: the cell (leaf node) of each recent record
    errors: np.ndarray    # (RING,) int64: 1 = the copy mispredicted it
    counts: np.ndarray    # (scales, nodes + 1, 4) float64: reference records and errors,
    #                       window records and errors; the last row is the whole tree
    ints: np.ndarray      # (5,) int64: _SINCE, _TAKEN, _DUE, _SCALE, _CELL
    evidence: np.ndarray  # (len(EVIDENCE),) float64: the last flag's


def new_sentinel(nodes: int, due: int = FIRST, taken: bool = False) -> SentinelState:
    """A detector for a copy with ``nodes`` node capacity, the next copy due at record
    ``due``."""
    ints = np.zeros(5, np.int64)
    ints[_DUE], ints[_TAKEN] = due, int(taken)
    return SentinelState(np.zeros(RING, np.int64), np.zeros(RING, np.int64),
                         np.zeros((len(SCALES), nodes + 1, 4)), ints, np.zeros(len(EVIDENCE)))


@njit(cache=True, nogil=True)
def sentinel_due(st: SentinelState, position: int) -> bool:
    """Whether the host should take a copy now (none held and record ``position`` reached)."""
    return st.ints[_TAKEN] == 0 and position >= st.ints[_DUE]


@njit(cache=True, nogil=True)
def sentinel_drop(st: SentinelState, due: int) -> None:
    """Forget the copy (a change was flagged); the next is due at record ``due``."""
    st.ints[_TAKEN] = 0
    st.ints[_DUE] = due


@njit(cache=True, nogil=True)
def sentinel_update(st: SentinelState, tree, x: np.ndarray, y: int) -> bool:
    """Feed one labelled record (``x`` cut to the copy's features) to the copy (``tree``, a
    one-slot TreePool); True when a test passed (its evidence written; the host drops the
    copy). Nothing happens while no copy is held."""
    ints = st.ints
    if ints[_TAKEN] == 0:
        return False
    out = np.empty(tree.node_class_w.shape[2])
    cell = tree_predict_node(tree, 0, x, out)
    error = 1 if first_max(out) != y else 0
    whole = st.counts.shape[1] - 1
    n = ints[_SINCE]
    st.cells[n % RING] = cell
    st.errors[n % RING] = error
    ints[_SINCE] = n + 1
    best_g, best_scale, best_cell = _Z * _Z, -1, -1
    for s in range(len(SCALES)):
        win = SCALES[s]
        c = st.counts[s]
        for k in (cell, whole):
            c[k, 2] += 1.0
            c[k, 3] += error
        if n >= win:   # the record W back leaves the window for the reference
            j = (n - win) % RING
            for k in (st.cells[j], whole):
                c[k, 0] += 1.0
                c[k, 1] += st.errors[j]
                c[k, 2] -= 1.0
                c[k, 3] -= st.errors[j]
        if n + 1 < win + REFERENCE:
            continue
        for k in (cell, whole):
            if c[k, 0] >= MIN_LEAF and c[k, 3] >= MIN_ERRORS:
                g = g_rise(c[k, 1], c[k, 0], c[k, 3], c[k, 2])
                if g > best_g:
                    best_g, best_scale, best_cell = g, s, k
    if best_scale < 0:
        return False
    c = st.counts[best_scale, best_cell]
    ev = st.evidence
    ev[0], ev[1], ev[2] = c[1] / c[0], c[3] / c[2], best_g
    ev[3], ev[4] = c[0], c[2]
    ints[_SCALE], ints[_CELL] = best_scale, best_cell
    return True
