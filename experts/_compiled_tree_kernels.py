"""Compiled Hoeffding tree kernels (numba): MOA's HoeffdingTree over flat numpy arrays.

Over 300 lines on purpose: routing, leaf statistics, naive Bayes, split evaluation and node
allocation are one algorithm over one array layout, and each piece is a short kernel.

K trees live stacked in one ``TreePool`` (axis 0 of every array is the tree's slot), so a model
loop compiled with numba can predict and learn any of them without entering Python. What MOA does
and we do alike (moa.classifiers.trees.HoeffdingTree, MOA 2024.07):

- numeric features: a Gaussian (weighted Welford) per class with min and max; candidate splits at
  ``split_points`` (10) evenly spaced points strictly inside [min, max]; ``x <= t`` goes left;
  branch weights from the Gaussians' CDF, as GaussianNumericAttributeClassObserver estimates them;
- nominal features: per-class value counts; a multiway split with a branch per value seen, or
  one value against the rest when that is strictly better (MOA 2024's observer offers both);
- information gain, a split only when at least two branches hold ``min_branch_frac`` of the
  weight, merit range ``log2(classes seen)``, the Hoeffding bound with ``delta``, tie threshold
  ``tau``, attempts every ``grace_period`` of weight; the null split is on offer (merit -inf);
- leaves: majority class, naive Bayes, or naive-Bayes-adaptive (the one that would have been
  right more often so far, ties to naive Bayes); nominal likelihoods Laplace-smoothed as MOA's
  NominalAttributeClassObserver does, ``(n(v|c) + 1) / (n(c) + values seen for c)``;
- a missing value (NaN) stops the record at the split node: it predicts that node's class counts
  and is not learned; a nominal value with no branch yet grows a new leaf when learned.

Where we differ, and why: the naive-Bayes product is rescaled as it goes (MOA's underflows to
zero on many features), a feature no class has been seen with at a leaf is left out of its naive Bayes (MOA
zeroes every class), an all-zero naive Bayes falls back to the class counts, a leaf is never
deactivated (MOA deactivates it when only the null split is on offer, which a stream whose
features appear later would regret) and a split whose best merit is -inf is not made. The size
cap is ``max_nodes`` (MOA's is bytes): a full tree keeps learning its leaves and stops splitting.
"""
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
def _route(pool, slot, x):
    """(node, branch): branch -2 at a leaf, -1 stopped by a missing value at split ``node``,
    b >= 0 when split ``node`` has no child on branch b yet."""
    node = 0
    while True:
        f = pool.node_feature[slot, node]
        if f < 0:
            return node, _AT_LEAF
        v = x[f]
        if pool.nominal_values[slot, f] == 0:
            if math.isnan(v):
                return node, _MISSING
            b = 0 if v <= pool.node_threshold[slot, node] else 1
        else:
            b = _value_index(v)
            if b < 0:
                return node, _MISSING
            chosen = pool.node_threshold[slot, node]    # NaN: multiway; else value vs the rest
            if not math.isnan(chosen):
                b = 0 if b == chosen else 1
        if b >= pool.node_n_branches[slot, node]:
            return node, b
        child = pool.branch_child[slot, pool.node_branch_start[slot, node] + b]
        if child < 0:
            return node, b
        node = child


@njit(cache=True, nogil=True)
def _normalise(counts, out):
    total = counts.sum()
    for c in range(out.shape[0]):
        out[c] = counts[c] / total if total > 0.0 else 0.0


@njit(cache=True, nogil=True)
def _first_max(a) -> int:
    """Index of the first largest value, -1 when all are <= 0 (nothing seen)."""
    best = -1
    for i in range(a.shape[0]):
        if a[i] > 0.0 and (best < 0 or a[i] > a[best]):
            best = i
    return best


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


@njit(cache=True, nogil=True)
def _rescale(votes):
    """Keeps a running naive-Bayes product inside float64's range (ratios unchanged)."""
    top = votes.max()
    if 0.0 < top < _TINY or top > _HUGE:
        votes /= top


@njit(cache=True, nogil=True)
def _nb_proba(pool, slot, node, x, out) -> bool:
    """Naive Bayes class probabilities at leaf ``node`` into ``out`` (MOA's
    doNaiveBayesPrediction, normalised); False when every class scores zero."""
    counts = pool.node_class_w[slot, node]
    row = pool.node_row[slot, node]
    n_classes = out.shape[0]
    total = counts.sum()
    if total <= 0.0:
        return False
    for c in range(n_classes):
        out[c] = counts[c] / total
    if pool.row_learned[slot, row] > 0.0:
        for f in range(x.shape[0]):
            v = x[f]
            if math.isnan(v):
                continue
            j = pool.feature_col[slot, f]
            if pool.nominal_values[slot, f] == 0:
                if pool.gauss_w[slot, row, :, j].sum() <= 0.0:
                    continue
                w, mean, m2 = pool.gauss_w[slot, row], pool.gauss_mean[slot, row], \
                    pool.gauss_m2[slot, row]
                for c in range(n_classes):
                    if out[c] > 0.0:
                        out[c] *= _gauss_density(w[c, j], mean[c, j], m2[c, j], v)
            else:
                k = _value_index(v)
                if k < 0 or pool.nom_sum[slot, row, :, j].sum() <= 0.0:
                    continue
                at = pool.value_offset[slot, f] + k
                in_range = k < pool.nominal_values[slot, f]
                for c in range(n_classes):
                    if out[c] > 0.0:
                        hits = pool.nom_count[slot, row, c, at] if in_range else 0.0
                        n_c = pool.nom_sum[slot, row, c, j]
                        out[c] *= (hits + 1.0) / (n_c + pool.nom_len[slot, row, c, j]) \
                            if n_c > 0.0 else 0.0
            _rescale(out)
    total = out.sum()
    if not total > 0.0:
        return False
    out /= total
    return True


@njit(cache=True, nogil=True)
def _leaf_proba(pool, slot, node, x, out, nb_votes) -> int:
    """Leaf prediction into ``out``; returns naive Bayes's guess (its class of highest vote,
    the majority class when naive Bayes has none), which ``_observe`` scores for NBA leaves.
    ``nb_votes`` is scratch of C floats."""
    counts = pool.node_class_w[slot, node]
    mode = int(pool.settings[slot, LEAF_PREDICTION])
    row = pool.node_row[slot, node]
    if mode == LEAF_MC:
        _normalise(counts, out)
        return -1
    nb_ok = _nb_proba(pool, slot, node, x, nb_votes)
    use_nb = nb_ok and (
        (mode == LEAF_NB and counts.sum() >= pool.settings[slot, NB_THRESHOLD])
        or (mode == LEAF_NBA and pool.row_mc_correct[slot, row] <= pool.row_nb_correct[slot, row]))
    if use_nb:
        out[:] = nb_votes
    else:
        _normalise(counts, out)
    return _first_max(nb_votes) if nb_ok else _first_max(counts)


@njit(cache=True, nogil=True)
def tree_predict_proba(pool, slot, x, out):
    """Class probabilities of record ``x`` (f8[F], NaN missing) into ``out`` (f8[C]); all zero
    before anything is learned."""
    node, b = _route(pool, slot, x)
    if b == _AT_LEAF:
        _leaf_proba(pool, slot, node, x, out, np.empty(out.shape[0]))
    else:
        _normalise(pool.node_class_w[slot, node], out)


@njit(cache=True, nogil=True)
def _observe(pool, slot, node, x, y, w, nb_guess):
    """Folds record (x, y, w) into leaf ``node``: NBA scores (``nb_guess``: naive Bayes's
    class before this record), class weights, observers."""
    row = pool.node_row[slot, node]
    counts = pool.node_class_w[slot, node]
    if int(pool.settings[slot, LEAF_PREDICTION]) == LEAF_NBA:
        if _first_max(counts) == y:
            pool.row_mc_correct[slot, row] += w
        if nb_guess == y:
            pool.row_nb_correct[slot, row] += w
    counts[y] += w
    pool.row_learned[slot, row] += w
    for f in range(x.shape[0]):
        v = x[f]
        j = pool.feature_col[slot, f]
        if pool.nominal_values[slot, f] == 0:
            if not math.isfinite(v):
                continue
            old = pool.gauss_w[slot, row, y, j]
            if old > 0.0:
                total = old + w
                last = pool.gauss_mean[slot, row, y, j]
                mean = last + w * (v - last) / total
                pool.gauss_mean[slot, row, y, j] = mean
                pool.gauss_m2[slot, row, y, j] += w * (v - last) * (v - mean)
                pool.gauss_w[slot, row, y, j] = total
                pool.gauss_min[slot, row, y, j] = min(pool.gauss_min[slot, row, y, j], v)
                pool.gauss_max[slot, row, y, j] = max(pool.gauss_max[slot, row, y, j], v)
            else:
                pool.gauss_w[slot, row, y, j] = w
                pool.gauss_mean[slot, row, y, j] = v
                pool.gauss_min[slot, row, y, j] = v
                pool.gauss_max[slot, row, y, j] = v
        else:
            k = _value_index(v)
            if k < 0 or k >= pool.nominal_values[slot, f]:
                continue
            pool.nom_count[slot, row, y, pool.value_offset[slot, f] + k] += w
            pool.nom_sum[slot, row, y, j] += w
            pool.nom_len[slot, row, y, j] = max(pool.nom_len[slot, row, y, j], k + 1)


@njit(cache=True, nogil=True)
def _entropy(dist) -> float:
    total = 0.0
    acc = 0.0
    for d in dist:
        if d > 0.0:
            acc -= d * math.log2(d)
            total += d
    return (acc + total * math.log2(total)) / total if total > 0.0 else 0.0


@njit(cache=True, nogil=True)
def _merit(pre, post, min_frac) -> float:
    """Information gain of splitting ``pre`` (f8[C]) into ``post`` (f8[k, C]); -inf unless two
    branches each hold more than ``min_frac`` of the weight (MOA's InfoGainSplitCriterion)."""
    total = post.sum()
    branch_w = post.sum(axis=1)
    big = 0
    for b in range(branch_w.shape[0]):
        if total > 0.0 and branch_w[b] / total > min_frac:
            big += 1
    if big < 2:
        return -np.inf
    after = 0.0
    for b in range(branch_w.shape[0]):
        after += branch_w[b] * _entropy(post[b])
    return _entropy(pre) - after / total


@njit(cache=True, nogil=True)
def _binary_post(pool, slot, row, j, t, post):
    """Class weights left (x <= t) and right of threshold ``t`` estimated from the Gaussians."""
    post[:] = 0.0
    for c in range(post.shape[1]):
        w = pool.gauss_w[slot, row, c, j]
        if w <= 0.0:
            continue
        if t < pool.gauss_min[slot, row, c, j]:
            post[1, c] += w
        elif t >= pool.gauss_max[slot, row, c, j]:
            post[0, c] += w
        else:
            mean, m2 = pool.gauss_mean[slot, row, c, j], pool.gauss_m2[slot, row, c, j]
            equal = _gauss_density(w, mean, m2, t) * w
            sd = math.sqrt(m2 / (w - 1.0)) if w > 1.0 else 0.0
            if sd > 0.0:
                less = 0.5 * math.erfc((mean - t) / (sd * math.sqrt(2.0))) * w - equal
            else:
                less = w - equal if t < mean else 0.0
            post[0, c] += less + equal
            post[1, c] += max(w - equal - less, 0.0)


@njit(cache=True, nogil=True)
def _best_threshold(pool, slot, row, j, pre, min_frac, n_points, post):
    """(merit, threshold) of the best of the candidate thresholds of numeric column ``j``;
    threshold NaN when there is no candidate (nothing seen, or a constant feature)."""
    lo, hi = np.inf, -np.inf
    for c in range(pre.shape[0]):
        if pool.gauss_w[slot, row, c, j] > 0.0:
            lo = min(lo, pool.gauss_min[slot, row, c, j])
            hi = max(hi, pool.gauss_max[slot, row, c, j])
    best, best_t = -np.inf, np.nan
    for i in range(n_points):
        t = (hi - lo) / (n_points + 1) * (i + 1) + lo
        if lo < t < hi:
            _binary_post(pool, slot, row, j, t, post)
            m = _merit(pre, post, min_frac)
            if math.isnan(best_t) or m > best:
                best, best_t = m, t
    return best, best_t


@njit(cache=True, nogil=True)
def _multiway_post(pool, slot, row, f, n_classes):
    """Class weights per value of nominal feature ``f`` (f8[values seen, C])."""
    j = pool.feature_col[slot, f]
    k = 0
    for c in range(n_classes):
        k = max(k, pool.nom_len[slot, row, c, j])
    post = np.zeros((k, n_classes))
    at = pool.value_offset[slot, f]
    for v in range(k):
        for c in range(n_classes):
            post[v, c] = pool.nom_count[slot, row, c, at + v]
    return post


@njit(cache=True, nogil=True)
def _value_vs_rest_post(pool, slot, row, f, value, post):
    """Class weights with nominal feature ``f`` equal to ``value`` (row 0) and not (row 1)."""
    j = pool.feature_col[slot, f]
    at = pool.value_offset[slot, f] + value
    for c in range(post.shape[1]):
        post[0, c] = pool.nom_count[slot, row, c, at]
        post[1, c] = pool.nom_sum[slot, row, c, j] - post[0, c]


@njit(cache=True, nogil=True)
def _best_nominal(pool, slot, row, f, pre, min_frac, post):
    """(merit, value) of nominal feature ``f``'s best split: the multiway one (value NaN), or,
    when strictly better, one value against the rest (MOA 2024's observer offers both)."""
    multiway = _multiway_post(pool, slot, row, f, pre.shape[0])
    best, best_value = _merit(pre, multiway, min_frac), np.nan
    for value in range(multiway.shape[0]):
        _value_vs_rest_post(pool, slot, row, f, value, post)
        m = _merit(pre, post, min_frac)
        if m > best:
            best, best_value = m, float(value)
    return best, best_value


@njit(cache=True, nogil=True)
def _clear_row(pool, slot, row):
    pool.row_seen_at_eval[slot, row] = 0.0
    pool.row_learned[slot, row] = 0.0
    pool.row_mc_correct[slot, row] = 0.0
    pool.row_nb_correct[slot, row] = 0.0
    pool.gauss_w[slot, row] = 0.0
    pool.gauss_mean[slot, row] = 0.0
    pool.gauss_m2[slot, row] = 0.0
    pool.gauss_min[slot, row] = 0.0
    pool.gauss_max[slot, row] = 0.0
    pool.nom_count[slot, row] = 0.0
    pool.nom_sum[slot, row] = 0.0
    pool.nom_len[slot, row] = 0


@njit(cache=True, nogil=True)
def _new_leaf(pool, slot, row, class_w) -> int:
    """A leaf on statistics row ``row`` starting from class weights ``class_w``."""
    node = pool.sizes[slot, USED_NODES]
    pool.sizes[slot, USED_NODES] += 1
    pool.node_feature[slot, node] = -1
    pool.node_threshold[slot, node] = 0.0
    pool.node_branch_start[slot, node] = 0
    pool.node_n_branches[slot, node] = 0
    pool.node_row[slot, node] = row
    pool.node_class_w[slot, node] = class_w
    _clear_row(pool, slot, row)
    pool.row_seen_at_eval[slot, row] = class_w.sum()
    return node


@njit(cache=True, nogil=True)
def _has_room(pool, slot, nodes, rows, branches) -> bool:
    """Whether ``nodes`` more nodes fit the cap, and nodes, rows and branches the arrays."""
    used = pool.sizes[slot]
    return (used[USED_NODES] + nodes <= pool.settings[slot, MAX_NODES]
            and used[USED_NODES] + nodes <= pool.node_feature.shape[1]
            and used[USED_ROWS] + rows <= pool.row_learned.shape[1]
            and used[USED_BRANCHES] + branches <= pool.branch_child.shape[1])


@njit(cache=True, nogil=True)
def _split(pool, slot, node, f, threshold, post, n_branches):
    """Turns leaf ``node`` into a split on feature ``f`` with ``n_branches`` branches, a child
    leaf per row of ``post``; the first child reuses the leaf's statistics row."""
    row = pool.node_row[slot, node]
    n_children = post.shape[0]
    start = pool.sizes[slot, USED_BRANCHES]
    pool.sizes[slot, USED_BRANCHES] += n_branches
    pool.node_feature[slot, node] = f
    pool.node_threshold[slot, node] = threshold
    pool.node_branch_start[slot, node] = start
    pool.node_n_branches[slot, node] = n_branches
    pool.node_row[slot, node] = -1
    pool.branch_child[slot, start:start + n_branches] = -1
    for b in range(n_children):
        if b == 0:
            child_row = row
        else:
            child_row = pool.sizes[slot, USED_ROWS]
            pool.sizes[slot, USED_ROWS] += 1
        pool.branch_child[slot, start + b] = _new_leaf(pool, slot, child_row, post[b])


@njit(cache=True, nogil=True)
def _attempt_split(pool, slot, node) -> int:
    """MOA's attemptToSplit at leaf ``node``; returns STATUS_NEEDS_ROOM when a split was due
    but the arrays (not the cap) had no room for it."""
    pre = pool.node_class_w[slot, node]
    n_classes = pre.shape[0]
    seen_classes = 0
    top_class = 0
    for c in range(n_classes):
        if pre[c] > 0.0:
            seen_classes += 1
            top_class = c
    if seen_classes < 2:
        return STATUS_OK
    row = pool.node_row[slot, node]
    min_frac = pool.settings[slot, MIN_BRANCH_FRAC]
    n_points = int(pool.settings[slot, SPLIT_POINTS])
    binary = np.empty((2, n_classes))
    # ascending merits with ties in insertion order (Java's stable sort): the null split first
    best, second, best_f, best_t = -np.inf, -np.inf, -1, np.nan
    for f in range(pool.nominal_values.shape[1]):
        if pool.nominal_values[slot, f] == 0:
            m, t = _best_threshold(pool, slot, row, pool.feature_col[slot, f], pre, min_frac,
                                   n_points, binary)
            if math.isnan(t):
                continue
        else:
            m, t = _best_nominal(pool, slot, row, f, pre, min_frac, binary)
        if m >= best:
            second, best, best_f, best_t = best, m, f, t
        elif m >= second:
            second = m
    if best_f < 0 or best == -np.inf:
        return STATUS_OK
    n = pre.sum()
    merit_range = math.log2(max(top_class + 1, 2))
    bound = math.sqrt(merit_range * merit_range * math.log(1.0 / pool.settings[slot, DELTA])
                      / (2.0 * n))
    if not (best - second > bound or bound < pool.settings[slot, TAU]):
        return STATUS_OK
    multiway = pool.nominal_values[slot, best_f] > 0 and math.isnan(best_t)
    if multiway:
        post = _multiway_post(pool, slot, row, best_f, n_classes)
    elif pool.nominal_values[slot, best_f] > 0:
        _value_vs_rest_post(pool, slot, row, best_f, int(best_t), binary)
        post = binary
    else:
        _binary_post(pool, slot, row, pool.feature_col[slot, best_f], best_t, binary)
        post = binary
    k = post.shape[0]
    if pool.sizes[slot, USED_NODES] + k > pool.settings[slot, MAX_NODES]:
        return STATUS_OK      # the tree is full: it stops growing
    # a multiway split keeps a branch for every value the feature has room for
    n_branches = max(k, pool.nominal_values[slot, best_f]) if multiway else k
    if not _has_room(pool, slot, k, k - 1, n_branches):
        return STATUS_NEEDS_ROOM
    _split(pool, slot, node, best_f, best_t, post, n_branches)
    return STATUS_OK


@njit(cache=True, nogil=True)
def _grow_branch(pool, slot, node, b) -> int:
    """A new empty leaf on branch ``b`` of split ``node`` (MOA grows one for a nominal value
    the split has not seen); -1 when there is no room (then the record is not learned)."""
    n_branches = pool.node_n_branches[slot, node]
    extra = 0 if b < n_branches else max(b + 1, 2 * n_branches)
    if not _has_room(pool, slot, 1, 1, extra):
        return -1
    if extra:   # move the node's branches to a longer block at the end
        old = pool.node_branch_start[slot, node]
        start = pool.sizes[slot, USED_BRANCHES]
        pool.sizes[slot, USED_BRANCHES] += extra
        pool.branch_child[slot, start:start + extra] = -1
        pool.branch_child[slot, start:start + n_branches] = \
            pool.branch_child[slot, old:old + n_branches]
        pool.node_branch_start[slot, node] = start
        pool.node_n_branches[slot, node] = extra
    row = pool.sizes[slot, USED_ROWS]
    pool.sizes[slot, USED_ROWS] += 1
    child = _new_leaf(pool, slot, row, np.zeros(pool.node_class_w.shape[2]))
    pool.branch_child[slot, pool.node_branch_start[slot, node] + b] = child
    return child


@njit(cache=True, nogil=True)
def _needs_room(pool, slot) -> bool:
    """More than half of the node, row or branch arrays in use while the tree may still grow:
    Python should grow the pool (doubling) before the next batch, so a batch never runs out."""
    used = pool.sizes[slot]
    if used[USED_NODES] >= pool.settings[slot, MAX_NODES]:
        return False
    capacity = pool.node_feature.shape[1]
    return (2 * used[USED_NODES] > capacity and capacity < pool.settings[slot, MAX_NODES]) or (
        2 * used[USED_ROWS] > pool.row_learned.shape[1]
        and pool.row_learned.shape[1] < pool.settings[slot, MAX_NODES]) or (
        2 * used[USED_BRANCHES] > pool.branch_child.shape[1])


@njit(cache=True, nogil=True)
def _learn_at(pool, slot, node, b, x, y, w, nb_guess) -> int:
    """Learns a record that routed to (node, b); see ``tree_learn``."""
    if b == _MISSING:
        return STATUS_OK
    status = STATUS_OK
    if b >= 0:
        node = _grow_branch(pool, slot, node, b)
        if node < 0:
            return STATUS_NEEDS_ROOM if _needs_room(pool, slot) else STATUS_OK
    _observe(pool, slot, node, x, y, w, nb_guess)
    row = pool.node_row[slot, node]
    seen = pool.node_class_w[slot, node].sum()
    if seen - pool.row_seen_at_eval[slot, row] >= pool.settings[slot, GRACE]:
        status = _attempt_split(pool, slot, node)
        if pool.node_feature[slot, node] < 0:     # still a leaf (a split sets its children's)
            pool.row_seen_at_eval[slot, row] = seen
    if _needs_room(pool, slot):
        status = STATUS_NEEDS_ROOM
    return status


@njit(cache=True, nogil=True)
def tree_learn(pool, slot, x, y, w) -> int:
    """Learns record (x, y, w) into tree ``slot``; returns 1 when Python should grow the pool
    (``grow_tree_pool``) before the next batch, else 0. A class index outside the pool's
    classes is not learned (returns 1); weight <= 0 is a no-op, as in MOA."""
    if y < 0 or y >= pool.node_class_w.shape[2]:
        return STATUS_NEEDS_ROOM
    if not (w > 0.0):
        return STATUS_OK
    node, b = _route(pool, slot, x)
    guess = -1
    if b == _AT_LEAF and int(pool.settings[slot, LEAF_PREDICTION]) == LEAF_NBA:
        scratch = np.empty(pool.node_class_w.shape[2])
        guess = _leaf_proba(pool, slot, node, x, scratch, np.empty_like(scratch))
    return _learn_at(pool, slot, node, b, x, y, w, guess)


@njit(cache=True, nogil=True)
def tree_predict_learn(pool, slot, x, y, w, out) -> int:
    """``tree_predict_proba`` then ``tree_learn`` of one record, routing and scoring naive
    Bayes once: the same results as the two calls, about half the work."""
    node, b = _route(pool, slot, x)
    guess = -1
    if b == _AT_LEAF:
        guess = _leaf_proba(pool, slot, node, x, out, np.empty(out.shape[0]))
    else:
        _normalise(pool.node_class_w[slot, node], out)
    if y < 0 or y >= pool.node_class_w.shape[2]:
        return STATUS_NEEDS_ROOM
    if not (w > 0.0):
        return STATUS_OK
    return _learn_at(pool, slot, node, b, x, y, w, guess)


@njit(cache=True, nogil=True)
def tree_reset(pool, slot):
    """Makes tree ``slot`` a fresh single leaf (settings and feature layout kept)."""
    pool.sizes[slot] = 0
    pool.node_feature[slot] = -1
    pool.node_threshold[slot] = 0.0
    pool.node_branch_start[slot] = 0
    pool.node_n_branches[slot] = 0
    pool.node_row[slot] = -1
    pool.node_class_w[slot] = 0.0
    pool.branch_child[slot] = -1
    for row in range(pool.row_learned.shape[1]):
        _clear_row(pool, slot, row)
    pool.sizes[slot, USED_ROWS] = 1
    _new_leaf(pool, slot, 0, np.zeros(pool.node_class_w.shape[2]))


@njit(cache=True, nogil=True)
def tree_predict_learn_many(pool, slot, X, y, w, proba) -> int:
    """Prequential loop: for each record i, ``proba[i]`` = prediction, then learn it. Returns 1
    if any learn asked for room (grow the pool before the next batch)."""
    status = STATUS_OK
    for i in range(X.shape[0]):
        status |= tree_predict_learn(pool, slot, X[i], y[i], w[i], proba[i])
    return status
