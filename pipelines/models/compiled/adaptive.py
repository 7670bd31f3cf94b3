"""``adaptive``, driftflow's default model, on the compiled core: MoE-Data plus drift handling.

Detectors on the overall error stream (R-BOCPD), on each expert's error stream (ADWIN) and on
the label stream (multinomial R-BOCPD); on drift the pool grows a fresh expert (or revives an
archived one that fits the recent records better), the weakest expert is pruned past the pool's
size or memory budget, and the prediction is a top-k mixture weighted by router weight times
each expert's recent accuracy. The pool mixes online MLPs with MOA-style Hoeffding trees: an MLP
follows incremental drift (RBF's moving centroids) that a tree, which never forgets a split,
cannot.

The whole prequential step runs in compiled code over arrays (:mod:`.kernel`); this class
encodes records, grows arrays when a record needs room, runs the pool's lifecycle on drift, and
keeps River's API (it runs past 200 lines, the module past 300: a third of it is its twenty
settings and their documentation, River-style, and the drift events' plumbing). ``learn_predict_many`` is the batch path; ``predict_proba_one`` /
``learn_one`` run the same kernel on one record, so both give the same predictions.
"""
from __future__ import annotations

import math
from typing import Any, Hashable

import numba
import numpy as np

from detectors._compiled import grow_rbocpd, new_adwin_stack, new_rbocpd
from detectors._compiled_sentinel import new_sentinel
from detectors._compiled_shift import EVIDENCE, grow_shift, new_shift
from experts._compiled_inputs import grow_inputs, new_inputs
from experts._compiled_mlp import grow_mlp_stack, new_mlp_stack
from experts._compiled_pool import (
    KINDS,
    LAST_GROWTH,
    N_CLASSES,
    N_LEARNED,
    N_POS,
    PoolLifecycle,
    grow_pool_features,
    new_pool_arrays,
)
from experts._compiled_rng import new_rng
from experts._compiled_tree import (
    doubled_capacity,
    ensure_tree_capacity,
    grow_tree_pool,
    new_tree_pool,
)
from experts._encoding import RecordEncoder
from pipelines.models.base import AdaptiveModel, Features
from pipelines.models.compiled import kernel, parallel_compile, sentinel
from pipelines.models.compiled.batch import encode_batch
from pipelines.models.compiled.state import (
    N_SETTINGS,
    KernelState,
    make_kernel_state,
    new_scratch,
)
from pipelines.models.compiled.store import ArraySnapshots
from router._compiled import grow_router, new_router, router_drop_output

_INITIAL_INPUTS = 8    # input slots before the first growth (doubled as records need)
_INITIAL_CLASSES = 2   # class capacity before the first growth (doubled)
_HIDDEN = 32           # MLP experts' hidden units (as experts.MLPExpert)
_MLP_LR = 5e-3         # MLP experts' Adam learning rate (as experts.MLPExpert)
_DROPOUT = 0.2         # router dropout in training steps (as router.DriftMoERouter)
_ADWIN_DELTA = 0.002   # River's ADWIN default, per expert error stream
_RBOCPD_DELTA = 0.01   # detectors.RBOCPD's default false-alarm bound
_HALF_LIFE = 500.0     # records: half-life of an expert's recent accuracy (ExpertPool's)


class Adaptive(ArraySnapshots, AdaptiveModel):
    """driftflow's model: DriftMoE with drift detection, growth, pruning and revival.

    Settings (records are counts of learned records):

    - ``initial_experts`` / ``max_experts``: pool size at start and its cap; ``max_bytes`` the
      pool's memory budget (bytes). Past either, the weakest expert is archived.
    - ``expert_kinds``: ``"mlp"`` / ``"hoeffding-tree"``, cycled through as the pool grows.
    - ``top_k``: experts mixed for a prediction and trained per record (with those warming up).
    - ``probes``: experts asked per record beyond the top-k and those warming up, in rotation,
      so every expert's recent accuracy and router output stay current.
    - ``warmup``: a new expert learns every record for this many records, so the router cannot
      starve it before it has learned anything (the paper's starvation problem).
    - ``bagging_lambda``: each training expert sees the record with a Poisson(lambda) weight
      (online bagging, as Leveraging Bagging and ARF); 0 = off.
    - ``grace_period`` / ``delta`` / ``tree_max_nodes``: the trees' split settings and size cap
      (a full tree keeps learning its leaves and stops splitting).
    - ``router_hidden`` / ``router_batch_size`` / ``router_lr`` / ``temperature``: the router.
    - ``min_grow_gap``: records between two growths, so one drift grows one expert.
    - ``archive_size``: pruned experts kept for revival; ``revival_window``: recent records an
      archived expert is scored on; it is revived instead of a fresh expert when its accuracy
      there beats the pool's best by ``revival_margin``.
    - ``recall_age``: each growth also archives a frozen copy of the pool's best expert aged at
      least this many records, what it knew of the concept the drift ended, so a concept that
      returns (SEA's last is its first) can be revived rather than relearned; None: no copies.
    - ``input_adaptation``: an input drift (:meth:`input_drift`, the host's monitor) on a
      feature the pool relies on starts a fresh expert before labels confirm a change.
    """

    name = "adaptive"
    _multiclass = True

    def __init__(self, initial_experts: int = 3, max_experts: int = 8,
                 max_bytes: int = 64 * 2**20,
                 expert_kinds: tuple[str, ...] = ("mlp", "hoeffding-tree"),
                 top_k: int = 3, probes: int = 1, warmup: int = 500, bagging_lambda: float = 6.0,
                 grace_period: int = 50, delta: float = 1e-7, tree_max_nodes: int = 1000,
                 router_hidden: tuple[int, int] = (64, 32), router_batch_size: int = 32,
                 router_lr: float = 2e-3, temperature: float = 0.8, min_grow_gap: int = 300,
                 archive_size: int = 4, revival_window: int = 200, revival_margin: float = 0.02,
                 recall_age: int | None = None, input_adaptation: bool = False,
                 seed: int = 0) -> None:
        super().__init__(seed)
        self.initial_experts = initial_experts
        self.max_experts = max_experts
        self.max_bytes = max_bytes
        self.expert_kinds = tuple(expert_kinds)
        self.top_k = top_k
        self.probes = probes
        self.warmup = warmup
        self.bagging_lambda = bagging_lambda
        self.grace_period = grace_period
        self.delta = delta
        self.tree_max_nodes = tree_max_nodes
        self.router_hidden = tuple(router_hidden)
        self.router_batch_size = router_batch_size
        self.router_lr = router_lr
        self.temperature = temperature
        self.min_grow_gap = min_grow_gap
        self.archive_size = archive_size
        self.revival_window = revival_window
        self.revival_margin = revival_margin
        self.recall_age = recall_age
        self.input_adaptation = input_adaptation
        self._check_settings()
        self._lifecycle = PoolLifecycle(tuple(KINDS[k] for k in self.expert_kinds), max_experts,
                                        max_bytes, archive_size, revival_margin, min_grow_gap,
                                        recall_age=recall_age)
        self._cfg = self._settings_array()
        self._encoder = RecordEncoder()
        n_slots = PoolLifecycle.n_slots(max_experts, archive_size)
        self.rng = new_rng(seed)
        self.pool = new_pool_arrays(n_slots, revival_window, 0)
        self.pool.ints[N_CLASSES] = 0
        self.inputs = new_inputs(0, 1, _INITIAL_INPUTS)
        self.mlp = new_mlp_stack(n_slots, _INITIAL_INPUTS, _HIDDEN, _INITIAL_CLASSES)
        self.trees = new_tree_pool(n_slots, 0, _INITIAL_CLASSES, grace_period=grace_period,
                                   delta=delta, max_nodes=tree_max_nodes)
        self.router = new_router(_INITIAL_INPUTS, self.router_hidden, n_slots,
                                 router_batch_size, self.rng)
        self.err_det = new_rbocpd(2)
        self.label_det = new_rbocpd(_INITIAL_CLASSES)
        self.adwin = new_adwin_stack(n_slots)
        self.event_det = new_shift(_INITIAL_CLASSES)
        self.sentinel, self.sentinel_tree = new_sentinel(1), sentinel.empty_tree()
        self._scratch = self._new_scratch()
        self._state: KernelState | None = None
        self.pool.ints[LAST_GROWTH] = -min_grow_gap   # the first drift may grow at once
        parallel_compile.start_helper(self)   # a cold first run: the loop's kernels meanwhile
        for _ in range(initial_experts):
            self._lifecycle.add(self)
        self._compile_lifecycle()

    def _compile_lifecycle(self) -> None:
        """Compile (or load from numba's cache) the two kernels the pool's lifecycle first
        calls only at a later drift (the revival test, dropping a router output), now: a first
        run would otherwise stall for seconds in mid-stream and step its memory there (seen at
        a prune 210,000 records in, bench/SOAK.md)."""
        slot = numba.typeof(0)
        kernel.recent_accuracy.compile((numba.typeof(self._kernel_state()), slot))
        router_drop_output.compile((numba.typeof(self.router), slot))

    def _check_settings(self) -> None:
        for kind in self.expert_kinds:
            if kind not in KINDS:
                raise ValueError(f"unknown expert kind {kind!r}; choose from {sorted(KINDS)}")
        if not self.expert_kinds or not 1 <= self.initial_experts <= self.max_experts:
            raise ValueError("need expert kinds and 1 <= initial_experts <= max_experts")
        if self.top_k < 1 or self.probes < 0 or self.warmup < 0 or self.bagging_lambda < 0:
            raise ValueError("need top_k >= 1, probes >= 0, warmup >= 0, bagging_lambda >= 0")
        if len(self.router_hidden) != 2 or min(self.router_hidden) < 1:
            raise ValueError("router_hidden must be two layer sizes >= 1")
        if self.router_batch_size < 1 or self.temperature <= 0 or self.revival_window < 1:
            raise ValueError("need router_batch_size >= 1, temperature > 0, revival_window >= 1")

    def _settings_array(self) -> np.ndarray:
        cfg = np.zeros(N_SETTINGS)
        cfg[:N_SETTINGS] = (self.top_k, self.probes, self.warmup, self.bagging_lambda, _MLP_LR,
                            self.router_lr, self.temperature, _DROPOUT, _ADWIN_DELTA,
                            math.log(_RBOCPD_DELTA), 0.5 ** (1.0 / _HALF_LIFE))
        return cfg

    def _new_scratch(self):
        return new_scratch(self.router_batch_size, self.inputs.count.shape[0],
                           self.pool.kind.shape[0], *self.router_hidden,
                           self.mlp.w2.shape[2], _HIDDEN)

    def __getstate__(self) -> dict[str, Any]:
        # plain pickling (PyFlink keeps models in keyed state that way): arrays, not the
        # compiled view over them, which is rebuilt on the next call
        return {**self.__dict__, "_state": None}

    # -- River face ----------------------------------------------------------------------------
    @property
    def n_experts(self) -> int:
        return int(self.pool.ints[N_POS])

    @property
    def n_learned(self) -> int:
        return int(self.pool.ints[N_LEARNED])

    def predict_proba_one(self, x: Features) -> dict[Hashable, float]:
        row = self._encoder.encode(x)[None, :]
        preds, _ = self._run(row, np.zeros(1, np.int64), np.ones(1), learn=False)
        if preds[0] < 0:
            return {}
        mixture = self._scratch.mixture
        return {label: float(mixture[c]) for c, label in enumerate(self._encoder.labels)}

    def learn_one(self, x: Features, y: Hashable, w: float = 1.0) -> None:
        """Learn one record with sample weight ``w`` (scales every expert's update)."""
        row = self._encoder.encode(x, learn=True)[None, :]
        label = np.array([self._encoder.encode_label(y, learn=True)], np.int64)
        self._run(row, label, np.array([float(w)]), learn=True)

    def learn_predict_many(self, X: list[Features], y: list[Hashable],
                           w: list[float] | np.ndarray | None = None) -> list[Hashable | None]:
        """Test-then-train over a batch: predict record i, learn it, then record i + 1; the
        predictions, as ``predict_one`` then ``learn_one`` per record would give them."""
        return self.learn_predict_scored(X, y, w)[0]

    def learn_predict_scored(self, X: list[Features], y: list[Hashable],
                             w: list[float] | np.ndarray | None = None
                             ) -> tuple[list[Hashable | None], np.ndarray]:
        """``learn_predict_many`` plus each prediction's probability (0 with none)."""
        batch = encode_batch(self._encoder, X, y, w)
        preds, conf = self._run(batch.X, batch.y, batch.w, learn=True)
        names = self._encoder.labels
        return [names[p] if p >= 0 else None for p in preds.tolist()], conf

    # -- the loop and what it asks of Python -----------------------------------------------------
    def _run(self, X: np.ndarray, Y: np.ndarray, W: np.ndarray, learn: bool
             ) -> tuple[np.ndarray, np.ndarray]:
        preds = np.full(len(X), -1, dtype=np.int64)
        conf = np.zeros(len(X))
        i = 0
        while i < len(X):
            status, i, reason = kernel.run(self._kernel_state(), X, Y, W, i, len(X), learn,
                                           preds, conf)
            if status == kernel.NEEDS_ROOM:
                self._make_room(X[i], int(Y[i]))
            elif status == kernel.TREE_ROOM or reason & kernel.TREE_FLAG:
                self.trees = grow_tree_pool(self.trees)
                self._state = None
            if status == kernel.DRIFT and reason & (kernel.EVENT_FLAG | kernel.SENTINEL_FLAG):
                self._model_event(reason)
            if status == kernel.DRIFT and reason & kernel.COPY_FLAG:
                self._take_sentinel()
            if status == kernel.DRIFT and reason & 7:
                self._on_drift(kernel.REASONS[reason & 7])
        return preds, conf

    def _kernel_state(self) -> KernelState:
        """The compiled view over the current arrays (rebuilt after any was replaced)."""
        if self._state is None:
            self._state = make_kernel_state(*(getattr(self, name) for name in (
                "_cfg", "inputs", "mlp", "trees", "router", "err_det", "label_det", "adwin",
                "event_det", "sentinel", "sentinel_tree", "pool", "rng", "_scratch")))
        return self._state

    def _model_event(self, reason: int) -> None:
        """The operator's ``drift`` event: the flag of the model-level detector (``reason``'s
        EVENT_FLAG) or of the sentinel, and its evidence (error rates before and after, the G
        statistics, the windows; the sentinel's also the region of the inputs)."""
        if reason & kernel.EVENT_FLAG:
            evidence = dict(zip(EVIDENCE, self.event_det.evidence.tolist()))
            for name in ("reference", "window"):
                evidence[name] = int(evidence[name])
            for name in ("error_before", "error_after", "g_error", "g_labels",
                         "label_threshold"):
                evidence[name] = round(evidence[name], 4)
            evidence["detector"] = "window-shift"
        else:
            evidence = sentinel.sentinel_event(self)
        position = self.n_learned - 1
        self._pending_events.append({"position": position, "kind": "drift", **evidence})
        state = self._kernel_state()
        self._pending_events.extend(self._lifecycle.recall(
            self, position, lambda slot: kernel.recent_accuracy(state, slot)))

    def _take_sentinel(self) -> None:
        """The sentinel's frozen copy of the best tree, now (the kernel said it is due)."""
        state = self._kernel_state()
        self.sentinel, self.sentinel_tree = sentinel.take_copy(
            self, lambda slot: kernel.recent_accuracy(state, slot))
        self._state = None

    def input_drift(self, features: list[str]) -> None:
        """The host's input-drift monitor saw ``features`` move. With ``input_adaptation``, a
        fresh expert starts at once when the pool relies on one of them (an MLP expert reads
        every feature, a tree those it splits on), before delayed labels could confirm a
        change; it learns as they arrive. Off by default (bench/DETECTORS.md measures it)."""
        if self.input_adaptation and self._relies_on(features):
            self._on_drift("input", self.n_learned, features=list(features))

    def _relies_on(self, features: list[str]) -> bool:
        known = self._encoder._position   # feature name -> column, the encoder's own map
        columns = {known[f] for f in features if f in known}
        slots = self.pool.positions[: self.n_experts]
        if not columns or (self.pool.kind[slots] == KINDS["mlp"]).any():
            return bool(columns)
        split = self.trees.node_feature[slots]
        return bool(columns & set(np.unique(split[split >= 0]).tolist()))

    def _on_drift(self, source: str, position: int | None = None, **fields: Any) -> None:
        """An internal detector asked the pool to adapt (an ``adapt`` event, not a drift an
        operator is alerted to): grow, revive, prune."""
        position = self.n_learned - 1 if position is None else position
        self._pending_events.append({"position": position, "kind": "adapt", "detector": source,
                                     **fields})
        state = self._kernel_state()
        self._pending_events.extend(self._lifecycle.grow(
            self, source, position, lambda slot: kernel.recent_accuracy(state, slot)))

    def _make_room(self, row: np.ndarray, y: int) -> None:
        """Grow every array record ``row`` (label ``y``) needs: features, nominal values, input
        slots, classes. Sizes follow from the record alone, so the batch and the record path
        grow alike."""
        present = np.flatnonzero(~np.isnan(row))
        n_features = max(self.pool.recent_x.shape[1], int(present[-1]) + 1 if len(present) else 0)
        nominal = self._encoder.nominal_sizes()[:n_features] > 0
        room = np.zeros(n_features, np.int64)
        room[: self.trees.nominal_values.shape[1]] = self.trees.nominal_values[0]
        need = np.where(nominal & ~np.isnan(row[:n_features]),
                        np.nan_to_num(row[:n_features]) + 1, 0).astype(np.int64)
        n_classes = max(int(self.pool.ints[N_CLASSES]), y + 1)
        capacity = doubled_capacity(n_classes, self.mlp.w2.shape[2])
        self.trees = ensure_tree_capacity(self.trees, capacity, np.where(nominal, np.maximum(
            room, need), 0))
        if n_features > self.pool.recent_x.shape[1]:
            self.pool = grow_pool_features(self.pool, n_features)
        n_values = max(self.inputs.slot_of.shape[1], int(need.max(initial=0)))
        slots = self.inputs.count.shape[0]
        missing = int(kernel.inputs_missing(grow_inputs(self.inputs, nominal, n_values, slots),
                                            row[:n_features]))
        slots = doubled_capacity(int(self.inputs.used[0]) + missing, slots)
        if (n_features, n_values, slots) != (*self.inputs.slot_of.shape,
                                             self.inputs.count.shape[0]):
            self.inputs = grow_inputs(self.inputs, nominal, n_values, slots)
            self.router = grow_router(self.router, slots)
        if (slots, capacity) != (self.mlp.w1.shape[1], self.mlp.w2.shape[2]):
            self.mlp = grow_mlp_stack(self.mlp, slots, capacity)
            self.label_det = grow_rbocpd(self.label_det, capacity)
            self.event_det = grow_shift(self.event_det, capacity)
        for c in range(int(self.pool.ints[N_CLASSES]), n_classes):
            self._pending_events.append({"position": self.n_learned, "kind": "new_class",
                                         "label": self._encoder.labels[c]})
        self.pool.ints[N_CLASSES] = n_classes
        self._scratch = self._new_scratch()
        self._state = None   # arrays replaced: the kernel's view of them is rebuilt
