"""The DriftMoE paper's two models on the compiled core (state in arrays, array snapshots).

- ``driftmoe-data``: MoE-Data (12 MOA-like Hoeffding trees, MLP router co-trained on the
  multi-hot correctness mask, top-1 predicts, top-3 learn, no detector).
- ``driftmoe-task``: MoE-Task: the router's outputs are the classes, trained every record on
  one-hot(y), and the prediction is its softmax over classes. The paper's one-vs-rest trees are
  never consulted (neither for a prediction nor for the router's target), so they are left out:
  it behaves, and is, an online MLP classifier.

The prequential loop runs in compiled code (:mod:`.compiled.moe_kernels`): ``learn_predict_many``
/ ``learn_predict_scored`` run a whole batch in one call; Python encodes records and leaves the
loop only to grow arrays (a new feature, nominal value, input slot or class; a tree past half
its node arrays), then resumes it at that record. ``predict_proba_one`` / ``learn_one`` run the
same loop on one record, so both paths give the same predictions, probabilities and snapshots.
Batch against record path (us a record, CPU time, 20,000 records, batches of 1,000, paper
settings; bench/COMPILED.md): ``driftmoe-data`` SEAa 54 against 105 (1.9x), LEDa 118 against
177 (1.5x); ``driftmoe-task`` SEAa 1,351 against 1,423, LEDa 587 against 657 (1.05-1.1x: its
router takes an Adam step every record, which no loop saves).
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import NamedTuple

import numpy as np

from experts._compiled_inputs import grow_inputs, inputs_missing, new_inputs
from experts._compiled_rng import new_rng
from experts._compiled_tree import (
    doubled_capacity,
    ensure_tree_capacity,
    grow_tree_pool,
    new_tree_pool,
)
from experts._encoding import RecordEncoder
from pipelines.checkpoints.envelope import CheckpointError
from pipelines.models.base import AdaptiveModel, Features
from pipelines.models.compiled.batch import encode_batch
from pipelines.models.compiled.moe_kernels import (
    NEEDS_ROOM,
    TREE_ROOM,
    moe_run,
)
from pipelines.models.compiled.store import (
    ArraySnapshots,
    check_inputs_and_router,
    shaped_as,
    within,
)
from router._compiled import (
    grow_router,
    grow_router_outputs,
    new_router,
    router_add_output,
)

_INITIAL_INPUTS = 8   # router input slots before the first growth (doubled as records need)
_DROPOUT = 0.2        # router dropout in training steps (router.DriftMoERouter's default)
_NO_TREES = new_tree_pool(1, 0, 0)   # MoE-Task's: the shared loop reads none (moe_run)


class _Scratch(NamedTuple):
    """Work arrays of one record (not state), rebuilt when the arrays grow."""

    z: np.ndarray        # (1, inputs)
    outputs: np.ndarray  # (outputs,) int64: 0 .. outputs
    h1: np.ndarray       # (1, h1)
    h2: np.ndarray       # (1, h2)
    logits: np.ndarray   # (1, outputs)
    weights: np.ndarray  # (outputs,)
    mask: np.ndarray     # (outputs,): router target
    seen: np.ndarray     # (outputs,): 1 for outputs the target covers
    proba: np.ndarray    # (experts, classes): MoE-Data's trees' probabilities
    out: np.ndarray      # (classes,): the last prediction's class probabilities


class _CompiledMoE(ArraySnapshots, AdaptiveModel):
    """What both paper models share: encoder, router inputs, router, RNG, growth, snapshots,
    the loop's driver. Subclasses give ``_grow_parts``, ``_check_parts`` and ``_kernel``."""

    _snapshot_parts: tuple[str, ...] = ("inputs", "router", "rng", "learned")

    def __init__(self, temperature: float, lr: float, hidden: tuple[int, ...],
                 batch_size: int, n_outputs: int, seed: int) -> None:
        self.learned = np.zeros(1, np.int64)   # records learned: state, so in the snapshot
        super().__init__(seed)
        self.temperature = temperature
        self.lr = lr
        self.hidden = tuple(hidden)
        self._batch_size = batch_size
        if len(self.hidden) != 2 or min(self.hidden) < 1 or temperature <= 0 or batch_size < 1:
            raise ValueError("need two hidden sizes >= 1, temperature > 0, batch size >= 1")
        self._encoder = RecordEncoder()
        self._n_classes = 0   # classes the arrays are sized for
        self.rng = new_rng(seed)
        self.inputs = new_inputs(0, 1, _INITIAL_INPUTS)
        self.router = new_router(_INITIAL_INPUTS, self.hidden, n_outputs, batch_size, self.rng)
        self._scratch = self._new_scratch()

    @property
    def _n_learned(self) -> int:
        return int(self.learned[0])

    @_n_learned.setter
    def _n_learned(self, value: int) -> None:
        self.learned[0] = value

    def _new_scratch(self) -> _Scratch:
        n_out = self.router.w3.shape[1]
        trees = getattr(self, "trees", None)
        proba = np.zeros((0, 0) if trees is None else trees.node_class_w.shape[::2])
        return _Scratch(np.zeros((1, self.inputs.count.shape[0])), np.arange(n_out),
                        np.zeros((1, self.hidden[0])), np.zeros((1, self.hidden[1])),
                        np.zeros((1, n_out)), np.zeros(n_out), np.zeros(n_out), np.zeros(n_out),
                        proba, np.zeros(max(n_out, proba.shape[1])))

    def _make_room(self, row: np.ndarray, y: int, width: int) -> None:
        """Grow what learning ``row`` (label ``y``; ``width`` features registered once it was
        read) needs: router input slots and their map, then the subclass's parts. Sizes follow
        from the record alone, so the batch and the record path grow alike."""
        x = row[:width]
        nominal = self._encoder.nominal_sizes()[:width] > 0
        need = np.where(nominal & ~np.isnan(x), np.nan_to_num(x) + 1, 0).astype(np.int64)
        n_values = max(self.inputs.slot_of.shape[1], int(need.max(initial=0)))
        slots = self.inputs.count.shape[0]
        wider = grow_inputs(self.inputs, nominal, n_values, slots)
        slots = doubled_capacity(int(self.inputs.used[0]) + int(inputs_missing(wider, x)), slots)
        self.inputs = grow_inputs(self.inputs, nominal, n_values, slots)
        if slots != self.router.w1.shape[0]:
            self.router = grow_router(self.router, slots)
        n_classes = max(self._n_classes, y + 1)
        self._grow_parts(self._n_classes, n_classes, np.where(nominal, np.maximum(need, 1), 0))
        self._n_classes = n_classes
        self._scratch = self._new_scratch()

    def _grow_parts(self, old_classes: int, n_classes: int, nominal_sizes: np.ndarray) -> None:
        """Room in the subclass's arrays for ``n_classes`` classes (``old_classes`` sized so
        far) and features with ``nominal_sizes`` (0 numeric, else the value indices needed)."""
        raise NotImplementedError

    def predict_proba_one(self, x: Features) -> dict[Hashable, float]:
        row = self._encoder.encode(x)
        preds, _ = self._run(row[None, :], np.zeros(1, np.int64), np.zeros(1),
                             np.array([len(row)]), learn=False)
        if preds[0] < 0:
            return {}
        proba = self._scratch.out[: self._n_classes].tolist()
        return {label: float(p) for label, p in zip(self._encoder.labels, proba)}

    def learn_one(self, x: Features, y: Hashable, w: float = 1.0) -> None:
        """Learn one record with sample weight ``w`` (scales the experts' update)."""
        row = self._encoder.encode(x, learn=True)
        label = self._encoder.encode_label(y, learn=True)
        self._run(row[None, :], np.array([label]), np.array([float(w)]), np.array([len(row)]),
                  learn=True)

    def learn_predict_many(self, X: Sequence[Features], y: Sequence[Hashable],
                           w: Sequence[float] | np.ndarray | None = None
                           ) -> list[Hashable | None]:
        """Test-then-train over a batch: predict record i, learn it, then record i + 1; the
        predictions, as ``predict_one`` then ``learn_one`` per record would give them."""
        return self.learn_predict_scored(X, y, w)[0]

    def learn_predict_scored(self, X: Sequence[Features], y: Sequence[Hashable],
                             w: Sequence[float] | np.ndarray | None = None
                             ) -> tuple[list[Hashable | None], np.ndarray]:
        """``learn_predict_many`` plus each prediction's probability (0 with none)."""
        batch = encode_batch(self._encoder, X, y, w)
        preds, conf = self._run(batch.X, batch.y, batch.w, batch.widths, learn=True)
        names = self._encoder.labels
        return [names[p] if p >= 0 else None for p in preds.tolist()], conf

    def _run(self, X: np.ndarray, Y: np.ndarray, W: np.ndarray, widths: np.ndarray,
             learn: bool) -> tuple[np.ndarray, np.ndarray]:
        """The compiled loop over the encoded records, growing arrays when it asks."""
        preds = np.full(len(X), -1, dtype=np.int64)
        conf = np.zeros(len(X))
        i, predicted = 0, False
        while i < len(X):
            status, i = self._kernel(X, Y, W, widths, i, learn, predicted, preds, conf)
            predicted = status == NEEDS_ROOM
            if predicted:
                self._make_room(X[i], int(Y[i]), int(widths[i]))
            elif status == TREE_ROOM:
                self.trees = grow_tree_pool(self.trees)
                self._scratch = self._new_scratch()
        return preds, conf

    def _kernel(self, X: np.ndarray, Y: np.ndarray, W: np.ndarray, widths: np.ndarray,
                start: int, learn: bool, predicted: bool, preds: np.ndarray,
                conf: np.ndarray) -> tuple[int, int]:
        """The subclass's compiled loop from record ``start`` (see :mod:`.compiled.moe_kernels`)."""
        raise NotImplementedError

    def _restored(self) -> None:
        """Checks the arrays against each other and the encoder (CheckpointError)."""
        inputs, router = self.inputs, self.router
        if (inputs.slot_of.shape[0], self.rng.shape, self.learned.shape) != (
                self._encoder.n_features, (1,), (1,)):
            raise CheckpointError("snapshot inputs, RNG or count do not fit the encoder")
        shaped_as("inputs", new_inputs(*inputs.slot_of.shape, inputs.count.shape[0]), inputs)
        shaped_as("router", new_router(inputs.count.shape[0], self.hidden, router.w3.shape[1],
                                       self._batch_size, np.zeros(1, np.uint64)), router)
        check_inputs_and_router(inputs, router)
        within("learned", self.learned, 0, 2**62)
        self._check_parts()
        self._n_classes = self._encoder.n_classes
        self._scratch = self._new_scratch()

    def _check_parts(self) -> None:
        raise NotImplementedError


class DriftMoEData(_CompiledMoE):
    """The paper's MoE-Data (see module docstring). Defaults are the paper's settings."""

    name = "driftmoe-data"
    _snapshot_parts = ("inputs", "trees", "router", "rng", "learned")

    @classmethod
    def _unit_test_params(cls):
        """River's test convention: a smaller router stepping every 32 records, so co-training
        happens within a test's short stream (the paper steps every 256)."""
        yield {"batch_size": 32, "hidden": (32, 16)}

    def __init__(self, n_experts: int = 12, top_k_train: int = 3, temperature: float = 0.8,
                 lr: float = 2e-3, batch_size: int = 256, hidden: tuple[int, ...] = (256, 128),
                 grace_period: int = 50, delta: float = 1e-7, seed: int = 0) -> None:
        if n_experts < 1 or top_k_train < 1:
            raise ValueError("need n_experts >= 1 and top_k_train >= 1")
        self.top_k_train = top_k_train
        self.batch_size = batch_size
        self.grace_period = grace_period
        self.delta = delta
        self.trees = new_tree_pool(n_experts, 0, 0, grace_period=grace_period, delta=delta,
                                   leaf_prediction="nba")
        super().__init__(temperature, lr, hidden, batch_size, n_experts, seed)

    @property
    def n_experts(self) -> int:
        return self.trees.settings.shape[0]

    def _grow_parts(self, old_classes: int, n_classes: int, nominal_sizes: np.ndarray) -> None:
        self.trees = ensure_tree_capacity(self.trees, n_classes, nominal_sizes)

    def _check_parts(self) -> None:
        trees = self.trees
        if (trees.settings.shape[0], self.router.w3.shape[1], trees.nominal_values.shape[1]) != (
                self.router.w3.shape[1], self.n_experts, self._encoder.n_features) or (
                trees.node_class_w.shape[2] < self._encoder.n_classes):
            raise CheckpointError("snapshot trees do not fit the model's experts or encoder")

    def _kernel(self, X, Y, W, widths, start, learn, predicted, preds, conf):
        return moe_run(self.inputs, self.router, self.trees, self.rng, self.learned,
                       self._scratch, X, Y, W, widths, start, len(X), learn, predicted,
                       self._n_classes, float(self.temperature), float(self.lr), _DROPOUT,
                       int(self.top_k_train), preds, conf)


class DriftMoETask(_CompiledMoE):
    """The paper's MoE-Task (see module docstring): router outputs are classes, trained every
    record (batch 1) on one-hot(y)."""

    name = "driftmoe-task"

    @classmethod
    def _unit_test_params(cls):
        """River's test convention: a smaller router, same behaviour, faster tests."""
        yield {"hidden": (32, 16)}

    def __init__(self, temperature: float = 0.8, lr: float = 2e-3,
                 hidden: tuple[int, ...] = (256, 128), seed: int = 0) -> None:
        super().__init__(temperature, lr, hidden, 1, 2, seed)

    @property
    def n_experts(self) -> int:
        """One (one-vs-rest) expert per class, as the paper counts them."""
        return self._encoder.n_classes

    def _grow_parts(self, old_classes: int, n_classes: int, nominal_sizes: np.ndarray) -> None:
        capacity = doubled_capacity(n_classes, self.router.w3.shape[1])
        if capacity != self.router.w3.shape[1]:
            self.router = grow_router_outputs(self.router, capacity)
        for c in range(old_classes, n_classes):
            router_add_output(self.router, self.rng, c, c + 1)
            self._emit("new_class", label=self._encoder.labels[c])

    def _check_parts(self) -> None:
        if self.router.w3.shape[1] < self._encoder.n_classes:
            raise CheckpointError("snapshot router has fewer outputs than the encoder classes")

    def _kernel(self, X, Y, W, widths, start, learn, predicted, preds, conf):
        return moe_run(self.inputs, self.router, _NO_TREES, self.rng, self.learned,
                       self._scratch, X, Y, W, widths, start, len(X), learn, predicted,
                       self._n_classes, float(self.temperature), float(self.lr), _DROPOUT, 0,
                       preds, conf)
