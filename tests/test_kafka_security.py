"""Secured Kafka: client settings from a properties file and the environment, mapped for both
client libraries, and a job through the project's broker's SASL/PLAIN listener (right
credentials work; wrong ones, or no broker, end in one line and exit 2). Secrets never show."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from infra import kafka as infra_kafka
from pipelines.runners.kafka_config import KafkaClientConfig, KafkaConfigError
from pipelines.runners.kafka_job import KafkaJob

ROOT = Path(__file__).resolve().parents[1]
DRIFTFLOW = str(Path(sys.executable).with_name("driftflow"))
# A CLI run over a few hundred records: Ray start (~5 s), actors, the job; bounds a hang only.
CLI_TIMEOUT_S = 240
SECRET = "pa55-w0rd-never-shown"


def _config_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "client.properties"
    path.write_text(text)
    return str(path)


def test_properties_file_and_environment_map_to_both_clients(tmp_path: Path) -> None:
    path = _config_file(tmp_path, "# a Java-style file\n! also a comment\n\n"
                                  "security.protocol = sasl_plaintext\nsasl.mechanisms: PLAIN\n"
                                  "sasl.username=alice\nsasl.password=from-file\n")
    env = {"DRIFTFLOW_KAFKA_SASL_PASSWORD": SECRET, "DRIFTFLOW_KAFKA_PORT": "9092",
           "DRIFTFLOW_KAFKA_RECONNECT_BACKOFF_MS": "200", "UNRELATED": "x"}
    config = KafkaClientConfig.load(path, environ=env)
    assert config.confluent() == {"security.protocol": "sasl_plaintext", "sasl.mechanism": "PLAIN",
                                  "sasl.username": "alice", "sasl.password": SECRET,
                                  "reconnect.backoff.ms": "200"}
    assert config.kafka_python() == {"security_protocol": "SASL_PLAINTEXT",
                                     "sasl_mechanism": "PLAIN", "sasl_plain_username": "alice",
                                     "sasl_plain_password": SECRET, "reconnect_backoff_ms": 200}
    job = KafkaJob("127.0.0.1:1", "t", client_config=config)
    assert job.client_config.confluent()["sasl.password"] == SECRET
    assert job.client_config.kafka_python()["sasl_plain_password"] == SECRET
    # the secret travels to the actors (pickled) but shows in no repr or str
    assert pickle.loads(pickle.dumps(job)).client_config == config
    for text in (repr(config), str(config), repr(job), str(job)):
        assert SECRET not in text
        assert "sasl.password='***'" in text and "sasl.username='alice'" in text
    tls = KafkaClientConfig.load(_config_file(tmp_path, (
        f"security.protocol=SSL\nssl.ca.location={path}\n"
        "ssl.endpoint.identification.algorithm=none\n")), environ={})
    assert tls.kafka_python() == {"security_protocol": "SSL", "ssl_cafile": path,
                                  "ssl_check_hostname": False}


@pytest.mark.parametrize("text, env, message", [
    ("sasl.pasword=x\n", {}, "unknown or unsupported Kafka client setting 'sasl.pasword'"),
    ("", {"DRIFTFLOW_KAFKA_SASL_PASSWRD": SECRET}, "DRIFTFLOW_KAFKA_SASL_PASSWRD: unknown"),
    ("bootstrap.servers=h:1\n", {}, "driftflow's own: use --bootstrap"),
    ("sasl.jaas.config=x required;\n", {}, "Java client setting"),
    ("security.protocol=SASL_SSL\nsasl.username=a\n", {}, "needs sasl.username and sasl.password"),
    ("sasl.mechanism=GSSAPI\n", {}, "must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
    (f"sasl.password={SECRET}\n", {}, "sasl.password is set but security.protocol is PLAINTEXT"),
    ("ssl.ca.location=/no/such/ca.pem\n", {}, "no such file"),
    ("just a line\n", {}, "expected key=value"),
], ids=["misspelt", "env", "owned", "java", "no-password", "mechanism", "no-sasl", "ca", "syntax"])
def test_unusable_settings_are_refused_in_one_line_without_the_secret(
        tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(KafkaConfigError) as info:
        KafkaClientConfig.load(_config_file(tmp_path, text), environ=env)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert SECRET not in str(info.value)


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([DRIFTFLOW, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=CLI_TIMEOUT_S, check=False)


def _produce(bootstrap: str, topic: str, n: int) -> None:
    from kafka import KafkaProducer

    from pipelines.sources import open_source

    infra_kafka.create_topic(topic, partitions=2, bootstrap=bootstrap)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for i, r in enumerate(open_source("synthetic:SEAa", limit=n, seed=3)):
            producer.send(topic, json.dumps({"id": i, "x": r.x, "y": r.y}).encode(),
                          partition=i % 2)
        producer.flush(timeout=60)
    finally:
        producer.close()


@pytest.mark.integration
def test_job_through_the_sasl_listener_right_and_wrong_credentials(private_kafka, tmp_path,
                                                                   monkeypatch, capfd):
    """The whole CLI path against the SASL/PLAIN listener: the password comes from the
    environment, the rest from a properties file. Right credentials: every record predicted,
    record/replay work through it too, and the password is in no output, log or file written.
    Wrong ones: one line naming the refusal (not the wait for an unreachable broker), exit 2."""
    from tests.test_ray_kafka import _read_all

    topic, n = f"sasl-{uuid.uuid4().hex[:8]}", 400
    _produce(private_kafka.bootstrap, topic, n)          # written through the plain listener
    path = _config_file(tmp_path, f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
                                  f"sasl.username={private_kafka.USER}\n")
    env = {**os.environ, "DRIFTFLOW_KAFKA_SASL_PASSWORD": private_kafka.password}
    env.pop("RAY_ADDRESS", None)
    out = tmp_path / "out"
    run = _cli(["run", "--runtime", "ray", "--source", f"kafka:{topic}", "--until-end",
                "--bootstrap", private_kafka.sasl_bootstrap, "--kafka-config", path,
                "--actors", "2", "--out", str(out), "--checkpoint-dir", str(tmp_path / "ck"),
                "--status-every", "0.5"], env)
    assert run.returncode == 0, run.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["records"] == n and metrics["dead_letters"] == 0
    config = KafkaClientConfig.load(path, environ=env)
    got = _read_all_secured(private_kafka.sasl_bootstrap, f"{topic}.predictions", config)
    assert sorted(p["id"] for p in got) == list(range(n))
    assert sorted(p["id"] for p in _read_all(private_kafka.bootstrap, f"{topic}.predictions")) \
        == list(range(n))

    # in this process from here on (no Ray): record and replay, then wrong credentials
    from pipelines.cli import main

    recorded = tmp_path / "topic.parquet"
    boot = ["--bootstrap", private_kafka.sasl_bootstrap, "--kafka-config", path]
    monkeypatch.setenv("DRIFTFLOW_KAFKA_SASL_PASSWORD", private_kafka.password)
    capfd.readouterr()
    assert main(["record", "--topic", topic, "--out", str(recorded), *boot]) == 0
    assert main(["replay", str(recorded), "--to-topic", f"{topic}-copy", *boot]) == 0
    copied = capfd.readouterr()
    assert f"recorded {n} messages" in copied.out and f"replayed {n} messages" in copied.out

    written = "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    for text in (run.stdout, run.stderr, copied.out + copied.err, written):
        assert private_kafka.password not in text

    monkeypatch.setenv("DRIFTFLOW_KAFKA_SASL_PASSWORD", SECRET)
    assert main(["run", "--runtime", "ray", "--source", f"kafka:{topic}", "--until-end",
                 *boot, "--kafka-timeout", "120", "--quiet"]) == 2
    refused = capfd.readouterr()
    errors = [line for line in (refused.out + refused.err).splitlines() if line.strip()]
    assert errors == [(f"driftflow: error: Kafka at {private_kafka.sasl_bootstrap} refused the "
                       f"client: SASL authentication error: Authentication failed: Invalid "
                       f"username or password")], errors
    assert SECRET not in refused.out + refused.err


def _read_all_secured(bootstrap: str, topic: str, config: KafkaClientConfig) -> list[dict]:
    """Every message of ``topic`` through kafka-python with the security settings mapped."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=10_000, **config.kafka_python())
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in parts])
        consumer.seek_to_beginning()
        return [json.loads(m.value) for m in consumer]
    finally:
        consumer.close()


@pytest.mark.integration
def test_job_through_the_tls_listener_with_the_generated_ca(private_kafka, tmp_path) -> None:
    """The broker's SSL listener (a certificate for 127.0.0.1 signed by the CA `infra kafka
    start --tls` made): a worker runs its partitions through it with the CA trusted, hostname
    verification on, both client libraries; another CA is refused at once, in one line."""
    from pipelines.runners import kafka_io as kio
    from pipelines.runners.ray.worker import PartitionWorker

    topic, n = f"tls-{uuid.uuid4().hex[:8]}", 300
    _produce(private_kafka.bootstrap, topic, n)
    config = KafkaClientConfig.load(_config_file(tmp_path, (
        f"security.protocol=SSL\nssl.ca.location={private_kafka.tls_ca}\n")), environ={})
    job = KafkaJob(private_kafka.tls_bootstrap, topic, seed=1, client_config=config)
    kio.wait_for_broker(job.bootstrap, config, timeout_s=30)
    kio.ensure_topics(job.bootstrap, [job.output_topic(k) for k in
                                      ("predictions", "drift", "dead-letter")], 2, config=config)
    worker = PartitionWorker(job, kio.list_partitions(job.bootstrap, topic, config=config))
    done = worker.run(until_end=True)
    worker.close()
    assert sum(r["summary"]["records"] for r in done.values()) == n
    got = _read_all_secured(job.bootstrap, f"{topic}.predictions", config)
    assert sorted(p["id"] for p in got) == list(range(n))

    from infra.kafka_tls import ensure_tls

    other_ca = ensure_tls(tmp_path / "other").ca   # a CA that did not sign the broker's cert
    other = KafkaClientConfig.load(_config_file(tmp_path, (
        f"security.protocol=SSL\nssl.ca.location={other_ca}\n")), environ={})
    with pytest.raises(kio.KafkaUnavailable) as refused:
        kio.wait_for_broker(job.bootstrap, other, timeout_s=120)
    assert "refused the client: ssl" in str(refused.value).lower()
    assert "\n" not in str(refused.value)


def test_no_broker_at_start_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """Nothing listens on the port. By default: one line at once, exit 2. With --kafka-timeout:
    a wait line, then one error line after the timeout. Never a traceback, none of librdkafka's
    per-attempt log lines, and Ray is never started."""
    port = infra_kafka.free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    run = ["run", "--source", "kafka:absent", "--bootstrap", f"127.0.0.1:{port}", "--until-end"]
    quick = _cli(run, env)
    assert quick.returncode == 2
    assert [line for line in (quick.stdout + quick.stderr).splitlines() if line.strip()] == [
        (f"driftflow: error: no Kafka broker at 127.0.0.1:{port} (connection refused); start "
         "one (driftflow infra kafka start), or give --kafka-timeout SECONDS to wait for it")]

    proc = _cli([*run, "--kafka-timeout", "3"], env)
    assert proc.returncode == 2
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 2, lines
    assert "waiting up to 3 s for Kafka" in lines[0]
    assert lines[1].startswith(f"driftflow: error: Kafka at 127.0.0.1:{port} did not answer "
                               "within 3 s (Connect to ipv4#127.0.0.1")
    assert "Traceback" not in proc.stderr and "Ray" not in proc.stderr
