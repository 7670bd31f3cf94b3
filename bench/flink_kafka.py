"""Kafka -> Flink -> Kafka throughput against the same model in process, parallelism 1 against
2, PyFlink's process against thread mode, checkpoint duration and restart to first prediction.

One run, one machine, the paths back to back, so the figures compare as ratios:

- **in-process**: the topic read into memory, then each partition's messages decoded and run
  through its own `ModelHost` (the local runner's data path; `bench.kafka_ray.in_memory`).
- **flink pN**: `run_flink` (``--until-end``, at-least-once, checkpoints every 2 s) on the same
  4-partition topic with the model operator at parallelism N. *steady* = records / the span of
  the predictions' Kafka timestamps (first to last prediction written: the job at work, without
  the mini-cluster's start-up); *end-to-end* = records / the whole call (start-up included).
- **thread mode**: the same at parallelism 1 with ``python.execution-mode: thread``; keyed state
  is then pickled on every access, i.e. one model snapshot per record (the operator puts its
  live state holder in ValueState after each record).
- **checkpoints**: Flink's own ``checkpointDuration`` of each completed checkpoint (from its log).
- **restart**: a run with a task failure injected at a key's record N/8 (the test hook); seconds
  from the failure to the first prediction its restarted task writes (restart + restore).

Needs the broker (started when not running) and the connector jar (fetched).
``python -m bench.flink_kafka`` writes ``bench/FLINK.md`` and ``bench/flink.json``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LOG_DIR = Path(tempfile.mkdtemp(prefix="driftflow-flink-log-"))
os.environ["FLINK_LOG_DIR"] = str(LOG_DIR)   # before PyFlink starts its JVM

from bench.kafka_ray import in_memory, produce  # noqa: E402
from bench.provenance import commit_label, machine_info  # noqa: E402
from infra import kafka as infra_kafka  # noqa: E402
from pipelines.runners.flink import FlinkOptions, run_flink  # noqa: E402
from pipelines.runners.flink.operator import FAIL_ONCE_ENV  # noqa: E402
from pipelines.runners.kafka_job import KafkaJob  # noqa: E402

CHECKPOINT_SECONDS = 2.0
_CHECKPOINT_LINE = re.compile(r"Completed checkpoint \d+ for job (\w+) .*checkpointDuration=(\d+)")


def _prediction_times(bootstrap: str, topic: str, n: int) -> list[float]:
    """The Kafka timestamps (s) of the first ``n`` predictions on ``topic``, sorted."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5000)
    try:
        consumer.assign([TopicPartition(topic, p)
                         for p in sorted(consumer.partitions_for_topic(topic) or [])])
        times = [m.timestamp / 1000 for m in consumer]
    finally:
        consumer.close()
    if len(times) < n:
        raise RuntimeError(f"read {len(times)} of {n} predictions from {topic}")
    return sorted(times)


def _checkpoint_ms() -> dict[str, list[int]]:
    """Every completed checkpoint's duration (ms) in Flink's log, by job id."""
    out: dict[str, list[int]] = {}
    for log in LOG_DIR.glob("*.log"):
        for job_id, ms in _CHECKPOINT_LINE.findall(log.read_text(errors="replace")):
            out.setdefault(job_id, []).append(int(ms))
    return out


def flink_run(bootstrap: str, topic: str, n: int, name: str, options: FlinkOptions,
              fail_at: int | None = None) -> dict[str, Any]:
    """One bounded Flink run into output topics of its own; throughput and checkpoints."""
    tmp = tempfile.mkdtemp(prefix=f"flink-{name}-")
    job = KafkaJob(bootstrap, topic, group_id=f"{topic}-{name}", output_prefix=f"{topic}-{name}",
                   checkpoint_dir=tmp, checkpoint_seconds=CHECKPOINT_SECONDS)
    for kind in ("predictions", "drift", "dead-letter"):   # stamped when the broker appends
        infra_kafka.create_topic(job.output_topic(kind), partitions=4, bootstrap=bootstrap,
                                 configs={"message.timestamp.type": "LogAppendTime"})
    marker = Path(tmp) / "failed-once"
    if fail_at:
        os.environ[FAIL_ONCE_ENV] = f"{fail_at}:{marker}"
    before = {k: len(v) for k, v in _checkpoint_ms().items()}
    t0 = time.perf_counter()
    try:
        metrics = run_flink(job, options, until_end=True)
    finally:
        os.environ.pop(FAIL_ONCE_ENV, None)
    seconds = time.perf_counter() - t0
    times = _prediction_times(bootstrap, job.output_topic("predictions"), n)
    checkpoints = [ms for k, v in _checkpoint_ms().items() for ms in v[before.get(k, 0):]]
    out = {"name": name, "parallelism": options.parallelism, "mode": options.execution_mode,
           "records": metrics["records"], "accuracy": metrics["accuracy"],
           "seconds": seconds, "end_to_end_per_s": n / seconds,
           "steady_per_s": n / max(times[-1] - times[0], 1e-9),
           "checkpoints": len(checkpoints),
           "checkpoint_ms_median": sorted(checkpoints)[len(checkpoints) // 2] if checkpoints
           else None, "checkpoint_ms_max": max(checkpoints, default=None)}
    if fail_at:
        failed_at = marker.stat().st_mtime
        after = [t for t in times if t > failed_at]
        out["restart_to_first_prediction_s"] = after[0] - failed_at if after else None
    return out


def write_report(result: dict[str, Any], path: Path) -> None:
    """bench/FLINK.md: the table and the ratios."""
    rows = ["| path | records/s steady | records/s end-to-end | checkpoints (median / max ms) |",
            "|---|---|---|---|",
            f"| in-process (local runner's path) | {result['in_process']['records_per_s']:,.0f} "
            "| - | - |"]
    for r in result["flink"]:
        if "error" in r:
            rows.append(f"| flink {r['name']} | failed: {r['error']} | | |")
            continue
        rows.append(f"| flink {r['name']} | {r['steady_per_s']:,.0f} | "
                    f"{r['end_to_end_per_s']:,.0f} | {r['checkpoints']} "
                    f"({r['checkpoint_ms_median']} / {r['checkpoint_ms_max']}) |")
    r = result["ratios"]
    text = f"""# Flink runner: throughput, parallelism, checkpoints, restart

`python -m bench.flink_kafka --records {result['records']}` at commit `{result['commit']}`
({result['date']}; {result['machine'].get('cpu_model')}, {result['machine'].get('nproc')} usable
cores, shared with other work: figures are noisy). SEAa, 4-partition topic, `adaptive`.

{chr(10).join(rows)}

- flink p1 / in-process (steady): **{r['p1_vs_in_process']:.2f}x** (target >= 0.7)
- flink p2 / p1 (steady): **{r['p2_vs_p1']:.2f}x** (target >= 1.6; 2 cores in all, shared
  with the broker, the JVM and the source)
- thread mode / process mode (steady, p1): **{r['thread_vs_process']:.2f}x**
- restart (failure injected at record {result['fail_at']} of a key) to the first new
  prediction: **{result['restart']['restart_to_first_prediction_s']:.1f} s**

See the module docstring of `bench/flink_kafka.py` for what each figure measures.
"""
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flink_kafka", description=__doc__)
    parser.add_argument("--records", type=int, default=8000)
    parser.add_argument("--thread-records", type=int, default=2000,
                        help="records of the thread-mode run (one snapshot per record)")
    parser.add_argument("--out", default=str(HERE))
    args = parser.parse_args(argv)
    bootstrap = infra_kafka.start().bootstrap
    n = args.records
    topic = f"bench-flink-{uuid.uuid4().hex[:8]}"
    produce(bootstrap, topic, "SEAa", n, seed=7)
    small = f"{topic}-small"
    produce(bootstrap, small, "SEAa", args.thread_records, seed=7)
    result: dict[str, Any] = {"records": n, "commit": commit_label(), "machine": machine_info(),
                              "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                              "fail_at": n // 8}
    result["in_process"] = in_memory(bootstrap, topic, "adaptive", 0, n)
    p1 = flink_run(bootstrap, topic, n, "p1", FlinkOptions(parallelism=1))
    p2 = flink_run(bootstrap, topic, n, "p2", FlinkOptions(parallelism=2))
    small_process = flink_run(bootstrap, small, args.thread_records, "p1-small-process",
                              FlinkOptions(parallelism=1))
    try:
        small_thread = flink_run(bootstrap, small, args.thread_records, "p1-small-thread",
                                 FlinkOptions(parallelism=1, execution_mode="thread"))
    except Exception as exc:  # noqa: BLE001 - reported, the other figures still stand
        small_thread = {"name": "p1-small-thread", "error": str(exc).splitlines()[0][:300],
                        "steady_per_s": float("nan")}
    (Path(args.out) / "flink.json").write_text(json.dumps(   # so far, should the restart fail
        {**result, "flink": [p1, p2, small_process, small_thread]}, indent=1, default=str))
    result["restart"] = flink_run(bootstrap, topic, n, "p1-failure", FlinkOptions(parallelism=1),
                                  fail_at=n // 8)
    result["flink"] = [p1, p2, small_process, small_thread, result["restart"]]
    result["ratios"] = {
        "p1_vs_in_process": p1["steady_per_s"] / result["in_process"]["records_per_s"],
        "p2_vs_p1": p2["steady_per_s"] / p1["steady_per_s"],
        "thread_vs_process": small_thread["steady_per_s"] / small_process["steady_per_s"]}
    out = Path(args.out)
    (out / "flink.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    write_report(result, out / "FLINK.md")
    print(json.dumps(result["ratios"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
