"""Validation: every bad input becomes a dead letter with its reason, or a SourceError."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.records import DeadLetter, Record
from pipelines.sources import open_source
from pipelines.validation import (
    NOMINAL,
    NUMERIC,
    JsonDecoder,
    RecordValidator,
    SourceError,
    decode_json,
)

VALIDATOR = RecordValidator({"x1": NUMERIC, "x2": NUMERIC, "c": NOMINAL}, target="y")
GOOD = {"x1": 1.0, "x2": 2, "c": "a", "y": 1}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"x1": math.nan}, "feature 'x1' is NaN"),
        ({"x2": -math.inf}, "feature 'x2' is infinite"),
        ({"x1": None}, "feature 'x1' is null"),
        ({"x1": "abc"}, "feature 'x1' is not a number: 'abc'"),
        ({"x1": "nan"}, "feature 'x1' is NaN"),
        ({"x1": [1]}, "feature 'x1' has unsupported type list"),
        ({"z": 3.0}, "unexpected feature 'z'"),
        ({"y": None}, "label 'y' is missing or null"),
        ({"y": math.nan}, "label 'y' is NaN"),
    ],
)
def test_bad_rows_become_dead_letters(change: dict, reason: str) -> None:
    item = VALIDATOR.validate({**GOOD, **change}, 7)
    assert isinstance(item, DeadLetter)
    assert item.reason == reason and item.offset == 7 and "\n" not in item.reason


@pytest.mark.parametrize(("drop", "reason"),
                         [("x2", "missing feature 'x2'"), ("y", "label 'y' is missing or null")])
def test_missing_fields(drop: str, reason: str) -> None:
    row = {k: v for k, v in GOOD.items() if k != drop}
    assert VALIDATOR.validate(row, 0) == DeadLetter(offset=0, reason=reason, raw=row)


def test_good_row_and_label_types() -> None:
    item = VALIDATOR.validate({**GOOD, "x1": "1e3"}, 3)
    assert item == Record(x={"x1": 1000.0, "x2": 2.0, "c": "a"}, y=1, offset=3)
    labels = {1: 1, 3.0: 3, 2.5: 2.5, "spam": "spam", True: 1, 99: 99}  # 99: a new class is fine
    for given_label, expected in labels.items():
        got = VALIDATOR.validate({**GOOD, "y": given_label}, 0)
        assert isinstance(got, Record) and got.y == expected and type(got.y) is type(expected)
    numeric_target = RecordValidator({"x1": NUMERIC}, target_kind=NUMERIC)
    assert numeric_target.validate({"x1": 1, "y": "4"}, 0).y == 4
    bad_label = numeric_target.validate({"x1": 1, "y": "up"}, 0)
    assert bad_label.reason == "label 'y' is not a number: 'up'"
    unlabelled = RecordValidator({"x1": NUMERIC}, require_label=False)
    assert unlabelled.validate({"x1": 1}, 0) == Record(x={"x1": 1.0}, y=None, offset=0)


# --- JSON (Kafka) ---------------------------------------------------------------------------

def test_decode_json_shapes() -> None:
    wrapped = decode_json(b'{"id": "r1", "x": {"a": 1, "b": "u"}, "y": 0}', 4, 2)
    assert wrapped == Record(x={"a": 1.0, "b": "u"}, y=0, id="r1", offset=4, partition=2)
    flat = decode_json(b'{"id": 9, "a": 1.5, "label": "yes"}', 5, target="label")
    assert flat == Record(x={"a": 1.5}, y="yes", id=9, offset=5)


@pytest.mark.parametrize(
    ("value", "reason_start"),
    [(b"{not json", "invalid JSON: "), (b"\xff\xfe", "invalid JSON: "),
     (b"[1, 2]", "JSON message is a list, not an object"),
     (b'{"a": NaN, "y": 1}', "feature 'a' is NaN"),
     (b'{"a": 1}', "label 'y' is missing or null"), (b'{"id": [1], "a": 1, "y": 1}', "'id' has")],
)
def test_decode_json_dead_letters(value: bytes, reason_start: str) -> None:
    item = decode_json(value, 11, 1)
    assert isinstance(item, DeadLetter) and item.reason.startswith(reason_start)
    assert item.raw == value and item.offset == 11 and item.partition == 1


def test_json_decoder_first_valid_record_fixes_schema() -> None:
    decode = JsonDecoder()
    assert isinstance(decode(b"oops", 0), DeadLetter)
    assert isinstance(decode(b'{"a": 1, "b": "x", "y": 0}', 1), Record)
    assert decode(b'{"a": 2, "b": "x", "c": 3, "y": 1}', 2).reason == "unexpected feature 'c'"
    not_a_number = decode(b'{"a": "two", "b": "x", "y": 1}', 3)
    assert not_a_number.reason == "feature 'a' is not a number: 'two'"
    assert decode(b'{"a": 2, "y": 1}', 4).reason == "missing feature 'b'"
    assert isinstance(decode(b'{"a": 2, "b": 5, "y": 7}', 5), Record)  # 5 read as nominal "5"


@given(st.binary(max_size=200))
def test_decode_json_never_raises_on_bytes(value: bytes) -> None:
    assert isinstance(decode_json(value, 0), Record | DeadLetter)


_SCALAR = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=3)
_JSON = _SCALAR | st.lists(_SCALAR, max_size=2) | st.dictionaries(st.sampled_from("ab"), _SCALAR)


@given(st.dictionaries(st.sampled_from(["id", "x", "y", "a", "b"]), _JSON, max_size=5))
def test_decode_json_never_raises_on_objects(obj: dict) -> None:
    value = json.dumps(obj).encode()
    assert isinstance(decode_json(value, 0), Record | DeadLetter)
    assert isinstance(JsonDecoder(validator=VALIDATOR)(value, 0), Record | DeadLetter)


# --- files: dead letters and fatal errors -----------------------------------------------------

def test_csv_mostly_numeric_column_dead_letters_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    rows = [f"{i}.5,{'bad' if i % 20 == 0 else i},w{i % 3},{i % 2}" for i in range(100)]
    rows[1] = "1.5,,w1,1"  # empty cell: null
    rows[2] = "nan,2,w1,"  # NaN feature and a missing label
    path.write_text("a,b,c,y\n" + "\n".join(rows) + "\n")
    items = list(open_source(str(path)))
    assert [i.offset for i in items] == list(range(100))
    dead = {i.offset: i.reason for i in items if isinstance(i, DeadLetter)}
    assert dead == {0: "feature 'b' is not a number: 'bad'", 1: "feature 'b' is null",
                    2: "feature 'a' is NaN", **{k: "feature 'b' is not a number: 'bad'"
                                                for k in range(20, 100, 20)}}
    assert items[3].x == {"a": 3.5, "b": 3.0, "c": "w0"} and items[3].y == 1


def test_csv_mostly_text_column_is_nominal(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,y\n" + "".join(f"{'7' if i % 3 == 0 else 'k'},0\n" for i in range(30)))
    assert list(open_source(str(path)))[0].x == {"a": "7"}


def test_fatal_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="file not found"):
        open_source(str(tmp_path / "nope.parquet"))
    (tmp_path / "data.xyz").write_text("1,2\n")
    with pytest.raises(SourceError, match="unknown file format"):
        open_source(f"file:{tmp_path / 'data.xyz'}")
    with pytest.raises(SourceError, match=r"unknown synthetic stream 'SEAz'; valid: LEDa, LEDg, "):
        open_source("synthetic:SEAz")
    pq.write_table(pa.table({"a": [1.0], "label": [0]}), tmp_path / "t.parquet")
    with pytest.raises(SourceError, match=r"target column 'y' not in .*; columns: a, label$"):
        open_source(str(tmp_path / "t.parquet"))


@pytest.mark.parametrize(
    ("name", "content"),
    [("e.csv", "a,y\n"), ("e0.csv", ""), ("e.parquet", None),
     ("e.arff", "@relation r\n@attribute y numeric\n@data\n% none\n")],
)
def test_empty_files_are_fatal(tmp_path: Path, name: str, content: str | None) -> None:
    path = tmp_path / name
    if content is None:
        empty = pa.table({"a": pa.array([], pa.float64()), "y": pa.array([], pa.int64())})
        pq.write_table(empty, path)
    else:
        path.write_text(content)
    with pytest.raises(SourceError) as info:
        open_source(str(path))
    assert "\n" not in str(info.value)


def test_source_error_is_value_error() -> None:
    assert issubclass(SourceError, ValueError)


def test_csv_line_with_wrong_field_count_keeps_its_position(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    lines = [f"{i},{i % 2}" for i in range(50)]
    lines[3], lines[40] = "3,1,extra", "40"
    path.write_text("a,y\n" + "\n".join(lines) + "\n")
    items = list(open_source(str(path)))
    assert [i.offset for i in items] == list(range(50))
    dead = {i.offset: i.reason for i in items if isinstance(i, DeadLetter)}
    assert dead == {3: "CSV line has 3 fields, expected 2", 40: "CSV line has 1 fields, expected 2"}
    assert items[4].x == {"a": 4.0} and items[41].x == {"a": 41.0}
