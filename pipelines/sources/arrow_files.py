"""Parquet and Arrow IPC (file and stream formats) replay.

Column types: integers, floating point (half precision too) and decimals are numeric; strings,
booleans ("True"/"False") and dictionary-encoded columns of those or of numbers are nominal.
Every other type (binary, dates, times, timestamps, durations, intervals, lists, structs, maps,
unions, null, extensions) is refused when the file is opened, with the column named, as is a
column name used twice.

Damage is contained where the format allows: every record batch is validated in full before
its rows are read (damaged data never reaches Python objects). A damaged Parquet row group (read
whole, so it is checked before any of its rows is used), or a damaged batch of an Arrow IPC
file, is one dead letter whose reason says how many rows it held (as far as the damaged file
tells: a footer's count can be damaged too, so it is not expanded into one dead letter per
claimed row), and reading goes on with the next group or batch. A broken Arrow IPC stream cannot be read past its break, and
an IPC file without its footer (a truncated tail) is read as a stream up to the cut: both end
the rows with a `SourceError`.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from pipelines.sources.table import (
    READ_ERRORS,
    FileTable,
    MalformedRow,
    error_text,
    make_table,
    unique_names,
)
from pipelines.validation import NOMINAL, NUMERIC, Kind, SourceError, printable

_BATCH_ROWS = 8_192  # rows turned into dicts at once: amortises Arrow calls, small in memory
_IPC_FILE_MAGIC = b"ARROW1"
_IPC_STREAM_START = 8  # the file format is the stream format after "ARROW1" and 2 bytes padding


def _is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _is_text(t: pa.DataType) -> bool:
    return (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t)
            or (hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t)))


def arrow_kinds(schema: pa.Schema, path: str) -> dict[str, Kind]:
    """Each column's kind; `SourceError` for a type driftflow does not read or a repeated name."""
    unique_names(schema.names, path)
    kinds: dict[str, Kind] = {}
    for field in schema:
        t = field.type
        if _is_numeric(t):
            kinds[field.name] = NUMERIC
        elif _is_text(t) or (pa.types.is_dictionary(t) and (_is_text(t.value_type)
                                                          or _is_numeric(t.value_type))):
            kinds[field.name] = NOMINAL
        else:
            raise SourceError(
                f"column {printable(repr(field.name))} of {printable(path)} has type "
                f"{printable(t)}, which driftflow does not read (it reads integers, floating "
                "point, decimals, strings, booleans and dictionary-encoded categories); "
                "convert or drop the column")
    return kinds


def batch_rows(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    """A batch's rows as dicts, after a full validation (raises `pa.ArrowInvalid` on damage);
    half-precision floats become Python floats."""
    batch.validate(full=True)
    if any(pa.types.is_float16(f.type) for f in batch.schema):
        columns = [pc.cast(c, pa.float32()) if pa.types.is_float16(c.type) else c
                   for c in batch.columns]
        batch = pa.RecordBatch.from_arrays(columns, names=batch.schema.names)
    return batch.to_pylist()


def parquet(fs: pafs.FileSystem, fs_path: str, path: str, target: str) -> FileTable:
    with fs.open_input_file(fs_path) as f:
        meta = pq.ParquetFile(f)
        columns, n_rows = arrow_kinds(meta.schema_arrow, path), meta.metadata.num_rows

    def rows() -> Iterator[dict[str, Any] | MalformedRow]:
        with fs.open_input_file(fs_path) as f:
            reader = pq.ParquetFile(f)
            for group in range(reader.num_row_groups):
                yield from _row_group(reader, group)

    return make_table(path, columns, target, n_rows, rows)


def _row_group(reader: pq.ParquetFile, group: int) -> Iterator[dict[str, Any] | MalformedRow]:
    """One row group's rows; what of a damaged group cannot be read is one dead letter. The
    group is read whole and checked against its row count before any row is used: pyarrow's
    batch-by-batch reader (``iter_batches``) crashed the process on a group whose column came
    up a row short."""
    expected, done = reader.metadata.row_group(group).num_rows, 0
    try:
        table = reader.read_row_group(group)
        if table.num_rows != expected:
            raise pa.ArrowInvalid(f"{table.num_rows:,} rows read, the footer says {expected:,}")
        table.validate(full=True)
        for batch in table.to_batches(max_chunksize=_BATCH_ROWS):
            rows = batch_rows(batch)
            done += len(rows)
            yield from rows
    except READ_ERRORS as exc:
        yield MalformedRow(f"Parquet row group {group} is damaged ({expected - done:,} of its "
                           f"{expected:,} rows lost): {error_text(exc)}", None)


def ipc_file(fs: pafs.FileSystem, fs_path: str, path: str, target: str) -> FileTable:
    """Arrow IPC; the row count is left unknown (counting would read every batch)."""
    with fs.open_input_file(fs_path) as f:
        columns = arrow_kinds(_ipc_open(f)[0], path)

    def rows() -> Iterator[dict[str, Any] | MalformedRow]:
        with fs.open_input_file(fs_path) as f:
            _, batches, truncated = _ipc_open(f)
            yield from batches
            if truncated:
                raise SourceError(f"{printable(path)} ends without its Arrow file footer "
                                  "(truncated): its rows were read up to the cut")

    return make_table(path, columns, target, None, rows)


def _ipc_open(f: pa.NativeFile) -> tuple[pa.Schema, Iterator[dict[str, Any] | MalformedRow],
                                         bool]:
    """Schema and rows of an Arrow IPC file in the file or the streaming format, and whether it
    is a file without its footer (then read as the stream it starts with)."""
    try:
        reader = ipc.open_file(f)
    except pa.ArrowInvalid:   # no (readable) footer: the streaming format, or a cut-off file
        f.seek(0)
        truncated = f.read(len(_IPC_FILE_MAGIC)) == _IPC_FILE_MAGIC
        f.seek(_IPC_STREAM_START if truncated else 0)
        stream = ipc.open_stream(f)
        return stream.schema, _stream_rows(stream), truncated
    return reader.schema, _file_rows(reader), False


def _file_rows(reader: ipc.RecordBatchFileReader) -> Iterator[dict[str, Any] | MalformedRow]:
    for i in range(reader.num_record_batches):
        try:
            rows = batch_rows(reader.get_batch(i))
        except READ_ERRORS as exc:
            yield MalformedRow(f"Arrow record batch {i} is damaged (its rows are lost, "
                               f"their number unknown): {error_text(exc)}", None)
            continue
        yield from rows


def _stream_rows(stream: ipc.RecordBatchStreamReader) -> Iterator[dict[str, Any] | MalformedRow]:
    """A stream's rows; a batch that reads but does not validate is one dead letter, a message
    that cannot be read ends the stream (raised: nothing after it can be found)."""
    for i in range(1 << 62):
        try:
            batch = stream.read_next_batch()
        except StopIteration:
            return
        try:
            rows = batch_rows(batch)
        except READ_ERRORS as exc:
            yield MalformedRow(f"Arrow record batch {i} is damaged (its rows are lost, "
                               f"their number unknown): {error_text(exc)}", None)
            continue
        yield from rows
