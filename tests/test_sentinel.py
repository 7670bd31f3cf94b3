"""The sentinel (issue 17, item 1): a frozen tree's errors tested leaf by leaf find a local
concept change that the live ensemble's error hides, stay quiet while the concept holds, and
name the region of the inputs that changed."""
from __future__ import annotations

import numpy as np

from detectors._compiled_sentinel import SCALES, new_sentinel, sentinel_update
from experts._compiled_tree import grow_tree_pool, new_tree_pool, tree_learn
from experts._compiled_tree_kernels import _route, first_max, tree_predict_proba
from experts._encoding import RecordEncoder
from pipelines.models.compiled.sentinel import region


def _sea(rng: np.random.Generator, n: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """SEA's records: label 1 when x0 + x1 <= threshold, 10 % of labels flipped."""
    x = rng.uniform(0.0, 10.0, (n, 3))
    y = (x[:, 0] + x[:, 1] <= threshold).astype(np.int64)
    return x, np.where(rng.random(n) < 0.1, 1 - y, y)


def _trained_tree(rng: np.random.Generator):
    tree = new_tree_pool(1, 3, 2, grace_period=50, max_nodes=1000)
    x, y = _sea(rng, 20_000, 8.0)
    for row, label in zip(x, y):
        if tree_learn(tree, 0, row, int(label), 1.0):
            tree = grow_tree_pool(tree)
    return tree


def _first_flag(tree, x: np.ndarray, y: np.ndarray) -> tuple[int | None, object]:
    state = new_sentinel(tree.node_feature.shape[1], taken=True)
    for t, (row, label) in enumerate(zip(x, y)):
        if sentinel_update(state, tree, row, int(label)):
            return t, state
    return None, state


def test_quiet_while_the_concept_holds() -> None:
    """100,000 records of the concept the copy learned: no flag (the target is under 1 false
    alarm per 50,000 records; each test is at p = 1e-7)."""
    rng = np.random.default_rng(5)
    tree = _trained_tree(rng)
    flag, state = _first_flag(tree, *_sea(rng, 100_000, 8.0))
    assert flag is None
    assert state.counts[0, -1, 0] > 90_000   # every record reached the whole-tree cell


def test_a_local_change_is_flagged_within_1000_records() -> None:
    """SEA's threshold 8 -> 10 flips the labels of ~18 % of the records, a band of the inputs:
    flagged within 1,000 records of the change, the copy's error risen in the evidence (the
    bench's harder drifts: bench/DETECTORS.md)."""
    rng = np.random.default_rng(6)
    tree = _trained_tree(rng)
    before = _sea(rng, 10_000, 8.0)
    after = _sea(rng, 5_000, 10.0)
    x, y = np.concatenate([before[0], after[0]]), np.concatenate([before[1], after[1]])
    flag, state = _first_flag(tree, x, y)
    assert flag is not None and 10_000 <= flag < 11_000, flag
    error_before, error_after = state.evidence[0], state.evidence[1]
    assert error_after > error_before + 0.05


def _encoder() -> RecordEncoder:
    """An encoder that has met the records' three numeric features, a, b and c."""
    encoder = RecordEncoder()
    encoder.encode({"a": 1.0, "b": 2.0, "c": 3.0}, learn=True)
    return encoder


def test_a_leaf_region_is_the_path_its_records_take() -> None:
    """``region`` (a flagged leaf's conditions in the event): every condition on the path holds
    for each record the tree routes to that leaf, and the leaves of a tree on SEA split on the
    two features the label depends on."""
    rng = np.random.default_rng(7)
    tree = _trained_tree(rng)
    x, _ = _sea(rng, 200, 8.0)
    named, encoder = set(), _encoder()
    for row in x:
        leaf, _ = _route(tree, 0, row)
        path = region(tree, int(leaf), encoder)
        assert path and all(_holds(c, row) for c in path), (path, row)
        named |= {c.split()[0] for c in path}
    assert named == {"a", "b"}


def _holds(condition: str, row: np.ndarray) -> bool:
    name, op, value = condition.split()
    v, t = row["abc".index(name)], float(value)
    return v <= t + 1e-3 if op == "<=" else v > t - 1e-3


def test_nothing_is_tested_before_a_copy_is_taken() -> None:
    state = new_sentinel(1)
    tree = new_tree_pool(1, 0, 2, max_nodes=1)
    assert not any(sentinel_update(state, tree, np.zeros(0), 1) for _ in range(10_000))
    assert state.counts.sum() == 0.0


def test_window_and_reference_counts_are_exact() -> None:
    """At every scale, the whole tree's window holds the last W records and the reference every
    record before them since the copy, errors counted as the copy's own predictions give them
    (the ring once held W records, and the longest window never moved)."""
    rng = np.random.default_rng(8)
    tree = _trained_tree(rng)
    x, y = _sea(rng, 7_000, 8.0)
    state = new_sentinel(tree.node_feature.shape[1], taken=True)
    errors = []
    out = np.zeros(2)
    for row, label in zip(x, y):
        tree_predict_proba(tree, 0, row, out)
        errors.append(int(first_max(out) != label))
        sentinel_update(state, tree, row, int(label))
    errors = np.array(errors)
    for s, w in enumerate(SCALES):
        expected = [len(x) - w, errors[:-w].sum(), w, errors[-w:].sum()]
        assert state.counts[s, -1].tolist() == expected, (w, state.counts[s, -1])
        leaves = state.counts[s, :-1]
        assert leaves[:, 0].sum() == len(x) - w and leaves[:, 3].sum() == errors[-w:].sum()
