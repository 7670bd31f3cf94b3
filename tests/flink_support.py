"""What the Flink test modules share: the ``connector`` fixture (import `connector_fixture`
into a test module to use it) and reading a topic back."""
from __future__ import annotations

from typing import Any

import pytest

from tests.support import unavailable


@pytest.fixture(scope="module", name="connector")
def connector_fixture() -> None:
    """PyFlink and the connector jar, or fail (CI) / skip (elsewhere)."""
    try:
        import pyflink  # noqa: F401

        from infra.flink import ensure_connector
        ensure_connector()
    except Exception as exc:  # noqa: BLE001 - any reason decides fail vs skip
        unavailable(f"Flink or its Kafka connector is missing: {exc}")


def read_topic(bootstrap: str, topic: str, committed: bool = True) -> list[Any]:
    """Every message of ``topic`` (read_committed unless ``committed`` is False), in
    partition and offset order."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=3000,
                             isolation_level="read_committed" if committed else "read_uncommitted")
    try:
        parts = sorted(consumer.partitions_for_topic(topic) or [])
        consumer.assign([TopicPartition(topic, p) for p in parts])
        return sorted(consumer, key=lambda m: (m.partition, m.offset))
    finally:
        consumer.close()
