"""What a person watches while a streaming job runs: per-partition status, Ray metrics and the
driver's one-line status.

A worker builds `partition_status` for each of its partitions; `RayMetrics.publish` turns those
into Ray metrics (Counter / Gauge from ``ray.util.metrics``, exported by Ray's metrics agent in
Prometheus format, names prefixed ``ray_`` there), and the driver folds every worker's statuses
into `status_line` every few seconds.
"""
from __future__ import annotations

import time
from typing import Any

from pipelines.host import ModelHost

# Counters only grow: published as the increase since the last publish.
_COUNTERS = {
    "records_in": "records read (each becomes a prediction, a dead letter or a counted skip)",
    "predictions": "predictions produced",
    "dead_letters": "dead letters produced (bad records, with their reason)",
    "drifts": "drifts detected",
}
_GAUGES = {
    "lag": "records in the partition not read yet (high watermark minus next offset)",
    "windowed_accuracy": "prequential accuracy over the last 1,000 labelled records",
    "experts": "experts in the partition's model",
    "checkpoint_age_seconds": "seconds since the partition's last checkpoint",
}
#: Per input feature (tag ``feature``), from the status's ``input_drifts`` mapping.
_INPUT_DRIFTS = ("input_drifts", "input drifts detected on the feature (InputDriftMonitor)")


def partition_status(host: ModelHost, next_offset: int | None, highwater: int | None,
                     checkpointed_at: float) -> dict[str, Any]:
    """One partition's figures; ``checkpointed_at`` is a ``time.monotonic()`` reading.
    ``input_drifts`` maps each feature that drifted to its number of input drifts."""
    return {
        "records_in": host.records,
        "predictions": host.predictions,
        "dead_letters": host.dead_letters,
        "drifts": len(host.drift_positions),
        "lag": max(0, highwater - next_offset) if highwater is not None and next_offset is not None
        else 0,
        "windowed_accuracy": host.metrics.windowed_accuracy,
        "experts": host.model.n_experts,
        "checkpoint_age_seconds": time.monotonic() - checkpointed_at,
        "input_drifts": dict(host.input_monitor.counts) if host.input_monitor else {},
    }


class RayMetrics:
    """Ray metrics for the partitions of one worker, tagged by topic and partition."""

    def __init__(self, topic: str, restored: dict[int, dict[str, Any]]) -> None:
        """``restored``: the partitions' statuses as restored from their checkpoints (counters
        count from there, so a restarted worker does not count its records twice)."""
        from ray.util.metrics import Counter, Gauge

        tags = ("topic", "partition")
        self.topic = topic
        self._counters = {k: Counter(f"driftflow_{k}", d, tag_keys=tags)
                          for k, d in _COUNTERS.items()}
        self._gauges = {k: Gauge(f"driftflow_{k}", d, tag_keys=tags) for k, d in _GAUGES.items()}
        self._published = {(p, k): status[k] for p, status in restored.items() for k in _COUNTERS}
        name, text = _INPUT_DRIFTS
        self._input_drifts = Counter(f"driftflow_{name}", text, tag_keys=(*tags, "feature"))
        self._published_inputs = {(p, f): n for p, status in restored.items()
                                  for f, n in status.get(name, {}).items()}

    def publish(self, statuses: dict[int, dict[str, Any]]) -> None:
        for partition, status in statuses.items():
            tags = {"topic": self.topic, "partition": str(partition)}
            for name, counter in self._counters.items():
                last = self._published[(partition, name)]
                if status[name] > last:
                    counter.inc(status[name] - last, tags=tags)
                    self._published[(partition, name)] = status[name]
            for name, gauge in self._gauges.items():
                gauge.set(float(status[name]), tags=tags)
            for feature, n in status.get(_INPUT_DRIFTS[0], {}).items():
                last = self._published_inputs.get((partition, feature), 0)
                if n > last:
                    self._input_drifts.inc(n - last, tags={**tags, "feature": feature})
                    self._published_inputs[(partition, feature)] = n


def status_line(statuses: dict[int, dict[str, Any]], seconds: float) -> str:
    """One line over every partition: totals, throughput since start and the oldest checkpoint."""
    if not statuses:
        return "driftflow: waiting for workers"
    total = {k: sum(s[k] for s in statuses.values())
             for k in ("records_in", "predictions", "dead_letters", "drifts", "lag", "experts")}
    scored = [s["windowed_accuracy"] for s in statuses.values() if s["records_in"]]
    accuracy = f"{sum(scored) / len(scored):.3f}" if scored else "-"
    oldest = max(s["checkpoint_age_seconds"] for s in statuses.values())
    rate = total["records_in"] / seconds if seconds > 0 else 0.0
    inputs = sum(sum(s.get(_INPUT_DRIFTS[0], {}).values()) for s in statuses.values())
    return (f"driftflow: {len(statuses)} partitions, in {total['records_in']:,}, "
            f"predictions {total['predictions']:,}, dead letters {total['dead_letters']:,}, "
            f"lag {total['lag']:,}, accuracy(1k) {accuracy}, drifts {total['drifts']:,}, "
            f"input drifts {inputs:,}, experts {total['experts']}, "
            f"checkpoint age {oldest:.1f} s, {rate:,.0f} rec/s")
