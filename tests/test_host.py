"""ModelHost: every record ends as one prediction or one dead letter; only input problems become
dead letters; the counters the status line and Prometheus show add up."""
from __future__ import annotations

import math
from typing import Any, Hashable

import pytest

from pipelines.host import ModelHost, Prediction
from pipelines.labels import LabelJoiner
from pipelines.models import DriftMoETask
from pipelines.records import DeadLetter, Record
from pipelines.runners.status import partition_status, status_line
from pipelines.validation import InputError


class _RejectsSome(DriftMoETask):
    """A real model whose input check rejects ``a == 2`` (with ``error``) when learning."""

    def __init__(self, error: type[Exception] = InputError, **kw: Any) -> None:
        super().__init__(**kw)
        self.error = error

    def learn_one(self, x: dict, y: Hashable, **kwargs: Any) -> None:
        if x["a"] == 2.0:
            raise self.error("a == 2 is not accepted")
        super().learn_one(x, y, **kwargs)


def _records(*rows: tuple[float, Hashable | None]) -> list[Record]:
    return [Record({"a": a}, y, offset=i) for i, (a, y) in enumerate(rows)]


def test_a_record_whose_learning_fails_is_a_dead_letter_and_not_scored() -> None:
    host = ModelHost(_RejectsSome(seed=0))
    out = [host.process(r) for r in _records((1.0, 0), (2.0, 1), (3.0, 0))]
    assert [type(o) for o in out] == [Prediction, DeadLetter, Prediction]
    assert "a == 2 is not accepted" in out[1].reason
    # scored: only the two records that were learned (the first has no prediction yet)
    assert host.metrics.n + host.metrics.unpredicted == 2 and host.model.n_learned == 2
    assert (host.records, host.dead_letters) == (3, 1)


@pytest.mark.parametrize("bug", [KeyError, TypeError, ZeroDivisionError])
def test_a_model_bug_surfaces_instead_of_becoming_a_dead_letter(bug: type[Exception]) -> None:
    host = ModelHost(_RejectsSome(error=bug, seed=0))
    host.process(Record({"a": 1.0}, 0))
    with pytest.raises(bug):
        host.process(Record({"a": 2.0}, 0, offset=1))


@pytest.mark.parametrize("x, reason", [({"a": math.nan}, "NaN"), ({"a": [1]}, "type list"),
                                       ({"a": math.inf}, "infinite")])
def test_a_hand_built_record_with_bad_features_is_a_dead_letter(x: dict, reason: str) -> None:
    host = ModelHost(DriftMoETask(seed=0))
    out = host.process(Record(x, 1))
    assert isinstance(out, DeadLetter) and reason in out.reason and host.model.n_learned == 0


def test_a_late_label_the_model_cannot_use_is_returned_as_a_dead_letter() -> None:
    host = ModelHost(DriftMoETask(seed=0), joiner=LabelJoiner())
    host.process(Record({"a": 1.0}, None, id="r1", offset=7, partition=3))
    dead = host.apply_label("r1", math.nan)
    assert isinstance(dead, DeadLetter) and (dead.offset, dead.partition) == (7, 3)
    assert "NaN" in dead.reason and dead.raw["id"] == "r1"
    assert host.model.n_learned == 0 and host.metrics.n + host.metrics.unpredicted == 0
    # a usable late label is learned and returns the join
    host.process(Record({"a": 2.0}, None, id="r2", offset=8, partition=3))
    joined = host.apply_label("r2", 1)
    assert joined is not None and not isinstance(joined, DeadLetter)
    assert host.model.n_learned == 1


def test_status_counts_skipped_records_as_predictions() -> None:
    """Records without a label are predicted and sent (skipped = not learned): predictions are
    records minus dead letters."""
    host = ModelHost(DriftMoETask(seed=0))
    items = [*_records((1.0, 0), (2.0, None), (3.0, None)),
             DeadLetter(3, "invalid JSON"), Record({"a": math.nan}, 1, offset=4)]
    sent = sum(isinstance(host.process(item), Prediction) for item in items)
    status = partition_status(host, next_offset=5, highwater=5, checkpointed_at=0.0)
    assert (host.skipped, sent) == (2, 3)
    assert (status["records_in"], status["predictions"], status["dead_letters"]) == (5, 3, 2)
    assert "predictions 3," in status_line({0: status}, seconds=1.0)
