"""Records and dead letters: what flows along driftflow's one data path."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable


@dataclass(frozen=True, slots=True)
class Record:
    """One input record. ``offset`` is its position in its source (0-based, per partition);
    ``y`` is ``None`` when the label is not (yet) known."""

    x: dict[str, Any]
    y: Hashable | None = None
    id: Hashable | None = None
    key: Hashable | None = None
    offset: int = 0
    partition: int = 0


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be used, with the reason in one line. ``raw`` is the input as
    received (a dict row, or bytes from Kafka) so it can be inspected or replayed."""

    offset: int
    reason: str
    raw: Any = None
    partition: int = 0
