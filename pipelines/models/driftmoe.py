"""The DriftMoE paper's two models on the compiled core (state in arrays, array snapshots).

- ``driftmoe-data``: MoE-Data (12 MOA-like Hoeffding trees, MLP router co-trained on the
  multi-hot correctness mask, top-1 predicts, top-3 learn, no detector).
- ``driftmoe-task``: MoE-Task: the router's outputs are the classes, trained every record on
  one-hot(y), and the prediction is its softmax over classes. The paper's one-vs-rest trees are
  never consulted (neither for a prediction nor for the router's target), so they are left out:
  it behaves, and is, an online MLP classifier.

Each record runs a few compiled kernels (:mod:`.compiled.moe_kernels`); Python encodes records
and grows arrays when the encoder meets a new feature, nominal value or class. There is no
``learn_predict_many`` batch path (``ModelHost`` then goes record by record): a Python loop over
these calls would save nothing; a compiled prequential loop as ``adaptive``'s is future work.
"""
from __future__ import annotations

from collections.abc import Hashable
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
from pipelines.models.compiled.moe_kernels import (
    experts_step,
    router_learn,
    router_softmax,
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


class _CompiledMoE(ArraySnapshots, AdaptiveModel):
    """What both paper models share: encoder, router inputs, router, RNG, growth, snapshots,
    the record path. Subclasses give ``_grow_parts``, ``_check_parts`` and ``_step``."""

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
        self._version = 0   # encoder version the arrays were last sized for
        self._sized_classes = 0   # classes the encoder knew then
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
                        proba)

    def _grow(self, row: np.ndarray) -> None:
        """Room for what the encoder met since the arrays were last sized (``row``: the
        record that met it): router input slots, then the subclass's parts."""
        nominal_sizes = self._encoder.nominal_sizes()
        n_values = max(self.inputs.slot_of.shape[1], int(nominal_sizes.max(initial=0)))
        slots = self.inputs.count.shape[0]
        wider = grow_inputs(self.inputs, nominal_sizes > 0, n_values, slots)
        slots = doubled_capacity(int(self.inputs.used[0]) + int(inputs_missing(wider, row)), slots)
        self.inputs = grow_inputs(self.inputs, nominal_sizes > 0, n_values, slots)
        if slots != self.router.w1.shape[0]:
            self.router = grow_router(self.router, slots)
        self._grow_parts(self._sized_classes)
        self._version = self._encoder.version
        self._sized_classes = self._encoder.n_classes
        self._scratch = self._new_scratch()

    def _grow_parts(self, old_classes: int) -> None:
        """Room in the subclass's arrays for the encoder's features, values and classes
        (``old_classes`` of them known at the last growth)."""
        raise NotImplementedError

    def _encode(self, x: Features, y: Hashable | None) -> tuple[np.ndarray, int]:
        """The record as a row (and its label index when learning), arrays grown to fit."""
        row = self._encoder.encode(x, learn=y is not None)
        label = -1 if y is None else self._encoder.encode_label(y, learn=True)
        if self._encoder.version != self._version:
            self._grow(row)
        return row, label

    def predict_proba_one(self, x: Features) -> dict[Hashable, float]:
        row, _ = self._encode(x, None)
        proba = self._step(row, -1, 0.0, learn=False)
        return {} if proba is None else {
            label: float(p) for label, p in zip(self._encoder.labels, proba.tolist())}

    def learn_one(self, x: Features, y: Hashable, w: float = 1.0) -> None:
        """Learn one record with sample weight ``w`` (scales the experts' update)."""
        row, label = self._encode(x, y)
        self._step(row, label, float(w), learn=True)
        self._n_learned += 1

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
        self._version = self._encoder.version
        self._sized_classes = self._encoder.n_classes
        self._scratch = self._new_scratch()

    def _check_parts(self) -> None:
        raise NotImplementedError

    def _step(self, row: np.ndarray, y: int, w: float, learn: bool) -> np.ndarray | None:
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

    def _grow_parts(self, old_classes: int) -> None:
        self.trees = ensure_tree_capacity(self.trees, self._encoder.n_classes,
                                          self._encoder.nominal_sizes())

    def _check_parts(self) -> None:
        trees = self.trees
        if (trees.settings.shape[0], self.router.w3.shape[1], trees.nominal_values.shape[1]) != (
                self.router.w3.shape[1], self.n_experts, self._encoder.n_features) or (
                trees.node_class_w.shape[2] < self._encoder.n_classes):
            raise CheckpointError("snapshot trees do not fit the model's experts or encoder")

    def _step(self, row: np.ndarray, y: int, w: float, learn: bool) -> np.ndarray | None:
        sc, n = self._scratch, self.n_experts
        if self._encoder.n_classes == 0:
            return None
        router_softmax(self.inputs, self.router, row, n, self.temperature, sc.z, sc.outputs,
                       sc.h1, sc.h2, sc.logits, sc.weights)
        chosen, status = experts_step(self.trees, row, y, w, sc.weights, self.top_k_train,
                                      learn, sc.proba, sc.mask)
        if status:
            self.trees = grow_tree_pool(self.trees)
        if learn:
            sc.seen[:] = 1.0
            router_learn(self.inputs, self.router, self.rng, row, sc.z, sc.mask, sc.seen,
                         self.lr, _DROPOUT)
        if status:
            self._scratch = self._new_scratch()
        return None if chosen < 0 else sc.proba[chosen, : self._encoder.n_classes]


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

    def _grow_parts(self, old_classes: int) -> None:
        n_classes = self._encoder.n_classes
        capacity = doubled_capacity(n_classes, self.router.w3.shape[1])
        if capacity != self.router.w3.shape[1]:
            self.router = grow_router_outputs(self.router, capacity)
        for c in range(old_classes, n_classes):
            router_add_output(self.router, self.rng, c, c + 1)
            self._emit("new_class", label=self._encoder.labels[c])

    def _check_parts(self) -> None:
        if self.router.w3.shape[1] < self._encoder.n_classes:
            raise CheckpointError("snapshot router has fewer outputs than the encoder classes")

    def _step(self, row: np.ndarray, y: int, w: float, learn: bool) -> np.ndarray | None:
        sc, n_classes = self._scratch, self._encoder.n_classes
        if n_classes == 0:
            return None
        router_softmax(self.inputs, self.router, row, n_classes, self.temperature, sc.z,
                       sc.outputs, sc.h1, sc.h2, sc.logits, sc.weights)
        proba = sc.weights[:n_classes].copy()
        if learn and w > 0.0:
            sc.mask[:] = 0.0
            sc.mask[y] = 1.0
            sc.seen[:] = 0.0
            sc.seen[:n_classes] = 1.0
            router_learn(self.inputs, self.router, self.rng, row, sc.z, sc.mask, sc.seen,
                         self.lr, _DROPOUT)
        return proba
