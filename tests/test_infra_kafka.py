"""The project's own Kafka broker: start, status, idempotence, and a round trip through
Kafka's console producer (the JVM tool) into kafka-python."""
from __future__ import annotations

import subprocess
import time
import uuid

import pytest

from infra import kafka as infra_kafka

pytestmark = pytest.mark.integration

# One JVM start (~1-2 s) plus 100 sends; 120 s only guards against a hung tool on a busy CI box.
PRODUCER_TIMEOUT_S = 120
# Upper bound for the consumer to see all 100 records; they are already written, so this only
# covers group join + fetch (a few seconds) on a loaded machine.
CONSUME_DEADLINE_MS = 60_000


def _topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"  # unique: the broker's data persists across runs


def test_console_producer_to_kafka_python(kafka_broker: str) -> None:
    from kafka import KafkaConsumer

    topic = _topic("infra-roundtrip")
    infra_kafka.create_topic(topic, partitions=4, bootstrap=kafka_broker)
    lines = "".join(f"k{i % 10}:v{i}\n" for i in range(100))
    cmd = infra_kafka.console_producer_cmd(
        topic, kafka_broker,
        extra=["--reader-property", "parse.key=true", "--reader-property", "key.separator=:"])
    proc = subprocess.run(cmd, input=lines, capture_output=True, text=True, timeout=PRODUCER_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_broker, group_id=_topic("g"),
                             auto_offset_reset="earliest", enable_auto_commit=False)
    got: list[tuple[int, str, str]] = []
    try:
        deadline = time.monotonic() + CONSUME_DEADLINE_MS / 1000
        while len(got) < 100 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                got += [(r.partition, r.key.decode(), r.value.decode()) for r in records]
    finally:
        consumer.close()
    assert sorted(v for _, _, v in got) == sorted(f"v{i}" for i in range(100))
    assert len(got) == 100
    assert len({p for p, _, _ in got}) > 1, "keyed records should spread over the 4 partitions"
    by_key: dict[str, set[int]] = {}
    for p, k, _ in got:
        by_key.setdefault(k, set()).add(p)
    assert all(len(ps) == 1 for ps in by_key.values()), "one key, one partition"


def test_start_is_idempotent_and_status_reports_running(kafka_broker: str) -> None:
    if infra_kafka.bootstrap() != kafka_broker or not infra_kafka.is_running():
        pytest.skip("the session uses an external broker (DRIFTFLOW_KAFKA_BOOTSTRAP)")
    first = infra_kafka.start()
    second = infra_kafka.start()
    assert first.already_running and second.already_running
    assert first.pid == second.pid and first.bootstrap == kafka_broker

    st = infra_kafka.status()
    assert st["running"] and st["pid"] == first.pid and st["bootstrap"] == kafka_broker
    assert infra_kafka.main(["status"]) == 0
    assert infra_kafka.main(["start"]) == 0  # the CLI says "already running" and succeeds
    assert infra_kafka.is_running()


def test_console_consumer_reads_back(kafka_broker: str) -> None:
    topic = _topic("infra-console")
    infra_kafka.create_topic(topic, partitions=1, bootstrap=kafka_broker)
    prod = subprocess.run(infra_kafka.console_producer_cmd(topic, kafka_broker),
                          input="a\nb\nc\n", capture_output=True, text=True, timeout=PRODUCER_TIMEOUT_S)
    assert prod.returncode == 0, prod.stderr
    cons = subprocess.run(infra_kafka.console_consumer_cmd(topic, kafka_broker, max_messages=3,
                                                           timeout_ms=CONSUME_DEADLINE_MS),
                          capture_output=True, text=True, timeout=PRODUCER_TIMEOUT_S)
    assert cons.stdout.split() == ["a", "b", "c"], cons.stderr


def test_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """A UUID whose base64url form starts with "-" (first byte 0xF8: 1 draw in 32) would be read
    by the storage tool as an option, and the broker would not start: it is drawn again."""
    from infra import kafka_config

    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x10" + bytes(15))])
    monkeypatch.setattr(kafka_config.uuid, "uuid4", lambda: next(draws))
    cluster_id = kafka_config._cluster_id()
    assert cluster_id == "EAAAAAAAAAAAAAAAAAAAAA"
    assert len(cluster_id) == 22
