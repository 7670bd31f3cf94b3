"""The Ray runner's worker: owns a fixed group of Kafka partitions, one ModelHost per partition.

Why near 500 lines: ~45 are this docstring, the delivery contract the code keeps; the rest is
`PartitionWorker`, whose order of effects is meant to be read in one place (see its docstring),
broker restarts included (the deferred rewind, the stalled consumer). What could leave it has:
outputs (`output_sender`), the delayed-label feed (`label_feed`), the checkpoint files
(`partition_checkpoints`), the commits topic and which checkpoint a restore takes
(`kafka_commits`), and the bounded transaction calls (`kafka_io`). Splitting the loop itself
(poll / handle / checkpoint / rewind) into classes would spread that one order over several.

A plain class, so it runs (and is tested) without Ray; `pipelines.runners.ray.driver` makes it a Ray
actor at the edge. Ray re-runs only the constructor when it restarts an actor, so the
constructor is where each partition's checkpoint is loaded and the consumer seeks to its offset.

Checkpoint order, per the design (state before offsets, never the other way round):
flush the producer (and check every send since the last checkpoint succeeded), write each
partition's checkpoint (model snapshot + next offset, one sealed blob, atomically), then commit
the offsets to Kafka. Model state is therefore updated exactly once per record across crashes;
predictions are written at least once (records after the last checkpoint are read again).
When a flush finds outputs that were not delivered, the worker rewinds: it drops its clients and
resumes from the last checkpoint, so no record is left without its outputs (`MAX_REWINDS` in a
row and it raises instead).
A failed delivery found while every broker is away is rewound once one answers: steps keep
returning meanwhile, so the driver reports the outage. A consumer that returns nothing for
`STALL_S` while the broker reports more records is rewound the same way, with new clients.

With ``exactly_once`` the outputs and the offsets go into one Kafka transaction per checkpoint
(read them with ``isolation_level="read_committed"``), so predictions are exactly once too. The
checkpoint is written before the transaction commits, so the previous one is kept as
``p{n}.prev.ckpt``; on start the worker takes whichever of the two matches the offset the last
committed transaction recorded in the job's commits topic (`kafka_commits`): the old one when
the crash came before the commit, as the outputs were aborted.

Delayed labels (``labels_topic``, read by `pipelines.runners.ray.label_feed.LabelFeed`): records
may come without a label and their labels later on a topic of their own, ``{"id": ..., "y":
...}``. Each worker reads ALL partitions of the labels topic (no consumer group; the offsets live
in its checkpoint) and routes each label by id: to
the partition whose `LabelJoiner` holds the waiting record (it then learns the record and scores
the prediction made on arrival), else into the worker's orphan buffer, where a record arriving
later takes it. Simple, at the price of every worker reading every label: with several workers,
a label whose record lives in another worker waits in this worker's orphan buffer until the cap
or TTL drops it (memory, not a loss: the merged ``labels_orphaned`` counts labels that joined no
record in any worker). Each partition checkpoint holds its joiner (records waiting for labels);
``labels-<partitions>.ckpt`` holds the worker's orphans and the labels topic's offsets. The two
are written one after the other, not atomically together, so label mode is at-least-once only
(a crash between them may re-apply or re-hold a few labels); ``exactly_once`` refuses it.

Labels are applied in timestamp order with the records: a label is held until this worker has
read a record with a timestamp at least the label's (Kafka CreateTime), or until the records are
caught up (their end reached, or the last known high watermark). Replaying a backlog therefore
sees the same label delay the live stream had, instead of every label at once.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Hashable
from functools import partial
from typing import Any

from pipelines.checkpoints.partition import PartitionState
from pipelines.label_schedule import with_held_label
from pipelines.records import DeadLetter, Record
from pipelines.runners import kafka_commits
from pipelines.runners import kafka_io as kio
from pipelines.runners.kafka_job import KafkaJob
from pipelines.runners.ray.label_feed import LabelFeed, timestamp_ms
from pipelines.runners.ray.output_sender import OutputSender
from pipelines.runners.ray.partition_checkpoints import PartitionCheckpoints
from pipelines.runners.status import RayMetrics, partition_status
from pipelines.sinks import kafka_messages as formats

log = logging.getLogger("driftflow")

# One poll returns at most this many messages, learned in one batch: ~0.15 s of model work at
# the batch path's ~65 us a record (SEA), so a stop request or a timed checkpoint is never far
# off. Long runs of one partition's records keep its model warm in the CPU caches: against 500,
# the worker's CPU per record fell ~4 % (measured on the record path, before batching: main
# thread CPU against the in-memory replay's, SEAa, four partitions: 0.95x instead of 0.91x).
POLL_MAX_RECORDS = 2000
# One `step` runs about this long before it reports back: the driver's status and a stop
# request are at most this far behind; each step costs the worker one Ray call (~1 ms).
STEP_SECONDS = 1.0
METRICS_PERIOD_S = 2.0     # how often a worker publishes its Ray metrics
# How long one poll waits when nothing is there; short so an idle bounded run notices its end.
POLL_TIMEOUT_MS = 200
# Producer flush bound: a one-node broker acknowledges a batch in milliseconds; 60 s only
# guards against a broker that went away (the checkpoint then fails instead of hanging).
FLUSH_TIMEOUT_S = 60.0
# A delivery that fails this many checkpoints in a row (no checkpoint succeeding in between) is
# not transient (a broker gone, a topic refusing the messages): the worker then raises.
MAX_REWINDS = 10
# A consumer that returns nothing this long while the broker answers and reports records past
# the worker's offsets is stalled (seen once in CI after a broker restart: a worker waited at
# its offset for minutes while the other went on): the worker then reopens its clients.
STALL_S = 20.0


class ConsumerStalled(kio.OutputsNotDelivered):
    """The records consumer stopped fetching: handled as a failed delivery, by a rewind to the
    last checkpoint with new clients."""


def _ray_metrics(topic: str, restored: dict[int, dict[str, float]]) -> RayMetrics | None:
    """Ray metrics when running inside Ray (an actor), else None."""
    try:
        import ray
    except ImportError:
        return None
    return RayMetrics(topic, restored) if ray.is_initialized() else None


class PartitionWorker:
    """Consumes ``partitions`` of ``job.topic`` (manual assignment), runs the data path, produces
    predictions, drift events and dead letters, and checkpoints each partition.

    Why ~400 lines: this is the loop and its order of effects (poll, handle, checkpoint, commit,
    rewind on a failed delivery) plus the face Ray calls (step, finish, progress, stop), kept in
    one place so the ordering the module docstring promises can be read in one class. The label
    feed (`LabelFeed`), the checkpoint files (`PartitionCheckpoints`) and the outputs
    (`OutputSender`) live in their own."""

    def __init__(self, job: KafkaJob, partitions: list[int]) -> None:
        self.job = job
        self.partitions = list(partitions)
        self.started_at = time.time()
        self.first_output_at: float | None = None
        self.rewinds = 0                  # failed deliveries recovered from the last checkpoint
        self._rewinds_in_a_row = 0
        # a failed delivery found while every broker was away: rewound once one answers, so
        # steps keep returning (and report the outage) meanwhile
        self._pending_rewind: kio.OutputsNotDelivered | None = None
        self._stop = False
        self._ends: dict[int, int] | None = None   # set by the first `step`; {} unbounded
        self._done = False
        self._label_ends: dict[int, int] = {}
        self._checkpoints = PartitionCheckpoints(job)
        self.labels: LabelFeed | None = None   # the delayed-label feed (with a labels topic)
        self._seconds_per_record = 0.5e-3          # the last batch's pace (a first guess)
        self._busy_seconds = 0.0                   # wall and thread-CPU seconds inside `step`
        self._cpu_seconds = 0.0
        self._open()
        self._ray_metrics = _ray_metrics(job.topic, self.status())
        self._published_at = 0.0

    def _open(self) -> None:
        """Open the clients and load every partition's last checkpoint (the labels reader's
        too), seeking to its offsets: the constructor, and the rewind after a failed delivery."""
        job = self.job
        self._io = kio.PartitionIO(
            job.bootstrap, job.topic, self.partitions, job.group,
            client_id=f"driftflow-{os.getpid()}", config=job.client_config,
            # one stable id per partition group: a restarted worker fences its dead incarnation
            transactional_id=(f"driftflow-{job.group}-{job.topic}-"
                              + "-".join(map(str, self.partitions))) if job.exactly_once else None)
        self._out = OutputSender(job, self._io)
        committed = partial(kafka_commits.restore_offset, job, group_offset=self._io.committed)
        self._state = {p: self._checkpoints.restore(p, committed) for p in self.partitions}
        start = self._io.assign({p: s.next_offset for p, s in self._state.items()})
        for p, offset in start.items():
            self._state[p].next_offset = offset
        self._checkpoints.last_at = self._records_at = time.monotonic()
        self._frontier = -1               # newest record timestamp read (ms)
        if job.labels_topic:
            waits = self.labels.waits_timed_out if self.labels is not None else 0
            self.labels = LabelFeed(job, self.partitions, self._out.dead_letter, self._route_label)
            self.labels.waits_timed_out = waits   # a rewind keeps the count

    def _rewind(self, reason: Exception) -> None:
        """Outputs since the last checkpoint were not all delivered: drop the clients (and the
        undelivered queue) and go back to the last checkpoint, so those records are read, and
        their outputs sent, again (at least once; with ``exactly_once`` the new transactional
        producer fences and aborts the open transaction)."""
        log.warning("worker %s: %s; rewinding to the last checkpoint", self.partitions, reason)
        self.rewinds += 1
        self._rewinds_in_a_row += 1
        if self._rewinds_in_a_row > MAX_REWINDS:
            raise RuntimeError(f"outputs not delivered {self._rewinds_in_a_row} checkpoints in a "
                               f"row; giving up: {reason}") from reason
        self._io.wait_until_back()   # the new clients' first calls need a broker
        self._io.close(flush_timeout_s=None)
        if self.labels is not None:
            self.labels.close()
        deadline = time.monotonic() + kio.OUTAGE_TIMEOUT_S
        while True:
            try:   # a broker just back may not serve groups and transactions for a while
                self._open()
                break
            except kio.KafkaError as exc:
                if time.monotonic() > deadline:
                    raise kio.KafkaUnavailable(f"Kafka did not serve the job again within "
                                               f"{kio.OUTAGE_TIMEOUT_S:g} s: {exc}") from None
                log.warning("worker %s: reopening after a lost broker: %s", self.partitions, exc)
                self._io.close(flush_timeout_s=None)
        if self.job.exactly_once:
            self._io.begin()

    # -- small remote-callable helpers ------------------------------------------------------------
    def progress(self) -> dict[str, Any]:
        """Where each partition is (next offset), checkpoints taken, start and first-output times
        (epoch seconds) of this incarnation of the worker."""
        return {"pid": os.getpid(), "started_at": self.started_at,
                "first_output_at": self.first_output_at, "checkpoints": self.checkpoints,
                "next_offsets": {p: s.next_offset for p, s in self._state.items()},
                "label_offsets": dict(self.labels.offsets) if self.labels else {},
                "labels_read": self.labels_read,
                "kafka_away_seconds": (None if self._io.away_since is None
                                       else time.monotonic() - self._io.away_since),
                "status": self.status()}

    @property
    def checkpoints(self) -> int:
        """Checkpoints this worker completed (across rewinds)."""
        return self._checkpoints.taken

    @property
    def labels_read(self) -> int:
        """Label messages read from the labels topic (0 without one)."""
        return self.labels.read if self.labels is not None else 0

    def status(self) -> dict[int, dict[str, float]]:
        """Per partition: records in, predictions, dead letters, drifts, lag, windowed accuracy,
        experts and checkpoint age (see `pipelines.runners.status`)."""
        return {p: partition_status(s.host, s.next_offset, self._io.highwater(p),
                                    self._checkpoints.last_at)
                for p, s in self._state.items()}

    def _publish_metrics(self, force: bool = False) -> None:
        """Ray metrics, at most every `METRICS_PERIOD_S` unless ``force``."""
        now = time.monotonic()
        due = force or now - self._published_at >= METRICS_PERIOD_S
        if self._ray_metrics is not None and due:
            self._ray_metrics.publish(self.status())
            self._published_at = now

    def stop(self) -> None:
        """End the loop (at its next poll when `step` runs in another thread); `finish` then
        checkpoints what was processed."""
        self._stop = True
        self._done = True

    # -- the loop --------------------------------------------------------------------------------
    def step(self, until_end: bool = True, seconds: float | None = STEP_SECONDS) -> dict[str, Any]:
        """Consume, predict, learn, produce and checkpoint for about ``seconds`` (None: until
        done), then return `progress` with ``done``: every partition reached the end offsets
        seen at this incarnation's first step (``until_end``; with a labels topic, its end
        offsets too), or `stop` was called. Done, call `finish`.

        The driver calls this again and again, so a single-threaded actor answers `stop` and
        `progress` between steps and reports its status with each one. No second thread runs
        beside the model's: in a two-thread actor (``max_concurrency=2``) the same loop ran
        5-10 % slower than in a plain one, in most interleaved pairs of runs."""
        if self._ends is None:
            self._begin(until_end)
        if self._pending_rewind is not None:
            if seconds is not None and not self._io.broker_back():
                return {**self.progress(), "done": False}
            self._rewind(self._pending_rewind)
            self._pending_rewind = None
        deadline = None if seconds is None else time.monotonic() + seconds
        t0, cpu0 = time.perf_counter(), time.thread_time()
        while True:
            try:
                done = self._loop(deadline)
                break
            except kio.OutputsNotDelivered as exc:
                if seconds is not None and self._io.away_since is not None:
                    self._pending_rewind, done = exc, False
                    break
                self._rewind(exc)
        self._busy_seconds += time.perf_counter() - t0
        self._cpu_seconds += time.thread_time() - cpu0
        self._done = done
        return {**self.progress(), "done": done}

    def _begin(self, until_end: bool) -> None:
        """Fix the end offsets a bounded run stops at (none unbounded), open a transaction."""
        self._ends = {p: self._io.watermarks(p)[1] for p in self.partitions} if until_end else {}
        self._label_ends = self.labels.ends() if self.labels and until_end else {}
        if self.job.exactly_once:
            self._io.begin()

    def finish(self, until_end: bool = True) -> dict[int, dict[str, Any]]:
        """Final checkpoint and flush (after a failed delivery: rewind and redo up to where the
        steps had reached); per partition: summary, metrics and next offset. Called on an
        incarnation that never stepped (Ray restarted the actor after its last step), it first
        runs a bounded job (``until_end``) to its end. The summary's
        ``seconds`` and ``worker_cpu_seconds`` (CPU of the thread running the loop) cover the
        steps only: CPU well below seconds means the worker waited for records or a core. With
        a labels topic the first partition's result carries this worker's label counts."""
        if self._ends is None and until_end:   # a restarted incarnation
            self.step(until_end, seconds=None)
        elif self._ends is None:
            self._begin(until_end)
            self.stop()
        if not self._done:
            raise RuntimeError("finish() while the loop is not done: call stop() first")
        if self._pending_rewind is not None:
            self._rewind(self._pending_rewind)   # waits for the broker first
            self._pending_rewind = None
        while True:
            try:
                self.checkpoint(final=True)
                break
            except kio.BrokerAway:
                self._io.wait_until_back()
            except kio.OutputsNotDelivered as exc:
                self._rewind(exc)
                self._loop(None)   # back to where the steps were (`stop` set: to the checkpoint)
        self._publish_metrics(force=True)
        out = {p: {"summary": {**s.host.summary(self._busy_seconds),
                               "worker_cpu_seconds": self._cpu_seconds},
                   "metrics": s.host.metrics, "next_offset": s.next_offset,
                   "rewinds": self.rewinds}
               for p, s in self._state.items()}
        if self.labels is not None:
            out[self.partitions[0]]["worker_labels"] = self.labels.counts()
        return out

    def run(self, until_end: bool = True) -> dict[int, dict[str, Any]]:
        """`step` until done, then `finish`: the whole job in this process (tests, tools)."""
        self.step(until_end, seconds=None)
        return self.finish(until_end)

    def _loop(self, deadline: float | None) -> bool:
        """Poll and handle batches until done (True) or past ``deadline`` (False)."""
        ends, label_ends = self._ends or {}, self._label_ends
        while not self._stop:
            if (ends and all(self._state[p].next_offset >= ends[p] for p in self.partitions)
                    and (self.labels is None or self.labels.applied_to(label_ends))):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            batches = self._io.poll(self._poll_size(deadline), POLL_TIMEOUT_MS / 1000)
            # after an outage, probe at every poll: a batch learned in one call can take a
            # worker to its end before any poll comes back empty
            if self._io.away_since is not None and not self._io.broker_back() and not batches:
                continue   # the broker is away: the clients reconnect by themselves
            if not batches:
                self._check_stalled()
            if self.labels is not None and batches:
                self.labels.fill(max(timestamp_ms(m) or 0 for ms in batches.values() for m in ms))
            started, count = time.perf_counter(), 0
            for partition, messages in batches.items():
                self._handle(partition, messages)
                count += len(messages)
            if count:
                self._seconds_per_record = (time.perf_counter() - started) / count
                self._records_at = time.monotonic()
            if self.labels is not None and self._caught_up(ends or None):
                self.labels.fill(None)
                self.labels.apply(self._frontier, caught_up=True)
            self._maybe_checkpoint()
            self._publish_metrics()
        return True

    def _check_stalled(self) -> None:
        """After `STALL_S` without records: `ConsumerStalled` (the caller rewinds, with new
        clients) when the broker reports records past a partition's offset, else wait on. With
        ``exactly_once`` the broker's end is the last stable offset (read_committed), so an
        upstream transaction left open is not taken for a stall."""
        if time.monotonic() - self._records_at < STALL_S:
            return
        self._records_at = time.monotonic()   # at most one broker query per STALL_S
        try:
            behind = {p: s.next_offset for p, s in self._state.items()
                      if self._io.watermarks(p)[1] > s.next_offset}
        except kio.KafkaError:
            return   # the broker does not answer: the outage handling has it
        if behind:
            raise ConsumerStalled(f"no records for {STALL_S:g} s although the broker has "
                                  f"more after offsets {behind}: the consumer stalled")

    def _poll_size(self, deadline: float | None) -> int:
        """Records the next poll may return: `POLL_MAX_RECORDS`, fewer when the step's deadline
        is nearer than that many records take (at the last batch's pace), so a step ends close
        to its deadline however short the driver makes it."""
        if deadline is None:
            return POLL_MAX_RECORDS
        fits = (deadline - time.monotonic()) / max(self._seconds_per_record, 1e-7)
        return max(1, min(POLL_MAX_RECORDS, int(fits)))

    def _handle(self, partition: int, messages: list[Any]) -> None:
        """Decode one partition's poll record by record (dead letters decided there), learn the
        records in one `ModelHost.process_many` call and send what they produced. With a
        labels topic the poll is cut where a label falls due, so each label is applied between
        the same two records as record by record would."""
        state, first = self._state[partition], 0
        items: list[Record | DeadLetter] = []
        for k, m in enumerate(messages):
            items.append(self._decode(state, partition, m))
            timestamp = timestamp_ms(m)
            if timestamp is not None and timestamp > self._frontier:
                self._frontier = timestamp
            if self.labels is not None and self.labels.due(self._frontier):
                self._learn_and_send(state, partition, messages[first:k + 1], items)
                first, items = k + 1, []
                self.labels.apply(self._frontier)
        self._learn_and_send(state, partition, messages[first:], items)
        if messages and self.first_output_at is None:
            self.first_output_at = time.time()

    def _decode(self, state: PartitionState, partition: int, m: Any
                ) -> Record | DeadLetter:
        """One message as a record (with its orphan label, when the label came first) or a
        dead letter with the reason."""
        item = state.decoder(m.value(), m.offset(), partition, key=formats.key_text(m.key()))
        # its label came first: held as an orphan
        return with_held_label(item, self.labels.orphans) if self.labels is not None else item

    def _learn_and_send(self, state: PartitionState, partition: int, messages: list[Any],
                        items: list[Record | DeadLetter]) -> None:
        """Run ``items`` (decoded from ``messages``) through the host in one batch and send,
        message by message, its prediction or dead letter and then its drift events: the
        order record-at-a-time processing sent them in."""
        if not messages:
            return
        results = state.host.process_many(items)
        self._out.results(partition, messages, results, state.host.take_events())
        state.next_offset = messages[-1].offset() + 1
        state.since_checkpoint += len(messages)

    def _caught_up(self, ends: dict[int, int] | None) -> bool:
        """Whether the records are read to their end (a bounded run's ``ends``) or to the last
        known high watermark: then labels are applied as soon as they are read."""
        for p, s in self._state.items():
            if ends is not None and s.next_offset >= ends[p]:
                continue
            hw = self._io.highwater(p)
            if hw is None or s.next_offset < hw:
                return False
        return True

    def _route_label(self, id: Hashable, y: Hashable) -> bool:
        """Give a late label to the partition whose record waits for it (True), learning the
        record and sending what that produced; False when no record here waits for it."""
        for p, state in self._state.items():
            if state.host.joiner is not None and state.host.joiner.waiting(id):
                outcome = state.host.apply_label(id, y)
                state.labels_changed = True
                if isinstance(outcome, DeadLetter):   # a label the model cannot use
                    self.labels.invalid += 1
                    self._out.dead_letter(outcome)
                for event in state.host.take_events():
                    self._out.event(p, event)
                return True
        return False

    def _maybe_checkpoint(self) -> None:
        if self._io.away_since is not None:
            return   # deferred until the broker is back (`_loop` probes it)
        if self._checkpoints.due(self._state,
                                 self.labels.since_checkpoint if self.labels else 0):
            try:
                self.checkpoint()
            except kio.BrokerAway:
                pass   # the broker went during the flush: again once it is back

    def checkpoint(self, final: bool = False) -> None:
        """Flush sinks, save state, then commit offsets (in that order); with ``exactly_once``
        the commit is the transaction's, and a new one begins unless this is the ``final``.
        Waits first for a broker that is away (`kafka_io.OUTAGE_TIMEOUT_S` at most)."""
        self._io.wait_until_back()
        if self.job.exactly_once and self._io.disturbed:
            # librdkafka's transaction calls could hang past their timeouts after a broker
            # restart (measured here): the transaction is redone with new clients instead
            raise kio.OutputsNotDelivered("the connection to the broker was lost during the "
                                          "transaction")
        self._io.flush(FLUSH_TIMEOUT_S)
        offsets = self._checkpoints.save(self._state)
        if self.labels is not None:
            self.labels.checkpoint()
        if self.job.exactly_once:
            for p, offset in offsets.items():   # which checkpoint committed, for a restore
                if offset is not None:
                    self._io.send(self.job.output_topic("commits"),
                                  kafka_commits.commit_record(p, offset), partition=p)
            try:
                self._io.commit_transaction(offsets)
            except kio.KafkaError as exc:   # e.g. aborted by the broker during an outage
                raise kio.OutputsNotDelivered(f"transaction not committed: {exc}") from None
            self._checkpoints.confirm(offsets)
            if not final:
                self._io.begin()
        elif offsets:
            try:
                self._io.commit(offsets)
            except kio.KafkaError as exc:   # the checkpoint holds the offsets: commit next time
                log.warning("worker %s: offsets not committed to Kafka: %s", self.partitions, exc)
        self._checkpoints.done()
        self._rewinds_in_a_row = 0

    def close(self) -> None:
        self._io.close(flush_timeout_s=FLUSH_TIMEOUT_S)
        if self.labels is not None:
            self.labels.close()
