"""Snapshots of a compiled model as named arrays plus a JSON header (settings, encoder), inside
the signed envelope: no pickle, so a blob from anywhere cannot run code on restore, and a River or
numpy upgrade cannot break an old checkpoint.

Restore builds a fresh model from the header's settings, then takes the arrays only when their
names, dtypes and shapes are exactly those a model with the stored capacities has, and the index
arrays the kernels read without bounds checks are in range; anything else is a CheckpointError.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from detectors._compiled import new_adwin_stack, new_rbocpd
from detectors._compiled_sentinel import _SCALE, _TAKEN, SCALES, new_sentinel
from detectors._compiled_shift import new_shift
from experts._compiled_inputs import new_inputs
from experts._compiled_mlp import new_mlp_stack
from experts._compiled_pool import (
    N_ARCHIVE,
    N_CLASSES,
    N_POS,
    N_RECENT,
    new_pool_arrays,
)
from experts._compiled_tree import TreePool, tree_pool_from_arrays
from experts._encoding import RecordEncoder
from pipelines.checkpoints.arrays import pack_arrays
from pipelines.checkpoints.envelope import CheckpointError
from pipelines.models.compiled.sentinel import empty_tree
from router._compiled import new_router

# the model attributes a snapshot holds, in order; each a NamedTuple of arrays or an array
PARTS = ("inputs", "mlp", "trees", "router", "err_det", "label_det", "adwin", "event_det",
         "sentinel", "sentinel_tree", "pool", "rng")


def state_arrays(model: Any) -> dict[str, np.ndarray]:
    """``part.field -> array`` for every part of ``model`` (views, not copies)."""
    out: dict[str, np.ndarray] = {}
    for part in model._snapshot_parts:
        value = getattr(model, part)
        if isinstance(value, tuple):
            out.update({f"{part}.{name}": a for name, a in value._asdict().items()})
        else:
            out[part] = value
    return out


class ArraySnapshots:
    """``snapshot`` / ``_from_snapshot`` for a model holding its ``_snapshot_parts`` (default
    :data:`PARTS`, ``adaptive``'s) and an ``_encoder``; the model class provides
    ``_get_params`` (River) and ``_restored`` (checks and scratch after a restore; the default
    is ``adaptive``'s)."""

    _snapshot_parts: tuple[str, ...] = PARTS

    def snapshot_body(self) -> tuple[dict[str, Any], bytes]:
        """The envelope's meta and the body (header + arrays) of this model's snapshot."""
        meta = {"model": self.name, "settings": self._get_params(),
                "encoder": self._encoder.to_json()}
        return ({"model": self.name, "records": self.n_learned},
                pack_arrays(meta, state_arrays(self)))

    @classmethod
    def _from_snapshot(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
        try:
            model = cls(**meta["settings"])
            encoder = RecordEncoder.from_json(meta["encoder"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"snapshot settings or encoder refused: {exc}") from None
        fresh = state_arrays(model)
        _fill_missing_detectors(cls._snapshot_parts, arrays)
        if set(arrays) != set(fresh):
            odd = sorted(set(arrays) ^ set(fresh))[:5]
            raise CheckpointError(f"snapshot arrays are not this model's (differ in {odd})")
        for name, a in arrays.items():
            if not (a.flags.aligned and a.flags.writeable and a.flags.c_contiguous):
                arrays[name] = a = np.array(a, order="C")   # the kernels' one compiled type
            if a.dtype != fresh[name].dtype or a.ndim != fresh[name].ndim:
                raise CheckpointError(f"snapshot array {name!r} is {a.dtype}[{a.ndim}d], "
                                      f"expected {fresh[name].dtype}[{fresh[name].ndim}d]")
        for part in cls._snapshot_parts:
            template = getattr(model, part)
            if isinstance(template, TreePool):   # the trees, the sentinel's copy: checked
                try:
                    value = tree_pool_from_arrays({k[len(part) + 1:]: a for k, a in arrays.items()
                                                   if k.startswith(f"{part}.")})
                except ValueError as exc:
                    raise CheckpointError(f"snapshot {part} refused: {exc}") from None
            elif isinstance(template, np.ndarray):   # a bare array (the RNG)
                value = arrays[part]
            else:
                value = type(template)(*(arrays[f"{part}.{name}"] for name in template._fields))
            setattr(model, part, value)
        model._encoder = encoder
        model._restored()
        return model

    def _restored(self) -> None:
        """Refuse arrays a model with these capacities cannot have (CheckpointError), then
        rebuild what is not state."""
        _check_shapes(self)
        _check_ranges(self)
        self._scratch = self._new_scratch()
        self._state = None


def _fill_missing_detectors(parts: tuple[str, ...], arrays: dict[str, np.ndarray]) -> None:
    """A snapshot from before the model-level detector or the sentinel: they start fresh (the
    sentinel takes its copy when due)."""
    if "mlp.w2" not in arrays:
        return
    fresh: dict[str, Any] = {"event_det": lambda: new_shift(arrays["mlp.w2"].shape[-1]),
                             "sentinel": lambda: new_sentinel(1), "sentinel_tree": empty_tree}
    for part, make in fresh.items():
        if part in parts and not any(k.startswith(f"{part}.") for k in arrays):
            arrays.update({f"{part}.{k}": a for k, a in make()._asdict().items()})


def _check_shapes(model: Any) -> None:
    """Every array shaped as a model with the snapshot's capacities has it."""
    n_slots = model.pool.kind.shape[0]
    n_features, n_values = model.inputs.slot_of.shape
    n_inputs = model.inputs.count.shape[0]
    n_classes = model.mlp.w2.shape[2]
    hidden = model.mlp.w1.shape[2]
    template = {
        "inputs": new_inputs(n_features, n_values, n_inputs),
        "mlp": new_mlp_stack(n_slots, n_inputs, hidden, n_classes),
        "router": new_router(n_inputs, model.router_hidden, n_slots, model.router_batch_size,
                             np.zeros(1, np.uint64)),
        "err_det": new_rbocpd(2), "label_det": new_rbocpd(n_classes),
        "adwin": new_adwin_stack(n_slots), "event_det": new_shift(n_classes),
        "pool": new_pool_arrays(n_slots, model.revival_window, n_features),
    }
    for part, fresh in template.items():
        shaped_as(part, fresh, getattr(model, part))
    trees = model.trees
    if (trees.settings.shape[0], trees.node_class_w.shape[2], trees.nominal_values.shape[1]) != (
            n_slots, n_classes, n_features) or model.rng.shape != (1,):
        raise CheckpointError("snapshot trees or RNG do not match the model's capacities")
    copy = model.sentinel_tree
    shaped_as("sentinel", new_sentinel(copy.node_feature.shape[1]), model.sentinel)
    if (copy.settings.shape[0] != 1 or copy.node_class_w.shape[2] > max(n_classes, 2)
            or copy.nominal_values.shape[1] > n_features):
        raise CheckpointError("snapshot sentinel copy does not fit the model's capacities")


def shaped_as(part: str, fresh: tuple, got: tuple) -> None:
    """CheckpointError unless every array of ``got`` has the shape of ``fresh``'s (the same
    NamedTuple, built fresh for the snapshot's capacities)."""
    for name, want, have in zip(fresh._fields, fresh, got):
        if want.shape != have.shape:
            raise CheckpointError(f"snapshot array {part}.{name} has shape {have.shape}, "
                                  f"expected {want.shape}")


def within(name: str, a: np.ndarray, low: int, high: int) -> None:
    """CheckpointError unless every value of snapshot array ``name`` is in ``[low, high]``."""
    if a.size and (a.min() < low or a.max() > high):
        raise CheckpointError(f"snapshot array {name} has values outside [{low}, {high}]")


def check_inputs_and_router(inputs: Any, router: Any) -> None:
    """The router input slots and the router's mini-batch count are in range (every compiled
    model with a router has both)."""
    n_inputs = inputs.count.shape[0]
    if (router.w1.shape[0], router.buf_z.shape[1]) != (n_inputs, n_inputs):
        raise CheckpointError("snapshot router and input slots differ in size")
    within("inputs.used", inputs.used, 0, n_inputs)
    within("inputs.slot_of", inputs.slot_of, -1, int(inputs.used[0]) - 1)
    within("inputs.nominal", inputs.nominal, 0, 1)
    within("router.ints", router.ints[:1], 0, router.buf_z.shape[0] - 1)


def _check_ranges(model: Any) -> None:
    """The indices the kernels follow without bounds checks point inside their arrays."""
    pool, inputs = model.pool, model.inputs
    n_slots = pool.kind.shape[0]
    n_classes, window = model.mlp.w2.shape[2], pool.recent_y.shape[0]
    check_inputs_and_router(inputs, model.router)
    if not np.array_equal(inputs.nominal, (model.trees.nominal_values[0] > 0).astype(np.int64)):
        raise CheckpointError("snapshot inputs and trees disagree on which features are nominal")
    within("mlp.known", model.mlp.known, 0, 1)
    for part in ("err_det", "label_det"):
        det = getattr(model, part)
        within(f"{part}.ints", det.ints[:1], 0, det.totals.shape[0])
        within(f"{part}.ints", det.ints[2:3], 0, det.counts.shape[1])
    within("adwin.rows", model.adwin.rows, 1, model.adwin.bucket_count.shape[1])
    within("event_det.labels", model.event_det.labels, 0, max(n_classes - 1, 0))
    within("event_det.errors", model.event_det.errors, 0, 1)
    sentinel, copy = model.sentinel, model.sentinel_tree
    within("sentinel.cells", sentinel.cells, 0, sentinel.counts.shape[1] - 1)
    within("sentinel.errors", sentinel.errors, 0, 1)
    within("sentinel.ints", sentinel.ints[_TAKEN:_TAKEN + 1], 0, 1)
    within("sentinel.ints", sentinel.ints[_SCALE:_SCALE + 1], 0, len(SCALES) - 1)
    nominal = (copy.nominal_values[0] > 0).astype(np.int64)
    if not np.array_equal(nominal, inputs.nominal[: len(nominal)]):
        raise CheckpointError("snapshot sentinel copy and inputs disagree on nominal features")
    within("adwin.bucket_count", model.adwin.bucket_count, 0,
           model.adwin.bucket_total.shape[2])
    within("pool.kind", pool.kind, -1, 1)
    within("pool.n_pos", pool.ints[N_POS:N_POS + 1], 1, n_slots)
    within("pool.n_archive", pool.ints[N_ARCHIVE:N_ARCHIVE + 1], 0, n_slots)
    within("pool.n_classes", pool.ints[N_CLASSES:N_CLASSES + 1], 0, n_classes)
    within("pool.n_recent", pool.ints[N_RECENT:N_RECENT + 1], 0, window)
    within("pool.ints", pool.ints, -(2**62), 2**62)
    live = np.concatenate([pool.positions[: pool.ints[N_POS]],
                           pool.archive[: pool.ints[N_ARCHIVE]]])
    within("pool.positions/archive", live, 0, n_slots - 1)
    if len(set(live.tolist())) != len(live) or (pool.kind[live] < 0).any():
        raise CheckpointError("snapshot pool lists a slot twice or a free slot")
    within("pool.recent_y", pool.recent_y, 0, max(n_classes - 1, 0))
    if model._encoder.n_features < pool.recent_x.shape[1] or model._encoder.n_classes < int(
            pool.ints[N_CLASSES]):
        raise CheckpointError("snapshot encoder knows fewer features or classes than the model")
