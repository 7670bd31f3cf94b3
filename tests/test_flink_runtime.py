"""The Flink runner's metrics, ``--key-by FIELD`` and a real standalone cluster, against the
real broker: the metrics read from the mini-cluster's REST endpoint (what Flink's web UI
shows), one model per field value, and ``driftflow run --flink-address`` submitting to a
cluster started here from the apache-flink wheel's scripts. Each run's outputs are checked
against the same data path run in this process. Under CI=true a missing Flink, connector jar,
Java or broker fails the tests instead of skipping.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from typing import Any

import pytest

from infra import kafka as infra_kafka
from pipelines.host import ModelHost, Prediction
from pipelines.models import make_model
from pipelines.runners.kafka_job import KafkaJob
from pipelines.sources import open_source
from pipelines.validation import JsonDecoder
from tests.flink_support import connector_fixture, read_topic  # noqa: F401 - a fixture
from tests.support import unavailable

pytestmark = pytest.mark.integration

SEED = 3
POISON = ["{oops", '{"id": "p-nan", "x": {"0": NaN, "1": 1.0, "2": 2.0}, "y": 1}']
# The model's gauges reach the REST endpoint at a bundle's end, then within the metric
# fetcher's interval (1 s); a short stream is processed in well under a minute, after a
# mini-cluster start of 10-50 s on a busy 2-core machine.
METRICS_DEADLINE_S = 180.0
CLI_TIMEOUT_S = 300


def _produce(bootstrap: str, topic: str, n: int, partition_of: Any = None,
             field: Any = None, poison: list[str] = ()) -> None:
    """``n`` SEA records to a 2-partition ``topic`` (keyed ``k{i % 32}``, or sent to
    ``partition_of(i)``), each with ``{field(i)}`` when given, then ``poison`` values."""
    from kafka import KafkaProducer

    infra_kafka.create_topic(topic, partitions=2, bootstrap=bootstrap)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    try:
        for i, r in enumerate(open_source("synthetic:SEAa", limit=n, seed=7)):
            doc = {"id": i, "x": r.x, "y": r.y, **(field(i) if field else {})}
            producer.send(topic, json.dumps(doc).encode(), key=f"k{i % 32}".encode(),
                          partition=partition_of(i) if partition_of else None)
        for k, value in enumerate(poison):
            producer.send(topic, value.encode(), key=f"k{k}".encode())
        producer.flush()
    finally:
        producer.close()


def _hosts(messages: list[Any], key_of: Any, seed_of: Any) -> tuple[dict[Any, ModelHost],
                                                                      dict[tuple[int, int], Any]]:
    """The data path in this process: one `ModelHost` per ``key_of(message)``, seeded
    ``seed_of(key)``, over its messages in partition and offset order; the hosts and every
    output by (partition, offset)."""
    hosts: dict[Any, ModelHost] = {}
    decoders: dict[Any, JsonDecoder] = {}
    out = {}
    for m in messages:
        key = key_of(m)
        if key not in hosts:
            hosts[key] = ModelHost(make_model("adaptive", seed=seed_of(key)))
            decoders[key] = JsonDecoder()
        out[m.partition, m.offset] = hosts[key].process(decoders[key](m.value, m.offset,
                                                                      m.partition))
        hosts[key].take_events()
    return hosts, out


def _assert_predictions(bootstrap: str, topic: str, reference: dict[tuple[int, int], Any],
                        n: int) -> None:
    predictions = [json.loads(m.value) for m in read_topic(bootstrap, topic, committed=False)]
    assert sorted(p["id"] for p in predictions) == list(range(n))
    for p in predictions:
        expected = reference[p["partition"], p["offset"]]
        assert isinstance(expected, Prediction) and expected.id == p["id"]
        assert (p["y_pred"], p["confidence"]) == (expected.y_pred, expected.confidence)


def _model_gauges(rest: str, job_id: str) -> dict[str, dict[str, int]]:
    """``{key: {gauge: value}}`` of the model operator, as Flink's REST API (the web UI)
    serves them; {} before they are registered."""
    def get(path: str) -> Any:
        with urllib.request.urlopen(f"http://{rest}{path}", timeout=10) as answer:
            return json.loads(answer.read())

    vertex = next(v["id"] for v in get(f"/jobs/{job_id}")["vertices"]
                  if v["name"].startswith("driftflow-model"))
    ids = [m["id"] for m in get(f"/jobs/{job_id}/vertices/{vertex}/metrics")
           if ".driftflow.key." in m["id"]]
    if not ids:
        return {}
    query = urllib.parse.quote(",".join(ids), safe=",")
    gauges: dict[str, dict[str, int]] = {}
    for metric in get(f"/jobs/{job_id}/vertices/{vertex}/metrics?get={query}"):
        key, name = metric["id"].split(".driftflow.key.", 1)[1].rsplit(".", 1)
        gauges.setdefault(key, {})[name] = int(metric["value"])
    return gauges


def _prometheus_gauges(ports: range, job_id: str) -> dict[str, dict[str, int]]:
    """``{key: {gauge: value}}`` of job ``job_id``'s model operator, as Flink's Prometheus
    reporter serves them on any of ``ports`` (a cluster's processes each take one)."""
    pattern = re.compile(r'^flink_taskmanager_job_task_operator_driftflow_key_(\w+)\{(.*)\} (\S+)$')
    gauges: dict[str, dict[str, int]] = {}
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://localhost:{port}/metrics", timeout=10) as page:
                text = page.read().decode()
        except OSError:
            continue   # no reporter on this port
        for line in text.splitlines():
            match = pattern.match(line)
            if match and f'job_id="{job_id}"' in match.group(2):
                key = re.search(r'key="([^"]*)"', match.group(2)).group(1)
                gauges.setdefault(key, {})[match.group(1)] = int(float(match.group(3)))
    return gauges


def _expected_gauges(hosts: dict[int, ModelHost]) -> dict[str, dict[str, int]]:
    """Each partition's figures as the model's gauges name them, from the in-process path."""
    return {str(p): {"records_in": h.records, "predictions": h.predictions,
                     "dead_letters": h.dead_letters, "drifts": len(h.drift_positions),
                     "experts": h.model.n_experts,
                     "windowed_accuracy_permille": round(1000 * h.metrics.windowed_accuracy)}
            for p, h in hosts.items()}


def _settled_gauges(read: Any, expected: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """``read()`` until every key's records_in is the expected one (or the deadline), then
    once more: every gauge from the same, last bundle."""
    deadline = time.monotonic() + METRICS_DEADLINE_S
    while time.monotonic() < deadline:
        if {k: g.get("records_in") for k, g in read().items()} \
                == {k: e["records_in"] for k, e in expected.items()}:
            break
        time.sleep(1.0)
    time.sleep(2.0)
    return read()


def _assert_gauges(gauges: dict[str, dict[str, int]], expected: dict[str, dict[str, int]],
                   records: int) -> None:
    assert {k: {name: g.get(name) for name in expected.get(k, {})} for k, g in gauges.items()} \
        == expected
    assert sum(g["records_in"] for g in gauges.values()) == records
    assert all(g["event_time_lag_ms"] >= 0 for g in gauges.values())


def test_the_models_metrics_reach_flinks_rest_endpoint(kafka_broker: str, connector: None,
                                                       tmp_path) -> None:
    """An unbounded job with two keys (partitions): once every record is in, each key's
    gauges on Flink's REST endpoint equal the in-process path's figures for that partition:
    records in (= predictions + dead letters), predictions, dead letters, drifts, experts,
    windowed accuracy (per mille); the event-time lag is there and not negative."""
    from pipelines.runners.flink import FlinkOptions, start_flink

    topic, n = f"flink-metrics-{uuid.uuid4().hex[:8]}", 600
    _produce(kafka_broker, topic, n, poison=POISON)
    hosts, _ = _hosts(read_topic(kafka_broker, topic), lambda m: m.partition,
                      lambda p: SEED + p)
    expected = _expected_gauges(hosts)
    assert sum(e["dead_letters"] for e in expected.values()) == len(POISON)
    rest = f"localhost:{infra_kafka.free_port()}"
    client, _ = start_flink(KafkaJob(kafka_broker, topic, seed=SEED),
                            FlinkOptions(bundle_size=100, rest_port=int(rest.split(":")[1])),
                            until_end=False)
    job_id = str(client.get_job_id())
    try:
        gauges = _settled_gauges(lambda: _model_gauges(rest, job_id), expected)
    finally:
        client.cancel().result()
    _assert_gauges(gauges, expected, n + len(POISON))


def test_key_by_a_field_gives_one_model_per_value(kafka_broker: str, connector: None) -> None:
    """``--key-by device``: devices a and b share partition 0, c is alone on partition 1.
    Each device gets a model of its own (seeded from the value, as `model_slot` says), and
    every prediction equals the in-process path's on that device's records in offset order."""
    from pipelines.runners.flink import FlinkOptions, run_flink
    from pipelines.runners.flink.operator import model_digest, model_slot

    topic, n = f"flink-keyby-{uuid.uuid4().hex[:8]}", 600
    device = "abc"
    _produce(kafka_broker, topic, n, partition_of=lambda i: 0 if device[i % 3] != "c" else 1,
             field=lambda i: {"device": device[i % 3]})
    hosts, reference = _hosts(read_topic(kafka_broker, topic),
                              lambda m: json.loads(m.value)["device"],
                              lambda key: model_slot(key, SEED)[1])
    metrics = run_flink(KafkaJob(kafka_broker, topic, seed=SEED),
                        FlinkOptions(key_by="device", bundle_size=100), until_end=True)
    _assert_predictions(kafka_broker, f"{topic}.predictions", reference, n)
    assert metrics["key_by"] == "device"
    assert {k: s["records"] for k, s in metrics["partitions"].items()} \
        == {"a": n // 3, "b": n // 3, "c": n // 3}
    assert {k: s["model_sha256"] for k, s in metrics["partitions"].items()} \
        == {k: model_digest(h) for k, h in hosts.items()}


def _without_pyflink_worker_settings() -> dict[str, str]:
    """This process's environment for a child PyFlink client: an earlier mini-cluster job ran
    its Python functions in this process (PyFlink's loopback mode), which set the variables
    that tell a Python UDF worker not to start a Java gateway (or to reuse this one)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYFLINK_GATEWAY")}


def test_driftflow_run_submits_to_a_standalone_cluster(kafka_broker: str, connector: None,
                                                       tmp_path) -> None:
    """A standalone cluster (one JobManager, one TaskManager, from the wheel's scripts, with
    Flink's Prometheus reporter) is started; ``driftflow run --runtime flink --flink-address``
    submits a bounded job to it, which finishes there, writes metrics.json, and predicts as
    the in-process path does on each partition's records (seed + partition). Then an unbounded
    job on the same records: each key's gauges, scraped from the TaskManager's Prometheus
    endpoint, equal the in-process path's figures. The cluster is stopped after."""
    from infra.flink_cluster import FlinkClusterError, standalone_cluster
    from pipelines.runners.flink import FlinkOptions, start_flink

    topic, n = f"flink-cluster-{uuid.uuid4().hex[:8]}", 400
    _produce(kafka_broker, topic, n)
    hosts, reference = _hosts(read_topic(kafka_broker, topic), lambda m: m.partition,
                              lambda p: SEED + p)
    cli = os.path.join(os.path.dirname(sys.executable), "driftflow")
    first = infra_kafka.free_port()
    prometheus = range(first, first + 4)
    try:
        with standalone_cluster(tmp_path / "cluster",
                                prometheus=f"{prometheus.start}-{prometheus.stop - 1}") as rest:
            run = subprocess.run(
                [cli, "run", "--runtime", "flink", "--flink-address", rest, "--source",
                 f"kafka:{topic}", "--bootstrap", kafka_broker, "--seed", str(SEED),
                 "--until-end", "--checkpoint-dir", str(tmp_path / "ck"),
                 "--out", str(tmp_path / "out")],
                capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False,
                env=_without_pyflink_worker_settings())
            assert run.returncode == 0, run.stderr[-3000:]
            with urllib.request.urlopen(f"http://{rest}/jobs/overview", timeout=10) as answer:
                jobs = json.loads(answer.read())["jobs"]
            job = KafkaJob(kafka_broker, topic, seed=SEED, group_id=f"{topic}-live",
                           output_prefix=f"{topic}-live", checkpoint_dir=str(tmp_path / "ck2"))
            client, _ = start_flink(job, FlinkOptions(bundle_size=100, flink_address=rest),
                                    until_end=False)
            job_id = str(client.get_job_id())
            try:
                gauges = _settled_gauges(lambda: _prometheus_gauges(prometheus, job_id),
                                         _expected_gauges(hosts))
            finally:
                client.cancel().result()
    except FlinkClusterError as exc:
        unavailable(f"could not start a standalone Flink cluster: {exc}")
    assert [(j["name"], j["state"]) for j in jobs] == [(f"driftflow {topic}", "FINISHED")]
    with open(tmp_path / "out" / "metrics.json") as f:
        written = json.load(f)
    assert written["runtime"] == "flink" and written["records"] == n
    _assert_predictions(kafka_broker, f"{topic}.predictions", reference, n)
    _assert_gauges(gauges, _expected_gauges(hosts), n)
