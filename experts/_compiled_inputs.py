"""Encoded records -> standardised input vectors for the compiled MLPs and router.

An encoded record is a float64 row (see :class:`experts.RecordEncoder`): a numeric feature's
value, a nominal feature's value index, NaN when missing. Input slots are allotted in order of
first appearance and never move, as :class:`experts.FeatureVectorizer` does: a numeric feature
gets one slot, each value of a nominal feature one one-hot slot. Each slot is centred and
scaled by a running (Welford) mean and variance over the learned records that observe it (a
present numeric feature; every slot of a present nominal feature); a missing feature maps to 0,
its running mean. Slots whose variance is below ``_MIN_VAR`` are centred, not scaled.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

_MIN_VAR = 1e-12   # as experts._features: a constant slot maps to 0, not (x - mean) / ~0


class InputState(NamedTuple):
    """Slot map and running statistics (``used[0]`` slots allotted)."""

    slot_of: np.ndarray   # (features, values) int64: input slot, -1 none; numeric use column 0
    nominal: np.ndarray   # (features,) int64: 1 for a nominal feature
    count: np.ndarray     # (slots,) float64: learned records observing the slot
    mean: np.ndarray      # (slots,) float64
    m2: np.ndarray        # (slots,) float64: sum of squared deviations
    used: np.ndarray      # (1,) int64: slots allotted


def new_inputs(n_features: int, n_values: int, n_slots: int) -> InputState:
    """An empty slot map for capacities ``n_features x n_values`` and ``n_slots`` slots."""
    return InputState(np.full((n_features, max(n_values, 1)), -1, dtype=np.int64),
                      np.zeros(n_features, dtype=np.int64), np.zeros(n_slots),
                      np.zeros(n_slots), np.zeros(n_slots), np.zeros(1, dtype=np.int64))


def grow_inputs(st: InputState, nominal: np.ndarray, n_values: int, n_slots: int) -> InputState:
    """Room for ``len(nominal)`` features (``nominal``: 1 where nominal), ``n_values`` values
    per feature and ``n_slots`` slots; allotted slots keep their numbers."""
    n_features = len(nominal)
    slot_of = np.full((n_features, max(n_values, st.slot_of.shape[1])), -1, dtype=np.int64)
    slot_of[: st.slot_of.shape[0], : st.slot_of.shape[1]] = st.slot_of
    stats = []
    for a in (st.count, st.mean, st.m2):
        grown = np.zeros(max(n_slots, len(a)))
        grown[: len(a)] = a
        stats.append(grown)
    return InputState(slot_of, np.asarray(nominal, dtype=np.int64).copy(), *stats,
                      st.used.copy())


@njit(cache=True, nogil=True)
def inputs_missing(st: InputState, x: np.ndarray) -> int:
    """Slots record ``x`` would allot (0 when every present feature and value has one)."""
    need = 0
    for f in range(x.shape[0]):
        v = x[f]
        if not math.isnan(v):
            col = int(v) if st.nominal[f] else 0
            if st.slot_of[f, col] < 0:
                need += 1
    return need


@njit(cache=True, nogil=True)
def inputs_allot(st: InputState, x: np.ndarray) -> None:
    """Allot slots to the features and values of ``x`` that have none (capacity checked by
    the caller with :func:`inputs_missing`)."""
    for f in range(x.shape[0]):
        v = x[f]
        if not math.isnan(v):
            col = int(v) if st.nominal[f] else 0
            if st.slot_of[f, col] < 0:
                st.slot_of[f, col] = st.used[0]
                st.used[0] += 1


@njit(cache=True, nogil=True)
def _scaled(count: np.ndarray, mean: np.ndarray, m2: np.ndarray, s: int, value: float) -> float:
    n = count[s]
    var = m2[s] / n if n > 0.0 else 0.0
    centred = value - mean[s]
    return centred / math.sqrt(var) if var > _MIN_VAR else centred


@njit(cache=True, nogil=True)
def inputs_standardise(st: InputState, x: np.ndarray, z: np.ndarray, count: np.ndarray,
                       mean: np.ndarray, m2: np.ndarray) -> None:
    """``z[:used]``: record ``x`` standardised with the statistics ``count, mean, m2`` (the
    state's, or a look-ahead copy); slots ``x`` has no allotment for are left out, as zero."""
    z[: st.used[0]] = 0.0
    for f in range(x.shape[0]):
        v = x[f]
        if math.isnan(v):
            continue
        if st.nominal[f]:
            k = int(v)
            for col in range(st.slot_of.shape[1]):
                s = st.slot_of[f, col]
                if s >= 0:
                    z[s] = _scaled(count, mean, m2, s, 1.0 if col == k else 0.0)
        else:
            s = st.slot_of[f, 0]
            if s >= 0:
                z[s] = _scaled(count, mean, m2, s, v)


@njit(cache=True, nogil=True)
def _welford(count: np.ndarray, mean: np.ndarray, m2: np.ndarray, s: int, value: float) -> None:
    count[s] += 1.0
    delta = value - mean[s]
    mean[s] += delta / count[s]
    m2[s] += delta * (value - mean[s])


@njit(cache=True, nogil=True)
def inputs_learn(st: InputState, x: np.ndarray, count: np.ndarray, mean: np.ndarray,
                 m2: np.ndarray) -> None:
    """Fold record ``x`` into the statistics ``count, mean, m2`` (the state's own, or a copy
    to look ahead over a stretch of records)."""
    for f in range(x.shape[0]):
        v = x[f]
        if math.isnan(v):
            continue
        if st.nominal[f]:
            k = int(v)
            for col in range(st.slot_of.shape[1]):
                s = st.slot_of[f, col]
                if s >= 0:
                    _welford(count, mean, m2, s, 1.0 if col == k else 0.0)
        else:
            s = st.slot_of[f, 0]
            if s >= 0:
                _welford(count, mean, m2, s, v)
