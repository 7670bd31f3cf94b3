"""Smoke run of the Kafka -> Ray -> Kafka benchmark on the real broker and a real local Ray."""
from __future__ import annotations

import json
import statistics

import pytest

from bench import kafka_ray

pytestmark = pytest.mark.integration


def test_kafka_benchmark_writes_its_report(kafka_broker: str, tmp_path) -> None:
    n = 3000
    assert kafka_ray.main(["--records", str(n), "--checkpoint-every", "200", "--repeats", "2",
                           "--out-dir", str(tmp_path), "--quiet"]) == 0
    result = json.loads((tmp_path / "kafka.json").read_text())
    memory, (one, two) = result["in_memory"], result["ray"]
    assert memory["records"] == one["records"] == two["records"] == n
    # the same models on the same partitions: every runner predicts identically
    assert one["accuracy"] == two["accuracy"] == pytest.approx(memory["accuracy"], abs=1e-12)
    assert memory["accuracy"] > 0.75
    assert 0 < result["restart"]["restart_seconds"] < kafka_ray.KILL_WAIT_S
    assert result["restart"]["records_after_recovery"] >= n
    assert result["ratios"]["two_actors_over_one"] > 0
    tries = result["tries_records_per_s"]
    assert [len(t) for t in tries.values()] == [2, 2, 2]
    assert memory["records_per_s"] == max(tries["memory"])      # the best try is reported
    # the target ratios: the median of each attempt's own ratio
    paired = [a / m for m, a in zip(tries["memory"], tries["1"])]
    assert result["paired_ratios"]["kafka_1_actor_over_in_memory"] == pytest.approx(paired)
    assert result["ratios"]["kafka_1_actor_over_in_memory"] == pytest.approx(
        statistics.median(paired))
    # one thread's CPU seconds within the same wall seconds: records per CPU-second >= per second
    for path in (memory, one):
        assert path["records_per_cpu_s"] >= path["records_per_s"] * 0.999
    costs = {(row["client"], row["action"]): row for row in result["clients"]}
    assert set(costs) == {(c, a) for c in ("kafka-python", "confluent-kafka")
                          for a in ("produce", "consume")}
    assert all(row["messages"] == n and row["wall_us"] > 0 for row in costs.values())
    text = (tmp_path / "KAFKA.md").read_text()
    assert "Kafka -> Ray, 2 actors" in text and "x in-memory" in text
    assert "| confluent-kafka | produce |" in text
