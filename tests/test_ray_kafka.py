"""The Ray runner against the real Kafka broker and a real local Ray: bounded runs, outputs,
metrics, and deterministic recovery after SIGKILL of an actor's process. Nothing is mocked."""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from infra import kafka as infra_kafka
from pipelines.checkpoints import read_bytes, unseal
from pipelines.checkpoints.partition import load_labels, load_partition, partition_parts
from pipelines.runners import kafka_io as kio
from pipelines.runners.kafka_job import KafkaJob
from pipelines.runners.ray.driver import init_local_ray
from pipelines.runners.ray.worker import PartitionWorker
from pipelines.sources import open_source
from tests.delayed_labels import produce_delayed
from tests.support import unavailable

pytestmark = pytest.mark.integration

# One JVM start (~1-2 s) plus a few thousand sends; the bound only guards against a hung tool.
PRODUCER_TIMEOUT_S = 120
# Reading back an output topic that is already complete: group-less fetches take well under a
# second per thousand messages; 60 s covers a loaded 2-core CI box.
READ_DEADLINE_S = 60.0
# A bounded job over a few thousand records takes seconds; 150 s bounds a hung actor or restart.
JOB_TIMEOUT_S = 150.0
# `ray start --head` with the dashboard on 2 busy cores measured ~10-20 s to serve jobs.
HEAD_START_S = 90.0
# `ray start --block` tears its processes down in a few seconds on SIGTERM.
HEAD_STOP_S = 30.0
BAD_LINES = ["k-bad|{not json", 'k-bad|[1, 2, 3]', 'k-bad|{"id": "b3", "x": {"0": 1.0}}']


@pytest.fixture(scope="module")
def ray_local() -> Iterator[int]:
    """A small real local Ray instance for this module (2 CPUs, no dashboard); yields the port
    its metrics agent serves Prometheus text on."""
    try:
        import ray

        metrics_port = infra_kafka.free_port()
        # each worker limits BLAS to one thread when it imports `pipelines` (pipelines.blas)
        init_local_ray(num_cpus=2, log_to_driver=False, _metrics_export_port=metrics_port)
    except Exception as exc:  # noqa: BLE001 - any failure to start decides fail vs skip
        unavailable(f"could not start Ray: {exc}")
    try:
        yield metrics_port
    finally:
        ray.shutdown()


def _scrape(port: int, metric: str, topic: str, deadline_s: float) -> dict[str, float]:
    """``{partition: value}`` of a Prometheus ``metric`` for ``topic``, summed over Ray workers,
    polled until the partitions' values stop changing or ``deadline_s`` passes."""
    pattern = re.compile(rf'^{metric}{{(.*)}} (\S+)$')
    last: dict[str, float] = {}
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        values: dict[str, float] = {}
        for line in text.decode().splitlines():
            match = pattern.match(line)
            if match and f'topic="{topic}"' in match.group(1):
                part = re.search(r'partition="(\d+)"', match.group(1)).group(1)
                values[part] = values.get(part, 0.0) + float(match.group(2))
        if values and values == last:
            return values
        last = values
        time.sleep(2.0)
    return last


def _topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _produce(bootstrap: str, topic: str, n: int, partitions: int = 4,
             bad: list[str] = ()) -> list[int]:
    """``n`` SEA records as ``{"id", "x", "y"}`` JSON through Kafka's console producer, keyed
    so they spread over the partitions, plus ``bad`` raw lines; returns the record ids."""
    infra_kafka.create_topic(topic, partitions=partitions, bootstrap=bootstrap)
    lines = [f"k{i % 32}|" + json.dumps({"id": i, "x": r.x, "y": r.y})
             for i, r in enumerate(open_source("synthetic:SEAa", limit=n, seed=7))]
    lines[n // 2:n // 2] = list(bad)
    cmd = infra_kafka.console_producer_cmd(topic, bootstrap, extra=[
        "--reader-property", "parse.key=true", "--reader-property", "key.separator=|"])
    proc = subprocess.run(cmd, input="\n".join(lines) + "\n", capture_output=True, text=True,
                          timeout=PRODUCER_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    return list(range(n))


def _read_all(bootstrap: str, topic: str, committed_only: bool = False) -> list[dict]:
    """Every message of ``topic`` (all partitions, from the beginning) as parsed JSON; with
    ``committed_only``, only what committed transactions wrote."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             isolation_level="read_committed" if committed_only
                             else "read_uncommitted")
    try:
        tps = [TopicPartition(topic, p) for p in kio.list_partitions(bootstrap, topic)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[dict] = []
        deadline = time.monotonic() + READ_DEADLINE_S
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for messages in consumer.poll(timeout_ms=500).values():
                out += [json.loads(m.value) for m in messages]
        return out
    finally:
        consumer.close()


def _start_head(tmp_path) -> tuple[subprocess.Popen, str, dict[str, str], int]:
    """`ray start --head --block` on free ports with the dashboard (job server) and token auth
    using a token file of this test's own; returns the process, job-server URL and env."""
    import secrets

    token = tmp_path / "auth_token"
    token.write_text(secrets.token_hex(32))
    bin_dir = os.path.dirname(sys.executable)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
           "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", "OPENBLAS_NUM_THREADS": "1",
           # SIGTERM otherwise drains the node for up to 30 s (for Serve); nothing to drain here
           "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
    env.pop("RAY_ADDRESS", None)
    port = infra_kafka.free_port
    dashboard, gcs = port(), port()
    cmd = [os.path.join(bin_dir, "ray"), "start", "--head", "--block", "--num-cpus", "2",
           f"--port={gcs}", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
           f"--dashboard-port={dashboard}", f"--ray-client-server-port={port()}",
           f"--dashboard-agent-listen-port={port()}", f"--dashboard-agent-grpc-port={port()}",
           f"--metrics-export-port={port()}", f"--runtime-env-agent-port={port()}",
           f"--node-manager-port={port()}", f"--object-manager-port={port()}",
           "--disable-usage-stats"]
    proc = subprocess.Popen(cmd, env=env, stdout=open(tmp_path / "head.log", "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://127.0.0.1:{dashboard}", env, gcs


def _stop_head(proc: subprocess.Popen, gcs_port: int) -> None:
    """SIGTERM the `ray start --block` session we started (it stops its own processes), and
    drop the address file it leaves, so a later plain `ray.init()` does not aim at it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=HEAD_STOP_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=HEAD_STOP_S)
    current = "/tmp/ray/ray_current_cluster"
    if os.path.exists(current) and open(current).read().strip().endswith(f":{gcs_port}"):
        os.remove(current)


def test_submit_runs_the_job_on_a_token_protected_cluster(kafka_broker: str, tmp_path) -> None:
    topic = _topic("ray-submit")
    ids = _produce(kafka_broker, topic, 600)
    try:
        proc, address, env, gcs = _start_head(tmp_path)
    except OSError as exc:
        unavailable(f"could not start a Ray head: {exc}")
    ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
    try:
        deadline = time.monotonic() + HEAD_START_S
        while subprocess.run([ray_cli, "job", "list", "--address", address], env=env,
                             capture_output=True, timeout=HEAD_START_S).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                msg = f"Ray head did not serve jobs:\n{(tmp_path / 'head.log').read_text()[-3000:]}"
                unavailable(msg)
            time.sleep(1.0)
        wrong = {**env, "RAY_AUTH_TOKEN": "0" * 64}
        refused = subprocess.run([ray_cli, "job", "list", "--address", address], env=wrong,
                                 capture_output=True, text=True, timeout=HEAD_START_S)
        assert refused.returncode != 0, "a wrong token must be refused (token auth is on)"

        out = tmp_path / "out"
        sub = subprocess.run(
            [os.path.join(os.path.dirname(ray_cli), "driftflow"), "submit", "--address", address,
             # no --runtime: a kafka: source runs on Ray
             "--", "run", "--source", f"kafka:{topic}", "--until-end",
             "--actors", "2", "--bootstrap", kafka_broker, "--out", str(out), "--seed", "1"],
            env=env, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            capture_output=True, text=True, timeout=JOB_TIMEOUT_S)
        assert sub.returncode == 0, sub.stdout[-3000:] + sub.stderr[-3000:]
        assert "succeeded" in sub.stdout + sub.stderr
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["records"] == len(ids) and metrics["runtime"] == "ray"
        assert sorted(p["id"] for p in _read_all(kafka_broker, f"{topic}.predictions")) == ids
    finally:
        _stop_head(proc, gcs)


def test_bounded_ray_run_writes_outputs_and_metrics(kafka_broker: str, ray_local: None,
                                                    tmp_path) -> None:
    from pipelines.runners.ray.driver import run_ray

    topic = _topic("ray-bounded")
    ids = _produce(kafka_broker, topic, 1200, bad=BAD_LINES)
    job = KafkaJob(kafka_broker, topic, seed=3, checkpoint_dir=str(tmp_path / "ckpt"),
                   checkpoint_every=250)
    metrics = run_ray(job, actors=2, until_end=True, out_dir=str(tmp_path / "out"))

    assert metrics["records"] == len(ids) + len(BAD_LINES)
    assert metrics["dead_letters"] == len(BAD_LINES) and metrics["actors"] == 2
    # each partition's first record comes before its model learned anything: counted, unscored
    assert metrics["scored"] + metrics["unpredicted"] == len(ids) and metrics["accuracy"] > 0.7
    assert metrics["unpredicted"] == 4
    assert sorted(metrics["partitions"]) == ["0", "1", "2", "3"]
    on_disk = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert on_disk["records"] == metrics["records"]

    preds = _read_all(kafka_broker, f"{topic}.predictions")
    assert sorted(p["id"] for p in preds) == ids                    # exactly once: no crash
    assert {"id", "key", "partition", "offset", "y_pred", "confidence",
            "model_version"} <= set(preds[0])
    by_partition: dict[int, list[int]] = {}
    for p in preds:
        by_partition.setdefault(p["partition"], []).append(p["model_version"])
    assert all(v == sorted(v) for v in by_partition.values())       # per-partition order kept
    dead = _read_all(kafka_broker, f"{topic}.dead-letter")
    assert len(dead) == len(BAD_LINES) and all(d["reason"] and "raw_utf8" in d for d in dead)
    assert any("invalid JSON" in d["reason"] for d in dead)

    # checkpoints hold the final offsets, and the offsets were committed to the consumer group
    for part, info in metrics["partitions"].items():
        blob = read_bytes(job.checkpoint_uri(int(part)))
        assert blob is not None
        assert load_partition(blob, "y").next_offset == info["next_offset"]
    from kafka import KafkaConsumer, TopicPartition
    consumer = KafkaConsumer(bootstrap_servers=kafka_broker, group_id=job.group)
    try:
        for part, info in metrics["partitions"].items():
            assert consumer.committed(TopicPartition(topic, int(part))) == info["next_offset"]
    finally:
        consumer.close()


def test_status_line_and_prometheus_metrics(kafka_broker: str, ray_local: int, tmp_path,
                                           caplog) -> None:
    """The driver logs a one-line status while the job runs, and the workers' Ray metrics reach
    the metrics agent's Prometheus endpoint: records in per partition add up to the topic."""
    from pipelines.runners.ray.driver import run_ray

    topic = _topic("ray-metrics")
    ids = _produce(kafka_broker, topic, 3000, bad=BAD_LINES)
    job = KafkaJob(kafka_broker, topic, seed=5, checkpoint_dir=str(tmp_path / "ckpt"))
    with caplog.at_level(logging.INFO, logger="driftflow"):
        metrics = run_ray(job, actors=2, until_end=True, status_seconds=0.5)
    lines = [r.getMessage() for r in caplog.records if r.name == "driftflow"]
    assert lines and all(line.startswith("driftflow: ") for line in lines)
    assert any(re.search(r"in [1-9][\d,]*, predictions", line) for line in lines)

    records_in = _scrape(ray_local, "ray_driftflow_records_in_total", topic, deadline_s=60.0)
    assert sorted(records_in) == ["0", "1", "2", "3"]
    assert sum(records_in.values()) == metrics["records"] == len(ids) + len(BAD_LINES)
    dead = _scrape(ray_local, "ray_driftflow_dead_letters_total", topic, deadline_s=10.0)
    assert sum(dead.values()) == len(BAD_LINES)
    lag = _scrape(ray_local, "ray_driftflow_lag", topic, deadline_s=10.0)
    assert set(lag.values()) == {0.0}                                # read to the end
    accuracy = _scrape(ray_local, "ray_driftflow_windowed_accuracy", topic, deadline_s=10.0)
    assert all(0.6 < a <= 1.0 for a in accuracy.values())


def _probe_predictions(blob: bytes, probe: list[dict]) -> list[dict]:
    model = load_partition(blob, "y").host.model
    return [model.predict_proba_one(x) for x in probe]


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
def test_sigkill_actor_recovers_to_identical_models(kafka_broker: str, ray_local: None,
                                                    tmp_path, exactly_once: bool) -> None:
    import ray

    from bench.kafka_ray import SigkillOnce
    from pipelines.runners.ray.driver import drive, start_workers

    topic = _topic("ray-crash")
    ids = _produce(kafka_broker, topic, 4000)

    # the uninterrupted reference: the same worker class in this process, no Ray, no crash
    ref_job = KafkaJob(kafka_broker, topic, seed=5, checkpoint_dir=str(tmp_path / "ref"),
                       checkpoint_every=100, group_id=_topic("ref"), output_prefix=_topic("ref"))
    kio.ensure_topics(kafka_broker, [ref_job.output_topic(k) for k in
                                     ("predictions", "drift", "dead-letter")], 4)
    reference = PartitionWorker(ref_job, [0, 1, 2, 3])
    reference.run(until_end=True)
    reference.close()

    job = KafkaJob(kafka_broker, topic, seed=5, checkpoint_dir=str(tmp_path / "ray"),
                   checkpoint_every=100, exactly_once=exactly_once)
    workers = start_workers(job, 2)
    victim_parts = workers[0][1]
    total = sum(reference.progress()["next_offsets"][p] for p in victim_parts)
    kill = SigkillOnce(0, total // 4)
    results = drive(workers, on_progress=kill, step_seconds=0.02)
    assert kill.killed is not None, "the victim was never killed"
    assert sum(kill.killed["next_offsets"][p] for p in victim_parts) < total, \
        "the victim had finished before it was killed"
    restart_to_first = kill.restart_seconds()
    ray.get([w.close.remote() for w, _ in workers])
    for w, _ in workers:
        ray.kill(w, no_restart=True)
    print(f"\nrestart-to-first-prediction: {restart_to_first:.2f} s")

    preds = _read_all(kafka_broker, f"{topic}.predictions", committed_only=exactly_once)
    if exactly_once:   # the killed worker's open transaction was aborted, then redone
        assert sorted(p["id"] for p in preds) == ids
    else:
        assert set(p["id"] for p in preds) == set(ids)              # at least once
        assert len(preds) >= len(ids)
    probe = [r.x for r in open_source("synthetic:SEAg", limit=200, seed=11)]
    for part in range(4):
        got = read_bytes(job.checkpoint_uri(part))
        want = read_bytes(ref_job.checkpoint_uri(part))
        got_state, want_state = load_partition(got, "y"), load_partition(want, "y")
        assert got_state.next_offset == want_state.next_offset
        assert got_state.host.model.n_learned == want_state.host.model.n_learned
        assert got_state.host.records == want_state.host.records        # exactly once in state
        assert got_state.host.metrics.correct == want_state.host.metrics.correct
        assert _probe_predictions(got, probe) == _probe_predictions(want, probe)
        # the model snapshots are identical byte for byte (the envelope's header holds the time)
        got_model, want_model = partition_parts(got)[1], partition_parts(want)[1]
        assert unseal(got_model)[1] == unseal(want_model)[1]
    merged = {p: r for result in results for p, r in result.items()}
    assert sum(r["summary"]["records"] for r in merged.values()) == len(ids)
    assert partition_parts(got)[0]["topic"] == topic


def test_record_then_replay_gives_identical_predictions(kafka_broker: str, ray_local: None,
                                                         tmp_path) -> None:
    from pipelines.cli import main
    from pipelines.runners.ray.driver import run_ray

    topic, copy = _topic("ray-record"), _topic("ray-replayed")
    _produce(kafka_broker, topic, 800, bad=BAD_LINES)
    path = str(tmp_path / "topic.parquet")
    assert main(["record", "--topic", topic, "--out", path, "--bootstrap", kafka_broker]) == 0
    assert main(["replay", path, "--to-topic", copy, "--bootstrap", kafka_broker]) == 0

    def outputs(name: str) -> tuple[list, list]:
        run_ray(KafkaJob(kafka_broker, name, seed=9), actors=2, until_end=True)
        keys = ("partition", "offset", "id", "key", "y_pred", "confidence", "model_version")
        preds = sorted(tuple(p[k] for k in keys)
                       for p in _read_all(kafka_broker, f"{name}.predictions"))
        dead = sorted((d["partition"], d["offset"], d["reason"], d["raw_utf8"])
                      for d in _read_all(kafka_broker, f"{name}.dead-letter"))
        return preds, dead

    original, replayed = outputs(topic), outputs(copy)
    assert len(original[0]) == 800 and len(original[1]) == len(BAD_LINES)
    assert replayed == original


def test_unbounded_run_follows_new_records_until_stopped(kafka_broker: str, ray_local: None,
                                                         tmp_path, monkeypatch) -> None:
    """Without --until-end the workers keep consuming what arrives after they started, take
    timed checkpoints (signed with the driver's key) and finish cleanly on stop()."""
    import ray

    from pipelines.checkpoints.envelope import KEY_ENV
    from pipelines.runners.ray.driver import drive, merge_results, start_workers

    monkeypatch.setenv(KEY_ENV, "test-key")
    topic = _topic("ray-follow")
    infra_kafka.create_topic(topic, partitions=2, bootstrap=kafka_broker)
    job = KafkaJob(kafka_broker, topic, seed=2, checkpoint_dir=str(tmp_path / "ckpt"),
                   checkpoint_every=10_000, checkpoint_seconds=0.5)
    workers = start_workers(job, 2)
    ids: list[int] = []
    read: dict[int, int] = {}
    deadline = time.monotonic() + JOB_TIMEOUT_S

    def produce_then_follow(i: int, progress: dict[str, Any]) -> bool:
        """Produce once the workers run; stop them once they have read every record."""
        if not ids:
            ids.extend(_produce(kafka_broker, topic, 500, partitions=2))
        read[i] = sum(v or 0 for v in progress["next_offsets"].values())
        assert time.monotonic() < deadline, "the workers did not catch up with the topic"
        return sum(read.values()) >= len(ids)

    metrics = merge_results(drive(workers, until_end=False, on_progress=produce_then_follow,
                                  step_seconds=0.1), 1.0, topic)
    ray.get([w.close.remote() for w, _ in workers])
    for w, _ in workers:
        ray.kill(w, no_restart=True)
    assert metrics["records"] == len(ids)
    assert sorted(p["id"] for p in _read_all(kafka_broker, f"{topic}.predictions")) == ids
    for part in (0, 1):
        header, _ = unseal(read_bytes(job.checkpoint_uri(part)), key="test-key")
        assert header["hmac_sha256"]                      # signed by the actor


def _delayed_reference(rows: list, partition_of: dict[int, int], lag: int,
                       seed: int) -> tuple[float, int]:
    """Prequential accuracy and unpredicted records (predicted None, before the partition's
    first label) of the same schedule, in process: a ModelHost with a LabelJoiner
    per partition; a partition applies label i (in label order) once it has processed one of
    its records at or after record i + ``lag`` (what the workers do with the timestamps)."""
    from pipelines.host import ModelHost
    from pipelines.labels import LabelJoiner
    from pipelines.models import make_model
    from pipelines.records import Record

    hosts = {p: ModelHost(make_model("adaptive", seed=seed + p), joiner=LabelJoiner())
             for p in set(partition_of.values())}
    hits, scored, applied = 0, 0, dict.fromkeys(hosts, 0)   # applied: next label index
    for i, r in enumerate(rows):
        q = partition_of[i]
        pred = hosts[q].process(Record(r.x, None, id=i, offset=i))
        hits += pred.y_pred == r.y
        scored += pred.y_pred is not None
        while applied[q] <= i - lag:
            j = applied[q]
            applied[q] += 1
            if partition_of[j] == q:
                hosts[q].apply_label(j, rows[j].y)
    return hits / scored, len(rows) - scored


def test_delayed_labels_join_by_id_and_score_the_arrival_prediction(
        kafka_broker: str, ray_local: None, tmp_path) -> None:
    """Records without labels, labels 1,000 records late on their own topic: every label joins
    its record, the bounded run waits for the labels' end, each record is scored with the
    prediction made on its arrival, accuracy equals the same schedule run in process
    (deterministic despite two topics read concurrently), and it is within 1 point of the same
    stream with its labels in the records.

    30,000 records, because the cost of learning 1,000 records late (slower to learn at the
    start and to recover after SEA's drifts) falls with the stream's length: in process it is
    3.2 points at 6,000 records, 1.0 at 20,000, 0.5 at 30,000. The first 1,000 records come
    before any label: the model has learned nothing, predicts None, and they are not scored."""
    from pipelines.runners.ray.driver import run_ray

    n, lag, seed = 30_000, 1000, 4
    topic, labels, plain = _topic("ray-nolabel"), _topic("ray-labels"), _topic("ray-inrecord")
    ids = produce_delayed(kafka_broker, topic, labels, n, lag)
    produce_delayed(kafka_broker, plain, None, n, lag)

    t0 = time.monotonic()
    delayed = run_ray(KafkaJob(kafka_broker, topic, seed=seed, labels_topic=labels,
                               checkpoint_dir=str(tmp_path / "ckpt"), checkpoint_every=1000),
                      actors=2, until_end=True)
    seconds = time.monotonic() - t0
    baseline = run_ray(KafkaJob(kafka_broker, plain, seed=seed), actors=2, until_end=True)

    assert delayed["records"] == n and delayed["skipped"] == 0
    assert baseline["records"] == n
    assert delayed["labels_joined"] == n
    # before the first label the model has learned nothing and predicts None: those records are
    # counted, not scored (as River's progressive validation does); after it, every one is scored
    assert delayed["scored"] + delayed["unpredicted"] == n
    assert baseline["unpredicted"] == 2                          # each partition's first
    assert delayed["labels_expired"] == 0 and delayed["labels_orphaned"] == 0
    assert delayed["labels_read"] == n and delayed["labels_pending"] == 0
    preds = _read_all(kafka_broker, f"{topic}.predictions")
    assert sorted(p["id"] for p in preds) == ids                 # each predicted once, on arrival
    rows = list(open_source("synthetic:SEAa", limit=n, seed=7))
    hit = {p["id"]: p["y_pred"] == rows[p["id"]].y for p in preds if p["y_pred"] is not None}
    assert len(hit) == delayed["scored"]
    assert delayed["accuracy"] == pytest.approx(sum(hit.values()) / len(hit))   # as emitted
    after = sum(h for i, h in hit.items() if i >= lag) / (n - lag)
    in_record = [p for p in _read_all(kafka_broker, f"{plain}.predictions") if p["id"] >= lag]
    assert len(in_record) == n - lag
    in_record_after = sum(p["y_pred"] == rows[p["id"]].y for p in in_record) / (n - lag)
    reference, unpredicted = _delayed_reference(rows, {p["id"]: p["partition"] for p in preds},
                                                lag, seed)
    print(f"\ndelayed labels: accuracy {delayed['accuracy']:.4f} (in-process schedule "
          f"{reference:.4f}; after the first {lag}: {after:.4f}) vs in-record labels "
          f"{baseline['accuracy']:.4f} (after the first {lag}: {in_record_after:.4f}); "
          f"{seconds:.1f} s")
    # Labels are joined in timestamp order against the records (the reader waits until it has
    # every label up to a batch's newest record), so Ray reproduces the in-process schedule.
    assert delayed["label_waits_timed_out"] == 0
    assert delayed["accuracy"] == pytest.approx(reference, abs=1e-12)
    assert delayed["unpredicted"] == unpredicted >= lag
    assert delayed["accuracy"] >= baseline["accuracy"] - 0.01
    # the checkpoints keep the joiners and the labels topic's offsets
    ckpt = KafkaJob(kafka_broker, topic, checkpoint_dir=str(tmp_path / "ckpt"))
    state = load_partition(read_bytes(ckpt.checkpoint_uri(0)), "y")
    assert state.host.joiner is not None and state.host.joiner.pending == 0
    for group in ([0], [1]):
        saved = load_labels(read_bytes(ckpt.labels_checkpoint_uri(group)))
        assert sum(saved.offsets.values()) == n and saved.read == n


def test_delayed_label_state_survives_a_restart_from_checkpoints(kafka_broker: str,
                                                                  tmp_path) -> None:
    """In process, no Ray: a second worker on the same checkpoints restores the joiners, the
    orphans and the labels topic's offsets, so it neither re-reads nor loses a label."""
    topic, labels = _topic("lbl-restart"), _topic("lbl-restart-labels")
    n = 600
    produce_delayed(kafka_broker, topic, labels, n, lag=100)
    job = KafkaJob(kafka_broker, topic, seed=1, labels_topic=labels, label_buffer=1000,
                   checkpoint_dir=str(tmp_path / "ckpt"), checkpoint_every=100)
    kio.ensure_topics(kafka_broker, [job.output_topic(k) for k in
                                     ("predictions", "drift", "dead-letter")], 2)
    first = PartitionWorker(job, [0, 1])
    done = first.run(until_end=True)
    first.close()
    again = PartitionWorker(job, [0, 1])
    assert again.progress()["label_offsets"] == first.progress()["label_offsets"]
    assert again.labels_read == n
    rerun = again.run(until_end=True)
    again.close()
    for p in (0, 1):
        assert rerun[p]["summary"]["labels_joined"] == done[p]["summary"]["labels_joined"]
        assert rerun[p]["summary"]["records"] == done[p]["summary"]["records"]
    assert sum(r["summary"]["labels_joined"] for r in rerun.values()) \
        + rerun[0]["worker_labels"]["orphan_joined"] == n


def test_undelivered_outputs_rewind_to_the_checkpoint(kafka_broker: str, tmp_path) -> None:
    """In process, no Ray: the predictions topic refuses every message (its max.message.bytes is
    below a prediction's size), so the flush at each checkpoint finds undelivered outputs and
    the worker rewinds to its last checkpoint instead of going on past them; once the topic
    accepts messages again, the run ends with a prediction for every record id."""
    import threading

    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

    topic, n = _topic("rewind"), 2000
    ids = _produce(kafka_broker, topic, n, partitions=2)
    job = KafkaJob(kafka_broker, topic, seed=2, checkpoint_dir=str(tmp_path / "ckpt"),
                   checkpoint_every=300)
    kio.ensure_topics(kafka_broker, [job.output_topic(k) for k in ("drift", "dead-letter")], 2)
    predictions = job.output_topic("predictions")
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker)
    try:
        admin.create_topics([NewTopic(predictions, 2, 1,
                                      topic_configs={"max.message.bytes": "64"})])
        worker = PartitionWorker(job, [0, 1])
        done: dict = {}
        thread = threading.Thread(target=lambda: done.update(worker.run(until_end=True)))
        thread.start()
        deadline = time.monotonic() + 60
        while worker.rewinds < 2:
            assert time.monotonic() < deadline and thread.is_alive(), "no rewind happened"
            time.sleep(0.05)
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, predictions,
                                            configs={"max.message.bytes": "1048588"})])
        thread.join(timeout=120)
        worker.close()
    finally:
        admin.close()
    assert not thread.is_alive() and done, "the worker did not finish"
    assert done[0]["rewinds"] >= 2
    assert sum(r["summary"]["records"] for r in done.values()) >= n
    got = {p["id"] for p in _read_all(kafka_broker, predictions)}
    assert got == set(ids)   # at least once: every record id has its prediction


def _read_raw(bootstrap: str, topic: str) -> dict[int, list[Any]]:
    """Every message of ``topic``, per partition in offset order (kafka-python records)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in kio.list_partitions(bootstrap, topic)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: dict[int, list[Any]] = {tp.partition: [] for tp in tps}
        deadline = time.monotonic() + READ_DEADLINE_S
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for tp, messages in consumer.poll(timeout_ms=500).items():
                out[tp.partition] += messages
        return out
    finally:
        consumer.close()


def test_worker_batches_send_what_the_record_path_sends(kafka_broker: str, tmp_path) -> None:
    """In process, no Ray: the worker learns each poll in one batch (`ModelHost.process_many`);
    its predictions (model version included), dead letters and drift events, in order per
    partition, are those of `ModelHost.process` record by record over the same messages."""
    from pipelines.host import ModelHost, Prediction
    from pipelines.models import make_model
    from pipelines.sinks import kafka_messages as formats
    from pipelines.validation import JsonDecoder

    topic = _topic("ray-batch")
    _produce(kafka_broker, topic, 6000, partitions=2, bad=BAD_LINES)
    job = KafkaJob(kafka_broker, topic, seed=5, checkpoint_dir=str(tmp_path / "ckpt"),
                   checkpoint_every=700)
    kio.ensure_topics(kafka_broker, [job.output_topic(k)
                                     for k in ("predictions", "drift", "dead-letter")], 2)
    worker = PartitionWorker(job, [0, 1])
    try:
        worker.run(until_end=True)
    finally:
        worker.close()

    expected: dict[str, list[dict]] = {"predictions": [], "dead-letter": [], "drift": []}
    for p, messages in _read_raw(kafka_broker, topic).items():
        host = ModelHost(make_model(job.model, seed=job.seed + p), joiner=job.new_joiner())
        decoder = JsonDecoder(target=job.target, require_label=job.require_label)
        for m in messages:
            result = host.process(decoder(m.value, m.offset, p, key=formats.key_text(m.key)))
            if isinstance(result, Prediction):
                sent = formats.prediction_message(result)
                expected["predictions"].append(json.loads(sent))
            else:
                sent = formats.dead_letter_message(result, topic)
                expected["dead-letter"].append(json.loads(sent))
            expected["drift"] += [json.loads(formats.event_message(e, topic))
                                  for e in host.take_events()]
    assert len(expected["predictions"]) == 6000 and expected["drift"]
    for kind, want in expected.items():
        got = _read_all(kafka_broker, job.output_topic(kind))
        for p in (0, 1):
            assert ([d for d in got if d["partition"] == p]
                    == [d for d in want if d["partition"] == p]), (kind, p)
