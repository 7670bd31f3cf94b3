"""The Flink environment a driftflow job runs in: its configuration (Python bundles, restarts,
checkpoints, savepoint restore, the mini-cluster's REST port) and the local mini-cluster or a
cluster's REST endpoint to run on."""
from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from pipelines.runners.kafka_job import KafkaJob

if TYPE_CHECKING:
    from pipelines.runners.flink.job import FlinkOptions

# A failed task is restarted this many times, this far apart, before the job fails.
RESTART_ATTEMPTS = 3
RESTART_DELAY_S = 1


def configuration(job: KafkaJob, options: FlinkOptions) -> Any:
    """The job's Flink configuration (a PyFlink ``Configuration``)."""
    from pyflink.common import Configuration

    from infra.flink import ensure_connector

    config = Configuration()
    settings = {
        "pipeline.jars": ensure_connector().as_uri(),
        "python.execution-mode": options.execution_mode,
        "python.fn-execution.bundle.size": str(options.bundle_size),
        "python.fn-execution.bundle.time": str(options.bundle_time_ms),
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": str(RESTART_ATTEMPTS),
        "restart-strategy.fixed-delay.delay": f"{RESTART_DELAY_S} s",
    }
    if options.execution_mode == "thread":
        # the embedded interpreter starts from the base Python: give it this environment's
        # packages (pemja, pyflink, the project's)
        settings["python.pythonpath"] = os.pathsep.join(
            p for p in sys.path if p and os.path.isdir(p))
    if job.checkpoint_dir:   # without one, no checkpoints (as the Ray runner)
        settings.update({
            "execution.checkpointing.interval": f"{int(job.checkpoint_seconds * 1000)} ms",
            "execution.checkpointing.mode": "EXACTLY_ONCE",
            "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
            "execution.checkpointing.dir": uri(job.checkpoint_dir),
            "execution.checkpointing.savepoint-dir": uri(job.checkpoint_dir) + "/savepoints",
        })
    if options.from_savepoint:
        settings["execution.state-recovery.path"] = uri(options.from_savepoint)
    if not options.flink_address:
        # the mini-cluster's REST endpoint, with metrics fetched every second (default 10 s)
        settings.update({"rest.port": str(options.rest_port),
                         "metrics.fetcher.update-interval": "1000"})
    for name, value in settings.items():
        config.set_string(name, value)
    return config


def environment(config: Any, flink_address: str | None) -> Any:
    """The local mini-cluster's environment, or one submitting to the cluster whose REST
    endpoint is ``flink_address`` (``host:port``). PyFlink's ``get_execution_environment``
    always makes a local one outside ``flink run``, so the remote one is Java's
    ``createRemoteEnvironment``, given the jars the job needs that a cluster's ``lib/`` lacks:
    the Kafka connector and flink-python (what ``flink run -py`` adds too)."""
    import glob

    import pyflink
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.java_gateway import get_gateway

    from infra.flink import ensure_connector

    if not flink_address:
        return StreamExecutionEnvironment.get_execution_environment(config)
    host, _, port = flink_address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--flink-address must be HOST:PORT, got {flink_address!r}")
    gateway = get_gateway()
    python_jar = glob.glob(os.path.join(os.path.dirname(pyflink.__file__), "opt",
                                        "flink-python-*.jar"))
    jars = gateway.new_array(gateway.jvm.String, 1 + len(python_jar))
    for i, jar in enumerate([str(ensure_connector()), *python_jar]):
        jars[i] = jar
    java_env = gateway.jvm.org.apache.flink.streaming.api.environment.StreamExecutionEnvironment
    return StreamExecutionEnvironment(java_env.createRemoteEnvironment(
        host, int(port), config._j_configuration, jars))


def uri(path: str) -> str:
    """A path as Flink wants it: URIs as they are (Flink returns ``file:/x`` for local ones),
    local paths absolute with ``file://``."""
    return path if "://" in path or path.startswith("file:") else "file://" + os.path.abspath(path)
