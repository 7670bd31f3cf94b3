"""`run_flink`: a `KafkaJob` as a PyFlink DataStream job.

Kafka source (the table connector, for its ``partition`` / ``offset`` metadata columns: PyFlink's
DataStream KafkaSource only offers a value-only deserializer) -> key_by partition (or a JSON
field) -> `ModelFunction` -> one KafkaSink writing in the Ray runner's formats and topic names.
Flink's checkpoints recover the models and the source offsets together; with ``exactly_once``
the sinks write in Kafka transactions committed on each checkpoint (read them
``read_committed``). Runs on the local mini-cluster, or on a cluster given ``flink_address``.
"""
from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pipelines.runners.flink.environment import configuration, environment, uri
from pipelines.runners.kafka_job import KafkaJob
from pipelines.runners.merged_metrics import merge_results
from pipelines.sinks.run_outputs import write_metrics

# The sinks' Kafka transactions must outlive a checkpoint interval plus a restart, and stay
# within the broker's transaction.max.timeout.ms (15 min by default): 10 min.
TRANSACTION_TIMEOUT_MS = 600_000
# Records a Python bundle holds (PyFlink's default): a bundle's end writes the keyed state back,
# one model snapshot per key touched (~5 ms on SEA, ~2 % of 1,000 records' model time), and
# every checkpoint barrier waits for the records in flight to the Python worker, up to a bundle:
# 10,000 made checkpoints take 5 s and more at ~1 ms a record. Measured in bench/FLINK.md.
BUNDLE_SIZE = 1_000
BUNDLE_TIME_MS = 1_000
OUTPUT_KINDS = ("predictions", "drift", "dead-letter")
PACKAGES = ("pipelines", "detectors", "experts", "router")


@dataclass(frozen=True)
class FlinkOptions:
    """How the job runs: ``parallelism`` of the model operator; ``key_by`` a JSON field (None:
    the Kafka partition); ``from_savepoint`` a savepoint or retained checkpoint to start from
    (the job's ``checkpoint_dir`` holds its checkpoints, kept after a cancel);
    ``execution_mode`` PyFlink's ``process`` or ``thread``; ``flink_address`` ``host:port`` of a
    cluster's REST endpoint; ``rest_port`` the local mini-cluster's REST endpoint (what the web
    UI reads: jobs, checkpoints, metrics with the model's gauges; default: a free port)."""

    parallelism: int = 1
    key_by: str | None = None
    from_savepoint: str | None = None
    execution_mode: str = "process"
    bundle_size: int = BUNDLE_SIZE
    bundle_time_ms: int = BUNDLE_TIME_MS
    flink_address: str | None = None
    rest_port: int = 0


def _source_table(job: KafkaJob, until_end: bool, labels: bool = False) -> str:
    """DDL of the input topic (``labels``: the labels topic) as a table: raw key and value
    bytes plus partition, offset and timestamp metadata. The input starts at the committed
    group offsets, else the earliest (as the Ray runner); the labels topic at its earliest
    (Flink's checkpoints hold where it is, as a Ray worker's labels checkpoint does)."""
    options = {
        "connector": "kafka", "topic": job.labels_topic if labels else job.topic,
        "properties.bootstrap.servers": job.bootstrap,
        "properties.group.id": f"{job.group}-labels" if labels else job.group,
        "scan.startup.mode": "earliest-offset" if labels else "group-offsets",
        "properties.auto.offset.reset": "earliest", "key.format": "raw", "key.fields": "k",
        "value.format": "raw", "value.fields-include": "EXCEPT_KEY",
    }
    if until_end:
        options["scan.bounded.mode"] = "latest-offset"
    with_clause = ", ".join(f"'{k}' = '{v}'" for k, v in options.items())
    table = "driftflow_labels" if labels else "driftflow_input"
    return (f"CREATE TEMPORARY TABLE {table} (`k` BYTES, `v` BYTES, "
            "`partition` INT METADATA VIRTUAL, `offset` BIGINT METADATA VIRTUAL, "
            f"`ts` TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL) WITH ({with_clause})")


def _sink(job: KafkaJob) -> Any:
    """One KafkaSink for the three output topics: each element is a ``Row(topic, value)`` and
    the topic and value are picked on the Java side (PyFlink's first-column topic selector),
    so no Python operator sits between the model and Kafka."""
    from pyflink.common.serialization import SimpleStringSchema
    from pyflink.datastream.connectors.base import DeliveryGuarantee
    from pyflink.datastream.connectors.kafka import KafkaSink
    from pyflink.java_gateway import get_gateway
    from pyflink.util.java_utils import get_java_class

    jvm = get_gateway().jvm
    utils = jvm.org.apache.flink.python.util.PythonConnectorUtils
    kafka_sink = jvm.org.apache.flink.connector.kafka.sink
    serializer = (kafka_sink.KafkaRecordSerializationSchemaBuilder()
                  .setTopicSelector(utils.createFirstColumnTopicSelector(
                      get_java_class(kafka_sink.TopicSelector)))
                  .setValueSerializationSchema(utils.SecondColumnSerializationSchema(
                      SimpleStringSchema()._j_serialization_schema))
                  .build())
    builder = KafkaSink.builder().set_bootstrap_servers(job.bootstrap)
    builder._j_builder.setRecordSerializer(serializer)   # PyFlink's setter would wrap it again
    if job.exactly_once:
        # stable across restarts and savepoints: a restarted job aborts what its dead
        # incarnation left open
        builder = (builder.set_delivery_guarantee(DeliveryGuarantee.EXACTLY_ONCE)
                   .set_transactional_id_prefix(f"driftflow-{job.group}")
                   .set_property("transaction.timeout.ms", str(TRANSACTION_TIMEOUT_MS)))
    else:
        builder = builder.set_delivery_guarantee(DeliveryGuarantee.AT_LEAST_ONCE)
    return builder.build()


class _FieldKey:
    """Key selector: a JSON field's value as text ("" when the message has none)."""

    def __init__(self, field: str) -> None:
        self.field = field

    def __call__(self, row: Any) -> str:
        try:
            value = json.loads(row[1]).get(self.field)
        except (ValueError, TypeError, AttributeError, RecursionError):
            return ""
        return "" if value is None else str(value)


@dataclass(frozen=True)
class LabelSource:
    """Where the delayed labels go: the input's partitions (every label goes to each), the
    labels topic's partitions and, for a bounded job, their first and end offsets."""

    keys: list[int]
    partitions: list[int]
    bounds: dict[int, tuple[int, int]] | None


def _label_source(job: KafkaJob, until_end: bool) -> LabelSource:
    """The input's and the labels topic's partitions, and (``until_end``) where the labels
    topic starts and ends now: a bounded job's labels partition is drained at its end."""
    from pipelines.runners import kafka_io

    keys = kafka_io.list_partitions(job.bootstrap, job.topic, config=job.client_config)
    partitions = kafka_io.list_partitions(job.bootstrap, job.labels_topic,
                                          config=job.client_config)
    bounds = None
    if until_end:
        reader = kafka_io.PartitionReader(job.bootstrap, job.labels_topic, partitions,
                                          group=f"{job.group}-labels",
                                          client_id="driftflow-flink-labels-bounds",
                                          config=job.client_config)
        try:
            bounds = {p: reader.watermarks(p) for p in partitions}
        finally:
            reader.close()
    return LabelSource(keys, partitions, bounds)


def build_job(job: KafkaJob, options: FlinkOptions, until_end: bool, summary_dir: str,
              labels: LabelSource | None = None) -> Any:
    """The execution environment with the whole pipeline on it; with ``labels`` the labels
    topic is connected to the records, every label to every partition's key."""
    from pyflink.common import Types
    from pyflink.table import StreamTableEnvironment

    from pipelines.runners.flink.label_operator import LabelledModelFunction
    from pipelines.runners.flink.labels import ToEveryKey
    from pipelines.runners.flink.operator import FAIL_ONCE_ENV, ModelFunction

    env = environment(configuration(job, options), options.flink_address)
    env.set_python_executable(sys.executable)
    if options.flink_address:
        for package in PACKAGES:
            env.add_python_file(os.path.dirname(sys.modules[package].__file__))
    tables = StreamTableEnvironment.create(env)
    tables.execute_sql(_source_table(job, until_end))
    rows = tables.to_data_stream(tables.from_path("driftflow_input"))
    if options.key_by:
        keyed = rows.key_by(_FieldKey(options.key_by), key_type=Types.STRING())
    else:
        keyed = rows.key_by(lambda row: row[2], key_type=Types.INT())
    outputs = Types.ROW([Types.STRING(), Types.STRING()])
    fail_once = os.environ.get(FAIL_ONCE_ENV)
    if labels is None:
        model = keyed.process(ModelFunction(job, summary_dir, fail_once), output_type=outputs)
    else:
        tables.execute_sql(_source_table(job, until_end, labels=True))
        label_rows = (tables.to_data_stream(tables.from_path("driftflow_labels"))
                      .flat_map(ToEveryKey(labels.keys), output_type=Types.ROW(
                          [Types.INT(), Types.PRIMITIVE_ARRAY(Types.BYTE()), Types.INT(),
                           Types.LONG(), Types.LONG()]))
                      .name("labels-to-every-key").uid("labels-to-every-key")
                      .key_by(lambda row: row[0], key_type=Types.INT()))
        function = LabelledModelFunction(job, summary_dir, labels.partitions, labels.bounds,
                                         min(labels.keys), fail_once)
        model = keyed.connect(label_rows).process(function, output_type=outputs)
    (model.name("driftflow-model").uid("driftflow-model").set_parallelism(options.parallelism)
     .sink_to(_sink(job)).name("kafka-outputs").uid("kafka-outputs"))
    return env


def _read_summaries(directory: str) -> list[dict[Any, Any]]:
    """Every key's end-of-input summary the operator wrote (pickles this job wrote)."""
    from pyarrow import fs as pafs

    filesystem, path = pafs.FileSystem.from_uri(uri(directory))
    infos = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    parts = []
    for info in sorted(infos, key=lambda i: i.path):
        with filesystem.open_input_stream(info.path) as stream:
            parts.append(pickle.loads(stream.read()))
    return parts


def start_flink(job: KafkaJob, options: FlinkOptions = FlinkOptions(), *,
                until_end: bool = True) -> tuple[Any, str]:
    """Submit ``job`` and return at once: its PyFlink ``JobClient`` (status, cancel,
    ``stop_with_savepoint``) and the directory its end-of-input summaries go to."""
    from pipelines.runners import kafka_io

    if job.labels_topic and options.key_by:
        raise ValueError("--labels-topic with --key-by is not supported by --runtime flink: "
                         "every label goes to each partition's model (key by partition)")
    partitions = kafka_io.list_partitions(job.bootstrap, job.topic)
    kafka_io.ensure_topics(job.bootstrap, [job.output_topic(k) for k in OUTPUT_KINDS],
                           len(partitions))
    summary_dir = (f"{job.checkpoint_dir.rstrip('/')}/summaries-{uuid.uuid4().hex[:12]}"
                   if job.checkpoint_dir else tempfile.mkdtemp(prefix="driftflow-flink-"))
    labels = _label_source(job, until_end) if job.labels_topic else None
    env = build_job(job, options, until_end, summary_dir, labels)
    return env.execute_async(f"driftflow {job.topic}"), summary_dir


def stop_with_savepoint(client: Any, directory: str) -> str:
    """Stop the job of ``client`` with a savepoint in ``directory``; returns its path (for
    ``from_savepoint``). PyFlink 2.3's ``JobClient.stop_with_savepoint`` calls a Java method
    that no longer exists (it gained a format argument), so the Java client is called here."""
    from pyflink.java_gateway import get_gateway

    canonical = get_gateway().jvm.org.apache.flink.core.execution.SavepointFormatType.CANONICAL
    return client._j_job_client.stopWithSavepoint(False, uri(directory), canonical).get()


def run_flink(job: KafkaJob, options: FlinkOptions = FlinkOptions(), *, until_end: bool = True,
              out_dir: str | None = None) -> dict[str, Any]:
    """Run ``job`` on Flink until its end (``until_end``) or until interrupted (Ctrl-C cancels
    the job; its last checkpoint stays in ``checkpoint_dir`` for ``from_savepoint``); return
    (and with ``out_dir`` write) the merged ``metrics.json`` fields, as the Ray runner does."""
    t0 = time.perf_counter()
    client, summary_dir = start_flink(job, options, until_end=until_end)
    try:
        client.get_job_execution_result().result()
    except KeyboardInterrupt:
        client.cancel().result()
        raise
    parts = _read_summaries(summary_dir)
    seconds = time.perf_counter() - t0
    metrics = merge_results(parts, seconds, f"kafka:{job.topic}", runtime="flink")
    metrics.update(parallelism=options.parallelism,
                   key_by=options.key_by or "partition")
    if out_dir:
        write_metrics(out_dir, metrics)
    return metrics
