"""The merged ``metrics.json`` of a Kafka job: every worker's (Ray) or key's (Flink) results
folded into one document, the same fields whichever runtime ran the job."""
from __future__ import annotations

from collections import Counter
from typing import Any

from pipelines.evaluate import PrequentialMetrics


def merge_results(results: list[dict[Any, dict[str, Any]]], seconds: float,
                  source: str, runtime: str = "ray") -> dict[str, Any]:
    """One ``metrics.json`` from every worker's per-partition results (Flink: per key). Accuracy
    and kappa are computed over all partitions' predictions; ``drifts`` lists ``[partition,
    offset]`` pairs.

    With delayed labels: ``labels_joined`` (labels learned with their record), ``labels_expired``
    (records whose label did not come before the buffer cap or TTL dropped them) and
    ``labels_orphaned`` (labels read that joined no record in any worker: their record never
    came, came after it was dropped, or has not come yet); ``labels_read`` is per worker (every
    worker reads every label), the largest one is reported."""
    parts = {p: r for result in results for p, r in result.items()}
    total = PrequentialMetrics()
    for r in parts.values():
        total.merge(r["metrics"])
    summaries = {p: r["summary"] for p, r in sorted(parts.items())}
    records = sum(s["records"] for s in summaries.values())
    scores = total.as_dict()
    merged = {
        "source": source, "runtime": runtime,
        "model": next(iter(summaries.values()))["model"] if summaries else None,
        "records": records, "accuracy": scores["accuracy"], "kappa": scores["kappa"],
        "kappa_m": scores["kappa_m"], "kappa_t": scores["kappa_t"], "scored": scores["scored"],
        "unpredicted": scores["unpredicted"],
        "records_per_second": records / seconds if seconds > 0 else 0.0, "seconds": seconds,
        "drifts": [[p, off] for p, s in summaries.items() for off in s["drifts"]],
        "experts_final": sum(s["experts_final"] for s in summaries.values()),
        "dead_letters": sum(s["dead_letters"] for s in summaries.values()),
        "skipped": sum(s["skipped"] for s in summaries.values()),
        "partitions": {str(p): {**s, "next_offset": parts[p]["next_offset"]}
                       for p, s in summaries.items()},
        "label_counts": dict(Counter({str(k): v for k, v in total._true_counts.items()})),
        **_label_totals(parts, summaries),
    }
    return _with_input_drifts(merged, summaries)


_ACCURACY_FIELDS = ("accuracy", "kappa", "kappa_m", "kappa_t", "scored", "unpredicted")


def _with_input_drifts(merged: dict[str, Any], summaries: dict[int, dict[str, Any]]
                       ) -> dict[str, Any]:
    """Every partition's input drifts and per-feature counts; a run without labels (no
    partition summary has accuracy) reports them instead of the accuracy fields."""
    counts: Counter[str] = Counter()
    for s in summaries.values():
        counts.update(s.get("input_drift_counts", {}))
    merged["input_drifts"] = [e for s in summaries.values() for e in s.get("input_drifts", [])]
    merged["input_drift_counts"] = dict(sorted(counts.items()))
    if summaries and all("accuracy" not in s for s in summaries.values()):
        for name in _ACCURACY_FIELDS:
            merged.pop(name)
    return merged


def _label_totals(parts: dict[int, dict[str, Any]],
                  summaries: dict[int, dict[str, Any]]) -> dict[str, Any]:
    workers = [r["worker_labels"] for r in parts.values() if "worker_labels" in r]
    if not workers:
        return {}
    joined = (sum(s.get("labels_joined", 0) for s in summaries.values())
              + sum(w["orphan_joined"] for w in workers))
    read = max(w["read"] for w in workers)
    valid = max(w["read"] - w["invalid"] for w in workers)
    return {"labels_joined": joined,
            "labels_expired": sum(s.get("labels_expired", 0) for s in summaries.values()),
            "labels_orphaned": max(0, valid - joined),
            "labels_pending": sum(s.get("labels_pending", 0) for s in summaries.values()),
            "labels_read": read, "labels_invalid": max(w["invalid"] for w in workers),
            "label_waits_timed_out": sum(w["waits_timed_out"] for w in workers)}
