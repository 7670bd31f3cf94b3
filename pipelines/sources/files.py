"""File replay: Parquet, Arrow IPC (file and stream formats), CSV and ARFF through ``pyarrow.fs``.

Every reader yields raw rows (dicts, one per input position) in batches, so large files stream,
together with a schema: each column's kind, numeric or nominal. Conventions:

- Numeric: integer, float and decimal columns; ARFF ``numeric``/``real``/``integer``.
- Nominal: string, dictionary and boolean columns (booleans become "True"/"False"), ARFF
  ``{a,b,...}`` and ``string`` attributes. Nominal values stay strings, even when they look like
  numbers (ARFF ``{1,2,3}``).
- CSV columns are read as text; a column is numeric when at least 90 % of its non-null values in
  the first 100,000 rows parse as numbers, so a few bad values become dead letters instead of
  turning the column nominal. Empty cells, NA, N/A, null, NULL and None are missing.
- ARFF: when the target is the default "y" and there is no attribute ``y``, the target is the
  last attribute (Weka's convention; Electricity's is ``class``). ``?`` is missing; sparse data
  lines (``{index value, ...}``) are read with omitted values as 0.
- Other Arrow types (timestamps, lists, structs) are refused with `SourceError`.
"""
from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from pipelines.validation import NOMINAL, NUMERIC, Kind, SourceError

DEFAULT_TARGET = "y"
_BATCH_ROWS = 8_192  # rows per Parquet batch: big enough to amortise Arrow calls, small in memory
_CSV_BLOCK_BYTES = 1 << 20  # pyarrow's CSV block size (its default, 1 MiB)
_CSV_INFER_ROWS = 100_000  # rows sampled to decide whether a CSV column is numeric
_CSV_NUMERIC_SHARE = 0.9  # share of non-null sampled values that must parse for "numeric"
_CSV_NULLS = ["", "NA", "N/A", "null", "NULL", "None"]
_NUMBER = r"^\s*[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)\s*$"
_IPC_SUFFIXES = (".arrow", ".feather", ".ipc")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2")


@dataclass(frozen=True)
class MalformedRow:
    """An input position that could not even be split into columns (a broken ARFF line)."""

    reason: str
    raw: Any


@dataclass(frozen=True)
class FileTable:
    """A readable file: column kinds in file order (target included), the target's name, the row
    count when the format records it, and a function that starts a fresh pass over the rows."""

    path: str
    columns: dict[str, Kind]
    target: str
    n_rows: int | None
    rows: Callable[[], Iterator[dict[str, Any] | MalformedRow]]

    @property
    def features(self) -> dict[str, Kind]:
        """Feature kinds in file order, without the target."""
        return {name: kind for name, kind in self.columns.items() if name != self.target}


def open_file(path: str, target: str = DEFAULT_TARGET) -> FileTable:
    """Open a local path or URI (s3://, gs://, hdfs://, file://) for replay; raises `SourceError`
    when the file is missing, its format unknown, or the target column absent."""
    fs, fs_path = resolve_filesystem(path)
    if fs.get_file_info(fs_path).type != pafs.FileType.File:
        raise SourceError(f"file not found: {path}")
    lower = fs_path.lower()
    readers = {
        _PARQUET_SUFFIXES: _parquet, _IPC_SUFFIXES: _ipc, _CSV_SUFFIXES: _csv, (".arff",): _arff,
    }
    reader = next((r for suffixes, r in readers.items() if lower.endswith(suffixes)), None)
    if reader is None:
        known = ", ".join(s for suffixes in readers for s in suffixes)
        raise SourceError(f"unknown file format: {path} (expected one of {known})")
    try:
        return reader(fs, fs_path, path, target)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None


def resolve_filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and path for a local path or a URI (s3://, gs://, hdfs://, file://)."""
    if "://" in path:
        try:
            return pafs.FileSystem.from_uri(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise SourceError(f"cannot open {path}: {str(exc).splitlines()[0]}") from None
    return pafs.LocalFileSystem(), os.path.abspath(path)


def _table(path: str, columns: dict[str, Kind], target: str, n_rows: int | None,
           rows: Callable[[], Iterator[dict[str, Any] | MalformedRow]]) -> FileTable:
    """Check the target exists and build the `FileTable`."""
    if target not in columns:
        raise SourceError(
            f"target column {target!r} not in {path}; columns: {', '.join(columns)}"
        )
    return FileTable(path, columns, target, n_rows, rows)


def _arrow_kinds(schema: pa.Schema) -> dict[str, Kind]:
    kinds: dict[str, Kind] = {}
    for field in schema:
        t = field.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            kinds[field.name] = NUMERIC
        elif any(is_kind(t) for is_kind in (pa.types.is_string, pa.types.is_large_string,
                                            pa.types.is_dictionary, pa.types.is_boolean)):
            kinds[field.name] = NOMINAL
        else:
            raise SourceError(
                f"column {field.name!r} has type {t}, which is neither numeric nor nominal"
            )
    return kinds


def _batch_rows(batches: Iterator[pa.RecordBatch]) -> Iterator[dict[str, Any]]:
    """Rows of Arrow batches as dicts (validation turns bools into "True"/"False")."""
    for batch in batches:
        yield from batch.to_pylist()


def _parquet(fs: pafs.FileSystem, fs_path: str, path: str, target: str) -> FileTable:
    with fs.open_input_file(fs_path) as f:
        meta = pq.ParquetFile(f)
        columns, n_rows = _arrow_kinds(meta.schema_arrow), meta.metadata.num_rows

    def rows() -> Iterator[dict[str, Any]]:
        with fs.open_input_file(fs_path) as f:
            yield from _batch_rows(pq.ParquetFile(f).iter_batches(batch_size=_BATCH_ROWS))

    return _table(path, columns, target, n_rows, rows)


def _ipc_batches(f: pa.NativeFile) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Schema and batches of an Arrow IPC file in the file format or the streaming format."""
    try:
        reader = ipc.open_file(f)
    except pa.ArrowInvalid:  # no file footer: the streaming format
        f.seek(0)
        stream = ipc.open_stream(f)
        return stream.schema, iter(stream)
    return reader.schema, (reader.get_batch(i) for i in range(reader.num_record_batches))


def _ipc(fs: pafs.FileSystem, fs_path: str, path: str, target: str) -> FileTable:
    """Arrow IPC; the row count is left unknown (counting would read every batch)."""
    with fs.open_input_file(fs_path) as f:
        columns = _arrow_kinds(_ipc_batches(f)[0])

    def rows() -> Iterator[dict[str, Any]]:
        with fs.open_input_file(fs_path) as f:
            yield from _batch_rows(_ipc_batches(f)[1])

    return _table(path, columns, target, None, rows)


def _csv_reader(
    fs: pafs.FileSystem, fs_path: str, names: list[str] | None, bad: list[pacsv.InvalidRow]
) -> pacsv.CSVStreamingReader:
    """A streaming CSV reader; with ``names`` every column is read as text; lines with the wrong
    number of fields are skipped by pyarrow and collected in ``bad``."""
    convert = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names or []},
        null_values=_CSV_NULLS, strings_can_be_null=True,
    )
    parse = pacsv.ParseOptions(
        invalid_row_handler=lambda row: bad.append(row) or "skip"
    )
    stream = fs.open_input_stream(fs_path, compression="detect")
    # Single-threaded: only then does pyarrow report a bad line's number, which places it.
    read = pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES, use_threads=False)
    return pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)


def _csv_rows(
    fs: pafs.FileSystem, fs_path: str, names: list[str]
) -> Iterator[dict[str, Any] | MalformedRow]:
    """CSV rows, with each malformed line put back at its position as a `MalformedRow`. It is
    placed by line number, so a quoted value spanning lines can delay it but never drop it."""
    bad: list[pacsv.InvalidRow] = []
    position = 0  # items (rows and malformed lines) yielded so far
    for batch in _csv_reader(fs, fs_path, names, bad):
        for row in batch.to_pylist():
            while bad and (bad[0].number is None or bad[0].number - 2 <= position):
                yield _malformed(bad.pop(0))  # line 1 is the header: data line L is row L - 2
                position += 1
            yield row
            position += 1
    yield from (_malformed(row) for row in bad)


def _malformed(row: pacsv.InvalidRow) -> MalformedRow:
    return MalformedRow(
        f"CSV line has {row.actual_columns} fields, expected {row.expected_columns}", row.text
    )


def _csv(fs: pafs.FileSystem, fs_path: str, path: str, target: str) -> FileTable:
    with _csv_reader(fs, fs_path, None, []) as probe:
        names = probe.schema.names
    parsed = dict.fromkeys(names, 0)
    present = dict.fromkeys(names, 0)
    sampled = 0
    for batch in _csv_reader(fs, fs_path, names, []):
        for name, column in zip(names, batch.columns):
            present[name] += len(column) - column.null_count
            matches = pc.match_substring_regex(column, _NUMBER, ignore_case=True)
            parsed[name] += pc.sum(matches).as_py() or 0
        sampled += batch.num_rows
        if sampled >= _CSV_INFER_ROWS:
            break
    columns: dict[str, Kind] = {
        n: NUMERIC if present[n] and parsed[n] >= _CSV_NUMERIC_SHARE * present[n] else NOMINAL
        for n in names
    }

    return _table(path, columns, target, None, lambda: _csv_rows(fs, fs_path, names))


_ARFF_ATTRIBUTE = re.compile(r"@attribute\s+('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+)\s+(.+)$",
                             re.IGNORECASE)


def _arff_text(fs: pafs.FileSystem, fs_path: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(fs.open_input_stream(fs_path, compression="detect"), encoding="utf-8")


def _arff_header(lines: Iterator[str], path: str) -> dict[str, Kind]:
    """Read up to and including ``@data``; attribute kinds in order."""
    columns: dict[str, Kind] = {}
    for line in lines:
        stripped = line.strip()
        lower = stripped.lower()
        if not stripped or stripped.startswith("%") or lower.startswith("@relation"):
            continue
        if lower.startswith("@data"):
            if not columns:
                raise SourceError(f"ARFF file {path} declares no attributes")
            return columns
        match = _ARFF_ATTRIBUTE.match(stripped)
        if match is None:
            raise SourceError(f"ARFF header line not understood in {path}: {stripped[:60]}")
        name, kind = _unquote(match.group(1)), match.group(2).strip()
        if kind.startswith("{") or kind.lower() == "string":
            columns[name] = NOMINAL
        elif kind.lower() in ("numeric", "real", "integer"):
            columns[name] = NUMERIC
        else:
            raise SourceError(f"ARFF attribute {name!r} in {path} has unsupported type {kind}")
    raise SourceError(f"ARFF file {path} has no @data section")


def _unquote(token: str) -> str:
    token = token.strip()
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    return token


def _split(line: str) -> list[str]:
    """Split a data line on commas outside quotes, unquoting values."""
    if "'" not in line and '"' not in line:
        return [v.strip() for v in line.split(",")]
    values, current, quote, escaped = [], [], "", False
    for ch in line:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\" and quote:
            escaped = True
        elif quote:
            if ch == quote:
                quote = ""
            else:
                current.append(ch)
        elif ch in "'\"":
            quote = ch
        elif ch == ",":
            values.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    values.append("".join(current).strip())
    return values


def _arff_row(line: str, names: list[str]) -> dict[str, Any] | MalformedRow:
    if line.startswith("{"):
        if not line.endswith("}"):
            return MalformedRow("sparse ARFF line without closing '}'", line)
        row: dict[str, Any] = dict.fromkeys(names, "0")
        for pair in _split(line[1:-1]):
            if not pair:
                continue
            index, _, value = pair.partition(" ")
            if not index.isdigit() or int(index) >= len(names):
                return MalformedRow(f"sparse ARFF index {index!r} out of range", line)
            row[names[int(index)]] = _arff_value(value.strip())
        return row
    values = _split(line)
    if len(values) != len(names):
        return MalformedRow(f"ARFF line has {len(values)} values, expected {len(names)}", line)
    return {name: _arff_value(v) for name, v in zip(names, values)}


def _arff_value(value: str) -> str | None:
    return None if value == "?" else _unquote(value)


def _arff(fs: pafs.FileSystem, fs_path: str, path: str, target: str) -> FileTable:
    with _arff_text(fs, fs_path) as text:
        columns = _arff_header(iter(text), path)
    if target == DEFAULT_TARGET and target not in columns:
        target = list(columns)[-1]
    names = list(columns)

    def rows() -> Iterator[dict[str, Any] | MalformedRow]:
        with _arff_text(fs, fs_path) as text:
            lines = iter(text)
            _arff_header(lines, path)
            for line in lines:
                stripped = line.strip()
                if stripped and not stripped.startswith("%"):
                    yield _arff_row(stripped, names)

    return _table(path, columns, target, None, rows)
