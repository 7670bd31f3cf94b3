"""The Ray runner: a driver splits a Kafka topic's partitions into groups, one Ray actor per group.

Each actor (`pipelines.runners.ray.worker.PartitionWorker`, made remote here) hosts a model per
partition, writes predictions, drift events and dead letters to Kafka, and checkpoints each
partition (model snapshot + next offset together). Ray restarts a dead actor (``max_restarts``)
and retries its running call (``max_task_retries``); the constructor restores the checkpoints
and seeks to their offsets, so model state sees every record exactly once.

The actors are single-threaded: the driver (`drive`) runs each one's loop in short `step`
calls, two queued at a time, reads their progress from each step's return (the status line),
and sends `stop` and `finish` between steps. No second thread shares the model's interpreter.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from pipelines.checkpoints.envelope import KEY_ENV
from pipelines.runners import kafka_io as kio
from pipelines.runners.kafka_job import KafkaJob
from pipelines.runners.merged_metrics import merge_results
from pipelines.runners.ray.worker import STEP_SECONDS, PartitionWorker
from pipelines.runners.status import status_line
from pipelines.sinks.run_outputs import write_metrics

__all__ = ["KafkaJob", "PartitionWorker", "drive", "group_partitions", "init_local_ray",
           "merge_results", "remote_worker", "run_ray", "start_workers"]

# A restarted actor is retried this often per call before the driver gives up: enough for a
# few crashes in a run, bounded so a worker that dies on every start fails the job.
MAX_TASK_RETRIES = 10
# Steps queued per worker: one running, one waiting, so no worker waits for the driver.
STEPS_IN_FLIGHT = 2
STATUS_PERIOD_S = 5.0      # the driver logs a one-line status this often

log = logging.getLogger("driftflow")


def init_local_ray(**options: Any) -> None:
    """Start a new local Ray instance (never a cluster left by ``ray start`` on this machine)
    with one CPU per core and no dashboard.

    Its workers run at niceness 0, not Ray's default 15: here the actors ARE the job, and at 15
    they yield to every other process on the machine (the broker included). On a busy 2-core
    machine that cost them 5-10 % of their throughput (`bench/KAFKA.md`). A cluster keeps its
    own setting (``RAY_worker_niceness`` where ``ray start`` runs).
    """
    import ray

    ray.init(address="local", **{"num_cpus": os.cpu_count(), "include_dashboard": False,
                                 "_system_config": {"worker_niceness": 0}, **options})


def group_partitions(partitions: list[int], n_groups: int) -> list[list[int]]:
    """Round-robin ``partitions`` into at most ``n_groups`` non-empty groups (deterministic)."""
    if n_groups < 1:
        raise ValueError(f"--actors must be >= 1, got {n_groups}")
    groups = [sorted(partitions)[i::n_groups] for i in range(n_groups)]
    return [g for g in groups if g]


def remote_worker() -> Any:
    """`PartitionWorker` as a Ray actor class: restarted forever, calls retried on restart.
    Single-threaded: its calls run one after the other, in the order the driver sent them
    (`drive` interleaves `stop` with the loop's steps)."""
    import ray

    return ray.remote(max_restarts=-1, max_task_retries=MAX_TASK_RETRIES)(PartitionWorker)


def start_workers(job: KafkaJob, n_actors: int) -> list[tuple[Any, list[int]]]:
    """Create the output topics and one actor per partition group; returns (actor, group)."""
    import ray

    partitions = kio.list_partitions(job.bootstrap, job.topic, config=job.client_config)
    kinds = ("predictions", "drift", "dead-letter") + (("commits",) if job.exactly_once else ())
    kio.ensure_topics(job.bootstrap, [job.output_topic(k) for k in kinds], len(partitions),
                      config=job.client_config)
    groups = group_partitions(partitions, n_actors)
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    # An actor mostly waits on its own Python loop; asking for a fraction of a CPU lets more
    # actors than cores be placed (each still gets a process of its own).
    per_actor = min(1.0, cpus / len(groups))
    options: dict[str, Any] = {"num_cpus": per_actor}
    key = os.environ.get(KEY_ENV)
    if key:   # actors sign their checkpoints with the driver's key, wherever they run
        options["runtime_env"] = {"env_vars": {KEY_ENV: key}}
    cls = remote_worker().options(**options)
    return [(cls.remote(job, group), group) for group in groups]


def drive(workers: list[tuple[Any, list[int]]], *, until_end: bool = True,
          on_progress: Callable[[int, dict[str, Any]], bool] | None = None,
          step_seconds: float = STEP_SECONDS) -> list[dict[int, dict[str, Any]]]:
    """Run each worker's loop to done in `PartitionWorker.step` calls, then ``finish`` them all;
    returns their results in ``workers`` order.

    ``STEPS_IN_FLIGHT`` steps are queued per worker, so a worker never idles waiting for the
    driver. Each step's progress goes to ``on_progress(worker_index, progress)``; when it
    returns True every worker is asked to `stop` (after its queued steps), as on Ctrl-C or
    SIGTERM (what ``ray job stop`` sends). A dead actor is restarted by Ray and its queued
    steps retried; its new incarnation restores its checkpoints first."""
    import ray

    def next_step(i: int) -> Any:
        return workers[i][0].step.remote(until_end, step_seconds)

    queued = {i: collections.deque(next_step(i) for _ in range(STEPS_IN_FLIGHT))
              for i in range(len(workers))}
    with _sigterm_as_interrupt():
        try:
            while queued:
                heads = {q[0]: i for i, q in queued.items()}
                ready, _ = ray.wait(list(heads), num_returns=1)
                i = heads[ready[0]]
                progress = ray.get(queued[i].popleft())
                if progress["done"]:
                    del queued[i]    # a step still queued returns done at once
                if on_progress is not None and on_progress(i, progress):
                    break
                if i in queued:
                    queued[i].append(next_step(i))
        except KeyboardInterrupt:
            log.info("interrupted: stopping the workers (final checkpoint)")
    # a stop runs after the steps already queued (a done worker's final checkpoint must not be
    # cut short by one: after a failed delivery it redoes its records to the end)
    ray.get([workers[i][0].stop.remote() for i in queued])
    return ray.get([w.finish.remote(until_end) for w, _ in workers])


def _status_logger(t0: float, every: float, workers: int
                   ) -> Callable[[int, dict[str, Any]], bool]:
    """An ``on_progress`` for `drive` over ``workers`` workers that logs `status_line` over
    every worker's latest progress each ``every`` seconds, and one line when the workers lose
    the broker and one when they have it back; it never asks to stop.

    The broker is back once EVERY worker has reported a step since, without an outage: a
    worker blocked in a step through the outage (waiting to checkpoint) reports late, and
    counting only the workers that had reported one would log the same outage twice."""
    latest: dict[int, dict[int, dict[str, float]]] = {}
    logged_at = time.perf_counter()
    waiting_for: set[int] = set()   # during an outage: workers not yet seen past it
    down = False

    def on_progress(i: int, progress: dict[str, Any]) -> bool:
        nonlocal logged_at, down, waiting_for
        latest[i] = progress["status"]
        away = progress.get("kafka_away_seconds") is not None
        if away and not down:
            log.warning("driftflow: Kafka unreachable; the workers wait for it (up to %g s) and "
                        "go on where they were", kio.OUTAGE_TIMEOUT_S)
            down, waiting_for = True, set(range(workers))
        if down:
            (waiting_for.add if away else waiting_for.discard)(i)
            if not waiting_for:
                log.warning("driftflow: Kafka reachable again; resuming")
                down = False
        now = time.perf_counter()
        if now - logged_at >= every:
            log.info(status_line({p: s for status in latest.values() for p, s in status.items()},
                                 now - t0))
            logged_at = now
        return False

    return on_progress


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises KeyboardInterrupt, so the workers stop with a final
    checkpoint; only the main thread can set handlers, elsewhere nothing changes."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_ray(job: KafkaJob, *, actors: int = 1, until_end: bool = True,
            out_dir: str | None = None, address: str | None = None,
            status_seconds: float = STATUS_PERIOD_S) -> dict[str, Any]:
    """Run ``job`` on Ray (the current instance, else ``address`` or ``RAY_ADDRESS``, else a new
    local one);
    return (and with ``out_dir`` write) the merged ``metrics.json`` fields. Without
    ``until_end`` it runs until interrupted (Ctrl-C stops the workers with a final checkpoint).
    Every ``status_seconds`` the driver logs one status line (logger ``driftflow``, INFO).
    An unreachable broker is waited for up to ``job.kafka_timeout`` seconds first, then
    `KafkaUnavailable` (one line) is raised; so are refused credentials, at once."""
    import ray

    kio.wait_for_broker(job.bootstrap, job.client_config, job.kafka_timeout)   # before Ray starts
    started_ray = not ray.is_initialized()
    if started_ray and (address or os.environ.get("RAY_ADDRESS")):
        ray.init(address=address)   # a cluster (also what a `ray job submit` entrypoint sees)
    elif started_ray:
        init_local_ray()
    try:
        t0 = time.perf_counter()
        workers = start_workers(job, actors)
        results = drive(workers, until_end=until_end,
                        on_progress=_status_logger(t0, status_seconds, len(workers)))
        seconds = time.perf_counter() - t0
        ray.get([w.close.remote() for w, _ in workers])
        for w, _ in workers:
            ray.kill(w, no_restart=True)
    finally:
        if started_ray:
            ray.shutdown()
    metrics = merge_results(results, seconds, f"kafka:{job.topic}")
    metrics["actors"] = len(workers)
    if out_dir:
        write_metrics(out_dir, metrics)
    return metrics
