"""``adaptive``, driftflow's default model: MoE-Data plus drift handling.

Detectors on the overall error stream, on each expert's error stream and on the label stream; on
drift the pool grows a fresh expert (or revives an archived one that fits the recent records
better), the weakest expert is pruned past the pool's size or memory budget, and the prediction
is a top-k mixture weighted by router weight times each expert's recent accuracy. The pool mixes
online MLPs with Hoeffding trees: an MLP follows incremental drift (RBF's moving centroids) that a
tree, which never forgets a split, cannot (+10 points on RBFf, +4 on RBFm, +0.5 to +1.5 elsewhere
at 30,000 records, against a pool of trees alone).
"""
from __future__ import annotations

from collections import deque
from typing import Any, Hashable

import numpy as np

import detectors
import experts
import router
from experts import ExpertPool
from pipelines.models.base import AdaptiveModel, Features, _argmax, correctness_mask

# Records between two of a tree's size checks (each visits every leaf: ~ms on a big tree).
TREE_MEMORY_CHECK_PERIOD = 10_000


class Adaptive(AdaptiveModel):
    """driftflow's model: DriftMoE with drift detection, growth, pruning and revival.

    Settings (records are counts of learned records):

    - ``initial_experts`` / ``max_experts``: pool size at start and its cap; ``max_bytes`` the
      pool's memory budget (bytes). Past either, the weakest expert is archived.
    - ``expert_kinds``: registry names of :mod:`experts` cycled through when the pool grows
      (default: an MLP, a tree, an MLP, ...).
    - ``top_k``: experts mixed for a prediction and trained per record (with those warming up).
    - ``probes``: experts asked per record beyond the top-k and those warming up, in rotation,
      so every expert's recent accuracy and router output stay current. Only asked experts
      predict (the hot path: a tree prediction costs up to ~200 us on LED), and the router and
      the accuracies learn from the asked ones only; ``probes >= max_experts`` asks them all
      (DriftMoE's full correctness mask).
    - ``warmup``: a new expert learns every record for this many records, so the router cannot
      starve it before it has learned anything (the paper's starvation problem).
    - ``bagging_lambda``: each training expert sees the record with a Poisson(lambda) weight
      (online bagging, for diversity between experts that train on the same records); 0 = off.
      6, as Leveraging Bagging and ARF use: against 1, at 30k records RBFf +2.8 pts, RBFm +1.9,
      LEDa +0.6, SEAa 0.0, Electricity (whole) +3.2, for ~25 % more time (fewer zero weights).
    - ``grace_period`` / ``delta``: the trees' split settings; ``tree_max_mib``: each tree's
      size cap (MiB, River's ``max_size``, checked every `TREE_MEMORY_CHECK_PERIOD` records):
      past it River deactivates the least promising leaves, so a tree stops growing between
      drifts (SEAa, 300k records: pickled model 1.0 MiB instead of 3.4, accuracy -0.05 pts).
    - ``drift_detector`` / ``expert_detector`` / ``label_detector``: :mod:`detectors` registry
      names for the overall 0/1 error stream, each expert's error stream, and the label stream.
    - ``min_grow_gap``: records between two growths, so one drift grows one expert.
    - ``archive_size``: pruned experts kept for revival; ``revival_window``: recent records an
      archived expert is scored on; it is revived instead of a fresh expert when its accuracy
      there beats the pool's best by ``revival_margin``.
    """

    name = "adaptive"

    def __init__(self, initial_experts: int = 3, max_experts: int = 8,
                 max_bytes: int = 64 * 2**20, expert_kinds: tuple[str, ...] = ("mlp", "hoeffding-tree"),
                 top_k: int = 3, probes: int = 1, warmup: int = 500, bagging_lambda: float = 6.0,
                 grace_period: int = 50, delta: float = 1e-7, tree_max_mib: float = 0.25,
                 router_hidden: tuple[int, ...] = (64, 32), router_batch_size: int = 32,
                 router_lr: float = 2e-3, temperature: float = 0.8,
                 drift_detector: str = "rbocpd", expert_detector: str = "adwin",
                 label_detector: str = "rbocpd-multinomial", min_grow_gap: int = 300,
                 archive_size: int = 4, revival_window: int = 200, revival_margin: float = 0.02,
                 seed: int = 0) -> None:
        super().__init__(seed)
        self.initial_experts = initial_experts
        self.max_experts = max_experts
        self.max_bytes = max_bytes
        self.expert_kinds = expert_kinds
        self.top_k = top_k
        self.probes = probes
        self.warmup = warmup
        self.bagging_lambda = bagging_lambda
        self.grace_period = grace_period
        self.delta = delta
        self.tree_max_mib = tree_max_mib
        self.router_hidden = router_hidden
        self.router_batch_size = router_batch_size
        self.router_lr = router_lr
        self.temperature = temperature
        self.drift_detector = drift_detector
        self.expert_detector = expert_detector
        self.label_detector = label_detector
        self.min_grow_gap = min_grow_gap
        self.archive_size = archive_size
        self.revival_window = revival_window
        self.revival_margin = revival_margin
        for name, registry in ((drift_detector, detectors.REGISTRY),
                               (expert_detector, detectors.REGISTRY),
                               (label_detector, detectors.REGISTRY)):
            if name not in registry:
                raise ValueError(f"unknown detector {name!r}; choose from {sorted(registry)}")
        for kind in expert_kinds:
            if kind not in experts.REGISTRY:
                raise ValueError(f"unknown expert kind {kind!r}; choose from {sorted(experts.REGISTRY)}")

        self._rng = np.random.default_rng(seed)
        self._error_fast = 0.0   # error rate, exponentially weighted, half-life ~35 records
        self._error_slow = 0.0   # error rate, exponentially weighted, half-life ~700 records
        self._n_grown = 0
        self._probe_cursor = 0   # position the next probe rotation starts from
        self._last_growth = -min_grow_gap
        self._pool = ExpertPool(max_experts=max_experts, max_bytes=max_bytes)
        self._expert_detectors: list[detectors.Detector] = []
        self._router = router.DriftMoERouter(
            n_experts=initial_experts, hidden=router_hidden, temperature=temperature,
            lr=router_lr, batch_size=router_batch_size, standardize=True, seed=seed)
        for _ in range(initial_experts):
            self._pool_add(self._fresh_expert())
        self._error_detector = detectors.REGISTRY[drift_detector]()
        self._label_detector = detectors.REGISTRY[label_detector]()
        self._archive: deque[experts.Expert] = deque(maxlen=archive_size)
        self._recent: deque[tuple[Features, Hashable]] = deque(maxlen=revival_window)

    @property
    def n_experts(self) -> int:
        return len(self._pool)

    # -- pool changes --------------------------------------------------------------------------
    def _fresh_expert(self) -> experts.Expert:
        kind = self.expert_kinds[self._n_grown % len(self.expert_kinds)]
        overrides = ({"grace_period": self.grace_period, "delta": self.delta,
                      "max_size": self.tree_max_mib,
                      "memory_estimate_period": TREE_MEMORY_CHECK_PERIOD}
                     if kind != "mlp" else {})
        self._n_grown += 1
        return experts.REGISTRY[kind](seed=self.seed * 1000 + self._n_grown, **overrides)

    def _pool_add(self, expert: experts.Expert) -> None:
        self._pool.add(expert)
        self._expert_detectors.append(detectors.REGISTRY[self.expert_detector]())
        if len(self._pool) > self._router.n_experts:
            self._router.add_expert()

    def _prune_to_budget(self) -> None:
        while len(self._pool) > 1 and self._pool.over_budget():
            i = self._pool.weakest()
            self._archive.append(self._pool.remove(i))
            del self._expert_detectors[i]
            self._router.remove_expert(i)
            self._emit("prune", expert=i, experts=len(self._pool))

    def _grow(self, reason: str) -> None:
        """Add an expert for the new concept: an archived one that already fits the recent
        records (a recurring concept), else a fresh one; then prune back to budget."""
        if self._n_learned - self._last_growth < self.min_grow_gap:
            return
        self._last_growth = self._n_learned
        revived = self._best_archived()
        if revived is not None:
            self._archive.remove(revived)
            self._pool_add(revived)
            self._emit("revive", reason=reason, experts=len(self._pool))
        else:
            self._pool_add(self._fresh_expert())
            self._emit("grow", reason=reason, experts=len(self._pool))
        self._prune_to_budget()

    def _best_archived(self) -> experts.Expert | None:
        if not self._archive or not self._recent:
            return None

        def accuracy(expert: experts.Expert) -> float:
            return float(np.mean([_argmax(expert.predict_proba_one(x)) == y
                                  for x, y in self._recent]))

        score, best = max(((accuracy(e), k) for k, e in enumerate(self._archive)),
                          key=lambda pair: pair[0])
        # revive when the archived best beats every pool expert by the margin; the pool is
        # scored best-tracked first, so the usual "no" costs one or two experts, not all
        tracked = self._pool.accuracies()
        for i in np.argsort(-tracked, kind="stable"):
            if accuracy(self._pool[int(i)]) + self.revival_margin >= score:
                return None
        return self._archive[best]

    # -- predict and learn ---------------------------------------------------------------------
    def _scores(self, x: Features) -> tuple[np.ndarray, list[dict[Hashable, float] | None],
                                              dict[Hashable, float]]:
        """The top-k experts by mixture score (router weight x recent accuracy), the asked
        experts' probabilities (``None`` for the others, see ``probes``) and the top-k mixture,
        computed once per record for predict and the learn that follows."""
        cached = self._cache.get(x)
        if cached is None:
            scores = self._router.weights(x) * self._pool.accuracies()
            top = np.argsort(-scores, kind="stable")[: self.top_k]
            probas = self._pool.predict_all(x, which=self._asked(top))
            cached = self._cache.put(x, (top, probas, self._mixture(scores, top, probas)))
        return cached

    def _asked(self, top: np.ndarray) -> list[int]:
        """The top-k, the experts warming up, and ``probes`` others in rotation by position."""
        asked = set(top.tolist())
        asked.update(np.flatnonzero(self._pool.ages < self.warmup).tolist())
        n = len(self._pool)
        for _ in range(min(self.probes, n - len(asked))):
            while self._probe_cursor % n in asked:
                self._probe_cursor += 1
            asked.add(self._probe_cursor % n)
            self._probe_cursor += 1
        return sorted(asked)

    def _mixture(self, scores: np.ndarray, top: np.ndarray,
                 probas: list[dict[Hashable, float] | None]) -> dict[Hashable, float]:
        mixture: dict[Hashable, float] = {}
        for i in top:
            weight = float(scores[i])
            for label, p in probas[i].items():
                mixture[label] = mixture.get(label, 0.0) + weight * p
        total = sum(mixture.values())
        return {label: p / total for label, p in mixture.items()} if total > 0 else mixture

    def predict_proba_one(self, x: Features) -> dict[Hashable, float]:
        return dict(self._scores(x)[2])

    def learn_one(self, x: Features, y: Hashable, **kwargs: Any) -> None:
        top, probas, mixture = self._scores(x)
        prediction = _argmax(mixture)
        self._pool.record_outcomes(probas, y)
        asked = np.fromiter((p is not None for p in probas), dtype=np.float64, count=len(probas))
        mask = correctness_mask(probas, y)
        self._router.learn(x, mask, observed=asked)
        self._train_experts(x, y, top)
        self._recent.append((x, y))
        self._watch(prediction != y, mask, asked, y)
        self._cache.clear()
        self._n_learned += 1

    def _train_experts(self, x: Features, y: Hashable, top: np.ndarray) -> None:
        chosen = set(top.tolist())
        chosen.update(np.flatnonzero(self._pool.ages < self.warmup).tolist())
        for i in sorted(chosen):
            w = self._rng.poisson(self.bagging_lambda) if self.bagging_lambda > 0 else 1
            if w > 0:
                self._pool[i].learn_one(x, y, w=float(w))

    def _watch(self, error: bool, mask: np.ndarray, asked: np.ndarray, y: Hashable) -> None:
        """Feed the detectors; grow on overall error drift, label shift, or a drift in the
        error stream of the expert the pool currently relies on most."""
        self._error_detector.update(float(error))
        self._error_fast += (error - self._error_fast) / 50
        self._error_slow += (error - self._error_slow) / 1000
        # Detectors fire on any change; only a rise in error means the pool lost the concept
        # (a fall is the pool learning). Label shift counts either way.
        worse = self._error_fast > self._error_slow
        self._label_detector.update(y)
        best = int(np.argmax(self._pool.accuracies()))
        expert_drift = False
        for i in np.flatnonzero(asked):
            detector = self._expert_detectors[i]
            detector.update(1.0 - mask[i])
            expert_drift |= detector.drift_detected and i == best
        for fired, source in ((self._error_detector.drift_detected and worse, "error"),
                              (self._label_detector.drift_detected, "label"),
                              (expert_drift and worse, "expert")):
            if fired:
                self._emit("drift", detector=source)
                self._grow(source)
                break

