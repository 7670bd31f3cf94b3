"""Files and messages that fight back: property tests over every file reader and the JSON decoder.

Each reader (CSV, CSV.gz, ARFF, Parquet, Arrow IPC file and stream) gets >= 10,000 generated
files across two properties: valid files full of hostile values (every row ends as exactly one
record or dead letter) and damaged files (bit flips, splices, cuts, bad bytes, oversized fields:
reading ends in records, dead letters or a clean `SourceError`, nothing else). The decoder gets
>= 10,000 generated messages. Both go through the model-free path (source + validator); the
full CLI exit contract runs on a smaller set of damaged files (`test_hostile_cli`). A hypothesis
example holds several files (or messages) so the generation overhead stays small; the case
counts below are examples x files.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import random
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.records import DeadLetter, Record
from pipelines.sources import open_source
from pipelines.validation import (MAX_MAGNITUDE, MAX_TEXT_CHARS, JsonDecoder, SourceError,
                                  decode_json)

FORMATS = ("csv", "csv.gz", "arff", "parquet", "arrow", "ipc")
FILES_PER_EXAMPLE = 10       # damaged files per example (one set of mutations, shifted)
VALID_FILES_PER_EXAMPLE = 5
VALID_EXAMPLES = 400        # x 5 files = 2,000 valid files with hostile values per format
DAMAGED_EXAMPLES = 800      # x 10 files = 8,000 damaged files per format
JSON_EXAMPLES = 500
MESSAGES_PER_EXAMPLE = 20   # 10,000 messages
PROPERTY = settings(deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


# --- writing a table in each format ------------------------------------------------------------

def _arff_text(value: object) -> str:
    if value is None:
        return "?"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace("'", "\\'")
        return "'" + escaped.replace("\n", "\\n").replace("\r", "\\r") + "'"
    return repr(value) if isinstance(value, float) else str(value)


def _as_float(value: float | int) -> float:
    """The float an Arrow float64 column holds for ``value`` (infinite past the float range)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def write(rows: list[tuple], fmt: str, path: str) -> None:
    """Rows of (a: number, s: text, y: 0/1 or None) in ``fmt``; CSV and ARFF write numbers as
    Python writes them (nan, inf, 1e+308, huge ints), Arrow formats as float64."""
    if fmt in ("csv", "csv.gz"):
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
        writer.writerow(["a", "s", "y"])
        writer.writerows([["" if v is None else v for v in row] for row in rows])
        data = text.getvalue().encode("utf-8", "surrogatepass")
        with open(path, "wb") as fh:
            fh.write(gzip.compress(data, mtime=0) if fmt == "csv.gz" else data)
    elif fmt == "arff":
        lines = ["@relation r", "@attribute a numeric", "@attribute s string",
                 "@attribute y {0,1}", "@data"]
        lines += [",".join(_arff_text(v) for v in row) for row in rows]
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    else:
        a = pa.array([None if v is None else _as_float(v) for v, _, _ in rows], pa.float64())
        table = pa.table({"a": a, "s": pa.array([s for _, s, _ in rows], pa.string()),
                          "y": pa.array([y for _, _, y in rows], pa.int64())})
        write_arrow(table, fmt, path)


def write_arrow(table: pa.Table, fmt: str, path: str, batch_rows: int = 4) -> None:
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=batch_rows)
        return
    new = ipc.new_file if fmt == "arrow" else ipc.new_stream
    with new(path, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)


# --- reading: the model-free path, with every invariant checked --------------------------------

@dataclass
class Tally:
    records: list[Record] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    stopped: str | None = None      # the SourceError that ended (or refused) the file

    @property
    def items(self) -> int:
        return len(self.records) + len(self.dead)


def _one_printable_line(text: str) -> None:
    assert text.isprintable() and "\n" not in text, repr(text)


def read(path: str) -> Tally:
    """Every item of the file's source, each checked: offsets 0, 1, 2, ...; records hold finite
    numbers within +-MAX_MAGNITUDE and bounded text; reasons and errors are one printable line."""
    tally = Tally()
    try:
        for item in open_source(f"file:{path}"):
            assert item.offset == tally.items
            if isinstance(item, Record):
                for value in item.x.values():
                    if isinstance(value, float):
                        assert math.isfinite(value) and abs(value) <= MAX_MAGNITUDE
                    else:
                        assert isinstance(value, str) and len(value) <= MAX_TEXT_CHARS
                assert item.y is not None
                tally.records.append(item)
            else:
                assert isinstance(item, DeadLetter)
                _one_printable_line(item.reason)
                tally.dead.append(item)
    except SourceError as exc:
        _one_printable_line(str(exc))
        tally.stopped = str(exc)
    return tally


# --- valid files with hostile values: every row is exactly one record or dead letter -----------

_NUMBERS = (st.floats(allow_nan=True, allow_infinity=True)
            | st.sampled_from([1e308, -1e308, 1e101, 1e100, 5e-324, -0.0, 0.0])
            | st.integers(-10**30, 10**30) | st.integers(-10**400, 10**400))
_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
_ROWS = st.lists(st.tuples(_NUMBERS, _TEXT, st.sampled_from([0, 1, 1, None])), min_size=1,
                 max_size=6)


def _parses(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _usable(row: tuple, fmt: str) -> bool | None:
    """Whether the row must be a record (True) or a dead letter (False); None: either (a text
    value a CSV or ARFF writer cannot carry as it is, like a lone quote or a line break)."""
    a, s, y = row
    number = _as_float(a)
    if y is None or not math.isfinite(number) or abs(number) > MAX_MAGNITUDE:
        return False
    if fmt in ("csv", "csv.gz") and _parses(s):   # a CSV column is numeric when it looks so
        return None
    if fmt in ("csv", "csv.gz", "arff") and (s.strip() != s or not s or s in (
            "NA", "N/A", "null", "NULL", "None", "?") or any(c in s for c in "\r\n'\"\\,{%")):
        return None
    return True


@pytest.mark.parametrize("fmt", FORMATS)
def test_valid_files_with_hostile_values_account_for_every_row(fmt: str, tmp_path) -> None:
    @settings(PROPERTY, max_examples=VALID_EXAMPLES)
    @given(files=st.lists(_ROWS, min_size=VALID_FILES_PER_EXAMPLE,
                          max_size=VALID_FILES_PER_EXAMPLE))
    def check(files: list[list[tuple]]) -> None:
        for k, rows in enumerate(files):
            path = str(tmp_path / f"v{k}.{fmt}")
            write(rows, fmt, path)
            tally = read(path)
            assert tally.stopped is None
            assert tally.items == len(rows)                       # nothing lost, nothing added
            kinds = [isinstance(item, Record) for item in
                     sorted(tally.records + tally.dead, key=lambda i: i.offset)]
            for row, is_record in zip(rows, kinds):
                expected = _usable(row, fmt)
                assert expected is None or expected == is_record, (row, is_record)

    check()


# --- damaged files: records, dead letters or a clean stop, nothing else ------------------------

def _base_table() -> pa.Table:
    rng = np.random.default_rng(0)
    n = 12
    return pa.table({
        "a": rng.normal(size=n), "i": pa.array(rng.integers(-5, 5, n), pa.int32()),
        "d": pa.array([Decimal(f"{v:.2f}") for v in rng.normal(size=n)], pa.decimal128(9, 2)),
        "c": pa.array([f"v{k % 3}" for k in range(n)]).dictionary_encode(),
        "b": pa.array([bool(k % 2) for k in range(n)]),
        "s": pa.array(["é\u200b", "x,y", "q\"q", "", "tab\t", None] * 2, pa.string()),
        "y": pa.array(rng.integers(0, 2, n), pa.int64()),
    })


def _base_bytes(fmt: str, tmp: str) -> bytes:
    table, path = _base_table(), os.path.join(tmp, f"base.{fmt}")
    if fmt in ("parquet", "arrow", "ipc"):
        write_arrow(table, fmt, path)
    else:
        plain = table.select(["a", "i", "s", "y"]).to_pylist()
        write([(r["a"], r["s"] or "", r["y"]) for r in plain], fmt, path)
    with open(path, "rb") as fh:
        return fh.read()


_BAD_BYTES = st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\x1b[2J", b"\n", b",", b'"', b"'",
                              b"{", b"?", b"\r\n", b"%", b"\xe2\x80\xae", b"9" * 400])
_MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(1, 255)),
    st.tuples(st.just("splice"), st.integers(0, 1 << 16), st.integers(0, 16),
              st.binary(max_size=12) | _BAD_BYTES),
    st.tuples(st.just("cut"), st.integers(0, 1 << 16), st.just(0)),
    # an oversized field: 5,000 characters, or (rarely: costly) past pyarrow's 1 MiB CSV block
    st.tuples(st.just("huge"), st.integers(0, 1 << 16),
              st.sampled_from([5_000] * 15 + [1_100_000])),
)


def damage(data: bytes, mutations: list[tuple]) -> bytes:
    """Apply each mutation at a position taken modulo the current length."""
    for op, at, *args in mutations:
        at = at % (len(data) + 1)
        if op == "flip" and at < len(data):
            data = data[:at] + bytes([data[at] ^ args[0]]) + data[at + 1:]
        elif op == "splice":
            data = data[:at] + args[1] + data[at + args[0]:]
        elif op == "cut":
            data = data[:at]
        elif op == "huge":   # an oversized field: a long run of text or digits
            data = data[:at] + b"7" * args[0] + data[at:]
    return data


@pytest.mark.parametrize("fmt", FORMATS)
def test_damaged_files_end_as_records_dead_letters_or_a_clean_stop(fmt: str, tmp_path) -> None:
    """Each example's mutations are applied FILES_PER_EXAMPLE times, shifted along the file, so
    one example damages the header, the middle and the tail of as many files."""
    base = _base_bytes(fmt, str(tmp_path))
    path = str(tmp_path / f"damaged.{fmt}")
    seen = {"stopped": 0, "dead": 0, "records": 0}

    @settings(PROPERTY, max_examples=DAMAGED_EXAMPLES)
    @given(mutations=st.lists(_MUTATION, min_size=1, max_size=3))
    def check(mutations: list[tuple]) -> None:
        for k in range(FILES_PER_EXAMPLE):
            shift = k * len(base) // FILES_PER_EXAMPLE
            with open(path, "wb") as fh:
                fh.write(damage(base, [(op, at + shift, *rest) for op, at, *rest in mutations]))
            tally = read(path)
            seen["stopped"] += tally.stopped is not None
            seen["dead"] += bool(tally.dead)
            seen["records"] += bool(tally.records)

    check()
    # the damage was felt, and files still gave records: the test reaches all three endings
    assert seen["records"] and seen["stopped"] and seen["dead"], seen


# --- the JSON decoder ----------------------------------------------------------------------------

_NASTY_MESSAGES = [b"[" * 100_000, b'{"a": 1e999, "y": 1}', b'{"a": ' + b"9" * 5000 + b"}",
                   None, b"", b"null", b'"\x1b[2J"', b"\xef\xbb\xbf{}", b'{"a": NaN, "y": 0}',
                   b'{"a": Infinity, "y": 0}', b'{"x": [], "y": 0}', b'{"id": [1], "a": 1, "y": 0}']


def _message(rng: random.Random, numbers: list, texts: list[str]) -> bytes | None:
    """One message built from the example's hostile numbers and texts: a record in either
    layout (features missing, extra or of the wrong type now and then), any JSON value, a
    damaged record, or one of the known nasty messages."""
    pick = rng.choice
    value = lambda: pick([pick(numbers), pick(texts), None, True, [1], {"k": 1}])  # noqa: E731
    x = {name: pick(numbers) if rng.random() < 0.7 else value() for name in ("a", "b")
         if rng.random() < 0.95}
    if rng.random() < 0.1:
        x[pick(texts) or "c"] = pick(numbers)
    y = pick([0, 1, "1", None, 2.5, True, pick(texts), pick(numbers)])
    shape = rng.randrange(5)
    if shape == 0:
        return json.dumps({"id": pick([rng.randrange(10), pick(texts), None]), "x": x,
                           "y": y}).encode()
    if shape == 1:
        return json.dumps({**x, "y": y}).encode()
    if shape == 2:
        return json.dumps(value()).encode()
    if shape == 3:
        data = bytearray(json.dumps({**x, "y": y}).encode())
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(data) + 1)
            data[at:at + rng.randrange(3)] = pick([b"\xff", b"\x00", b"{", b'"', b"]", b"\\"])
        return bytes(data)
    return pick(_NASTY_MESSAGES)


@settings(PROPERTY, max_examples=JSON_EXAMPLES)
@given(seed=st.integers(0, 2**32 - 1), numbers=st.lists(_NUMBERS, min_size=1, max_size=4),
       texts=st.lists(_TEXT, min_size=1, max_size=3), require_label=st.booleans())
def test_json_decoder_never_raises_and_checks_every_value(seed, numbers, texts,
                                                          require_label) -> None:
    """JSON_EXAMPLES x MESSAGES_PER_EXAMPLE messages from hypothesis' hostile numbers and
    texts, through a `JsonDecoder` (the first valid message fixes the schema) and the stateless
    `decode_json`: each one a record with clean values or a dead letter, never an exception."""
    rng = random.Random(seed)
    decoder = JsonDecoder(require_label=require_label)
    kinds = set()
    for offset in range(MESSAGES_PER_EXAMPLE):
        value = _message(rng, numbers, texts)
        for item in (decoder(value, offset), decode_json(value, offset)):
            assert item.offset == offset
            kinds.add(type(item))
            if isinstance(item, DeadLetter):
                _one_printable_line(item.reason)
                continue
            assert isinstance(item, Record)
            for v in item.x.values():
                assert (isinstance(v, float) and math.isfinite(v) and abs(v) <= MAX_MAGNITUDE
                        or isinstance(v, str) and len(v) <= MAX_TEXT_CHARS), v
            assert item.y is not None or not require_label
    assert DeadLetter in kinds


def test_overflowing_values_are_dead_letters_not_nan_in_the_model() -> None:
    decoder = JsonDecoder()
    assert isinstance(decoder(b'{"a": 1.0, "y": 0}', 0), Record)
    for k, value in enumerate([b'{"a": 1e308, "y": 1}', b'{"a": -1e101, "y": 1}',
                               b'{"a": ' + b"9" * 400 + b', "y": 1}', b'{"a": 1e999, "y": 1}']):
        item = decoder(value, k + 1)
        assert isinstance(item, DeadLetter), value
        assert "feature 'a'" in item.reason
