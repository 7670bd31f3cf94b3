"""The host side of ``adaptive``'s sentinel (:mod:`detectors._compiled_sentinel`): taking the
frozen copy of the pool's best tree, and turning a sentinel flag into a ``drift`` event that
says which region of the inputs changed (the flagged leaf's path)."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from detectors._compiled_sentinel import (
    _CELL,
    _SCALE,
    EVIDENCE,
    SCALES,
    SETTLE,
    SentinelState,
    new_sentinel,
)
from experts._compiled_pool import KIND_TREE, N_LEARNED, N_POS, accuracy
from experts._compiled_tree import TreePool, new_tree_pool, tree_slot_copy
from experts._encoding import RecordEncoder


def empty_tree() -> TreePool:
    """The one-slot tree held while no copy is (nothing learned; never consulted)."""
    return new_tree_pool(1, 0, 2, max_nodes=1)


def take_copy(model: Any, score: Callable[[int], float]) -> tuple[SentinelState, TreePool]:
    """A frozen copy of ``model``'s most accurate tree expert (slot 0 of a one-slot pool) and a
    fresh detector for it; with no tree in the pool, none, and the next try SETTLE records on.
    Most accurate by ``score(slot)``, its accuracy on the recent records (the revival test's):
    the pool's tracked accuracy of an expert outside the top-k is only updated when it is
    probed, so after a change it can still be its accuracy on the old concept (measured: a copy
    chosen by it erred 51 % on LED, where the pool's best err 26 %)."""
    pool = model.pool
    slots = [int(s) for s in pool.positions[: pool.ints[N_POS]] if pool.kind[s] == KIND_TREE]
    if not slots:
        return new_sentinel(1, int(pool.ints[N_LEARNED]) + SETTLE), empty_tree()
    best = max(slots, key=lambda s: (score(s), accuracy(pool, s)))
    copy = tree_slot_copy(model.trees, best)
    return new_sentinel(copy.node_feature.shape[1], taken=True), copy


def region(tree: TreePool, node: int, encoder: RecordEncoder) -> list[str]:
    """The conditions on the path from the root to ``node`` of the copy, e.g. ``["x1 > 4.2",
    "colour = red"]``: the inputs where its error rose."""
    parent: dict[int, tuple[int, int]] = {}
    stack = [0]
    while stack and node not in parent and node != 0:
        at = stack.pop()
        start, n = tree.node_branch_start[0, at], tree.node_n_branches[0, at]
        for b in range(n if tree.node_feature[0, at] >= 0 else 0):
            child = int(tree.branch_child[0, start + b])
            if child >= 0:
                parent[child] = (at, b)
                stack.append(child)
    names = {v: k for k, v in encoder._position.items()}
    conditions = []
    while node in parent:
        node, b = parent[node]
        conditions.append(_condition(tree, node, b, names, encoder))
    return conditions[::-1]


def _condition(tree: TreePool, node: int, b: int, names: dict[int, Any],
               encoder: RecordEncoder) -> str:
    f = int(tree.node_feature[0, node])
    threshold = float(tree.node_threshold[0, node])
    name = names.get(f, f)
    values = encoder._values[f] if f < len(encoder._values) else None
    if values is None:
        return f"{name} {'<=' if b == 0 else '>'} {threshold:.4g}"
    value_of = {i: v for v, i in values.items()}
    if math.isnan(threshold):
        return f"{name} = {value_of.get(b, b)}"
    value = value_of.get(int(threshold), int(threshold))
    return f"{name} {'=' if b == 0 else '!='} {value}"


def sentinel_event(model: Any) -> dict[str, Any]:
    """The sentinel's flag as a ``drift`` event's fields: its error rates in the reference and
    the window, the G statistic, the cell's reference and window records, the window length
    (``scale``), and where (``region``: [] for the whole tree, else the flagged leaf's path)."""
    st: SentinelState = model.sentinel
    ev = dict(zip(EVIDENCE, st.evidence.tolist()))
    cell = int(st.ints[_CELL])
    whole = cell == st.counts.shape[1] - 1
    return {"detector": "sentinel",
            "error_before": round(ev["error_before"], 4), "error_after": round(ev["error_after"], 4),
            "g_error": round(ev["g_error"], 4), "reference": int(ev["reference"]),
            "window": int(ev["window"]), "scale": SCALES[int(st.ints[_SCALE])],
            "region": [] if whole else region(model.sentinel_tree, cell, model._encoder)}
