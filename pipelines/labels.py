"""Delayed labels: join a label that arrives later (or earlier) to its record, by ``id``.

`LabelJoiner` is plain Python (no Kafka, no Ray); `LabelJoiner.to_state` gives its buffers as
JSON-able data for a checkpoint. It keeps two bounded buffers, both in arrival order:

* pending records: a record predicted without its label keeps ``(x, y_pred, offset,
  partition)`` until the label arrives; the caller then learns ``(x, y)`` and scores the stored
  prediction against ``y`` (prequential: the prediction was made before the label was known);
* orphan labels: a label that arrived before its record waits for it.

Neither buffer grows without bound: past ``max_size`` entries the oldest is evicted, and an
entry older than ``ttl`` seconds expires. Nothing is dropped silently: evicted or expired
records are counted in ``expired`` (a label that never came in time), evicted or expired
orphans in ``orphaned`` (a label whose record never came in time); joins in ``joined``.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

# Records waiting for a label (and labels waiting for a record), per buffer: 100,000 SEA-sized
# records are ~30 MB of Python dicts; at 1,000 records/s that is 100 s of label delay.
DEFAULT_MAX_SIZE = 100_000
# How long a record waits for its label (seconds): an hour covers labels that come from a
# human or a downstream system in the same session; older ones are unlikely to help the model.
DEFAULT_TTL_S = 3600.0


@dataclass(frozen=True, slots=True)
class Joined:
    """A record and its label, ready to learn: ``y_pred`` is the prediction made on arrival."""

    id: Hashable
    x: dict[str, Any]
    y: Hashable
    y_pred: Hashable | None
    offset: int
    partition: int


class LabelJoiner:
    """Joins labels to records by id, with two bounded, time-limited buffers (see module doc).

    ``clock`` returns epoch seconds (wall time, so ages survive a restart from a checkpoint);
    tests inject their own. The clock is not pickled: a restored joiner uses `time.time`.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE, ttl: float = DEFAULT_TTL_S,
                 clock: Callable[[], float] = time.time) -> None:
        if max_size < 1 or ttl <= 0:
            raise ValueError(f"label buffer must be >= 1 and ttl > 0, got {max_size}, {ttl}")
        self.max_size = max_size
        self.ttl = float(ttl)
        self.clock = clock
        # id -> (arrival time, x, y_pred, offset, partition); oldest first
        self._pending: OrderedDict[Hashable, tuple[float, dict, Any, int, int]] = OrderedDict()
        # id -> (arrival time, y); oldest first
        self._orphans: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self.joined = 0
        self.expired = 0
        self.orphaned = 0

    # -- the two arrivals ------------------------------------------------------------------------
    def add_record(self, id: Hashable, x: dict[str, Any], y_pred: Hashable | None,
                   offset: int = 0, partition: int = 0) -> Joined | None:
        """A record without a label was predicted: the join if its label already waits (an
        orphan), else None and the record waits for its label."""
        self.expire()
        orphan = self._orphans.pop(id, None)
        if orphan is not None:
            self.joined += 1
            return Joined(id, x, orphan[1], y_pred, offset, partition)
        self._pending.pop(id, None)   # a re-sent id replaces the older record
        self._pending[id] = (self.clock(), x, y_pred, offset, partition)
        self._evict(self._pending, "expired")
        return None

    def add_label(self, id: Hashable, y: Hashable) -> Joined | None:
        """A label arrived: the join if its record waits, else None (held as an orphan)."""
        self.expire()
        entry = self._pending.pop(id, None)
        if entry is not None:
            self.joined += 1
            _, x, y_pred, offset, partition = entry
            return Joined(id, x, y, y_pred, offset, partition)
        self.hold_orphan(id, y)
        return None

    # -- finer-grained calls (a worker routing labels over several joiners) ----------------------
    def waiting(self, id: Hashable) -> bool:
        """Whether a record with this id waits for its label."""
        return id in self._pending

    def hold_orphan(self, id: Hashable, y: Hashable) -> None:
        """Keep a label whose record has not arrived (yet)."""
        self._orphans.pop(id, None)
        self._orphans[id] = (self.clock(), y)
        self._evict(self._orphans, "orphaned")

    def take_orphan(self, id: Hashable) -> Any | None:
        """The label held for ``id`` (counted as joined), or None."""
        self.expire()
        orphan = self._orphans.pop(id, None)
        if orphan is None:
            return None
        self.joined += 1
        return orphan[1]

    # -- bounds ----------------------------------------------------------------------------------
    def expire(self) -> None:
        """Drop (and count) entries older than ``ttl``; cheap when nothing is old."""
        cutoff = self.clock() - self.ttl
        for buffer, counter in ((self._pending, "expired"), (self._orphans, "orphaned")):
            while buffer:
                oldest = next(iter(buffer.values()))
                if oldest[0] > cutoff:
                    break
                buffer.popitem(last=False)
                setattr(self, counter, getattr(self, counter) + 1)

    def _evict(self, buffer: OrderedDict, counter: str) -> None:
        while len(buffer) > self.max_size:
            buffer.popitem(last=False)
            setattr(self, counter, getattr(self, counter) + 1)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def orphans(self) -> int:
        return len(self._orphans)

    def counts(self) -> dict[str, int]:
        """``labels_joined``, ``labels_expired``, ``labels_orphaned`` and what still waits."""
        return {"labels_joined": self.joined, "labels_expired": self.expired,
                "labels_orphaned": self.orphaned, "labels_pending": len(self._pending),
                "labels_orphans_held": len(self._orphans)}

    # -- checkpoints: JSON-able state, everything but the clock ----------------------------------
    def to_state(self) -> dict[str, Any]:
        """Both buffers (in arrival order) and the counters as JSON-able data; a record's
        features are kept as ``[name, value]`` pairs so names and values keep their types."""
        return {
            "max_size": self.max_size, "ttl": self.ttl, "joined": self.joined,
            "expired": self.expired, "orphaned": self.orphaned,
            "pending": [[id, at, [list(item) for item in x.items()], y_pred, offset, partition]
                        for id, (at, x, y_pred, offset, partition) in self._pending.items()],
            "orphans": [[id, at, y] for id, (at, y) in self._orphans.items()],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LabelJoiner:
        """A joiner from `to_state`'s data, on the wall clock (`time.time`)."""
        joiner = cls(int(state["max_size"]), float(state["ttl"]))
        joiner.joined, joiner.expired = int(state["joined"]), int(state["expired"])
        joiner.orphaned = int(state["orphaned"])
        for id, at, x, y_pred, offset, partition in state["pending"]:
            joiner._pending[id] = (float(at), {name: value for name, value in x}, y_pred,
                                   int(offset), int(partition))
        for id, at, y in state["orphans"]:
            joiner._orphans[id] = (float(at), y)
        return joiner

    # -- pickling: everything but the clock ------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "clock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.clock = time.time
