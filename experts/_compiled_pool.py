"""The compiled expert pool: its bookkeeping arrays, the per-slot prediction both kinds share,
and its lifecycle (grow, prune past the budget, archive, revive), the compiled counterpart of
:class:`experts.ExpertPool`.

Experts live in *slots* of the stacked MLP and tree arrays; the pool orders its experts by
*position* (``positions[:n]`` lists their slots) and keeps pruned ones in an archive (oldest
first) until they are revived or pushed out. The prequential loop runs compiled
(``pipelines.models.compiled``); the lifecycle runs in Python between its calls, because drift
is rare and each change touches several stacks. (Past 300 lines: the lifecycle's recall, copies
and revival read the same arrays as the rest; split off, they would reach into them anyway.)
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import numpy as np
from numba import njit

from detectors._compiled import AdwinStack, adwin_reset
from router._compiled import RouterState, router_add_output, router_drop_output

from ._compiled_inputs import InputState, inputs_standardise
from ._compiled_mlp import MLPStack, mlp_predict_proba, mlp_reset
from ._compiled_tree import TreePool, tree_predict_proba, tree_reset

POOL_INTS = ("n_pos", "n_archive", "n_learned", "probe_cursor", "last_growth", "n_grown",
             "n_classes", "n_recent")
N_POS, N_ARCHIVE, N_LEARNED, PROBE_CURSOR, LAST_GROWTH, N_GROWN, N_CLASSES, N_RECENT = range(8)
# PoolArrays.floats: exponentially weighted error rates, half-lives ~35 and ~700 records
ERR_FAST, ERR_SLOW = range(2)
KIND_FREE, KIND_MLP, KIND_TREE = -1, 0, 1
KINDS = {"mlp": KIND_MLP, "hoeffding-tree": KIND_TREE}
_REVIVED_PRIOR = 50.0   # outcomes' weight a recalled expert's revival score counts as


class PoolArrays(NamedTuple):
    """Per expert slot: kind, recent accuracy (decayed hits / decayed outcomes) and age; the
    pool's positions and archive as slot lists; the recent records for revival; counters."""

    kind: np.ndarray        # (slots,) int64: KIND_*
    hits: np.ndarray        # (slots,) float64
    seen: np.ndarray        # (slots,) float64
    age: np.ndarray         # (slots,) int64: outcomes recorded since joining the pool
    positions: np.ndarray   # (slots,) int64: slot at each pool position (first ints[N_POS])
    archive: np.ndarray     # (slots,) int64: archived slots, oldest first
    recent_x: np.ndarray    # (window, features) float64: the last learned records, a ring
    recent_y: np.ndarray    # (window,) int64
    ints: np.ndarray        # (8,) int64, named by POOL_INTS
    floats: np.ndarray      # (2,) float64: ERR_FAST, ERR_SLOW


def new_pool_arrays(n_slots: int, window: int, n_features: int) -> PoolArrays:
    """An empty pool: every slot free."""
    return PoolArrays(np.full(n_slots, KIND_FREE, dtype=np.int64), np.zeros(n_slots),
                      np.zeros(n_slots), np.zeros(n_slots, dtype=np.int64),
                      np.zeros(n_slots, dtype=np.int64), np.zeros(n_slots, dtype=np.int64),
                      np.full((window, n_features), np.nan), np.zeros(window, dtype=np.int64),
                      np.zeros(len(POOL_INTS), dtype=np.int64), np.zeros(2))


def grow_pool_features(pool: PoolArrays, n_features: int) -> PoolArrays:
    """The same pool with its recent records widened to ``n_features`` (new ones missing)."""
    recent = np.full((pool.recent_x.shape[0], n_features), np.nan)
    recent[:, : pool.recent_x.shape[1]] = pool.recent_x
    return pool._replace(recent_x=recent)


@njit(cache=True, nogil=True)
def accuracy(pool: PoolArrays, s: int) -> float:
    """Recent accuracy of slot ``s`` (0.5 before its first outcome)."""
    return pool.hits[s] / pool.seen[s] if pool.seen[s] > 0.0 else 0.5


@njit(cache=True, nogil=True)
def expert_proba(pool: PoolArrays, inputs: InputState, mlp: MLPStack, trees: TreePool, s: int,
                 x: np.ndarray, z: np.ndarray, hidden: np.ndarray, out: np.ndarray) -> int:
    """Slot ``s``'s class probabilities for record ``x`` (``z`` standardised) into ``out``;
    returns its top class (the first of equals), -1 when it has no opinion yet."""
    n_classes = pool.ints[N_CLASSES]
    out[:] = 0.0
    if pool.kind[s] == KIND_MLP:
        if not mlp_predict_proba(mlp, s, z, inputs.used[0], n_classes, hidden, out):
            return -1
    else:
        tree_predict_proba(trees, s, x, out)
    best = -1
    for c in range(n_classes):
        if out[c] > 0.0 and (best < 0 or out[c] > out[best]):
            best = c
    return best


@njit(cache=True, nogil=True)
def recent_accuracy(pool: PoolArrays, inputs: InputState, mlp: MLPStack, trees: TreePool,
                    s: int, z: np.ndarray, hidden: np.ndarray, out: np.ndarray) -> float:
    """Accuracy of slot ``s`` on the recent records (the revival test), inputs standardised
    with the current statistics; 0 with no recent record."""
    n = pool.ints[N_RECENT]
    if n == 0:
        return 0.0
    hits = 0
    for r in range(n):
        x = pool.recent_x[r]
        inputs_standardise(inputs, x, z, inputs.count, inputs.mean, inputs.m2)
        if expert_proba(pool, inputs, mlp, trees, s, x, z, hidden, out) == pool.recent_y[r]:
            hits += 1
    return hits / n


class PoolParts(Protocol):
    """What the lifecycle changes: a model's stacks (duck-typed)."""

    pool: PoolArrays
    inputs: InputState
    mlp: MLPStack
    trees: TreePool
    router: RouterState
    adwin: AdwinStack
    rng: np.ndarray


class PoolLifecycle:
    """Grow, prune, archive and revive over a :class:`PoolParts` (settings as ``adaptive``'s:
    ``kinds`` cycled by growth, ``max_experts`` / ``max_bytes`` budget, ``archive_size``,
    ``revival_margin``, ``min_grow_gap``; ``min_age``: records a newcomer is spared from
    pruning, as ExpertPool's; ``recall_age``: with it, each growth first archives a frozen copy
    of the pool's best expert aged at least this many records (what it knew of the concept the
    drift ended), so a concept that comes back finds it there; None: no copies)."""

    def __init__(self, kinds: tuple[int, ...], max_experts: int, max_bytes: int | None,
                 archive_size: int, revival_margin: float, min_grow_gap: int,
                 min_age: int = 200, recall_age: int | None = None) -> None:
        self.kinds = kinds
        self.max_experts = max_experts
        self.max_bytes = max_bytes
        self.archive_size = archive_size
        self.revival_margin = revival_margin
        self.min_grow_gap = min_grow_gap
        self.min_age = min_age
        self.recall_age = recall_age

    @staticmethod
    def n_slots(max_experts: int, archive_size: int) -> int:
        """Slots a pool needs: a full pool, one newcomer before pruning, a full archive."""
        return max_experts + 1 + archive_size

    def add(self, parts: PoolParts, slot: int | None = None) -> int:
        """Append an expert at the last position: the archived ``slot`` (revival) or a fresh
        one of the next kind in a free slot. Returns its slot."""
        pool = parts.pool
        if slot is None:
            slot = int(np.flatnonzero(pool.kind == KIND_FREE)[0])
            kind = self.kinds[pool.ints[N_GROWN] % len(self.kinds)]
            pool.ints[N_GROWN] += 1
            pool.kind[slot] = kind
            if kind == KIND_MLP:
                mlp_reset(parts.mlp, slot)
            else:
                tree_reset(parts.trees, slot)
        else:
            archive = list(pool.archive[: pool.ints[N_ARCHIVE]])
            archive.remove(slot)
            self._set_archive(pool, archive)
        n = pool.ints[N_POS]
        pool.positions[n] = slot
        pool.ints[N_POS] = n + 1
        pool.hits[slot] = pool.seen[slot] = 0.0
        pool.age[slot] = 0
        adwin_reset(parts.adwin, slot)
        router_add_output(parts.router, parts.rng, slot, n + 1)
        return slot

    @staticmethod
    def _set_archive(pool: PoolArrays, slots: list[int]) -> None:
        pool.archive[: len(slots)] = slots
        pool.ints[N_ARCHIVE] = len(slots)

    def grow(self, parts: PoolParts, reason: str, position: int,
             score: Callable[[int], float]) -> list[dict[str, Any]]:
        """After a drift at record ``position``: revive the archived expert that beats the
        pool on the recent records by ``revival_margin``, else add a fresh one; then prune back
        to the budget. Nothing within ``min_grow_gap`` records of the last growth.
        ``score(slot)`` is the slot's accuracy on the recent records (:func:`recent_accuracy`).
        Returns the events (grow / revive / prune)."""
        pool = parts.pool
        if position - pool.ints[LAST_GROWTH] < self.min_grow_gap:
            return []
        pool.ints[LAST_GROWTH] = position
        revived = self._revive_and_copy(parts, score)
        if revived is None:
            self.add(parts)
        kind = "grow" if revived is None else "revive"
        events = [{"position": position, "kind": kind, "reason": reason,
                   "experts": int(pool.ints[N_POS])}]
        return events + self._prune_to_budget(parts, position)

    def recall(self, parts: PoolParts, position: int,
               score: Callable[[int], float]) -> list[dict[str, Any]]:
        """On a model-level drift at ``position`` (with ``recall_age`` set, else nothing): the
        revival test on the recent records, which that detector's short delay fills with the
        new concept's, and a frozen copy of the best expert archived. Returns the events."""
        if self.recall_age is None:
            return []
        revived = self._revive_and_copy(parts, score)
        if revived is None:
            return []
        return [{"position": position, "kind": "revive", "reason": "drift",
                 "experts": int(parts.pool.ints[N_POS])}] + self._prune_to_budget(parts, position)

    def _revive_and_copy(self, parts: PoolParts, score: Callable[[int], float]) -> int | None:
        """Revive the archived expert that passes the revival test (its slot, else None), and
        archive a copy of the best mature expert when ``recall_age`` is set."""
        revived = self._best_archived(parts, score)
        source = self._recall_source(parts.pool)
        if revived is not None:   # out of the archive first, so the copy cannot push it out
            self.add(parts, revived)
            if self.recall_age is not None:
                self._trust_revived(parts, revived, score(revived))
        if source is not None:
            self._archive_copy(parts, source)
        return revived

    @staticmethod
    def _trust_revived(parts: PoolParts, slot: int, shown: float) -> None:
        """A recalled expert joins with the accuracy it just showed (worth _REVIVED_PRIOR
        outcomes) and the router output of the pool's best-tracked expert, so the mixture
        follows it at once instead of after the router has learned a fresh output."""
        pool, router = parts.pool, parts.router
        others = [int(s) for s in pool.positions[: pool.ints[N_POS]] if s != slot]
        if others:
            best = max(others, key=lambda s: accuracy(pool, s))
            router.w3[:, slot] = router.w3[:, best]
            router.b3[slot] = router.b3[best]
        pool.hits[slot] = _REVIVED_PRIOR * shown
        pool.seen[slot] = _REVIVED_PRIOR

    def _recall_source(self, pool: PoolArrays) -> int | None:
        """The slot to archive a copy of: the best-tracked expert aged ``recall_age``."""
        if self.recall_age is None or self.archive_size < 1:
            return None
        slots = [int(s) for s in pool.positions[: pool.ints[N_POS]]
                 if pool.age[s] >= self.recall_age]
        return max(slots, key=lambda s: (pool.kind[s] == KIND_TREE, accuracy(pool, s)),
                   default=None)

    def _archive_copy(self, parts: PoolParts, source: int) -> None:
        """Archive a frozen copy of slot ``source`` (newest; the oldest archived is pushed out
        past ``archive_size``)."""
        pool = parts.pool
        archive = [int(s) for s in pool.archive[: pool.ints[N_ARCHIVE]]]
        if len(archive) >= self.archive_size:
            pool.kind[archive.pop(0)] = KIND_FREE
        slot = int(np.flatnonzero(pool.kind == KIND_FREE)[0])
        stack = parts.mlp if pool.kind[source] == KIND_MLP else parts.trees
        for array in stack:
            array[slot] = array[source]
        pool.kind[slot] = pool.kind[source]
        self._set_archive(pool, archive + [slot])

    def _best_archived(self, parts: PoolParts, score: Callable[[int], float]) -> int | None:
        pool = parts.pool
        if not pool.ints[N_ARCHIVE] or not pool.ints[N_RECENT]:
            return None

        archived = [int(s) for s in pool.archive[: pool.ints[N_ARCHIVE]]]
        scores = [score(s) for s in archived]
        best = int(np.argmax(scores))
        # the pool scored best-tracked first: the usual "no" costs one or two experts
        slots = pool.positions[: pool.ints[N_POS]]
        tracked = np.array([accuracy(pool, s) for s in slots])
        for p in np.argsort(-tracked, kind="stable"):
            if score(int(slots[p])) + self.revival_margin >= scores[best]:
                return None
        return archived[best]

    def memory_bytes(self, parts: PoolParts, slot: int) -> int:
        """Bytes of slot ``slot``'s learned state (weights and moments, or tree nodes and leaf
        statistics in use)."""
        if parts.pool.kind[slot] == KIND_MLP:
            hidden, classes = parts.mlp.w2.shape[1], parts.pool.ints[N_CLASSES]
            return 3 * 8 * (int(parts.inputs.used[0]) * hidden + hidden + hidden * classes
                            + classes)
        trees, used = parts.trees, parts.trees.sizes[slot]
        per_node = sum(a[slot].nbytes // a.shape[1] for a in (
            trees.node_feature, trees.node_threshold, trees.node_class_w, trees.node_row))
        per_row = sum(a[slot].nbytes // a.shape[1] for a in (
            trees.gauss_w, trees.gauss_mean, trees.gauss_m2, trees.gauss_min, trees.gauss_max,
            trees.nom_count, trees.nom_sum, trees.nom_len))
        return int(used[0]) * per_node + int(used[1]) * per_row

    def _over_budget(self, parts: PoolParts) -> bool:
        slots = parts.pool.positions[: parts.pool.ints[N_POS]]
        if len(slots) > self.max_experts:
            return True
        return self.max_bytes is not None and sum(
            self.memory_bytes(parts, int(s)) for s in slots) > self.max_bytes

    def _weakest(self, pool: PoolArrays) -> int:
        """Position of the lowest recent accuracy among experts aged ``min_age``; the oldest
        when none is."""
        slots = pool.positions[: pool.ints[N_POS]]
        ages = pool.age[slots]
        mature = np.flatnonzero(ages >= self.min_age)
        if not len(mature):
            return int(np.argmax(ages))
        acc = np.array([accuracy(pool, int(s)) for s in slots])
        return int(mature[np.argmin(acc[mature])])

    def _prune_to_budget(self, parts: PoolParts, position: int) -> list[dict[str, Any]]:
        pool = parts.pool
        events = []
        while pool.ints[N_POS] > 1 and self._over_budget(parts):
            p = self._weakest(pool)
            slots = list(pool.positions[: pool.ints[N_POS]])
            slot = int(slots.pop(p))
            pool.positions[: len(slots)] = slots
            pool.ints[N_POS] = len(slots)
            router_drop_output(parts.router, slot)
            archive = [int(s) for s in pool.archive[: pool.ints[N_ARCHIVE]]] + [slot]
            if len(archive) > self.archive_size:
                pool.kind[archive.pop(0)] = KIND_FREE   # pushed out of the archive: gone
            self._set_archive(pool, archive)
            events.append({"position": position, "kind": "prune", "expert": p,
                           "experts": len(slots)})
        return events
