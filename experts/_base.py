"""The expert protocol: an incremental classifier the pool can grow, reweight and prune."""
from __future__ import annotations

from typing import Any, Hashable, Protocol, runtime_checkable

Features = dict[str, Any]   # feature name -> float (numeric) or str (nominal)
Label = Hashable


def top_class(proba: dict[Label, float]) -> Label | None:
    """The most probable class of a ``predict_proba_one`` result (the first on ties, in the
    dict's order); None for ``{}`` (nothing learned yet)."""
    return max(proba, key=proba.__getitem__) if proba else None


@runtime_checkable
class Expert(Protocol):
    """An online classifier shaped like River's: ``learn_one`` then ``predict_proba_one``.

    ``predict_proba_one`` returns ``{}`` before any learning (the pool reads that as uniform).
    ``clone`` gives a fresh, unfitted copy with the same settings. ``memory_bytes`` is an
    estimate of the learned state's size in bytes, for the pool's memory budget.
    """

    def predict_proba_one(self, x: Features) -> dict[Label, float]: ...

    def learn_one(self, x: Features, y: Label, w: float = 1.0) -> None: ...

    def clone(self) -> "Expert": ...

    def memory_bytes(self) -> int: ...
