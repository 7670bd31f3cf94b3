"""A detector that never fires: pass it where a detector is required to disable detection."""
from __future__ import annotations

from collections.abc import Hashable

from ._base import InputKind
from ._mixin import DetectorMixin

__all__ = ["NoDrift"]


class NoDrift(DetectorMixin):
    """Consumes anything, detects nothing (like River's ``drift.NoDrift``)."""

    input_kinds: tuple[InputKind, ...] = ("binary", "real", "categorical")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Zero the record counter."""
        self._n_seen = 0
        self._n_detections = 0

    def update(self, value: float | Hashable) -> None:
        """Count the record; nothing else."""
        self._n_seen += 1

    @property
    def drift_detected(self) -> bool:
        """Always False."""
        return False

    @property
    def warning_detected(self) -> bool:
        """Always False."""
        return False
