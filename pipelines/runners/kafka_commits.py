"""Which checkpoint an exactly-once Ray job's last transaction committed, read from the job's
own commits topic (``<prefix>.commits``).

Each checkpoint's transaction also writes one small record per partition to that topic,
``{"partition": p, "next_offset": n}``, in partition ``p``, beside the outputs and the group's
offsets. A restarted worker reads the last record a committed transaction wrote there, and
restores the checkpoint whose next offset matches.

Why not the group's committed offset: after a broker restart, measured here, Kafka finished
the commits it had acknowledged before stopping some 20 s later. A plain offset read in that
time returned the offset before the commit, and the worker restored the older checkpoint and
committed 278 predictions twice. A stable read (``require_stable``) once stayed unstable for
minutes (7 tries of 30 s in CI). A record in a topic of our own has no such window: once no
transaction on its partition is undecided (its last stable offset is its end), what a
read_committed consumer sees there is exactly what committed.

A broker stopped in the middle of a commit can leave that commit undecided on the partitions
for good (Kafka 4.3.1 here: it acknowledged the commit, could not write its markers while
shutting down, and did not write them after its restart). The worker therefore also notes each
commit Kafka confirmed to it (`PartitionCheckpoints.confirm`) and falls back on that; its next
commit, from the same producer id, closes the undecided one on those partitions.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaException as KafkaError

from pipelines.runners.kafka_config import KafkaClientConfig
from pipelines.runners.kafka_connect import PROBE_TIMEOUT_S, confluent_settings

if TYPE_CHECKING:
    from pipelines.runners.kafka_job import KafkaJob

# A transaction left open by a dead worker is aborted by the broker after librdkafka's
# transaction.timeout.ms (60 s); a restarted broker finishes what it acknowledged within ~20 s.
SETTLE_TIMEOUT_S = 90.0
# How long a restore waits for the commits topic to settle when the worker has a confirmed
# commit to fall back on (without one: SETTLE_TIMEOUT_S).
CONFIRMED_SETTLE_S = 20.0
_TAIL = 64   # records read back from the end first (a few checkpoints' worth)


log = logging.getLogger("driftflow")


def restore_offset(job: KafkaJob, partition: int, confirmed: int | None,
                   group_offset: Callable[[int], int | None]) -> int | None:
    """Where ``partition``'s last committed transaction left it (``exactly_once``), asked of
    the commits topic; for a job whose transactions predate that topic, ``group_offset``
    (the group's committed offset). When the topic stays undecided (a broker that restarted
    mid-commit can leave it so), the last offset Kafka confirmed to the worker
    (``confirmed``), if any; without one, `KafkaError`."""
    try:
        offset = last_committed_offset(
            job.bootstrap, job.client_config, job.group, job.output_topic("commits"),
            partition, settle_s=None if confirmed is None else CONFIRMED_SETTLE_S)
    except KafkaError as exc:
        if confirmed is None:
            raise
        log.warning("partition %d: %s; restoring the last checkpoint Kafka confirmed "
                    "(offset %d)", partition, exc, confirmed)
        return confirmed
    return offset if offset is not None else group_offset(partition)


def commit_record(partition: int, next_offset: int) -> bytes:
    """The commits topic's record for ``partition``'s checkpoint at ``next_offset``."""
    return json.dumps({"partition": partition, "next_offset": next_offset}).encode()


def _end(admin: Any, tp: Any, isolation: Any) -> int:
    """``tp``'s end offset at ``isolation`` (read_committed: its last stable offset)."""
    from confluent_kafka.admin import OffsetSpec

    futures = admin.list_offsets({tp: OffsetSpec.latest()}, isolation_level=isolation,
                                 request_timeout=PROBE_TIMEOUT_S)
    return int(futures[tp].result(timeout=PROBE_TIMEOUT_S + 1.0).offset)


def _settled_end(bootstrap: str, config: KafkaClientConfig, tp: Any, settle_s: float) -> int:
    """``tp``'s end offset once no transaction on it is undecided; `KafkaError` after
    ``settle_s`` seconds."""
    import confluent_kafka as ck
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(confluent_settings(bootstrap, config))
    deadline = time.monotonic() + settle_s
    while True:
        try:
            stable = _end(admin, tp, ck.IsolationLevel.READ_COMMITTED)
            end = _end(admin, tp, ck.IsolationLevel.READ_UNCOMMITTED)
            if stable >= end:
                return end
            why: Any = f"a transaction is undecided (last stable offset {stable} < end {end})"
        except (KafkaError, TimeoutError) as exc:
            why = exc
        if time.monotonic() > deadline:
            raise KafkaError(f"{tp.topic}[{tp.partition}] not settled within "
                             f"{settle_s:g} s: {why}")
        time.sleep(0.2)


def last_committed_offset(bootstrap: str, config: KafkaClientConfig, group: str, topic: str,
                          partition: int, settle_s: float | None = None) -> int | None:
    """The next offset of the last checkpoint of ``partition`` whose transaction committed
    (None: no committed record in ``topic``); waits for undecided transactions first, up to
    ``settle_s`` (None: `SETTLE_TIMEOUT_S`), then raises `KafkaError`."""
    import confluent_kafka as ck

    tp = ck.TopicPartition(topic, partition)
    end = _settled_end(bootstrap, config, tp, SETTLE_TIMEOUT_S if settle_s is None else settle_s)
    if end == 0:
        return None
    consumer = ck.Consumer({**confluent_settings(bootstrap, config),
                            "group.id": f"{group}.restore", "enable.auto.commit": False,
                            "auto.offset.reset": "earliest", "enable.partition.eof": True,
                            "isolation.level": "read_committed"})
    try:
        back = _TAIL
        while True:   # aborted transactions' records are skipped: read further back if needed
            start = max(0, end - back)
            last = _last_value(consumer, ck.TopicPartition(topic, partition, start))
            if last is not None or start == 0:
                break
            back *= 8
    finally:
        consumer.close()
    return None if last is None else int(json.loads(last)["next_offset"])


def _last_value(consumer: Any, start: Any) -> bytes | None:
    """The value of the last committed record from ``start`` to the partition's end."""
    import confluent_kafka as ck

    consumer.assign([start])
    last, deadline = None, time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        for m in consumer.consume(500, timeout=PROBE_TIMEOUT_S):
            error = m.error()
            if error is None:
                last = m.value()
            elif error.code() == ck.KafkaError._PARTITION_EOF:
                return last
            elif error.fatal() or not error.retriable():
                raise KafkaError(error)
        if time.monotonic() > deadline:
            raise KafkaError(f"{start.topic}[{start.partition}]: its end not reached within "
                             f"{SETTLE_TIMEOUT_S:g} s")
