"""One Kafka partition's checkpoint: the model snapshot with the host's counters, the decoder's
inferred schema and the next offset to read, sealed together so state and offset never part."""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipelines.checkpoints.envelope import seal, unseal
from pipelines.host import ModelHost
from pipelines.models import AdaptiveModel
from pipelines.validation import JsonDecoder

if TYPE_CHECKING:
    from pipelines.runners.kafka_job import KafkaJob

CHECKPOINT_SCHEMA = "driftflow.ray-partition/1"


@dataclass
class PartitionState:
    host: ModelHost
    decoder: JsonDecoder
    next_offset: int | None          # None: start at the beginning of the partition
    since_checkpoint: int = 0
    labels_changed: bool = False     # a late label changed the host since the last checkpoint


def save_partition(job: KafkaJob, partition: int, state: PartitionState) -> bytes:
    """One partition's checkpoint: model snapshot, host counters, decoder schema, next offset."""
    host = state.host
    body = pickle.dumps({
        "topic": job.topic, "partition": partition, "next_offset": state.next_offset,
        "model": host.model.snapshot(),
        "host": {"metrics": host.metrics, "records": host.records,
                 "dead_letters": host.dead_letters, "skipped": host.skipped,
                 "drift_positions": host.drift_positions, "joiner": host.joiner},
        "validator": state.decoder._validator,
    }, protocol=5)
    return seal(body, schema=CHECKPOINT_SCHEMA,
                meta={"topic": job.topic, "partition": partition, "next_offset": state.next_offset})


def load_partition(blob: bytes, target: str) -> PartitionState:
    """Rebuild a partition's state from `save_partition`'s blob (checked before unpickling)."""
    _, body = unseal(blob, schema=CHECKPOINT_SCHEMA)
    doc = pickle.loads(body)
    host = ModelHost(AdaptiveModel.restore(doc["model"]), **doc["host"])
    decoder = JsonDecoder(target=target, require_label=doc["host"].get("joiner") is None)
    decoder._validator = doc["validator"]
    return PartitionState(host, decoder, doc["next_offset"])
