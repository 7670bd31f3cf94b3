"""River classifiers (Hoeffding trees and friends) behind the Expert protocol."""
from __future__ import annotations

from river import base

from ._base import Features, Label


class RiverExpert(base.Classifier):
    """Wraps any River classifier ``template``: learns on ``template.clone()``, never on the
    template itself, so ``clone()`` (River's) always yields a fresh, unfitted copy with the same
    settings.

    ``memory_bytes()`` uses River's ``_raw_memory_usage`` (a full object walk, about 0.3 ms on a
    3,000-record tree), so it is cached and recomputed only after ``memory_period`` further
    ``learn_one`` calls: 1,000 by default, which keeps the walk under 1 us per record amortised
    while a tree grows by at most a few leaves between refreshes at the paper's grace period 50.
    """

    def __init__(self, template: base.Classifier, memory_period: int = 1000) -> None:
        if memory_period < 1:
            raise ValueError(f"memory_period must be >= 1, not {memory_period}")
        self.template = template
        self.memory_period = memory_period
        self._model = template.clone()
        self._n_learned = 0
        self._bytes = -1            # cached estimate; -1 = not measured yet
        self._bytes_at = 0          # _n_learned when _bytes was measured

    @classmethod
    def _unit_test_params(cls):
        """River's test convention: a Hoeffding tree with the paper's settings."""
        from experts import PAPER_TREE
        from experts._vector_nb import VectorNBHoeffdingTree

        yield {"template": VectorNBHoeffdingTree(**PAPER_TREE)}

    @property
    def _multiclass(self) -> bool:
        return self.template._multiclass

    @property
    def model(self) -> base.Classifier:
        """The River model being trained (read it, do not train it directly)."""
        return self._model

    def predict_proba_one(self, x: Features) -> dict[Label, float]:
        """Class probabilities; ``{}`` before the first ``learn_one``."""
        return self._model.predict_proba_one(x)

    def learn_one(self, x: Features, y: Label, w: float = 1.0) -> None:
        """Updates the model with one record of weight ``w``."""
        self._model.learn_one(x, y, w=w)
        self._n_learned += 1

    def memory_bytes(self) -> int:
        """Size of the learned model in bytes (refreshed every ``memory_period`` learns)."""
        if self._bytes < 0 or self._n_learned - self._bytes_at >= self.memory_period:
            self._bytes = int(self._model._raw_memory_usage)
            self._bytes_at = self._n_learned
        return self._bytes

    def __getstate__(self) -> dict:
        # the size estimate walks the object graph, so it depends on how objects are shared,
        # which a restore changes: not state, measured afresh after a restore
        return {**self.__dict__, "_bytes": -1, "_bytes_at": 0}

    def __repr__(self) -> str:
        return f"RiverExpert({self.template!r})"
