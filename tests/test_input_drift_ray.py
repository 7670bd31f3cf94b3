"""``--no-labels`` on the Ray runner against a real broker: records without a label are
predictions (not dead letters), input drifts name the shifted features on the drift topic and in
metrics.json, and the Prometheus counter per feature counts them."""
from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request

import pytest

from infra import kafka as infra_kafka
from pipelines.runners.kafka_job import KafkaJob
from tests.test_input_drift import _rows
from tests.test_ray_kafka import PRODUCER_TIMEOUT_S, _read_all, _topic, ray_local  # noqa: F401

pytestmark = pytest.mark.integration

N = 8000


def _produce_unlabelled(bootstrap: str, topic: str) -> None:
    """One partition of ``{"id", "x"}`` messages with no label; f1's mean and f4's spread move
    at record 4,000 (`tests.test_input_drift._rows`)."""
    infra_kafka.create_topic(topic, partitions=1, bootstrap=bootstrap)
    rows = _rows(N, seed=9, mean_shift=("f1",), spread_shift=("f4",))
    lines = [json.dumps({"id": i, "x": row}) for i, row in enumerate(rows)]
    proc = subprocess.run(infra_kafka.console_producer_cmd(topic, bootstrap), check=False,
                          input="\n".join(lines) + "\n", capture_output=True, text=True,
                          timeout=PRODUCER_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr


def _feature_counts(port: int, topic: str, deadline_s: float) -> dict[str, float]:
    """``{feature: value}`` of ``ray_driftflow_input_drifts_total`` for ``topic``, polled until
    it has two features or ``deadline_s`` passes."""
    pattern = re.compile(r"^ray_driftflow_input_drifts_total\{(.*)\} (\S+)$")
    end, values = time.monotonic() + deadline_s, {}
    while time.monotonic() < end:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        values = {}
        for line in text.decode().splitlines():
            match = pattern.match(line)
            if match and f'topic="{topic}"' in match.group(1):
                feature = re.search(r'feature="([^"]+)"', match.group(1)).group(1)
                values[feature] = values.get(feature, 0.0) + float(match.group(2))
        if len(values) >= 2:
            return values
        time.sleep(2.0)
    return values


def test_no_labels_on_ray_names_shifted_features(kafka_broker: str, ray_local: int,  # noqa: F811
                                                 tmp_path) -> None:
    from pipelines.runners.ray.driver import run_ray

    topic = _topic("ray-no-labels")
    _produce_unlabelled(kafka_broker, topic)
    job = KafkaJob(kafka_broker, topic, seed=1, no_labels=True)
    metrics = run_ray(job, actors=1, until_end=True, out_dir=str(tmp_path / "out"))

    assert metrics["records"] == N and metrics["dead_letters"] == 0 and metrics["skipped"] == 0
    assert "accuracy" not in metrics
    assert metrics["input_drift_counts"] == {"f1": 1, "f4": 1}
    on_disk = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert on_disk["input_drift_counts"] == {"f1": 1, "f4": 1}
    assert len(_read_all(kafka_broker, f"{topic}.predictions")) == N
    events = [e for e in _read_all(kafka_broker, f"{topic}.drift") if e["kind"] == "input_drift"]
    assert {f["name"] for e in events for f in e["features"]} == {"f1", "f4"}
    assert all(4000 <= e["position"] < 5000 and e["topic"] == topic for e in events)
    assert _feature_counts(ray_local, topic, deadline_s=60.0) == {"f1": 1.0, "f4": 1.0}
