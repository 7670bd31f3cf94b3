"""A delayed-label stream both runtimes' tests produce: records without labels on one topic,
their labels ``lag`` records later on another, with timestamps that fix the schedule."""
from __future__ import annotations

import json
import time

from infra import kafka as infra_kafka
from pipelines.sources import open_source

# One producer flush of a few thousand small messages; the bound only guards a hung broker.
PRODUCER_TIMEOUT_S = 120


def produce_delayed(bootstrap: str, topic: str, labels_topic: str | None, n: int,
                    lag: int, invalid_labels: int = 0) -> list[int]:
    """SEA records keyed ``k{i % 32}`` to a 2-partition ``topic``: with ``labels_topic``
    without their label, the label of record i sent to it right after record i + ``lag`` (the
    last ``lag`` labels at the end); without it, the label in the record. Timestamps are set:
    record i at t0 + 2i ms, label i at record i + ``lag``'s (then 1 ms apart), so the order in
    which the workers apply labels is fixed (no ties between sends). ``invalid_labels``:
    that many label messages that are not JSON, spread over the labels (each at its own
    timestamp, between two records'). Returns the ids."""
    from kafka import KafkaProducer

    infra_kafka.create_topic(topic, partitions=2, bootstrap=bootstrap)
    if labels_topic:
        infra_kafka.create_topic(labels_topic, partitions=2, bootstrap=bootstrap)
    rows = list(open_source("synthetic:SEAa", limit=n, seed=7))
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    t0 = int(time.time() * 1000)
    try:
        def label(i: int, ts: int) -> None:
            producer.send(labels_topic, json.dumps({"id": i, "y": rows[i].y}).encode(),
                          timestamp_ms=ts)

        for i, r in enumerate(rows):
            doc = {"id": i, "x": r.x} if labels_topic else {"id": i, "x": r.x, "y": r.y}
            producer.send(topic, json.dumps(doc).encode(), key=f"k{i % 32}".encode(),
                          timestamp_ms=t0 + 2 * i)
            if labels_topic and i >= lag:
                label(i - lag, t0 + 2 * i)
                if invalid_labels and (i - lag) % ((n - lag) // invalid_labels) == 1:
                    producer.send(labels_topic, b"{not json", timestamp_ms=t0 + 2 * i + 1)
        if labels_topic:
            for k, i in enumerate(range(max(0, n - lag), n)):
                label(i, t0 + 2 * n + k)
        producer.flush(timeout=PRODUCER_TIMEOUT_S)
    finally:
        producer.close()
    return list(range(n))
