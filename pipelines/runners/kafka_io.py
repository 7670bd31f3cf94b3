"""Kafka clients shared by the runtimes: topic metadata, output topics, and the confluent-kafka
partition reader and producer the workers use. Every client takes the job's `KafkaClientConfig`
(security settings; `kafka_connect` builds their base settings and waits for a broker). No Ray
here; the message formats are in `pipelines.sinks.kafka_messages`. (Past 300 lines: the
reader and its producing subclass share one client lifecycle, and the broker-restart cases
live with it: outages, a transaction call that hangs, a committed offset read stable.)"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaException as KafkaError

from pipelines.runners.kafka_config import KafkaClientConfig, KafkaUnavailable
from pipelines.runners.kafka_connect import (
    CONNECT_TIMEOUT_S,
    NO_CONFIG,
    OUTAGE_TIMEOUT_S,
    PROBE_TIMEOUT_S,
    confluent_settings,
    wait_for_broker,
)

__all__ = ["CONNECT_TIMEOUT_S", "METADATA_TIMEOUT_S", "NO_CONFIG", "OUTAGE_TIMEOUT_S",
           "BrokerAway", "KafkaError", "KafkaUnavailable", "OutputsNotDelivered",
           "PartitionIO", "PartitionReader", "confluent_settings", "ensure_topics",
           "list_partitions", "wait_for_broker"]

# Metadata for a freshly created topic reaches a one-node broker in well under a second; 30 s
# covers a broker still loading its log after a restart (the same bound infra/kafka.py uses).
METADATA_TIMEOUT_S = 30.0
# A transaction call is abandoned this long after its own METADATA_TIMEOUT_S (see `_bounded`).
HUNG_CALL_GRACE_S = 10.0
# How long a restore waits for a group's committed offset to become stable (a transaction that
# committed it still completing after a broker restart) before it takes the plain offset.
STABLE_WAIT_S = 20.0

log = logging.getLogger("driftflow")


def _bounded(call: Callable[[], Any], timeout_s: float, what: str,
             abandon_if: Callable[[], bool] | None = None) -> Any:
    """``call()`` in a helper thread, waited for ``timeout_s``: `KafkaError` if it has not
    returned by then, or as soon as ``abandon_if()`` (asked every 0.2 s) is true; its own error
    otherwise.

    librdkafka's transaction calls take a timeout, yet one begun while the broker shuts down
    could block for good (measured here: `commit_transaction(30)` still blocked after 5 min, two
    workers at once). The worker then treats the transaction as failed and rewinds: its new
    producer, with the same transactional id, fences the stuck one, and the checkpoint that
    matches the last committed transaction is restored, whichever way the stuck call ended. The
    abandoned thread holds only that old producer."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=run, name=f"driftflow-{what}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while thread.is_alive() and time.monotonic() < deadline:
        thread.join(min(0.2, max(0.0, deadline - time.monotonic())))
        if thread.is_alive() and abandon_if is not None and abandon_if():
            raise KafkaError(f"{what} abandoned: every broker went away")
    if thread.is_alive():
        raise KafkaError(f"{what} did not return within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def list_partitions(bootstrap: str, topic: str, timeout: float = METADATA_TIMEOUT_S,
                    config: KafkaClientConfig = NO_CONFIG) -> list[int]:
    """The topic's partition numbers, sorted; ValueError when the topic does not exist."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="driftflow-driver",
                             **config.kafka_python())
    try:
        deadline = time.monotonic() + timeout
        while True:
            parts = consumer.partitions_for_topic(topic)
            if parts:
                return sorted(parts)
            if time.monotonic() > deadline:
                raise ValueError(f"Kafka topic {topic!r} not found on {bootstrap}")
            time.sleep(0.2)
            consumer.topics()   # refresh the metadata cache before asking again
    finally:
        consumer.close()


def ensure_topics(bootstrap: str, names: list[str], partitions: int,
                  config: KafkaClientConfig = NO_CONFIG) -> None:
    """Create the output topics (``partitions`` each) unless they exist already."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="driftflow-driver",
                             **config.kafka_python())
    try:
        existing = set(admin.list_topics())
        for name in names:
            if name in existing:
                continue
            try:
                admin.create_topics([NewTopic(name, partitions, 1)])
            except TopicAlreadyExistsError:
                pass   # another driver made it between list and create
    finally:
        admin.close()


class OutputsNotDelivered(RuntimeError):
    """Some output messages sent since the last flush failed or were not acknowledged."""


class BrokerAway(RuntimeError):
    """Every broker went away during a flush; the messages stay queued for when one is back."""


class PartitionReader:
    """A confluent-kafka (librdkafka) consumer manually assigned ``partitions`` of ``topic``:
    the worker's records and its labels reader.

    Why not kafka-python here (it stays for admin, metadata and record/replay): the client
    table of `bench/KAFKA.md` measures ~30 us of Python per consumed message, all of it holding
    the GIL the model needs, against ~1 us with librdkafka, whose I/O threads run outside the
    GIL. And librdkafka's `pause` keeps the read position exactly (kafka-python 3.0 lost
    buffered messages of a paused partition).
    """

    def __init__(self, bootstrap: str, topic: str, partitions: list[int], group: str,
                 client_id: str, read_committed: bool = False,
                 config: KafkaClientConfig = NO_CONFIG) -> None:
        import confluent_kafka as ck

        self._ck = ck
        self.topic = topic
        self._bootstrap, self._group, self._config = bootstrap, group, config
        self._tps = {p: ck.TopicPartition(topic, p) for p in partitions}
        self.away_since: float | None = None   # monotonic time all brokers were seen down
        self.disturbed = False   # a connection to a broker was lost (since `begin`, for a writer)
        self._consumer = ck.Consumer({
            **confluent_settings(bootstrap, config, error_cb=self._on_error),
            "group.id": group, "client.id": client_id,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
            # prefetch at most ~16 MB in all: a bounded run reads its backlog as it goes
            "queued.max.messages.kbytes": 16384,
            # a caught-up fetch waits at the broker this long (ms) for new data; each answer
            # wakes the broker and the client, taking a core from the models (with the
            # producer's linger of 100 ms, instead of 50 and 20: two actors on two cores were
            # preempted ~40 % less often, context switches of their loop threads)
            "fetch.wait.max.ms": 100,
        })
        self._highwater: dict[int, int] = {}
        self._paused: set[int] = set()
        self._closed = False

    def _on_error(self, error: Any) -> None:
        """librdkafka's client-level errors (served in poll/flush): notes when every broker is
        down; the client reconnects by itself, `broker_back` notices it did."""
        if error.name() in ("_TRANSPORT", "_ALL_BROKERS_DOWN"):
            self.disturbed = True
        if error.name() == "_ALL_BROKERS_DOWN" and self.away_since is None:
            self.away_since = time.monotonic()

    def broker_back(self) -> bool:
        """After brokers were seen down: whether one answers now (a short metadata probe)."""
        try:
            self._consumer.list_topics(self.topic, timeout=PROBE_TIMEOUT_S)
        except self._ck.KafkaException:
            return False
        self.away_since = None
        return True

    def wait_until_back(self, limit_s: float = OUTAGE_TIMEOUT_S) -> None:
        """Block until a broker answers (no-op when none was seen down); `KafkaUnavailable`
        once brokers have been down ``limit_s`` in all."""
        logged = False
        while self.away_since is not None and not self.broker_back():
            if time.monotonic() - self.away_since > limit_s:
                raise KafkaUnavailable(f"Kafka unreachable for {limit_s:g} s; giving up")
            if not logged:
                log.warning("%s: Kafka unreachable; waiting for it", self.topic)
                logged = True

    def assign(self, offsets: dict[int, int | None]) -> dict[int, int]:
        """Assign each partition at its offset (None: the partition's first offset); returns
        the offsets reading starts from."""
        start = {p: self.watermarks(p)[0] if off is None else off for p, off in offsets.items()}
        self._consumer.assign(self._positions(start))
        return start

    def _positions(self, offsets: dict[int, int]) -> list[Any]:
        """``{partition: offset}`` as confluent-kafka TopicPartitions of ``topic``."""
        return [self._ck.TopicPartition(self.topic, p, off) for p, off in offsets.items()]

    def watermarks(self, partition: int) -> tuple[int, int]:
        """(first offset, end offset) of ``partition``, asked of the broker."""
        return self._consumer.get_watermark_offsets(self._tps[partition],
                                                    timeout=METADATA_TIMEOUT_S)

    def highwater(self, partition: int) -> int | None:
        """End offset of ``partition`` as of the last fetch (no broker call); None if unknown.
        Still answers after `close` (progress reports outlive the worker's clients)."""
        if not self._closed:
            _, high = self._consumer.get_watermark_offsets(self._tps[partition], cached=True)
            if high >= 0:
                self._highwater[partition] = high
        return self._highwater.get(partition)   # after `close`: the last one seen

    def committed(self, partition: int) -> int | None:
        """The group's committed offset of ``partition`` (None: none committed), read stable
        when Kafka can say it: while it answers UNSTABLE_OFFSET_COMMIT it asks again for
        `STABLE_WAIT_S`, then takes the plain committed offset. On other errors it asks again
        up to `METADATA_TIMEOUT_S`, then raises `KafkaError`. Only a fallback for exactly-once
        jobs whose transactions predate their commits topic (`kafka_commits` says why the
        group's offset is not the first choice after a broker restart)."""
        from confluent_kafka.admin import AdminClient

        ck = self._ck
        admin = AdminClient(confluent_settings(self._bootstrap, self._config))
        request = [ck.ConsumerGroupTopicPartitions(self._group, [self._tps[partition]])]
        started = time.monotonic()
        stable = True
        while True:
            futures = admin.list_consumer_group_offsets(
                request, require_stable=stable, request_timeout=PROBE_TIMEOUT_S)
            try:
                got = futures[self._group].result(timeout=PROBE_TIMEOUT_S + 1.0)
                error = got.topic_partitions[0].error
                if error is None:
                    offset = got.topic_partitions[0].offset
                    return offset if offset >= 0 else None
            except (KafkaError, TimeoutError) as exc:
                error = exc
            waited = time.monotonic() - started
            unstable = getattr(error, "code", lambda: None)() == ck.KafkaError.UNSTABLE_OFFSET_COMMIT
            if stable and unstable and waited > STABLE_WAIT_S:
                log.warning("%s[%d]: committed offset still unstable after %g s (a fenced "
                            "producer's commit); taking the plain committed offset",
                            self.topic, partition, STABLE_WAIT_S)
                stable = False
                continue
            if waited > METADATA_TIMEOUT_S + STABLE_WAIT_S:
                raise KafkaError(f"the committed offset of {self.topic}[{partition}] was not "
                                 f"readable within {waited:.0f} s: {error}")
            time.sleep(0.1)

    def pause_only(self, partitions: set[int]) -> None:
        """Stop fetching ``partitions`` and fetch all others (a paused partition resumes at the
        message after the last one `poll` returned)."""
        if partitions != self._paused:
            self._consumer.resume([self._tps[p] for p in self._paused - partitions])
            self._consumer.pause([self._tps[p] for p in partitions - self._paused])
            self._paused = set(partitions)

    def poll(self, max_records: int, timeout_s: float) -> dict[int, list[Any]]:
        """Up to ``max_records`` messages, by partition in offset order: those fetched already,
        at once; when there are none, waits up to ``timeout_s`` for the first to arrive.
        (librdkafka's ``consume(n, timeout)`` waits for all ``n`` or the whole timeout: 200 ms
        lost at the start and end of every backlog, and on every poll of a slow live stream.)
        Raises on a fatal or non-retriable consumer error (a retriable one is librdkafka's to
        retry)."""
        consume = self._consumer.consume
        messages = consume(max_records, 0)
        if not messages:
            messages = consume(1, timeout_s)
            if messages and max_records > 1:
                messages += consume(max_records - 1, 0)
        batches: dict[int, list[Any]] = {}
        for m in messages:
            error = m.error()
            if error is not None:
                if error.fatal() or not error.retriable():
                    raise self._ck.KafkaException(error)
                continue
            batches.setdefault(m.partition(), []).append(m)
        return batches

    def commit(self, offsets: dict[int, int]) -> None:
        """Commit the next offsets to read, synchronously."""
        self._consumer.commit(offsets=self._positions(offsets), asynchronous=False)

    def close(self) -> None:
        self._consumer.close()
        self._closed = True


class PartitionIO(PartitionReader):
    """The worker's hot path to Kafka: a `PartitionReader` of the records and the producer of
    the outputs (~2 us per message with librdkafka against ~60 us with kafka-python).

    Sends are fire-and-forget with a delivery callback for failures; `flush` waits for every
    send since the last one and raises if any failed or is still unacknowledged. With
    ``transactional_id`` the producer is transactional (`begin`, `commit` with the consumed
    offsets) and the consumer reads committed data only.
    """

    def __init__(self, bootstrap: str, topic: str, partitions: list[int], group: str,
                 client_id: str, transactional_id: str | None = None,
                 config: KafkaClientConfig = NO_CONFIG) -> None:
        super().__init__(bootstrap, topic, partitions, group, client_id,
                         read_committed=transactional_id is not None, config=config)
        settings = {**confluent_settings(bootstrap, config, error_cb=self._on_error),
                    "client.id": client_id, "acks": "all",
                    # outputs batched for up to 100 ms (Kafka Streams' default): fewer produce
                    # requests, fewer wake-ups (see fetch.wait.max.ms); `flush` at a checkpoint
                    # sends at once
                    "linger.ms": 100,
                    # a Python callback per failed message only; `flush` counts the unacked
                    "delivery.report.only.error": True}
        if transactional_id:
            settings["transactional.id"] = transactional_id
        self._producer = self._ck.Producer(settings)
        self._failures: list[Any] = []
        if transactional_id:
            # fences and aborts what a previous incarnation with this id left open
            _bounded(lambda: self._producer.init_transactions(METADATA_TIMEOUT_S),
                     METADATA_TIMEOUT_S + HUNG_CALL_GRACE_S, "init_transactions")

    def poll(self, max_records: int, timeout_s: float) -> dict[int, list[Any]]:
        batches = super().poll(max_records, timeout_s)
        self._producer.poll(0)   # serve delivery callbacks
        return batches

    # -- producing -----------------------------------------------------------------------------
    def send(self, topic: str, value: bytes, key: bytes | None = None,
             partition: int | None = None) -> None:
        """Queue one message; waits (serving callbacks) while librdkafka's queue is full."""
        kwargs: dict[str, Any] = {"value": value, "key": key, "on_delivery": self._delivered}
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                self._producer.produce(topic, **kwargs)
                return
            except BufferError:
                self._producer.poll(0.05)

    def _delivered(self, error: Any, message: Any) -> None:
        if error is not None:
            self._failures.append(error)

    def flush(self, timeout_s: float) -> None:
        """Wait until every message sent so far is acknowledged; raises if one failed or is
        still unacknowledged after ``timeout_s``, `BrokerAway` as soon as every broker is
        seen down (the messages stay queued)."""
        deadline = time.monotonic() + timeout_s
        left = self._producer.flush(min(timeout_s, PROBE_TIMEOUT_S))
        while left and time.monotonic() < deadline:
            if self.away_since is not None:
                raise BrokerAway(f"{left} output message(s) wait for the broker")
            left = self._producer.flush(min(PROBE_TIMEOUT_S, deadline - time.monotonic()))
        failures, self._failures = self._failures, []
        if failures or left:
            reason = failures[0] if failures else "not acknowledged in time"
            raise OutputsNotDelivered(f"{len(failures) + left} output message(s) were not "
                                      f"delivered: {reason}")

    def begin(self) -> None:
        self.disturbed = False
        self._producer.begin_transaction()

    def commit_transaction(self, offsets: dict[int, int]) -> None:
        """Commit the open transaction with the consumed ``offsets`` (next offsets) in it;
        `KafkaError` when it fails or hangs (see `_bounded`)."""
        def commit() -> None:
            if offsets:
                self._producer.send_offsets_to_transaction(
                    self._positions(offsets), self._consumer.consumer_group_metadata(),
                    METADATA_TIMEOUT_S)
            self._producer.commit_transaction(METADATA_TIMEOUT_S)

        _bounded(commit, METADATA_TIMEOUT_S + HUNG_CALL_GRACE_S, "commit_transaction",
                 abandon_if=self._brokers_down)

    def _brokers_down(self) -> bool:
        """Serves the producer's callbacks (thread-safe, no message is consumed) and says
        whether every broker is seen down."""
        self._producer.poll(0)
        return self.away_since is not None

    def close(self, flush_timeout_s: float | None) -> None:  # type: ignore[override]
        """Flush (up to ``flush_timeout_s``; None: drop what is still queued) and close."""
        if flush_timeout_s is None:
            self._producer.purge()
        else:
            self._producer.flush(flush_timeout_s)
        super().close()
