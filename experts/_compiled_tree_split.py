"""Split evaluation and node allocation of compiled Hoeffding trees, as MOA's attemptToSplit
does it (see :mod:`experts._compiled_tree_kernels` for what is MOA's and what is ours)."""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._compiled_tree_layout import (
    DELTA,
    MAX_NODES,
    MIN_BRANCH_FRAC,
    SPLIT_POINTS,
    STATUS_NEEDS_ROOM,
    STATUS_OK,
    TAU,
    USED_BRANCHES,
    USED_NODES,
    USED_ROWS,
    _gauss_density,
)


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
