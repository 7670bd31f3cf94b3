"""Shared plumbing: ``clone()`` and ``repr`` from the constructor's arguments, River style.

Constructor arguments are settings and are stored under their own names, unchanged; learned
state lives in underscore attributes. ``clone()`` rebuilds from the settings (deep-copied, so two
clones never share a mutable setting); ``reset()`` is ``__init__`` again on the same settings.
"""
from __future__ import annotations

import copy
import inspect
from typing import Any, TypeVar

_D = TypeVar("_D", bound="DetectorMixin")


class DetectorMixin:
    """Gives ``clone``, ``_get_params``, ``__repr__`` and the detection counters."""

    _n_seen: int
    _n_detections: int

    def _get_params(self) -> dict[str, Any]:
        sig = inspect.signature(type(self).__init__)
        return {name: getattr(self, name) for name in list(sig.parameters)[1:]}

    def clone(self: _D) -> _D:
        """A fresh, untrained detector with the same settings."""
        return type(self)(**copy.deepcopy(self._get_params()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._get_params().items())
        return f"{type(self).__name__}({args})"

    @property
    def drift_detected(self) -> bool:
        """True right after the update that detected a change (the detector then restarted)."""
        return self._drift

    @property
    def warning_detected(self) -> bool:
        """No warning zone unless the detector defines one: False."""
        return False

    @property
    def n_seen(self) -> int:
        """Observations consumed since construction or ``reset()`` (kept across detections)."""
        return self._n_seen

    @property
    def n_detections(self) -> int:
        """Drifts flagged since construction or ``reset()``."""
        return self._n_detections
