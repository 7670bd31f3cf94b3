"""Kafka's own console producer and consumer as command lines, and topic creation, against the
project's broker (or any bootstrap given)."""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from infra.kafka_layout import (
    CONSOLE_CONSUMER,
    CONSOLE_PRODUCER,
    KAFKA_VERSION,
    TOPIC_TIMEOUT_S,
    KafkaInfraError,
    _classpath,
    _current_bootstrap,
    _java,
    _tools_log4j,
)

# --------------------------------------------------------------------------------------------
# tools


def _tool_cmd(main_class: str, version: str) -> list[str]:
    cp = _classpath(version)
    return [_java(), "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
            f"-Dlog4j2.configurationFile={_tools_log4j(version)}", "-cp", cp, main_class]


def console_producer_cmd(topic: str, bootstrap: str | None = None, *, extra: Sequence[str] = (),
                         version: str = KAFKA_VERSION) -> list[str]:
    """Command line of Kafka's own console producer (one record per stdin line)."""
    return [*_tool_cmd(CONSOLE_PRODUCER, version), "--bootstrap-server", bootstrap or _current_bootstrap(),
            "--topic", topic, *extra]


def console_consumer_cmd(topic: str, bootstrap: str | None = None, *, from_beginning: bool = True,
                         max_messages: int | None = None, timeout_ms: int | None = None,
                         extra: Sequence[str] = (), version: str = KAFKA_VERSION) -> list[str]:
    """Command line of Kafka's own console consumer (one record per stdout line)."""
    cmd = [*_tool_cmd(CONSOLE_CONSUMER, version), "--bootstrap-server",
           bootstrap or _current_bootstrap(), "--topic", topic]
    if from_beginning:
        cmd.append("--from-beginning")
    if max_messages is not None:
        cmd += ["--max-messages", str(max_messages)]
    if timeout_ms is not None:
        cmd += ["--timeout-ms", str(timeout_ms)]
    return [*cmd, *extra]


def create_topic(name: str, partitions: int = 1, *, replication_factor: int = 1,
                 bootstrap: str | None = None, configs: dict[str, str] | None = None,
                 exist_ok: bool = True, timeout: float = TOPIC_TIMEOUT_S,
                 client: dict[str, Any] | None = None) -> None:
    """Create a topic via kafka-python's admin client and wait until every partition has a leader.
    ``client``: more kafka-python keywords (a secured cluster's settings)."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    boot = bootstrap or _current_bootstrap()
    admin = KafkaAdminClient(bootstrap_servers=boot, client_id="driftflow-infra",
                             request_timeout_ms=int(timeout * 1000), **(client or {}))
    try:
        try:
            admin.create_topics([NewTopic(name, partitions, replication_factor,
                                          topic_configs=dict(configs or {}))],
                                timeout_ms=int(timeout * 1000))
        except TopicAlreadyExistsError:
            if not exist_ok:
                raise
        deadline = time.monotonic() + timeout
        while True:
            topics = admin.describe_topics([name])
            parts = topics[0].get("partitions") or [] if topics else []
            if (topics and topics[0].get("error_code", 0) == 0 and parts
                    and all(p.get("leader_id", p.get("leader", -1)) >= 0 for p in parts)):
                return
            if time.monotonic() > deadline:
                raise KafkaInfraError(f"topic {name!r} has no leader for every partition after {timeout:.0f} s")
            time.sleep(0.1)
    finally:
        admin.close()
