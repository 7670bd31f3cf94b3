"""The Flink runner against the real broker and the real PyFlink mini-cluster.

One recorded stream (SEA records and poison messages, produced by Kafka's console producer to
a 4-partition topic) is run twice with ``--exactly-once``: uninterrupted (parallelism 2), and
with a task failure injected once mid-stream (parallelism 1). Both are checked against the same
path run in this process on each partition's messages in offset order (a `ModelHost` seeded
``seed + partition``, as the local runner hosts a model and the Ray runner seeds it).
Under CI=true a missing Flink, connector jar or broker fails the tests instead of skipping.
"""
from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections import Counter
from typing import Any

import pytest

from infra import kafka as infra_kafka
from pipelines.host import ModelHost, Prediction
from pipelines.models import make_model
from pipelines.records import DeadLetter
from pipelines.runners.kafka_job import KafkaJob
from pipelines.sources import open_source
from pipelines.validation import JsonDecoder
from tests.flink_support import connector_fixture, read_topic  # noqa: F401 - a fixture

pytestmark = pytest.mark.integration

RECORDS, PARTITIONS, SEED = 2400, 4, 5
FAIL_AT = 200                     # the injected failure: after a checkpoint past record 200
NULL_MARKER = "<null>"             # the console producer sends this line's value as null
POISON = [                        # (message value, the reason's start)
    ("{oops", "invalid JSON"),
    ("", "invalid JSON"),         # an empty value
    (NULL_MARKER, "message has no value (null)"),   # a tombstone: the Ray runner's reason
    ("[1, 2]", "JSON message is a list"),
    ('{"id": "p-nan", "x": {"0": NaN, "1": 1.0, "2": 2.0}, "y": 1}', "feature '0' is NaN"),
    ('{"id": "p-str", "x": {"0": "abc", "1": 1.0, "2": 2.0}, "y": 0}',
     "feature '0' is not a number"),
    ('{"id": "p-type", "x": {"0": [1], "1": 1.0, "2": 2.0}, "y": 0}',
     "feature '0' has unsupported type list"),
]


def _produce(bootstrap: str, topic: str) -> list[str]:
    """SEA records (keys k0..k31, so the default partitioner spreads them) with the poison
    messages spread among them, through Kafka's console producer; returns the lines sent."""
    infra_kafka.create_topic(topic, partitions=PARTITIONS, bootstrap=bootstrap)
    lines, poison = [], iter(POISON)
    for i, r in enumerate(open_source("synthetic:SEAa", limit=RECORDS, seed=7)):
        lines.append(f"k{i % 32}|" + json.dumps({"id": i, "x": r.x, "y": r.y}))
        if i % (RECORDS // len(POISON)) == 100:
            lines.append(f"k{i % 32}|" + next(poison)[0])
    cmd = infra_kafka.console_producer_cmd(topic, bootstrap, extra=[
        "--reader-property", "parse.key=true", "--reader-property", "key.separator=|",
        "--reader-property", f"null.marker={NULL_MARKER}"])
    subprocess.run(cmd, input="\n".join(lines) + "\n", text=True, check=True, timeout=120,
                   capture_output=True)
    return lines


def _reference(messages: list[Any]) -> tuple[dict[tuple[int, int], Any], str]:
    """The data path in this process on each partition's messages in order: every output by
    (partition, offset), and each partition's model digest."""
    from pipelines.runners.flink.operator import model_digest

    out, digests = {}, {}
    for p in range(PARTITIONS):
        host, decoder = ModelHost(make_model("adaptive", seed=SEED + p)), JsonDecoder()
        for m in (m for m in messages if m.partition == p):
            out[p, m.offset] = host.process(decoder(m.value, m.offset, p))
        digests[p] = model_digest(host)
    return out, digests


@pytest.fixture(scope="module")
def stream(kafka_broker: str, connector: None) -> dict[str, Any]:
    topic = f"flink-sea-{uuid.uuid4().hex[:8]}"
    lines = _produce(kafka_broker, topic)
    messages = read_topic(kafka_broker, topic)
    assert len(messages) == len(lines)
    outputs, digests = _reference(messages)
    return {"topic": topic, "messages": messages, "reference": outputs, "digests": digests}


def _run(bootstrap: str, topic: str, name: str, tmp: Any, parallelism: int) -> dict[str, Any]:
    """A bounded exactly-once run. Python bundles of 100 records: a checkpoint waits for the
    bundle in flight, so small ones make checkpoints complete within a fraction of a second and
    several of them fall inside this short stream (before the injected failure)."""
    from pipelines.runners.flink import FlinkOptions, run_flink

    job = KafkaJob(bootstrap, topic, seed=SEED, group_id=f"{topic}-{name}",
                   output_prefix=f"{topic}-{name}", exactly_once=True,
                   checkpoint_dir=str(tmp / name), checkpoint_seconds=0.3)
    metrics = run_flink(job, FlinkOptions(parallelism=parallelism, bundle_size=100),
                        until_end=True, out_dir=str(tmp / name / "out"))
    return {"metrics": metrics, "job": job,
            **{kind: [json.loads(m.value) for m in read_topic(bootstrap, job.output_topic(kind))]
               for kind in ("predictions", "dead-letter", "drift")}}


@pytest.fixture(scope="module")
def plain_run(kafka_broker: str, stream: dict[str, Any], tmp_path_factory) -> dict[str, Any]:
    return _run(kafka_broker, stream["topic"], "plain", tmp_path_factory.mktemp("flink"), 2)


@pytest.fixture(scope="module")
def failed_run(kafka_broker: str, stream: dict[str, Any], tmp_path_factory) -> dict[str, Any]:
    from pipelines.runners.flink.operator import FAIL_ONCE_ENV

    tmp = tmp_path_factory.mktemp("flink-fail")
    marker = tmp / "failed-once"
    os.environ[FAIL_ONCE_ENV] = f"{FAIL_AT}:{marker}"
    try:
        run = _run(kafka_broker, stream["topic"], "fail", tmp, 1)
    finally:
        del os.environ[FAIL_ONCE_ENV]
    run["failed"] = marker.exists()
    return run


def _check_against_reference(run: dict[str, Any], stream: dict[str, Any]) -> None:
    """Exactly one prediction per record id, each equal to the in-process path's."""
    predictions = run["predictions"]
    ids = [p["id"] for p in predictions]
    assert len(ids) == len(set(ids)) == RECORDS and set(ids) == set(range(RECORDS))
    for p in predictions:
        expected = stream["reference"][p["partition"], p["offset"]]
        assert isinstance(expected, Prediction) and expected.id == p["id"]
        assert (p["y_pred"], p["confidence"]) == (expected.y_pred, expected.confidence)


def test_exactly_once_predictions_equal_the_local_path_per_partition(
        plain_run: dict[str, Any], stream: dict[str, Any]) -> None:
    _check_against_reference(plain_run, stream)
    metrics = plain_run["metrics"]
    assert metrics["runtime"] == "flink" and metrics["parallelism"] == 2
    assert sorted(metrics["partitions"]) == [str(p) for p in range(PARTITIONS)]
    assert {int(p): s["model_sha256"] for p, s in metrics["partitions"].items()} \
        == stream["digests"]
    assert metrics["accuracy"] > 0.8     # SEA with 10 % noise: ~0.85 at this length
    with open(os.path.join(plain_run["job"].checkpoint_dir, "out", "metrics.json")) as f:
        written = json.load(f)
    assert written["records"] == metrics["records"]


def test_poison_messages_are_dead_letters_with_reasons_and_counts_add_up(
        plain_run: dict[str, Any], stream: dict[str, Any]) -> None:
    dead = plain_run["dead-letter"]
    expected = {(p, o): d for (p, o), d in stream["reference"].items()
                if isinstance(d, DeadLetter)}
    assert len(dead) == len(expected) == len(POISON)
    for d in dead:
        assert d["topic"] == stream["topic"]
        assert d["reason"] == expected[d["partition"], d["offset"]].reason
    reasons = Counter(next(r for v, r in POISON if d["reason"].startswith(r)) for d in dead)
    assert sum(reasons.values()) == len(POISON)
    metrics = plain_run["metrics"]
    assert metrics["records"] == len(stream["messages"]) == RECORDS + len(POISON)
    assert metrics["records"] == (len(plain_run["predictions"]) + metrics["dead_letters"]
                                  + metrics["skipped"])


def test_drift_events_have_the_ray_format(plain_run: dict[str, Any]) -> None:
    assert plain_run["drift"], "no model event on a drifting stream"
    for event in plain_run["drift"]:
        assert {"topic", "kind", "position", "offset", "partition"} <= event.keys()


def test_a_task_failure_restores_the_last_checkpoint_and_matches_an_uninterrupted_run(
        failed_run: dict[str, Any], plain_run: dict[str, Any], stream: dict[str, Any]) -> None:
    assert failed_run["failed"], "the injected failure did not happen"
    _check_against_reference(failed_run, stream)
    parts = failed_run["metrics"]["partitions"]
    assert {p: s["model_sha256"] for p, s in parts.items()} \
        == {p: s["model_sha256"] for p, s in plain_run["metrics"]["partitions"].items()}
    # the job came back from a checkpoint that held model state, not from nothing. How far in
    # it is depends on when the checkpoint was triggered: a bounded source emits all its records
    # at once and the barrier of a later checkpoint waits behind them, so the one that completes
    # after the FAIL_AT-th record may have been triggered earlier
    restored = [s["restored_at_offset"] or 0 for s in parts.values()]
    assert 0 < sum(restored) < len(stream["messages"]), f"not restored mid-stream: {restored}"
    assert failed_run["metrics"]["records"] == plain_run["metrics"]["records"]


def _produce_ids(bootstrap: str, topic: str, ids: range) -> None:
    """SEA records ``ids`` (keyed k0..k31, as `_produce`) with kafka-python."""
    from kafka import KafkaProducer

    rows = list(open_source("synthetic:SEAa", limit=ids.stop, seed=7))
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for i in ids:
            producer.send(topic, json.dumps({"id": i, "x": rows[i].x, "y": rows[i].y}).encode(),
                          key=f"k{i % 32}".encode())
        producer.flush()
    finally:
        producer.close()


def _wait_for_predictions(bootstrap: str, topic: str, n: int, timeout_s: float = 180) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while len(read_topic(bootstrap, topic)) < n:
        assert time.monotonic() < deadline, f"fewer than {n} predictions on {topic}"


@pytest.mark.slow   # two more jobs: ~1.5 min on 2 shared cores
def test_stop_with_savepoint_then_restart_from_it_predicts_as_one_run(
        kafka_broker: str, connector: None, tmp_path) -> None:
    """An unbounded exactly-once job is stopped with a savepoint once it has predicted every
    record; more records arrive; a new job started from the savepoint predicts them as one
    uninterrupted model would (each partition's model and offsets came back), and no record
    is predicted twice."""
    from pipelines.runners.flink import FlinkOptions, start_flink, stop_with_savepoint

    topic, first, more = f"flink-sp-{uuid.uuid4().hex[:8]}", 800, 400
    infra_kafka.create_topic(topic, partitions=PARTITIONS, bootstrap=kafka_broker)
    _produce_ids(kafka_broker, topic, range(first))
    job = KafkaJob(kafka_broker, topic, seed=SEED, exactly_once=True,
                   checkpoint_dir=str(tmp_path / "ck"), checkpoint_seconds=0.3)
    options = FlinkOptions(bundle_size=100)
    client, _ = start_flink(job, options, until_end=False)
    _wait_for_predictions(kafka_broker, job.output_topic("predictions"), first)
    savepoint = stop_with_savepoint(client, str(tmp_path / "savepoints"))
    _produce_ids(kafka_broker, topic, range(first, first + more))
    client, _ = start_flink(job, FlinkOptions(bundle_size=100, from_savepoint=savepoint),
                            until_end=False)
    try:
        _wait_for_predictions(kafka_broker, job.output_topic("predictions"), first + more)
    finally:
        client.cancel().result()
    predictions = [json.loads(m.value) for m in read_topic(kafka_broker, job.output_topic("predictions"))]
    assert sorted(p["id"] for p in predictions) == list(range(first + more))
    reference, _ = _reference(read_topic(kafka_broker, topic))
    for p in predictions:
        expected = reference[p["partition"], p["offset"]]
        assert (p["id"], p["y_pred"], p["confidence"]) == (expected.id, expected.y_pred,
                                                          expected.confidence)
