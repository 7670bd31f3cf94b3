"""Prequential (test-then-train) evaluation: every record is predicted before it is learned.

Accuracy, Cohen's kappa, kappa-M (against the majority-class classifier run prequentially) and
kappa-T (against the no-change classifier that predicts the previous label), plus a sliding-window
accuracy curve sampled every ``curve_every`` records for plots.

A record the model could not predict (None: it had learned nothing yet, as before the first
label of a delayed-label stream) is counted in ``unpredicted`` and left out of the scores, as
River's progressive validation does.
"""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Hashable


def _kappa_against(accuracy: float, baseline: float) -> float:
    """How far ``accuracy`` improves on ``baseline``, scaled so 1 is perfect; 0 if undefined."""
    return (accuracy - baseline) / (1.0 - baseline) if baseline < 1.0 else 0.0


@dataclass
class PrequentialMetrics:
    """Running prequential scores. ``window`` (records) sets the sliding accuracy window;
    ``curve_every`` (records) how often a point of the accuracy curve is kept."""

    window: int = 1000
    curve_every: int = 500
    n: int = 0
    correct: int = 0
    unpredicted: int = 0
    _majority_correct: int = 0
    _no_change_correct: int = 0
    _true_counts: Counter = field(default_factory=Counter)
    _pred_counts: Counter = field(default_factory=Counter)
    _previous_label: Hashable | None = None
    _recent: deque = field(default_factory=deque)
    _recent_correct: int = 0
    curve: list[tuple[int, float, float]] = field(default_factory=list)

    def update(self, y_true: Hashable, y_pred: Hashable | None) -> None:
        """Score one prediction made before ``y_true`` was learned (None: count it only)."""
        if y_pred is None:
            self.unpredicted += 1
            return
        hit = int(y_pred == y_true)
        if self._true_counts:
            majority = self._true_counts.most_common(1)[0][0]
            self._majority_correct += int(majority == y_true)
        self._no_change_correct += int(self._previous_label == y_true)
        self.n += 1
        self.correct += hit
        self._true_counts[y_true] += 1
        self._pred_counts[y_pred] += 1
        self._previous_label = y_true
        self._recent.append(hit)
        self._recent_correct += hit
        if len(self._recent) > self.window:
            self._recent_correct -= self._recent.popleft()
        if self.n % self.curve_every == 0:
            self.curve.append((self.n, self.windowed_accuracy, self.accuracy))

    def merge(self, other: PrequentialMetrics) -> None:
        """Add ``other``'s counts (another partition's) to these; the curves are not merged."""
        self.n += other.n
        self.correct += other.correct
        self.unpredicted += other.unpredicted
        self._majority_correct += other._majority_correct
        self._no_change_correct += other._no_change_correct
        self._true_counts += other._true_counts
        self._pred_counts += other._pred_counts

    def to_state(self) -> dict[str, Any]:
        """The running scores as JSON-able data, for a checkpoint; labels stay as they are
        (ints, floats, strings), the label counts keep their first-seen order (it breaks
        kappa-M's majority ties)."""
        return {
            "window": self.window, "curve_every": self.curve_every, "n": self.n,
            "correct": self.correct, "unpredicted": self.unpredicted,
            "majority_correct": self._majority_correct,
            "no_change_correct": self._no_change_correct,
            "true_counts": [[label, count] for label, count in self._true_counts.items()],
            "pred_counts": [[label, count] for label, count in self._pred_counts.items()],
            "previous_label": self._previous_label, "recent": list(self._recent),
            "recent_correct": self._recent_correct, "curve": [list(p) for p in self.curve],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PrequentialMetrics:
        """Scores from `to_state`'s data; they continue exactly where they were."""
        return cls(
            window=int(state["window"]), curve_every=int(state["curve_every"]),
            n=int(state["n"]), correct=int(state["correct"]),
            unpredicted=int(state["unpredicted"]),
            _majority_correct=int(state["majority_correct"]),
            _no_change_correct=int(state["no_change_correct"]),
            _true_counts=Counter({label: int(c) for label, c in state["true_counts"]}),
            _pred_counts=Counter({label: int(c) for label, c in state["pred_counts"]}),
            _previous_label=state["previous_label"],
            _recent=deque(int(hit) for hit in state["recent"]),
            _recent_correct=int(state["recent_correct"]),
            curve=[(int(n), float(w), float(a)) for n, w, a in state["curve"]],
        )

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def windowed_accuracy(self) -> float:
        return self._recent_correct / len(self._recent) if self._recent else 0.0

    @property
    def kappa(self) -> float:
        """Cohen's kappa: accuracy against chance agreement of the two label marginals."""
        if not self.n:
            return 0.0
        chance = sum(
            (self._true_counts[c] / self.n) * (self._pred_counts.get(c, 0) / self.n)
            for c in self._true_counts
        )
        return _kappa_against(self.accuracy, chance)

    @property
    def kappa_m(self) -> float:
        return _kappa_against(self.accuracy, self._majority_correct / self.n) if self.n else 0.0

    @property
    def kappa_t(self) -> float:
        return _kappa_against(self.accuracy, self._no_change_correct / self.n) if self.n else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "scored": self.n,
            "unpredicted": self.unpredicted,
            "accuracy": self.accuracy,
            "kappa": self.kappa,
            "kappa_m": self.kappa_m,
            "kappa_t": self.kappa_t,
            "windowed_accuracy": self.windowed_accuracy,
        }
