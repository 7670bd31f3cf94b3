"""The delayed-label schedule both runtimes share, and a Flink key's holding of records: plain
Python, no Kafka, no Flink."""
from __future__ import annotations

import pytest

from pipelines.label_schedule import (
    InvalidLabel,
    LabelBacklog,
    parse_label_message,
    with_held_label,
)
from pipelines.labels import LabelJoiner
from pipelines.records import Record
from pipelines.runners.flink.labels import KeyLabels


def test_labels_are_due_in_timestamp_order_ties_to_the_lower_partition() -> None:
    backlog = LabelBacklog()
    for partition, ts, item in ((1, 5, "b5"), (0, 3, "a3"), (1, 7, "b7"), (0, 7, "a7")):
        backlog.add(partition, ts, item)   # each partition's labels in offset order
    assert not backlog.due(2) and backlog.due(3)
    assert list(backlog.pop_due(6)) == ["a3", "b5"]
    assert list(backlog.pop_due(7)) == ["a7", "b7"] and len(backlog) == 0
    backlog.add(0, 9, "late")
    assert list(backlog.pop_due(0)) == [] and list(backlog.pop_due(0, caught_up=True)) == ["late"]


def test_covers_needs_a_newer_label_or_a_drained_partition() -> None:
    backlog = LabelBacklog()
    backlog.add(0, 10, "x")
    assert not backlog.covers(10, [0, 1], drained=lambda p: False)
    assert not backlog.covers(5, [0, 1], drained=lambda p: False)       # 1 gave nothing yet
    assert backlog.covers(5, [0, 1], drained=lambda p: p == 1)
    assert not backlog.covers(10, [0, 1], drained=lambda p: p == 1)     # 0's newest is 10


def test_a_flink_key_holds_a_record_until_its_labels_are_there() -> None:
    """Whatever order the two inputs arrive in, a record goes on only once each labels
    partition has a label newer than it or is drained (bounds: first and end offsets)."""
    labels = KeyLabels(LabelJoiner(), {0: (0, 2), 1: (0, 1)}, [0, 1])
    labels.hold((b"k", b"{}", 0, 0, 100))
    assert labels.next_record() is None                  # no label read yet
    labels.add_label(0, 0, 150, b'{"id": 1, "y": 0}')
    assert labels.next_record() is None                  # labels partition 1 may still have one
    labels.add_label(1, 0, 90, b'{"id": 2, "y": 1}')     # partition 1 is now drained
    record = labels.next_record()
    assert record[3] == 0 and labels.frontier == 100
    assert [offset for _, offset, _ in labels.due_labels()] == [0]     # the ts-90 label
    labels.hold((b"k", b"{}", 0, 1, 200))
    assert labels.next_record() is None                  # partition 0 may have one <= 200
    assert labels.next_record(force=True)[3] == 1        # the wait ran out
    labels.add_label(0, 1, 300, b'{"id": 3, "y": 0}')    # 0 drained too
    assert [o for _, o, _ in labels.due_labels()] == [0]                # ts 150 <= 200
    assert [o for _, o, _ in labels.due_labels(caught_up=True)] == [1]


def test_label_messages_parse_or_say_why_not() -> None:
    assert parse_label_message(b'{"id": "a", "y": 1}', "y") == ("a", 1)
    for bad, why in ((b"{oops", "JSONDecodeError"), (b"[1]", "TypeError"),
                     (b'{"id": 1}', "KeyError"), (b'{"id": null, "y": 1}', "null id"),
                     (None, "TypeError")):
        with pytest.raises(InvalidLabel, match=why):
            parse_label_message(bad, "y")


def test_a_record_takes_the_label_held_for_its_id() -> None:
    orphans = LabelJoiner()
    orphans.hold_orphan(7, "late")
    assert with_held_label(Record({"a": 1.0}, None, id=7), orphans).y == "late"
    assert with_held_label(Record({"a": 1.0}, None, id=7), orphans).y is None   # taken once
    assert with_held_label(Record({"a": 1.0}, 1, id=8), None).y == 1


def test_a_flink_keys_label_state_pickles_into_flink_state_and_goes_on_alike() -> None:
    """What Flink's state keeps of a key's labels (held records, backlog, offsets, frontier,
    orphans) comes back whole: the copy releases the same records and labels as the original."""
    import pickle

    def fill(labels: KeyLabels) -> None:
        labels.hold((b"k", b"{}", 0, 0, 100))
        labels.hold((b"k", b"{}", 0, 1, 120))
        labels.add_label(0, 0, 110, b'{"id": 1, "y": 0}')
        labels.orphans.hold_orphan("o", 1)

    def drain(labels: KeyLabels) -> list:
        out = []
        labels.add_label(1, 0, 130, b'{"id": 2, "y": 1}')
        labels.add_label(0, 1, 140, b'{"id": 3, "y": 1}')
        while (record := labels.next_record()) is not None:
            out.append(("record", record[3], labels.frontier))
            out.extend(("label", p, o) for p, o, _ in labels.due_labels())
        return out + [("orphans", labels.orphans.orphans, labels.counts())]

    original = KeyLabels(LabelJoiner(), None, [0, 1])
    fill(original)
    copy = pickle.loads(pickle.dumps(original))
    got = drain(copy)
    assert got == drain(original)
    assert [g[1] for g in got if g[0] == "record"] == [0, 1] and got[-1][1] == 1
