"""Kafka plumbing for the Ray runner: topic metadata, output topics, and the JSON written to the
predictions, drift and dead-letter topics. kafka-python only; no Ray here."""
from __future__ import annotations

import base64
import json
import time
from typing import Any

from pipelines.host import Prediction
from pipelines.records import DeadLetter

# Metadata for a freshly created topic reaches a one-node broker in well under a second; 30 s
# covers a broker still loading its log after a restart (the same bound infra/kafka.py uses).
METADATA_TIMEOUT_S = 30.0


def list_partitions(bootstrap: str, topic: str, timeout: float = METADATA_TIMEOUT_S) -> list[int]:
    """The topic's partition numbers, sorted; ValueError when the topic does not exist."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="driftflow-driver")
    try:
        deadline = time.monotonic() + timeout
        while True:
            parts = consumer.partitions_for_topic(topic)
            if parts:
                return sorted(parts)
            if time.monotonic() > deadline:
                raise ValueError(f"Kafka topic {topic!r} not found on {bootstrap}")
            time.sleep(0.2)
            consumer.topics()   # refresh the metadata cache before asking again
    finally:
        consumer.close()


def ensure_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """Create the output topics (``partitions`` each) unless they exist already."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="driftflow-driver")
    try:
        existing = set(admin.list_topics())
        for name in names:
            if name in existing:
                continue
            try:
                admin.create_topics([NewTopic(name, partitions, 1)])
            except TopicAlreadyExistsError:
                pass   # another driver made it between list and create
    finally:
        admin.close()


def prediction_message(pred: Prediction, model_version: int) -> bytes:
    """A prediction as JSON; ``model_version`` is how many records the model had learned."""
    return json.dumps({
        "id": pred.id, "key": pred.key, "partition": pred.partition, "offset": pred.offset,
        "y_pred": pred.y_pred, "confidence": pred.confidence, "model_version": model_version,
    }, default=str).encode()


def dead_letter_message(dead: DeadLetter, topic: str) -> bytes:
    """A dead letter as JSON: the raw input (UTF-8 text when it is text, else base64) and why."""
    doc: dict[str, Any] = {"topic": topic, "partition": dead.partition, "offset": dead.offset,
                           "reason": dead.reason}
    raw = dead.raw
    if isinstance(raw, bytes | bytearray):
        try:
            doc["raw_utf8"] = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            doc["raw_base64"] = base64.b64encode(raw).decode("ascii")
    else:
        doc["raw_utf8"] = json.dumps(raw, default=str)
    return json.dumps(doc).encode()


def event_message(event: dict[str, Any], topic: str) -> bytes:
    return json.dumps({"topic": topic, **event}, default=str).encode()


def key_text(raw: bytes | None) -> str | None:
    """A Kafka message key as text (None when the message has no key)."""
    return None if raw is None else raw.decode("utf-8", errors="replace")
