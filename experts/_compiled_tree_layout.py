"""The array layout of compiled Hoeffding trees (``TreePool``), its constants, and the scalar
helpers every tree kernel shares (see :mod:`experts._compiled_tree_kernels`)."""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

# settings columns (float64, one row per slot)
GRACE, DELTA, TAU, MAX_NODES, LEAF_PREDICTION, NB_THRESHOLD, MIN_BRANCH_FRAC, SPLIT_POINTS = \
    range(8)
N_SETTINGS = 8
LEAF_MC, LEAF_NB, LEAF_NBA = 0, 1, 2
# sizes columns (int64, one row per slot): nodes, leaf statistic rows, branch slots in use
USED_NODES, USED_ROWS, USED_BRANCHES = 0, 1, 2
STATUS_OK, STATUS_NEEDS_ROOM = 0, 1
_AT_LEAF, _MISSING = -2, -1
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
# a naive-Bayes product is rescaled when its largest vote leaves [_TINY, _HUGE]: far from
# float64's limits (1e-308, 1e308) even after one more factor (a density can be ~1e100)
_TINY, _HUGE = 1e-150, 1e150


class TreePool(NamedTuple):
    """K Hoeffding trees as arrays; axis 0 of every array is the slot.

    Shapes: S slots, N node capacity, L leaf-row capacity, B branch capacity, C classes,
    F features (Fn numeric, Fm nominal, V nominal value slots in all).
    """

    settings: np.ndarray         # f8[S, 8]   see the column names above
    nominal_values: np.ndarray   # i8[S, F]   0 numeric, v > 0 nominal with room for v values
    feature_col: np.ndarray      # i8[S, F]   column in the numeric or the nominal statistics
    value_offset: np.ndarray     # i8[S, F]   first value slot of a nominal feature in nom_count
    sizes: np.ndarray            # i8[S, 3]   nodes, rows, branches in use
    node_feature: np.ndarray     # i8[S, N]   split feature, -1 for a leaf
    node_threshold: np.ndarray   # f8[S, N]   numeric: x <= it goes to branch 0; nominal: NaN
    #                                         multiway, else a value (x == it: branch 0)
    node_branch_start: np.ndarray  # i8[S, N]  first of the node's entries in branch_child
    node_n_branches: np.ndarray  # i8[S, N]
    node_row: np.ndarray         # i8[S, N]   a leaf's statistics row, -1 for a split node
    node_class_w: np.ndarray     # f8[S, N, C] class weights seen (frozen at a split)
    branch_child: np.ndarray     # i8[S, B]   child node of a branch, -1 none yet
    row_seen_at_eval: np.ndarray  # f8[S, L]  leaf weight at its last split attempt
    row_learned: np.ndarray      # f8[S, L]   weight learned at this leaf (0: no observers yet)
    row_mc_correct: np.ndarray   # f8[S, L]   weight the majority class got right (NBA)
    row_nb_correct: np.ndarray   # f8[S, L]   weight naive Bayes got right (NBA)
    gauss_w: np.ndarray          # f8[S, L, C, Fn] Gaussian weight per class and numeric feature
    gauss_mean: np.ndarray       # f8[S, L, C, Fn]
    gauss_m2: np.ndarray         # f8[S, L, C, Fn] weighted sum of squared deviations
    gauss_min: np.ndarray        # f8[S, L, C, Fn]
    gauss_max: np.ndarray        # f8[S, L, C, Fn]
    nom_count: np.ndarray        # f8[S, L, C, V] weight per class and nominal value
    nom_sum: np.ndarray          # f8[S, L, C, Fm] weight per class with the feature present
    nom_len: np.ndarray          # i8[S, L, C, Fm] highest value index seen + 1 (MOA's numValues)


@njit(cache=True, nogil=True)
def _value_index(v: float) -> int:
    """A nominal value's index, -1 when missing or not a whole non-negative number."""
    if not (v >= 0.0) or v != math.floor(v) or v > 1e15:
        return -1
    return int(v)


@njit(cache=True, nogil=True)
def _gauss_density(w, mean, m2, v) -> float:
    """MOA's GaussianEstimator.probabilityDensity of ``v`` for weight ``w``, mean and weighted
    squared deviations ``m2``: 0 with no weight; with no spread, 1 at the mean, 0 elsewhere.
    Scalars in, so the hot loop passes no arrays."""
    if w <= 0.0:
        return 0.0
    sd = math.sqrt(m2 / (w - 1.0)) if w > 1.0 else 0.0
    if sd > 0.0:
        z = (v - mean) / sd
        return math.exp(-0.5 * z * z - _LOG_SQRT_2PI) / sd
    return 1.0 if v == mean else 0.0
