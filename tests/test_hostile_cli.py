"""The exit contract of ``driftflow run`` on files that fight back, end to end (real model, real
outputs): exit 0 or 2, at most one line on stderr and never a traceback, and ``metrics.json``
accounting for every item: records = predictions + dead letters (labelled files: no skips)."""
from __future__ import annotations

import gzip
import json
import os
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.cli import main
from tests.test_hostile_input import (FORMATS, PROPERTY, _MUTATION, _base_bytes, damage,
                                      write_arrow)

CLI_EXAMPLES = 6   # damaged files per format through the whole CLI (the model-free path has more)


def _run(path: str, out: str, capsys) -> tuple[int, list[str], dict | None]:
    """Exit code, stderr lines and metrics.json (None when none was written) of one run."""
    code = main(["run", "--source", f"file:{path}", "--out", out, "--quiet"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    lines = captured.err.splitlines()
    metrics_path = os.path.join(out, "metrics.json")
    metrics = json.load(open(metrics_path)) if os.path.exists(metrics_path) else None
    return code, lines, metrics


def _check_contract(code: int, lines: list[str], metrics: dict | None, out: str) -> None:
    assert code in (0, 2)
    if code == 0:
        assert lines == [] and metrics is not None and "stopped" not in metrics
    else:
        assert len(lines) == 1 and lines[0].startswith("driftflow: error: ")
        assert lines[0].isprintable()
    if metrics is None:   # refused when opened: nothing was read
        assert code == 2
        return
    predictions = pq.read_table(os.path.join(out, "predictions.parquet")).num_rows
    with open(os.path.join(out, "dead_letters.jsonl"), encoding="utf-8") as fh:
        dead = [json.loads(line) for line in fh]
    assert metrics["records"] == predictions + len(dead)     # skips are predictions too
    assert metrics["dead_letters"] == len(dead) and metrics["skipped"] == 0
    assert all(d["reason"].isprintable() for d in dead)
    if code == 2:   # a stop part-way: the outputs cover what was read, the reason is recorded
        assert metrics["stopped"] in lines[0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_damaged_files_keep_the_exit_contract(fmt: str, tmp_path, capsys) -> None:
    base = _base_bytes(fmt, str(tmp_path))
    path = str(tmp_path / f"damaged.{fmt}")
    runs = iter(range(10**6))

    @settings(PROPERTY, max_examples=CLI_EXAMPLES)
    @given(mutations=st.lists(_MUTATION, min_size=1, max_size=3))
    def check(mutations: list[tuple]) -> None:
        with open(path, "wb") as fh:
            fh.write(damage(base, mutations))
        out = str(tmp_path / f"out{next(runs)}")
        _check_contract(*_run(path, out, capsys), out)

    check()


def _sea_table(n: int = 400) -> pa.Table:
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0, 10, n), rng.uniform(0, 10, n)
    return pa.table({"a": a, "b": b, "y": (a + b > 10).astype(np.int64)})


def test_a_truncated_arrow_file_stops_cleanly_after_writing_what_it_read(tmp_path,
                                                                         capsys) -> None:
    """No footer (the tail is cut): the batches before the cut are predicted, metrics.json says
    why it stopped, exit 2 with one line."""
    full = str(tmp_path / "full.arrow")
    write_arrow(_sea_table(), "arrow", full, batch_rows=100)
    data = open(full, "rb").read()
    cut = str(tmp_path / "cut.arrow")
    open(cut, "wb").write(data[:len(data) * 3 // 4])
    out = str(tmp_path / "out")
    code, lines, metrics = _run(cut, out, capsys)
    _check_contract(code, lines, metrics, out)
    assert code == 2 and metrics["records"] in (200, 300) and metrics["dead_letters"] == 0
    assert "truncated" in lines[0] or "Expected to be able to read" in lines[0]


def test_a_damaged_parquet_page_is_one_dead_letter_and_reading_goes_on(tmp_path,
                                                                       capsys) -> None:
    path = str(tmp_path / "t.parquet")
    pq.write_table(_sea_table(), path, row_group_size=100, compression="none")
    meta = pq.ParquetFile(path).metadata
    column = meta.row_group(1).column(0)   # the second group's first page: garbage
    data = bytearray(open(path, "rb").read())
    start = column.data_page_offset
    data[start:start + 40] = b"\xff" * 40
    open(path, "wb").write(bytes(data))
    out = str(tmp_path / "out")
    code, lines, metrics = _run(path, out, capsys)
    _check_contract(code, lines, metrics, out)
    assert code == 0 and metrics["records"] == 301 and metrics["dead_letters"] == 1
    dead = json.loads(open(os.path.join(out, "dead_letters.jsonl")).readline())
    assert dead["offset"] == 100 and "row group 1 is damaged (100 of its 100 rows lost)" \
        in dead["reason"]


def test_bad_bytes_and_control_characters_never_reach_the_terminal(tmp_path, capsys) -> None:
    """A CSV with an invalid UTF-8 value, an escape sequence in a value and in a broken line,
    and a column whose name holds a terminal escape: dead letters whose reasons are escaped."""
    path = str(tmp_path / "t.csv.gz")
    rows = [f"{a},{b},{int(a + b > 10)}" for a, b in np.random.default_rng(1).uniform(0, 10,
                                                                                    (50, 2))]
    body = (("a,b,y\n" + "\n".join(rows[:20]) + "\n").encode() + b"\xff\xfe,1.0,1\n"
            + b"\x1b[2J,1.0,0\n" + b"\x1b]0;pwned\x07,2,3,4\n"
            + ("\n".join(rows[20:]) + "\n").encode())
    open(path, "wb").write(gzip.compress(body))
    out = str(tmp_path / "out")
    code, lines, metrics = _run(path, out, capsys)
    _check_contract(code, lines, metrics, out)
    assert code == 0 and metrics["records"] == 53 and metrics["dead_letters"] == 3
    reasons = [json.loads(line)["reason"] for line in open(os.path.join(out, "dead_letters.jsonl"))]
    assert reasons[0] == "column 'a' is not UTF-8 text"
    assert "\\x1b" in reasons[1] and "\x1b" not in "".join(reasons)
    assert reasons[2] == "CSV line has 4 fields, expected 3"
    bad_name = str(tmp_path / "name.csv")   # the target is missing: the error lists the columns
    open(bad_name, "wb").write(b"\x1b[31ma,label\n1,0\n")
    code, lines, _ = _run(bad_name, str(tmp_path / "out2"), capsys)
    assert code == 2 and "\\x1b[31ma" in lines[0] and "\x1b" not in lines[0]


def test_an_oversized_csv_field_past_the_block_stops_cleanly(tmp_path, capsys) -> None:
    path = str(tmp_path / "t.csv")
    head = "a,b,y\n" + "".join(f"{k % 7}.5,{k % 5}.25,{k % 2}\n" for k in range(150))
    open(path, "w").write(head + "9" * (2 << 20) + ",1,0\n" + "1.5,2.5,1\n" * 10)
    out = str(tmp_path / "out")
    code, lines, metrics = _run(path, out, capsys)
    _check_contract(code, lines, metrics, out)
    assert code == 2 and metrics["records"] == 150 and "stopped reading" in lines[0]


def test_every_arrow_type_is_used_or_refused_up_front(tmp_path, capsys) -> None:
    """Decimals, half floats, unsigned ints, booleans and dictionaries are read and learned; a
    timestamp, a binary or an all-null column, or a repeated name, is refused before anything is
    read, naming the column."""
    n = 60
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 10, n)
    table = pa.table({
        "dec": pa.array([Decimal(f"{v:.3f}") for v in a], pa.decimal256(76, 3)),
        "half": pa.array(a.astype(np.float16)), "u": pa.array(rng.integers(0, 9, n), pa.uint64()),
        "flag": pa.array(a > 5),
        "cat": pa.array([f"c{k % 3}" for k in range(n)]).dictionary_encode(),
        "y": pa.array((a > 5).astype(np.int64)),
    })
    good = str(tmp_path / "types.parquet")
    pq.write_table(table, good)
    out = str(tmp_path / "out")
    code, lines, metrics = _run(good, out, capsys)
    _check_contract(code, lines, metrics, out)
    assert code == 0 and metrics["records"] == n and metrics["dead_letters"] == 0
    assert metrics["accuracy"] > 0.6
    for name, column in (("when", pa.array(np.arange(3), pa.timestamp("s"))),
                         ("raw", pa.array([b"x", b"y", b"z"], pa.binary())),
                         ("nothing", pa.nulls(3))):
        bad = str(tmp_path / f"{name}.parquet")
        pq.write_table(pa.table({"a": [1.0, 2.0, 3.0], name: column, "y": [0, 1, 0]}), bad)
        code, lines, metrics = _run(bad, str(tmp_path / f"out-{name}"), capsys)
        assert code == 2 and metrics is None and f"column '{name}'" in lines[0]
    twice = str(tmp_path / "twice.parquet")
    pq.write_table(pa.Table.from_arrays([pa.array([1.0]), pa.array([2.0]), pa.array([0])],
                                        names=["a", "a", "y"]), twice)
    code, lines, _ = _run(twice, str(tmp_path / "out-twice"), capsys)
    assert code == 2 and "column name 'a' is used twice" in lines[0]
