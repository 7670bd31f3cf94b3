"""Compiled Hoeffding tree kernels (numba): MOA's HoeffdingTree over flat numpy arrays.

K trees live stacked in one ``TreePool`` (axis 0 of every array is the tree's slot), so a model
loop compiled with numba can predict and learn any of them without entering Python. What MOA does
and we do alike (moa.classifiers.trees.HoeffdingTree, MOA 2024.07); the layout is in
:mod:`experts._compiled_tree_layout`, split evaluation in :mod:`experts._compiled_tree_split`:

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
zero on many features), a feature no class has been seen with at a leaf is left out of its
naive Bayes (MOA zeroes every class), an all-zero naive Bayes falls back to the class counts, a leaf is never
deactivated (MOA deactivates it when only the null split is on offer, which a stream whose
features appear later would regret) and a split whose best merit is -inf is not made. The size
cap is ``max_nodes`` (MOA's is bytes): a full tree keeps learning its leaves and stops splitting.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._compiled_tree_layout import (
    _AT_LEAF,
    _HUGE,
    _MISSING,
    _TINY,
    GRACE,
    LEAF_MC,
    LEAF_NB,
    LEAF_NBA,
    LEAF_PREDICTION,
    MAX_NODES,
    NB_THRESHOLD,
    STATUS_NEEDS_ROOM,
    STATUS_OK,
    USED_BRANCHES,
    USED_NODES,
    USED_ROWS,
    TreePool,
    _gauss_density,
    _value_index,
)
from ._compiled_tree_split import _attempt_split, _clear_row, _grow_branch, _new_leaf

__all__ = ["TreePool", "tree_learn", "tree_predict_learn", "tree_predict_learn_many",
           "tree_predict_node", "tree_predict_proba", "tree_reset"]


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
def first_max(a) -> int:
    """Index of the first largest value, -1 when all are <= 0 (nothing seen)."""
    best = -1
    for i in range(a.shape[0]):
        if a[i] > 0.0 and (best < 0 or a[i] > a[best]):
            best = i
    return best


@njit(cache=True, nogil=True)
def _rescale(votes):
    """Keeps a running naive-Bayes product inside float64's range (ratios unchanged)."""
    top = votes.max()
    if 0.0 < top < _TINY or top > _HUGE:
        votes /= top


@njit(cache=True, nogil=True)
def _leaf_proba(pool, slot, node, x, out, votes) -> int:
    """Leaf prediction into ``out``; returns naive Bayes's guess (its class of highest vote,
    the majority class when naive Bayes has none), which ``_learn_at`` scores for NBA leaves.
    ``votes`` is scratch of C floats. Naive Bayes is MOA's doNaiveBayesPrediction, normalised.
    One function on purpose: every compiled call taking the pool costs ~0.4 us (numba counts
    references to its 24 arrays), more than the work here."""
    counts = pool.node_class_w[slot, node]
    mode = int(pool.settings[slot, LEAF_PREDICTION])
    row = pool.node_row[slot, node]
    total = counts.sum()
    if mode == LEAF_MC or total <= 0.0:
        _normalise(counts, out)
        return -1 if mode == LEAF_MC else first_max(counts)
    n_classes = out.shape[0]
    for c in range(n_classes):
        votes[c] = counts[c] / total
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
                    if votes[c] > 0.0:
                        votes[c] *= _gauss_density(w[c, j], mean[c, j], m2[c, j], v)
            else:
                k = _value_index(v)
                if k < 0 or pool.nom_sum[slot, row, :, j].sum() <= 0.0:
                    continue
                at = pool.value_offset[slot, f] + k
                in_range = k < pool.nominal_values[slot, f]
                for c in range(n_classes):
                    if votes[c] > 0.0:
                        hits = pool.nom_count[slot, row, c, at] if in_range else 0.0
                        n_c = pool.nom_sum[slot, row, c, j]
                        votes[c] *= (hits + 1.0) / (n_c + pool.nom_len[slot, row, c, j]) \
                            if n_c > 0.0 else 0.0
            _rescale(votes)
    nb_total = votes.sum()
    nb_ok = nb_total > 0.0
    if nb_ok:
        votes /= nb_total
    use_nb = nb_ok and (
        (mode == LEAF_NB and total >= pool.settings[slot, NB_THRESHOLD])
        or (mode == LEAF_NBA and pool.row_mc_correct[slot, row] <= pool.row_nb_correct[slot, row]))
    if use_nb:
        out[:] = votes
    else:
        _normalise(counts, out)
    return first_max(votes) if nb_ok else first_max(counts)


@njit(cache=True, nogil=True)
def tree_predict_proba(pool, slot, x, out):
    """Class probabilities of record ``x`` (f8[F], NaN missing) into ``out`` (f8[C]); all zero
    before anything is learned."""
    tree_predict_node(pool, slot, x, out)


@njit(cache=True, nogil=True)
def tree_predict_node(pool, slot, x, out) -> int:
    """`tree_predict_proba`, returning the node the record reached: its leaf, or the split
    where a missing value or a branch not grown yet stopped it (the sentinel's cell)."""
    node, b = _route(pool, slot, x)
    if b == _AT_LEAF:
        _leaf_proba(pool, slot, node, x, out, np.empty(out.shape[0]))
    else:
        _normalise(pool.node_class_w[slot, node], out)
    return node


@njit(cache=True, nogil=True)
def _needs_room(used, max_nodes, node_capacity, row_capacity, branch_capacity) -> bool:
    """More than half of the node, row or branch arrays in use (``used``: a slot's sizes row)
    while the tree may still grow: Python should grow the pool (doubling) before the next
    batch, so a batch never runs out. Takes no pool: see ``_leaf_proba``."""
    if used[USED_NODES] >= max_nodes:
        return False
    return (2 * used[USED_NODES] > node_capacity and node_capacity < max_nodes) or (
        2 * used[USED_ROWS] > row_capacity and row_capacity < max_nodes) or (
        2 * used[USED_BRANCHES] > branch_capacity)


@njit(cache=True, nogil=True)
def _learn_at(pool, slot, node, b, x, y, w, nb_guess) -> int:
    """Learns a record that routed to (node, b) (see ``tree_learn``): NBA scores (``nb_guess``:
    naive Bayes's class before this record), class weights, observers, then a split attempt
    once ``grace_period`` more weight has been seen. One function: see ``_leaf_proba``."""
    if b == _MISSING:
        return STATUS_OK
    if b >= 0:
        node = _grow_branch(pool, slot, node, b)
    if node >= 0:
        row = pool.node_row[slot, node]
        counts = pool.node_class_w[slot, node]
        if int(pool.settings[slot, LEAF_PREDICTION]) == LEAF_NBA:
            if first_max(counts) == y:
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
    status = STATUS_OK
    if node >= 0:
        seen = counts.sum()
        if seen - pool.row_seen_at_eval[slot, row] >= pool.settings[slot, GRACE]:
            status = _attempt_split(pool, slot, node)
            if pool.node_feature[slot, node] < 0:   # still a leaf (a split sets its children's)
                pool.row_seen_at_eval[slot, row] = seen
    if _needs_room(pool.sizes[slot], pool.settings[slot, MAX_NODES], pool.node_feature.shape[1],
                   pool.row_learned.shape[1], pool.branch_child.shape[1]):
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
