"""File replay: Parquet, Arrow IPC (file and stream formats), CSV and ARFF through ``pyarrow.fs``.

Every reader yields raw rows (dicts, one per input position) in batches, so large files stream,
together with a schema: each column's kind, numeric or nominal (see `arrow_files` for Parquet
and Arrow types, `arff` for ARFF). Every input position ends as a row or a `MalformedRow` (a
dead letter); what stops reading part-way ends the rows with a `SourceError` (see `table`).

CSV text goes through `Utf8Repair` before pyarrow parses it: an invalid UTF-8 sequence becomes
U+FFFD, and a row holding one is a dead letter (pyarrow cannot even report a broken line that is
not UTF-8). A column is numeric when at least 90 % of its non-null values in the first 100,000
rows parse as numbers, so a few bad values become dead letters instead of turning the column
nominal. Empty cells, NA, N/A, null, NULL and None are missing. A header naming a column twice
is refused. A value longer than pyarrow's block (1 MiB) cannot be parsed and stops the read.
"""
from __future__ import annotations

import codecs
import io
import os
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs

from pipelines.sources.arff import arff
from pipelines.sources.arrow_files import ipc_file, parquet
from pipelines.sources.table import (
    READ_ERRORS,
    FileTable,
    MalformedRow,
    error_text,
    make_table,
    unique_names,
)
from pipelines.validation import NOMINAL, NUMERIC, Kind, SourceError, printable

__all__ = ["DEFAULT_TARGET", "FileTable", "MalformedRow", "open_file", "resolve_filesystem"]

DEFAULT_TARGET = "y"
_CSV_BLOCK_BYTES = 1 << 20  # pyarrow's CSV block size (its default, 1 MiB)
_CSV_INFER_ROWS = 100_000  # rows sampled to decide whether a CSV column is numeric
_CSV_NUMERIC_SHARE = 0.9  # share of non-null sampled values that must parse for "numeric"
_CSV_NULLS = ["", "NA", "N/A", "null", "NULL", "None"]
_NUMBER = r"^\s*[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)\s*$"
_IPC_SUFFIXES = (".arrow", ".feather", ".ipc")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2")


def open_file(path: str, target: str = DEFAULT_TARGET, *, require_target: bool = True
              ) -> FileTable:
    """Open a local path or URI (s3://, gs://, hdfs://, file://) for replay; raises `SourceError`
    when the file is missing, its format unknown or unreadable, or (with ``require_target``) the
    target column absent."""
    fs, fs_path = resolve_filesystem(path)
    if fs.get_file_info(fs_path).type != pafs.FileType.File:
        raise SourceError(f"file not found: {printable(path)}")
    lower = fs_path.lower()
    readers = {
        _PARQUET_SUFFIXES: parquet, _IPC_SUFFIXES: ipc_file, _CSV_SUFFIXES: _csv,
        (".arff",): arff,
    }
    reader = next((r for suffixes, r in readers.items() if lower.endswith(suffixes)), None)
    if reader is None:
        known = ", ".join(s for suffixes in readers for s in suffixes)
        raise SourceError(f"unknown file format: {printable(path)} (expected one of {known})")
    try:
        table = reader(fs, fs_path, path, target)
    except READ_ERRORS as exc:
        raise SourceError(f"cannot read {printable(path)}: {error_text(exc)}") from None
    if require_target and table.target not in table.columns:
        raise SourceError(f"target column {printable(repr(table.target))} not in "
                          f"{printable(path)}; columns: {printable(', '.join(table.columns))}")
    return table


def resolve_filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and path for a local path or a URI (s3://, gs://, hdfs://, file://)."""
    if "://" in path:
        try:
            return pafs.FileSystem.from_uri(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise SourceError(f"cannot open {printable(path)}: {error_text(exc)}") from None
    return pafs.LocalFileSystem(), os.path.abspath(path)


class Utf8Repair(io.RawIOBase):
    """A byte stream made valid UTF-8: each invalid sequence becomes U+FFFD; ``repaired`` says
    whether that happened (a U+FFFD the input held itself does not count)."""

    _FFFD = "\ufffd".encode()

    def __init__(self, raw: pa.NativeFile) -> None:
        super().__init__()
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._tail = b""          # the last two input bytes: a U+FFFD may span two reads
        self._held = 0            # U+FFFD in the input
        self._made = 0            # U+FFFD in the output
        self._out, self._at = b"", 0

    def readable(self) -> bool:
        return True

    @property
    def repaired(self) -> bool:
        return self._made > self._held

    def read(self, size: int = -1) -> bytes:
        while self._at >= len(self._out):
            chunk = self._raw.read(1 << 16)
            text = self._decoder.decode(chunk, final=not chunk)
            self._held += (self._tail + chunk).count(self._FFFD)
            self._tail = (self._tail + chunk)[-2:]
            self._made += text.count("\ufffd")
            self._out, self._at = text.encode(), 0
            if not chunk:
                break
        end = len(self._out) if size < 0 else self._at + size
        out = self._out[self._at:end]
        self._at += len(out)
        return out

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


def _csv_reader(
    fs: pafs.FileSystem, fs_path: str, names: list[str] | None, bad: list[pacsv.InvalidRow]
) -> tuple[pacsv.CSVStreamingReader, Utf8Repair]:
    """A streaming CSV reader and its repaired input; with ``names`` every column is read as
    text; lines with the wrong number of fields are skipped by pyarrow and collected in ``bad``."""
    convert = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names or []},
        null_values=_CSV_NULLS, strings_can_be_null=True,
    )
    parse = pacsv.ParseOptions(   # quoted values may hold line breaks (RFC 4180)
        newlines_in_values=True, invalid_row_handler=lambda row: bad.append(row) or "skip"
    )
    stream = Utf8Repair(fs.open_input_stream(fs_path, compression="detect"))
    # Single-threaded: only then does pyarrow report a bad line's number, which places it.
    read = pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES, use_threads=False)
    return pacsv.open_csv(stream, read_options=read, parse_options=parse,
                          convert_options=convert), stream


def _csv_rows(
    fs: pafs.FileSystem, fs_path: str, names: list[str]
) -> Iterator[dict[str, Any] | MalformedRow]:
    """CSV rows, with each malformed line put back at its position as a `MalformedRow`. It is
    placed by line number, so a quoted value spanning lines can delay it but never drop it."""
    bad: list[pacsv.InvalidRow] = []
    position = 0  # items (rows and malformed lines) yielded so far
    reader, stream = _csv_reader(fs, fs_path, names, bad)
    for batch in reader:
        for row in _checked(batch, names, stream.repaired):
            while bad and (bad[0].number is None or bad[0].number - 2 <= position):
                yield _malformed(bad.pop(0))  # line 1 is the header: data line L is row L - 2
                position += 1
            yield row
            position += 1
    yield from (_malformed(row) for row in bad)


def _checked(batch: pa.RecordBatch, names: list[str],
             repaired: bool) -> Iterator[dict[str, Any] | MalformedRow]:
    """A batch's rows; once the input needed repair, a row holding U+FFFD is malformed."""
    rows = batch.to_pylist()
    if not repaired:
        yield from rows
        return
    for row in rows:
        broken = next((n for n in names if "\ufffd" in (row[n] or "")), None)
        yield row if broken is None else MalformedRow(
            f"column {printable(repr(broken))} is not UTF-8 text", row)


def _malformed(row: pacsv.InvalidRow) -> MalformedRow:
    return MalformedRow(
        f"CSV line has {row.actual_columns} fields, expected {row.expected_columns}", row.text
    )


def _csv(fs: pafs.FileSystem, fs_path: str, path: str, target: str) -> FileTable:
    """Opened twice before its rows are read: once for the header's names (pyarrow types columns
    by name only), once to sample up to ``_CSV_INFER_ROWS`` rows as text for the column kinds.
    A file the sample reads to its end gets its exact item count (rows + malformed lines), so
    the source needs no further pass to know whether it is empty."""
    probe, _ = _csv_reader(fs, fs_path, None, [])
    with probe:
        names = unique_names(probe.schema.names, path)
    parsed = dict.fromkeys(names, 0)
    present = dict.fromkeys(names, 0)
    sampled, bad, n_items = 0, [], None
    try:
        for batch in _csv_reader(fs, fs_path, names, bad)[0]:
            for name, column in zip(names, batch.columns):
                present[name] += len(column) - column.null_count
                matches = pc.match_substring_regex(column, _NUMBER, ignore_case=True)
                parsed[name] += pc.sum(matches).as_py() or 0
            sampled += batch.num_rows
            if sampled >= _CSV_INFER_ROWS:
                break
        else:
            n_items = sampled + len(bad)   # the whole file: what its rows pass will yield
    except READ_ERRORS:
        pass   # inferred from the rows before the damage; reading the rows stops there too
    columns: dict[str, Kind] = {
        n: NUMERIC if present[n] and parsed[n] >= _CSV_NUMERIC_SHARE * present[n] else NOMINAL
        for n in names
    }

    return make_table(path, columns, target, n_items, lambda: _csv_rows(fs, fs_path, names))
