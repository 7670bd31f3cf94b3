"""Bench results: per (stream, seed) ratios against ARF and HoeffdingTree (River's) and against
MOA's ARF(10) and ARF(100), seed means per stream, means over streams, and the merge of two
runs' results.json."""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.catalog import ARF, HT, MOA_ARF10, MOA_ARF100


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.fmean(vals) if vals else None


def _std(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.stdev(vals) if len(vals) > 1 else None


def add_ratios(stream_results: list[dict[str, Any]]) -> None:
    """Per (stream, seed): accuracy - River ARF(10)'s and - MOA ARF(100)'s (points), and
    throughput / River ARF(10)'s, / River HT's and / MOA ARF(10)'s."""
    for res in stream_results:
        runs = res.get("runs", {})
        arf, ht = runs.get(ARF, {}), runs.get(HT, {})
        moa_arf10, moa_arf100 = runs.get(MOA_ARF10, {}), runs.get(MOA_ARF100, {})
        for run in runs.values():
            if "error" in run:
                continue
            run["acc_minus_arf_points"] = _points(run, arf)
            run["acc_minus_moa_arf100_points"] = _points(run, moa_arf100)
            run["speed_vs_arf"] = _speed(run, arf)
            run["speed_vs_ht"] = _speed(run, ht)
            run["speed_vs_moa_arf10"] = _speed(run, moa_arf10)


def _points(run: dict[str, Any], peer: dict[str, Any]) -> float | None:
    return 100.0 * (run["accuracy"] - peer["accuracy"]) if "accuracy" in peer else None


def _speed(run: dict[str, Any], peer: dict[str, Any]) -> float | None:
    return run["records_per_s"] / peer["records_per_s"] if "records_per_s" in peer else None


_AGG_KEYS = ("accuracy", "kappa", "kappa_m", "kappa_t", "records_per_s", "seconds", "experts",
             "state_bytes", "mem_peak_bytes", "mem_end_bytes", "acc_minus_arf_points",
             "speed_vs_arf", "speed_vs_ht", "state_spread_second_half",
             "acc_minus_moa_arf100_points", "speed_vs_moa_arf10")


def aggregate(stream_results: list[dict[str, Any]], models: list[str]
              ) -> dict[str, dict[str, Any]]:
    """Per stream label: stream facts and, per model, seed means (and accuracy std)."""
    by_label: dict[str, list[dict[str, Any]]] = {}
    for res in stream_results:
        by_label.setdefault(res["label"], []).append(res)
    out: dict[str, dict[str, Any]] = {}
    for label, results in by_label.items():
        results.sort(key=lambda r: r["seed"])
        ok = [r for r in results if "error" not in r]
        entry: dict[str, Any] = {
            "spec": results[0]["spec"], "seeds": [r["seed"] for r in results],
            "errors": [r["error"] for r in results if "error" in r], "models": {},
        }
        if ok:
            entry.update(n_records=ok[0]["n_records"], skipped=ok[0]["skipped"],
                         drift_positions=ok[0]["drift_positions"], window=ok[0]["window"])
        for name in models:
            runs = [r["runs"][name] for r in ok if name in r["runs"]]
            good = [r for r in runs if "error" not in r]
            agg: dict[str, Any] = {k: _mean([r.get(k) for r in good]) for k in _AGG_KEYS}
            agg["accuracy_std"] = _std([r["accuracy"] for r in good])
            agg["errors"] = [r["error"] for r in runs if "error" in r]
            agg["drifts_detected"] = good[0]["drifts_detected"] if good else []
            agg["n_drifts_mean"] = _mean([len(r["drifts_detected"]) for r in good])
            agg["mem_records"] = good[0].get("mem_records") if good else None
            entry["models"][name] = agg
        out[label] = entry
    return out


def summarise(per_stream: dict[str, dict[str, Any]], models: list[str]) -> dict[str, Any]:
    """Per model, means over streams of the per-stream means, and the lowest × HT speed (the
    "at least as fast as one River tree on every stream" target)."""
    summary: dict[str, Any] = {}
    for name in models:
        rows = [s["models"][name] for s in per_stream.values()
                if name in s["models"] and s["models"][name]["accuracy"] is not None]
        ht_speeds = [r.get("speed_vs_ht") for r in rows if r.get("speed_vs_ht") is not None]
        summary[name] = {
            "streams": len(rows),
            **{k: _mean([r.get(k) for r in rows]) for k in
               ("accuracy", "kappa", "records_per_s", "acc_minus_arf_points", "speed_vs_arf",
                "speed_vs_ht", "mem_peak_bytes", "acc_minus_moa_arf100_points",
                "speed_vs_moa_arf10")},
            "speed_vs_ht_min": min(ht_speeds) if ht_speeds else None,
        }
    return summary


def _merged(data: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a results.json) with ``extra``'s streams added, its runs re-aggregated."""
    meta = dict(data["meta"])
    new = [label for label in extra["meta"]["streams"] if label in extra["streams"]]
    runs = [r for r in data["runs"] if r["label"] not in new] + extra["runs"]
    meta["models"] = list(dict.fromkeys([*meta["models"], *extra["meta"]["models"]]))
    meta["streams"] = [*(s for s in meta["streams"] if s not in new), *new]
    # each stream is credited to the run it now comes from: earlier parts lose replaced streams
    merged_before = {s for part in meta.get("merged", []) for s in part["streams"]}
    own = meta.get("own_streams", [s for s in meta["streams"] if s not in merged_before])
    meta["own_streams"] = [s for s in own if s not in new]
    earlier = [{**part, "streams": [s for s in part["streams"] if s not in new]}
               for part in meta.get("merged", [])]
    meta["merged"] = [*(part for part in earlier if part["streams"]),
                      {key: extra["meta"][key] for key in ("date", "command", "wall_seconds")}
                      | {"streams": new}]
    per_stream = aggregate(runs, meta["models"])
    per_stream = {label: per_stream[label] for label in meta["streams"] if label in per_stream}
    return {"meta": meta, "summary": summarise(per_stream, meta["models"]),
            "streams": per_stream, "runs": sorted(runs, key=lambda r: (r["label"], r["seed"]))}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    return str(obj)
