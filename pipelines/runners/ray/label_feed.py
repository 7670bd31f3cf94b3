"""A Ray worker's delayed-label feed: reads every partition of the labels topic, holds the
labels read ahead of the records, and hands each one, in timestamp order, to the worker's
router (see the worker's module docstring for the ordering and the at-least-once caveat).

The feed owns the labels reader, the backlog (labels read, not applied yet; when each is due is
`pipelines.label_schedule`'s rule, which the Flink runner shares), the orphan labels (no record
seen yet) and the labels topic's offsets, and saves and restores them in the worker's labels
checkpoint. It knows nothing of the records' partitions: ``route(id, y)`` says whether a
waiting record took the label.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Hashable
from typing import Any

from pipelines.checkpoints import read_bytes, write_atomic
from pipelines.checkpoints.partition import LabelsState, load_labels, save_labels
from pipelines.label_schedule import (
    InvalidLabel,
    LabelBacklog,
    feed_counts,
    invalid_label_letter,
    parse_label_message,
)
from pipelines.records import DeadLetter
from pipelines.runners import kafka_io as kio
from pipelines.runners.kafka_job import KafkaJob

# Labels read ahead of the records (replaying a backlog) wait in memory until the records catch
# up with their timestamps: 10,000 label messages are a few MB; past it the reader stops reading.
LABEL_BACKLOG_MAX = 10_000
# Before a records batch is learned, the feed reads until it holds a label newer than the batch
# (or the labels topic is drained): then which labels a record sees is fixed by the timestamps,
# not by fetch timing, and a replay is deterministic. It waits at most this long for labels that
# are behind (a live label feed may lag; they are then applied when they come), in polls of
# LABEL_POLL_TIMEOUT_MS.
LABEL_WAIT_S = 30.0
LABEL_POLL_TIMEOUT_MS = 50
LABEL_DRAIN_POLLS = 20
# Messages one poll of the labels topic returns at most.
LABEL_POLL_MAX = 2000


def timestamp_ms(message: Any) -> int | None:
    """A confluent-kafka message's timestamp (ms since the epoch), None when it has none."""
    kind, ms = message.timestamp()
    return None if kind == 0 else ms   # 0: TIMESTAMP_NOT_AVAILABLE


class LabelFeed:
    """The labels topic of one worker (``partitions`` names the worker, for its checkpoint).

    ``send_dead_letter(dead, source_topic)`` produces a dead letter for a label message that is not
    ``{"id": ..., "<target>": ...}`` (from the worker with input partition 0 only); ``route(id, y)`` offers a label to the worker's waiting
    records (True: one took it), else the feed holds it as an orphan.
    """

    def __init__(self, job: KafkaJob, partitions: list[int],
                 send_dead_letter: Callable[[DeadLetter, str], None],
                 route: Callable[[Hashable, Hashable], bool]) -> None:
        self.job = job
        self.partitions = partitions
        self._send_dead_letter = send_dead_letter
        self._route = route
        # every worker reads every label: only the one with input partition 0 (a topic always
        # has it) sends an invalid label's dead letter, so there is one, as on Flink
        self.reports_invalid = 0 in partitions
        self.orphans = job.new_joiner()   # labels whose record this worker has not seen
        self.offsets: dict[int, int] = {}   # next offset to apply, per labels partition
        self.read = 0
        self.invalid = 0
        self.since_checkpoint = 0
        self.waits_timed_out = 0
        self._read_to: dict[int, int] = {}   # next offset `fill` reads, per labels partition
        self._backlog = LabelBacklog()       # read, not yet applied
        blob = (read_bytes(job.labels_checkpoint_uri(partitions)) if job.checkpoint_dir
                else None)
        if blob is not None:
            saved = load_labels(blob)
            self.orphans, self.offsets = saved.orphans, saved.offsets
            self.read, self.invalid = saved.read, saved.invalid
        topic_partitions = kio.list_partitions(job.bootstrap, job.labels_topic,
                                               config=job.client_config)
        self._reader = kio.PartitionReader(job.bootstrap, job.labels_topic, topic_partitions,
                                           group=f"{job.group}-labels",
                                           client_id=f"driftflow-labels-{os.getpid()}",
                                           config=job.client_config)
        self.offsets = self._reader.assign({p: self.offsets.get(p) for p in topic_partitions})
        self._read_to = dict(self.offsets)

    # -- reading -----------------------------------------------------------------------------
    def ends(self) -> dict[int, int]:
        """The labels partitions' current end offsets (a bounded run stops there)."""
        return {p: self._reader.watermarks(p)[1] for p in self._read_to}

    def applied_to(self, ends: dict[int, int]) -> bool:
        """Whether every labels partition is applied up to ``ends``."""
        return all(self.offsets[p] >= end for p, end in ends.items())

    def fill(self, upto: int | None) -> None:
        """Read labels into the backlog until every labels partition holds one newer than
        ``upto`` (a timestamp in ms) or is read to its high watermark, the backlog is full, or
        `LABEL_WAIT_S` passed (counted in ``waits_timed_out``). ``upto=None``: just what is
        there now (up to `LABEL_DRAIN_POLLS` polls)."""
        deadline = time.monotonic() + LABEL_WAIT_S
        for _ in range(LABEL_DRAIN_POLLS if upto is None else sys.maxsize):
            if upto is not None and self._covers(upto):
                return
            if len(self._backlog) >= LABEL_BACKLOG_MAX:
                return
            if time.monotonic() > deadline:
                self.waits_timed_out += 1
                return
            # read only the partitions still behind ``upto``, so one that is ahead cannot fill
            # the backlog while another still has labels due
            self._reader.pause_only(set() if upto is None else
                                    {p for p, ts in self._backlog.newest.items() if ts > upto})
            got = self._reader.poll(LABEL_POLL_MAX,
                                    LABEL_POLL_TIMEOUT_MS / 1000 if upto is not None else 0)
            if upto is None and not got and self._drained():
                return
            for p, messages in got.items():
                for m in messages:
                    self._backlog.add(p, timestamp_ms(m) or 0, m)
                self._read_to[p] = messages[-1].offset() + 1

    def _covers(self, upto: int) -> bool:
        """Whether no label with a timestamp <= ``upto`` can still be unread."""
        return self._backlog.covers(upto, self._read_to, self._partition_drained)

    def _partition_drained(self, partition: int) -> bool:
        hw = self._reader.highwater(partition)
        return hw is not None and self._read_to[partition] >= hw

    def _drained(self) -> bool:
        """Whether the reader is at every partition's last known high watermark (an empty poll
        may only mean a fetch still in flight)."""
        return all(self._partition_drained(p) for p in self._read_to)

    # -- applying ----------------------------------------------------------------------------
    def due(self, frontier: int) -> bool:
        """Whether `apply` (``frontier``: the newest record timestamp read, ms) would apply a
        label now: the worker then learns the records before it, so the label comes between
        the same two records as it would record by record."""
        return self._backlog.due(frontier)

    def apply(self, frontier: int, caught_up: bool = False) -> None:
        """Apply the backlog's labels not newer than ``frontier`` (the newest record timestamp
        read, ms; all of them when ``caught_up``), in timestamp order across the labels
        partitions (ties: the lower partition)."""
        for message in self._backlog.pop_due(frontier, caught_up):
            self._handle(message)

    def _handle(self, m: Any) -> None:
        """Route one label by id, else hold it as an orphan; a label message that is not
        ``{"id": ..., "<target>": ...}`` is counted in ``invalid`` and sent as a dead letter."""
        self.offsets[m.partition()] = m.offset() + 1
        self.read += 1
        self.since_checkpoint += 1
        try:
            id, y = parse_label_message(m.value(), self.job.target)
        except InvalidLabel as exc:
            self.invalid += 1
            if self.reports_invalid:
                self._send_dead_letter(invalid_label_letter(exc, m.value(), m.offset(),
                                                            m.partition()), self.job.labels_topic)
            return
        if not self._route(id, y):
            self.orphans.hold_orphan(id, y)

    # -- checkpoint and end ------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Expire old orphans and, when labels came since the last one, save the orphans and
        the labels topic's offsets (``labels-<partitions>.ckpt``)."""
        self.orphans.expire()
        if self.job.checkpoint_dir and self.since_checkpoint:
            state = LabelsState(self.orphans, self.offsets, self.read, self.invalid)
            write_atomic(self.job.labels_checkpoint_uri(self.partitions),
                         save_labels(self.job.labels_topic, state))
        self.since_checkpoint = 0

    def counts(self) -> dict[str, int]:
        """The worker's label figures for the driver's merge."""
        return feed_counts(self.read, self.invalid, self.waits_timed_out, self.orphans)

    def close(self) -> None:
        self._reader.close()
