"""Checkpoint bodies of a Kafka job, with no pickle: restoring one never runs code.

One partition's checkpoint holds the model snapshot with the host's counters, the decoder's
inferred schema and the next offset to read, sealed together so state and offset never part::

    JSON length (8 bytes, big-endian) | JSON state (UTF-8) | model snapshot (`model.snapshot()`)

The JSON holds counters, offsets, metrics, the validator's schema and the label joiner's
buffers (records' features and labels are JSON values after validation: ints, floats, strings,
booleans keep their types); the model snapshot is opaque bytes restored by
`AdaptiveModel.restore`. A Ray worker's labels checkpoint (its orphan labels and the labels
topic's offsets) is JSON only. A body that is not what we wrote raises `CheckpointError`.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.checkpoints.envelope import CheckpointError, seal, unseal
from pipelines.evaluate import PrequentialMetrics
from pipelines.host import ModelHost
from pipelines.labels import LabelJoiner
from pipelines.models import AdaptiveModel
from pipelines.monitoring import InputDriftMonitor, state_from_json, state_to_json
from pipelines.validation import JsonDecoder, RecordValidator

if TYPE_CHECKING:
    from pipelines.runners.kafka_job import KafkaJob

CHECKPOINT_SCHEMA = "driftflow.ray-partition/2"
LABELS_SCHEMA = "driftflow.ray-labels/2"
_LENGTH = struct.Struct(">Q")
# What a forged or damaged state can raise while it is rebuilt (wrong types, missing keys).
_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError)


@dataclass
class PartitionState:
    host: ModelHost
    decoder: JsonDecoder
    next_offset: int | None          # None: start at the beginning of the partition
    since_checkpoint: int = 0
    labels_changed: bool = False     # a late label changed the host since the last checkpoint


@dataclass
class LabelsState:
    """A Ray worker's labels reader: orphan labels, next offset per labels-topic partition, and
    how many label messages it read (``invalid`` of them unusable)."""

    orphans: LabelJoiner | None
    offsets: dict[int, int]
    read: int
    invalid: int


def save_partition(job: KafkaJob, partition: int, state: PartitionState) -> bytes:
    """One partition's checkpoint: model snapshot, host counters, decoder schema, next offset."""
    host, validator = state.host, state.decoder._validator
    doc = {
        "topic": job.topic, "partition": partition, "next_offset": state.next_offset,
        "host": {"records": host.records, "dead_letters": host.dead_letters,
                 "skipped": host.skipped, "drift_positions": host.drift_positions,
                 "metrics": host.metrics.to_state(),
                 "joiner": host.joiner.to_state() if host.joiner is not None else None,
                 "input_monitor": (state_to_json(host.input_monitor.to_state())
                                   if host.input_monitor is not None else None),
                 "input_drifts": host.input_drifts},
        "validator": validator.to_state() if validator is not None else None,
    }
    text = json.dumps(doc, separators=(",", ":")).encode()
    return seal(_LENGTH.pack(len(text)) + text + host.model.snapshot(), schema=CHECKPOINT_SCHEMA,
                meta={"topic": job.topic, "partition": partition, "next_offset": state.next_offset,
                      "records": host.records})


def partition_parts(blob: bytes) -> tuple[dict[str, Any], bytes]:
    """The checked checkpoint's JSON state and its model snapshot bytes."""
    _, body = unseal(blob, schema=CHECKPOINT_SCHEMA)
    if len(body) < _LENGTH.size:
        raise CheckpointError("partition checkpoint body is truncated")
    (size,) = _LENGTH.unpack_from(body)
    if _LENGTH.size + size > len(body):
        raise CheckpointError("partition checkpoint body is truncated")
    doc = _json(body[_LENGTH.size:_LENGTH.size + size], "partition")
    return doc, body[_LENGTH.size + size:]


def load_partition(blob: bytes, target: str) -> PartitionState:
    """Rebuild a partition's state from `save_partition`'s blob."""
    doc, model = partition_parts(blob)
    try:
        saved = doc["host"]
        joiner = LabelJoiner.from_state(saved["joiner"]) if saved["joiner"] is not None else None
        host = ModelHost(AdaptiveModel.restore(model),
                         metrics=PrequentialMetrics.from_state(saved["metrics"]),
                         records=int(saved["records"]), dead_letters=int(saved["dead_letters"]),
                         skipped=int(saved["skipped"]),
                         drift_positions=[int(p) for p in saved["drift_positions"]],
                         joiner=joiner, input_monitor=_monitor(saved.get("input_monitor")),
                         input_drifts=list(saved.get("input_drifts", [])))
        validator = (RecordValidator.from_state(doc["validator"])
                     if doc["validator"] is not None else None)
        decoder = JsonDecoder(target=target, validator=validator, require_label=joiner is None)
        next_offset = None if doc["next_offset"] is None else int(doc["next_offset"])
    except CheckpointError:
        raise
    except _MALFORMED as exc:
        raise CheckpointError("partition checkpoint state is malformed: "
                              f"{type(exc).__name__}") from None
    return PartitionState(host, decoder, next_offset)


def _monitor(state: dict[str, Any] | None) -> InputDriftMonitor:
    """The saved input-drift monitor; a fresh one for a checkpoint written before it was kept."""
    return InputDriftMonitor() if state is None else InputDriftMonitor.from_state(
        state_from_json(state))


def save_labels(topic: str | None, labels: LabelsState) -> bytes:
    """A Ray worker's labels checkpoint (JSON)."""
    doc = {"orphans": labels.orphans.to_state() if labels.orphans is not None else None,
           "offsets": {str(p): offset for p, offset in labels.offsets.items()},
           "read": labels.read, "invalid": labels.invalid}
    return seal(json.dumps(doc, separators=(",", ":")).encode(), schema=LABELS_SCHEMA,
                meta={"topic": topic, "read": labels.read})


def load_labels(blob: bytes) -> LabelsState:
    """`save_labels`'s state back."""
    doc = _json(unseal(blob, schema=LABELS_SCHEMA)[1], "labels")
    try:
        orphans = (LabelJoiner.from_state(doc["orphans"]) if doc["orphans"] is not None
                   else None)
        offsets = {int(p): int(offset) for p, offset in doc["offsets"].items()}
        return LabelsState(orphans, offsets, int(doc["read"]), int(doc["invalid"]))
    except _MALFORMED as exc:
        raise CheckpointError("labels checkpoint state is malformed: "
                              f"{type(exc).__name__}") from None


def _json(raw: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"{what} checkpoint state is not JSON: {type(exc).__name__}") \
            from None
    if not isinstance(doc, dict):
        raise CheckpointError(f"{what} checkpoint state is not a JSON object")
    return doc
