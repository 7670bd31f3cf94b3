"""When a delayed label is applied, whichever runtime reads it: the Ray runner's label feed
(`pipelines.runners.ray.label_feed`) and the Flink runner's per-key labels
(`pipelines.runners.flink.labels`) share this, so a label lands between the same two records on
both.

The rule: records are processed in offset order; the *frontier* is the newest record timestamp
processed so far (Kafka CreateTime, ms). A label is due once the frontier reaches its timestamp,
and is applied right after the record that moved the frontier there, in timestamp order across
the labels topic's partitions (ties: the lower partition), in offset order within one. Before
a record is processed, the labels up to its timestamp must all be there (`LabelBacklog.covers`):
then fetch timing cannot change which labels a record sees, and a replay is deterministic.
"""
from __future__ import annotations

import collections
import dataclasses
import json
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any

from pipelines.labels import LabelJoiner
from pipelines.records import DeadLetter, Record


class InvalidLabel(ValueError):
    """A label message that is not ``{"id": ..., "<target>": ...}``; the message is the reason."""


def parse_label_message(value: bytes | None, target: str) -> tuple[Hashable, Hashable]:
    """``(id, label)`` of a label message; `InvalidLabel` (with the reason) for anything else:
    not JSON, not an object, a missing, null or unhashable id or label."""
    try:
        doc = json.loads(value)
        id, y = doc["id"], doc[target]
        hash(id), hash(y)
        if id is None or y is None:
            raise ValueError("null id or label")
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise InvalidLabel(f"invalid label message: {type(exc).__name__}: "
                           f"{str(exc)[:80]}") from None
    return id, y


def invalid_label_letter(exc: InvalidLabel, value: bytes | None, offset: int,
                         partition: int) -> DeadLetter:
    """The dead letter of an invalid label message (its source topic: the labels topic)."""
    return DeadLetter(offset, str(exc), raw=value, partition=partition)


def with_held_label(item: Record | DeadLetter, orphans: LabelJoiner | None
                    ) -> Record | DeadLetter:
    """A record without a label takes its label when it came first (an orphan held for its
    id); anything else as it is."""
    if (orphans is None or not isinstance(item, Record) or item.y is not None
            or item.id is None):
        return item
    y = orphans.take_orphan(item.id)
    return item if y is None else dataclasses.replace(item, y=y)


def feed_counts(read: int, invalid: int, waits_timed_out: int,
                orphans: LabelJoiner | None) -> dict[str, int]:
    """One reader's label figures, as `merged_metrics.merge_results` folds them (``worker_labels``
    of a Ray worker, of a Flink key)."""
    return {"read": read, "invalid": invalid, "waits_timed_out": waits_timed_out,
            "orphan_joined": orphans.joined if orphans else 0,
            "orphans_dropped": orphans.orphaned if orphans else 0,
            "orphans_held": orphans.orphans if orphans else 0}


class LabelBacklog:
    """Labels read but not applied yet: per labels partition in offset order, released in
    timestamp order against the records' frontier (see the module docstring). ``newest`` holds
    the newest label timestamp read per partition (ms). Items are whatever the reader keeps
    (a consumer's message, a Flink row's fields); plain data, so it pickles."""

    def __init__(self) -> None:
        self._queues: dict[int, collections.deque[tuple[int, Any]]] = {}
        self.newest: dict[int, int] = {}

    def add(self, partition: int, timestamp: int, item: Any) -> None:
        self._queues.setdefault(partition, collections.deque()).append((timestamp, item))
        self.newest[partition] = max(self.newest.get(partition, -1), timestamp)

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def covers(self, upto: int, partitions: Iterable[int],
               drained: Callable[[int], bool]) -> bool:
        """Whether no label with a timestamp <= ``upto`` can still come: every labels partition
        has given a newer one, or is ``drained`` (read to its end)."""
        return all(self.newest.get(p, -1) > upto or drained(p) for p in partitions)

    def due(self, frontier: int) -> bool:
        """Whether a label not newer than ``frontier`` waits."""
        return any(q[0][0] <= frontier for q in self._queues.values() if q)

    def pop_due(self, frontier: int, caught_up: bool = False) -> Iterator[Any]:
        """The items not newer than ``frontier`` (all of them when ``caught_up``), in timestamp
        order across partitions (ties: the lower partition), each removed as it is yielded."""
        while True:
            heads = [(q[0][0], p) for p, q in self._queues.items() if q]
            if not heads:
                return
            timestamp, partition = min(heads)
            if not (caught_up or timestamp <= frontier):
                return
            yield self._queues[partition].popleft()[1]
