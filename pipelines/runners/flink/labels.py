"""Delayed labels on Flink: each key's label schedule, the Ray runner's semantics per key.

Every label message reaches every key (`ToEveryKey` flat-maps the labels stream into one copy per
input partition, keyed like the records), as every Ray worker reads every label. A key then does
what a Ray worker holding one partition does (`pipelines.label_schedule`): it processes its
records in offset order and, after each, applies the labels whose timestamps the records'
frontier has reached, routing each by id to its waiting record, else holding it as an orphan
that a later record takes.

Flink hands the two inputs to the operator in no fixed interleaving, so a record is held
(``pending``) until the labels up to its timestamp are there: every labels partition has
delivered a newer label, or is drained (a bounded job knows the labels topic's end offsets at
start). Which labels a record sees is then fixed by the timestamps, not by arrival order. A
record held `LABEL_WAIT_S` is processed anyway (counted in ``waits_timed_out``), as Ray's reader
stops waiting for labels that lag; in an unbounded job this is also what lets records through
while no label comes (the Ray reader checks the labels topic's high watermark instead).
"""
from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any

from pipelines.label_schedule import LabelBacklog, feed_counts
from pipelines.labels import LabelJoiner

# How long a record waits for the labels up to its timestamp (as the Ray runner's LABEL_WAIT_S).
LABEL_WAIT_S = 30.0


def epoch_ms(instant: Any) -> int:
    """A Flink ``Instant`` (the Kafka timestamp metadata column) in ms since the epoch."""
    return instant.to_epoch_milli()


class ToEveryKey:
    """Flat-map function: one copy of a label row ``(key, value, partition, offset, timestamp)``
    (Kafka key bytes, value bytes, partition, offset, ``Instant``) for each of ``keys``, as
    ``(key, value, partition, offset, timestamp ms)``."""

    def __init__(self, keys: list[int]) -> None:
        self.keys = list(keys)

    def __call__(self, row: Any) -> Iterator[Any]:
        from pyflink.common import Row

        timestamp = epoch_ms(row[4])
        for key in self.keys:
            yield Row(key, row[1], row[2], row[3], timestamp)


class KeyLabels:
    """One key's held records, label backlog, orphan labels and label counts (plain data: it
    pickles into the key's Flink state). ``bounds`` maps each labels partition to its first
    and end offsets in a bounded job (None: unbounded, never drained)."""

    def __init__(self, orphans: LabelJoiner | None, bounds: dict[int, tuple[int, int]] | None,
                 partitions: list[int]) -> None:
        self.orphans = orphans
        self.bounds = bounds
        self.partitions = list(partitions)
        self.backlog = LabelBacklog()
        self.next_offset: dict[int, int] = {}   # per labels partition, of the labels received
        self.pending: collections.deque[tuple[Any, ...]] = collections.deque()
        self.frontier = -1                       # the newest record timestamp processed (ms)
        self.read = self.invalid = self.waits_timed_out = 0
        self.wait_timer: int | None = None       # the armed processing-time timer (ms)

    def add_label(self, partition: int, offset: int, timestamp: int, value: bytes) -> None:
        self.next_offset[partition] = offset + 1
        self.backlog.add(partition, timestamp, (partition, offset, value))

    def hold(self, record: tuple[Any, ...]) -> None:
        """A record ``(key bytes, value, partition, offset, timestamp ms)``, in offset order."""
        self.pending.append(record)

    def _drained(self, partition: int) -> bool:
        if self.bounds is None:
            return False
        first, end = self.bounds[partition]
        return self.next_offset.get(partition, first) >= end

    def next_record(self, force: bool = False) -> tuple[Any, ...] | None:
        """The next held record once the labels up to its timestamp are all here (any held
        record when ``force``), moving the frontier to it; else None."""
        if not self.pending:
            return None
        upto = max(self.frontier, self.pending[0][4])
        if not force and not self.backlog.covers(upto, self.partitions, self._drained):
            return None
        self.frontier = upto
        return self.pending.popleft()

    def due_labels(self, caught_up: bool = False) -> Iterator[tuple[int, int, bytes]]:
        """``(partition, offset, value)`` of the labels due at the frontier (all: ``caught_up``)."""
        return self.backlog.pop_due(self.frontier, caught_up)

    def counts(self) -> dict[str, int]:
        return feed_counts(self.read, self.invalid, self.waits_timed_out, self.orphans)
