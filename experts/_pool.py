"""ExpertPool: the experts of a model with their recent accuracy, age and budget."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ._base import Expert, Features, Label, top_class


class ExpertPool:
    """Experts addressed by position (``0 .. len-1``, shifting down on ``remove``) and by a stable
    id (never reused) for logs and events.

    Per expert it tracks:

    - ``accuracies()``: recent accuracy, an exponentially weighted mean of 0/1 correctness whose
      weights halve every ``half_life`` records (bias-corrected: the mean of what it has seen,
      so a young expert is not pulled towards a prior; ``accuracies(prior)`` gives ``prior``
      before its first outcome);
    - ``ages``: records since it joined the pool (outcomes recorded, whether or not it was asked
      or learned them).

    ``weakest()`` picks the lowest recent accuracy among experts aged at least ``min_age``, so a
    newcomer gets ``min_age`` records to prove itself; if none is that old, the oldest expert.
    ``over_budget()`` is true past ``max_experts`` experts or past ``max_bytes`` bytes of
    ``memory_bytes()`` summed over the pool (``None`` = no byte budget).
    """

    def __init__(
        self,
        max_experts: int = 12,
        max_bytes: int | None = None,
        half_life: float = 500.0,
        min_age: int = 200,
    ) -> None:
        if max_experts < 1:
            raise ValueError(f"max_experts must be >= 1, not {max_experts}")
        if half_life <= 0:
            raise ValueError(f"half_life must be > 0, not {half_life}")
        self.max_experts = max_experts
        self.max_bytes = max_bytes
        self.half_life = half_life
        self.min_age = min_age
        self._decay = 0.5 ** (1.0 / half_life)
        self._experts: list[Expert] = []
        self._ids: list[int] = []
        self._next_id = 0
        self._hits = np.zeros(0)     # decayed sum of correct outcomes
        self._seen = np.zeros(0)     # decayed count of outcomes
        self._age = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._experts)

    def __getitem__(self, i: int) -> Expert:
        return self._experts[i]

    def __iter__(self) -> Iterator[Expert]:
        return iter(self._experts)

    @property
    def ids(self) -> list[int]:
        """Stable ids of the experts, by position."""
        return list(self._ids)

    @property
    def experts(self) -> list[Expert]:
        """The experts, by position (a new list)."""
        return list(self._experts)

    def accuracies(self, prior: float = 0.5) -> np.ndarray:
        """Recent accuracy per expert in [0, 1]; ``prior`` for an expert with no outcome yet."""
        seen = self._seen > 0
        return np.where(seen, self._hits / np.where(seen, self._seen, 1.0), prior)

    @property
    def ages(self) -> np.ndarray:
        """Outcomes recorded per expert since it joined."""
        return self._age.copy()

    def add(self, expert: Expert) -> int:
        """Appends ``expert``; returns its position (its id is ``ids[position]``)."""
        self._experts.append(expert)
        self._ids.append(self._next_id)
        self._next_id += 1
        self._hits = np.append(self._hits, 0.0)
        self._seen = np.append(self._seen, 0.0)
        self._age = np.append(self._age, 0)
        return len(self._experts) - 1

    def remove(self, i: int) -> Expert:
        """Takes out the expert at position ``i`` and returns it (for archiving)."""
        expert = self._experts.pop(i)
        del self._ids[i]
        self._hits = np.delete(self._hits, i)
        self._seen = np.delete(self._seen, i)
        self._age = np.delete(self._age, i)
        return expert

    def predict_all(self, x: Features, which: Sequence[int] | None = None
                    ) -> list[dict[Label, float] | None]:
        """``predict_proba_one(x)`` per expert, by position (``{}`` = no opinion yet); with
        ``which``, only those experts are asked and the others' entries are ``None``."""
        if which is None:
            return [e.predict_proba_one(x) for e in self._experts]
        out: list[dict[Label, float] | None] = [None] * len(self._experts)
        for i in which:
            out[i] = self._experts[i].predict_proba_one(x)
        return out

    def learn_one(
        self, x: Features, y: Label, w: float = 1.0, which: Sequence[int] | None = None
    ) -> None:
        """Trains the experts at positions ``which`` (all when ``None``) on one record."""
        for i in range(len(self._experts)) if which is None else which:
            self._experts[i].learn_one(x, y, w)

    def record_outcomes(self, outputs: Sequence[Any], y: Label) -> np.ndarray:
        """Scores one record: ``outputs[i]`` is expert i's probability dict or predicted label,
        or ``None`` when expert i was not asked (its accuracy is left as it was).

        An expert is right when its label (a dict's argmax; an empty dict is never right) equals
        ``y``. Updates the asked experts' recent accuracy and every expert's age; returns the 0/1
        correctness vector (0 for experts not asked).
        """
        if len(outputs) != len(self._experts):
            raise ValueError(f"{len(outputs)} outputs for {len(self._experts)} experts")
        asked = np.fromiter((o is not None for o in outputs), dtype=bool, count=len(outputs))
        correct = np.fromiter(
            ((top_class(o) if isinstance(o, dict) else o) == y and o is not None
             for o in outputs), dtype=float, count=len(outputs))
        decay = np.where(asked, self._decay, 1.0)
        self._hits *= decay
        self._hits += correct
        self._seen *= decay
        self._seen += asked
        self._age += 1
        return correct

    def weakest(self) -> int:
        """Position of the expert to prune (see the class docstring)."""
        if not self._experts:
            raise ValueError("weakest() of an empty pool")
        mature = np.flatnonzero(self._age >= self.min_age)
        if not len(mature):
            return int(np.argmax(self._age))
        return int(mature[np.argmin(self.accuracies()[mature])])

    def memory_bytes(self) -> int:
        """Sum of the experts' ``memory_bytes()``."""
        return sum(e.memory_bytes() for e in self._experts)

    def over_budget(self) -> bool:
        """True when the pool holds more experts or bytes than its budget allows."""
        if len(self._experts) > self.max_experts:
            return True
        return self.max_bytes is not None and self.memory_bytes() > self.max_bytes
