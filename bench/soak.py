"""Soak: a long stream through Kafka and Ray with a drift every ``--drift-every`` records and
``--poison`` of the messages bad, watching what a months-long job must not do: grow its memory,
slow down, or let its checkpoints age.

The stream is SEA (10 % label noise) whose concept (threshold 8, 9, 7, 9.5 in turn) changes
abruptly every ``--drift-every`` records; one message in ``1 / --poison`` is replaced by a bad
one (invalid JSON, a wrong type, a NaN, an unknown field, an empty or null value, in turn). The
whole stream is produced first (a backlog, read as fast as the workers can), then
``driftflow``'s Ray runner reads it with ``--actors`` actors, checkpointing every
``--checkpoint-seconds``. Every ``--sample-seconds`` the driver notes the records done, each
actor's resident memory (``/proc/PID/status`` VmRSS: the actors run on this machine) and the
oldest checkpoint age.

Figures: resident memory growth after warm-up (from the sample at ``--warmup`` of the records to
the last), throughput per sample window (its coefficient of variation), the largest checkpoint
age, and the accounting (records in = predictions + dead letters + skips). Not in CI: the full
size (2,000,000 records, drift every 200,000) takes ~2 minutes on 2 quiet cores (5-6 on busy
ones), plus ~2.5 minutes of compiling when the numba cache is cold.

``python -m bench.soak --records 2000000`` writes ``soak.json`` and ``soak.png`` to
``--out-dir`` (default ``bench/``); ``bench/SOAK.md`` is written by hand from them.
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.harness import machine_info
from infra import kafka as infra_kafka

HERE = Path(__file__).resolve().parent
PARTITIONS = 4
SEA_VARIANTS = (0, 1, 2, 3)   # River's SEA variants: thresholds 8, 9, 7, 9.5
POISON = (b"{not json", b'{"id": -1, "x": {"0": "abc", "1": 1, "2": 2}, "y": 0}',
          b'{"id": -1, "x": {"0": NaN, "1": 1, "2": 2}, "y": 0}',
          b'{"id": -1, "x": {"0": 1, "1": 1, "2": 2, "zz": 1}, "y": 0}', b"", None)
FLUSH_TIMEOUT_S = 300.0   # producing a 2M backlog; bounds a lost broker only


def produce(bootstrap: str, topic: str, n: int, drift_every: int, poison: float,
            seed: int) -> dict[str, int]:
    """The stream to a new topic, round-robin over the partitions; returns the counts sent."""
    import confluent_kafka as ck
    from river.datasets import synth

    infra_kafka.create_topic(topic, partitions=PARTITIONS, bootstrap=bootstrap)
    producer = ck.Producer({"bootstrap.servers": bootstrap, "linger.ms": 50,
                            "queue.buffering.max.messages": 500_000})
    every = round(1 / poison) if poison > 0 else 0
    bad, concept, stream = 0, -1, None
    for i in range(n):
        if i // drift_every != concept:
            concept = i // drift_every
            variant = SEA_VARIANTS[concept % len(SEA_VARIANTS)]
            stream = iter(synth.SEA(variant=variant, noise=0.1, seed=seed + concept))
        x, y = next(stream)
        value = json.dumps({"id": i, "x": {str(k): v for k, v in x.items()}, "y": y}).encode()
        if every and i % every == every - 1:
            value, bad = POISON[bad % len(POISON)], bad + 1
        while True:
            try:
                producer.produce(topic, value, partition=i % PARTITIONS)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(FLUSH_TIMEOUT_S):
        raise RuntimeError("the stream was not all delivered")
    return {"records": n, "poison": bad}


def _rss_mb(pid: int) -> dict[str, float]:
    """Resident MB of process ``pid``: in all (VmRSS) and its parts: anonymous (heap, arrays,
    compiled code, client buffers), file-backed (libraries, cache files) and shared (Ray's
    object store)."""
    fields = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file", "RssShmem:": "shmem"}
    out = dict.fromkeys(fields.values(), float("nan"))
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name = line.split(maxsplit=1)[0] if line else ""
        if name in fields:
            out[fields[name]] = int(line.split()[1]) / 1024
    return out


def soak(bootstrap: str, topic: str, actors: int, checkpoint_seconds: float,
         sample_seconds: float, seed: int) -> dict[str, Any]:
    """Run the job over the topic, sampling progress, memory and checkpoint age."""
    import ray

    from pipelines.runners.kafka_job import KafkaJob
    from pipelines.runners.ray.driver import (
        drive,
        init_local_ray,
        merge_results,
        start_workers,
    )

    samples: list[dict[str, Any]] = []
    latest: dict[int, dict[str, Any]] = {}
    t0 = time.perf_counter()
    next_sample = t0

    def on_progress(i: int, progress: dict[str, Any]) -> bool:
        nonlocal next_sample
        latest[i] = progress
        now = time.perf_counter()
        if now >= next_sample and len(latest) == len(workers):
            next_sample = now + sample_seconds
            statuses = [s for p in latest.values() for s in p["status"].values()]
            memory = [_rss_mb(p["pid"]) for p in latest.values()]
            samples.append({"t": now - t0,
                            "records": sum(s["records_in"] for s in statuses),
                            "rss_mb": [m.pop("rss") for m in memory], "rss_parts_mb": memory,
                            "checkpoint_age_s": max(s["checkpoint_age_seconds"]
                                                    for s in statuses)})
        return False

    init_local_ray(log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as ckpt:
            job = KafkaJob(bootstrap, topic, seed=seed, checkpoint_dir=ckpt,
                           checkpoint_every=10**9, checkpoint_seconds=checkpoint_seconds)
            workers = start_workers(job, actors)
            results = drive(workers, on_progress=on_progress)
            seconds = time.perf_counter() - t0
            ray.get([w.close.remote() for w, _ in workers])
    finally:
        ray.shutdown()
    return {"metrics": merge_results(results, seconds, f"kafka:{topic}"), "samples": samples}


def summarise(run: dict[str, Any], warmup: float) -> dict[str, Any]:
    """Memory growth after warm-up, throughput per window, the largest checkpoint age."""
    samples, metrics = run["samples"], run["metrics"]
    total = metrics["records"]
    warm = next((s for s in samples if s["records"] >= warmup * total), samples[0])
    last = samples[-1]
    growth = [b / a - 1 for a, b in zip(warm["rss_mb"], last["rss_mb"], strict=True)]
    parts_growth = [{k: round(b[k] - a[k], 1) for k in a}
                    for a, b in zip(warm.get("rss_parts_mb", []), last.get("rss_parts_mb", []))]
    rates = [(b["records"] - a["records"]) / (b["t"] - a["t"])
             for a, b in itertools.pairwise(samples) if b["t"] > a["t"]]
    steady = [r for r, s in zip(rates, samples[1:]) if warm["records"] <= s["records"] < total]
    parts = metrics["partitions"].values()
    return {"records": total, "accuracy": metrics["accuracy"], "drifts": len(metrics["drifts"]),
            "dead_letters": metrics["dead_letters"], "skipped": metrics["skipped"],
            "predictions": sum(p["records"] - p["dead_letters"] for p in parts),
            "seconds": metrics["seconds"], "records_per_s": metrics["records_per_second"],
            "rss_mb_at_warmup": warm["rss_mb"], "rss_mb_at_end": last["rss_mb"],
            "rss_growth_after_warmup": growth, "rss_parts_growth_mb": parts_growth,
            "window_rate_mean": statistics.fmean(steady) if steady else float("nan"),
            "window_rate_cv": (statistics.pstdev(steady) / statistics.fmean(steady)
                               if len(steady) > 1 else float("nan")),
            "max_checkpoint_age_s": max(s["checkpoint_age_s"] for s in samples)}


def plot(run: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = run["samples"]
    t = [s["t"] for s in samples]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    rates = [(b["records"] - a["records"]) / (b["t"] - a["t"])
             for a, b in itertools.pairwise(samples)]
    ax1.plot(t[1:], rates)
    ax1.set_ylabel("records / s (window)")
    for k in range(len(samples[0]["rss_mb"])):
        ax2.plot(t, [s["rss_mb"][k] for s in samples], label=f"actor {k}")
    ax2.set_ylabel("resident MB")
    ax2.set_xlabel("seconds")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    p.add_argument("--records", type=int, default=2_000_000)
    p.add_argument("--drift-every", type=int, default=200_000)
    p.add_argument("--poison", type=float, default=0.01, help="fraction of bad messages")
    p.add_argument("--actors", type=int, default=2)
    p.add_argument("--checkpoint-seconds", type=float, default=10.0)
    p.add_argument("--sample-seconds", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=0.1, help="fraction of the records")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", type=Path, default=HERE)
    args = p.parse_args(argv)
    if not infra_kafka.is_running():
        infra_kafka.start()
    bootstrap = infra_kafka.bootstrap()
    topic = f"soak-{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    sent = produce(bootstrap, topic, args.records, args.drift_every, args.poison, args.seed)
    produce_s = time.perf_counter() - t0
    run = soak(bootstrap, topic, args.actors, args.checkpoint_seconds, args.sample_seconds,
               args.seed)
    summary = summarise(run, args.warmup)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    plot(run, args.out_dir / "soak.png")
    result = {"args": {k: str(v) for k, v in vars(args).items()}, "sent": sent,
              "produce_seconds": produce_s, "summary": summary, "samples": run["samples"],
              "machine": machine_info()}
    (args.out_dir / "soak.json").write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps(summary, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
