"""``driftflow record`` and ``driftflow replay``: a Kafka topic to a Parquet file and back.

The file keeps each message exactly as it was (key and value bytes, partition, offset, timestamp
in epoch milliseconds), so a replay into a topic with as many partitions puts every message back
in the same partition in the same order, and a seeded job over the replayed topic gives the same
predictions as over the original.
"""
from __future__ import annotations

import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.runners import kafka_io as kio
from pipelines.runners.kafka_config import KafkaClientConfig

SCHEMA = pa.schema([("partition", pa.int32()), ("offset", pa.int64()),
                    ("timestamp", pa.int64()), ("key", pa.binary()), ("value", pa.binary())])
# Messages per Parquet row group: a few MB of JSON records; keeps memory flat on long topics.
BATCH_ROWS = 20_000
# Reading to the end offsets seen at start; a stalled fetch for this long means a lost broker.
STALL_TIMEOUT_S = 60.0
# Producer flush bound at the end of a replay (see _ray_worker.FLUSH_TIMEOUT_S).
FLUSH_TIMEOUT_S = 60.0


def record_topic(bootstrap: str, topic: str, path: str,
                 config: KafkaClientConfig = kio.NO_CONFIG,
                 timeout_s: float | None = None) -> int:
    """Write every message of ``topic`` up to the end offsets seen now to Parquet ``path``;
    return the number of messages. ``config``: the cluster's security settings; ``timeout_s``:
    how long to wait for an unreachable broker first (None: see `kio.wait_for_broker`)."""
    from kafka import KafkaConsumer, TopicPartition

    kio.wait_for_broker(bootstrap, config, timeout_s)
    tps = [TopicPartition(topic, p) for p in kio.list_partitions(bootstrap, topic, config=config)]
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             **config.kafka_python())
    rows: dict[str, list] = {name: [] for name in SCHEMA.names}
    total = 0
    try:
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        with pq.ParquetWriter(path, SCHEMA) as writer:
            last_progress = time.monotonic()
            while any(consumer.position(tp) < ends[tp] for tp in tps):
                if time.monotonic() - last_progress > STALL_TIMEOUT_S:
                    raise ValueError(f"reading {topic!r} stalled for {STALL_TIMEOUT_S:.0f} s")
                for tp, messages in consumer.poll(timeout_ms=500).items():
                    for m in messages:
                        if m.offset >= ends[tp]:
                            continue   # written after the recording started
                        for name, value in zip(SCHEMA.names, (m.partition, m.offset, m.timestamp,
                                                              m.key, m.value), strict=True):
                            rows[name].append(value)
                    last_progress = time.monotonic()
                if len(rows["offset"]) >= BATCH_ROWS:
                    total += _flush(writer, rows)
            total += _flush(writer, rows)
    finally:
        consumer.close()
    return total


def _flush(writer: pq.ParquetWriter, rows: dict[str, list]) -> int:
    n = len(rows["offset"])
    if n:
        writer.write_table(pa.table(rows, schema=SCHEMA))
        for values in rows.values():
            values.clear()
    return n


def replay_file(bootstrap: str, path: str, topic: str,
                config: KafkaClientConfig = kio.NO_CONFIG,
                timeout_s: float | None = None) -> int:
    """Produce a recorded file's messages to ``topic`` in (partition, offset) order, each to its
    recorded partition (created with enough partitions if missing); return the count.
    ``config`` and ``timeout_s`` as for `record_topic`."""
    from kafka import KafkaProducer

    table = pq.read_table(path, schema=SCHEMA).sort_by([("partition", "ascending"),
                                                        ("offset", "ascending")])
    partitions = int(pc.max(table["partition"]).as_py() or 0) + 1 if len(table) else 1
    kio.wait_for_broker(bootstrap, config, timeout_s)
    kio.ensure_topics(bootstrap, [topic], partitions, config=config)
    have = len(kio.list_partitions(bootstrap, topic, config=config))
    if have < partitions:
        raise ValueError(f"topic {topic!r} has {have} partitions; the recording needs {partitions}")
    # idempotence keeps each partition's order even if a batch is retried
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                             enable_idempotence=True, **config.kafka_python())
    try:
        futures = [producer.send(topic, key=row["key"], value=row["value"],
                                 partition=row["partition"], timestamp_ms=row["timestamp"])
                   for row in table.to_pylist()]
        producer.flush(timeout=FLUSH_TIMEOUT_S)
        failed = [f for f in futures if not f.is_done or f.failed()]
        if failed:
            raise ValueError(f"{len(failed)} message(s) were not delivered to {topic!r}")
    finally:
        producer.close(timeout=FLUSH_TIMEOUT_S)
    return len(table)
