"""Sources: where records come from, as one iterable of `Record | DeadLetter`.

``open_source("synthetic:SEAa")`` replays one of the paper's streams; ``open_source("file:PATH")``
(or just a path or URI) replays a Parquet, Arrow IPC, CSV or ARFF file. Every input position
yields exactly one item, a record or a dead letter, with offsets 0, 1, 2, ... so nothing is
silently lost and a checkpoint's offset always means "the next item to read".
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pipelines.records import DeadLetter, Record
from pipelines.sources.files import DEFAULT_TARGET, FileTable, MalformedRow, open_file
from pipelines.sources.synthetic import PAPER_N, STREAMS, SyntheticStream
from pipelines.validation import RecordValidator, SourceError

__all__ = ["STREAMS", "Source", "SourceError", "open_source"]

_SYNTHETIC = "synthetic:"
_FILE = "file:"


@dataclass(frozen=True)
class Source:
    """An iterable of records and dead letters with offsets 0..n-1. ``drift_positions`` are the
    true drift centres (record indices) of a synthetic stream, [] otherwise; ``n_records`` is the
    number of items when known before reading. Each iteration starts again from the beginning."""

    name: str
    feature_names: list[str]
    drift_positions: list[int]
    n_records: int | None
    _items: Callable[[], Iterator[Record | DeadLetter]]

    def __iter__(self) -> Iterator[Record | DeadLetter]:
        return self._items()


def open_source(
    spec: str, *, target: str = DEFAULT_TARGET, limit: int | None = None, seed: int = 0,
    no_labels: bool = False,
) -> Source:
    """Open ``synthetic:NAME`` (NAME in `STREAMS`), ``file:PATH`` or a plain path or URI.

    ``limit`` caps the number of items read. For a synthetic stream it is also the stream's
    length, so the drifts are scaled into it; without it the stream has the paper's 1,000,000
    records. ``seed`` seeds synthetic streams and is ignored for files. ``target`` names the
    label column of a file (see `pipelines.sources.files` for ARFF's default). With ``no_labels``
    a file needs no label column and one it has is ignored: every record comes with ``y=None``
    (``driftflow run --no-labels``; a synthetic stream's labels are dropped the same way).
    Raises `SourceError`.
    """
    if limit is not None and limit < 0:
        raise SourceError(f"limit must be >= 0, got {limit}")
    if spec.startswith(_SYNTHETIC):
        return _synthetic(spec[len(_SYNTHETIC):], limit, seed, no_labels)
    path = spec[len(_FILE):] if spec.startswith(_FILE) and not spec.startswith("file://") else spec
    return _file(path, target, limit, no_labels)


def _synthetic(name: str, limit: int | None, seed: int, no_labels: bool) -> Source:
    factory = STREAMS.get(name)
    if factory is None:
        raise SourceError(f"unknown synthetic stream {name!r}; valid: {', '.join(STREAMS)}")
    stream = factory(PAPER_N if limit is None else limit, seed)

    def items() -> Iterator[Record | DeadLetter]:
        return _records(stream, no_labels)

    return Source(f"synthetic:{name}", stream.feature_names, stream.drift_positions, stream.n,
                  items)


def _records(stream: SyntheticStream, no_labels: bool) -> Iterator[Record]:
    for offset, (x, y) in enumerate(stream):
        yield Record(x=x, y=None if no_labels else y, offset=offset)


def _file(path: str, target: str, limit: int | None, no_labels: bool) -> Source:
    table = open_file(path, target, require_target=not no_labels)
    validator = RecordValidator(
        table.features, target=table.target, target_kind=table.columns.get(table.target),
        require_label=not no_labels,
    )
    if table.n_rows == 0 or (table.n_rows is None and next(table.rows(), None) is None):
        raise SourceError(f"file has no records: {path}")

    def items() -> Iterator[Record | DeadLetter]:
        return itertools.islice(_validated(table, validator, no_labels), limit)

    n = table.n_rows if limit is None or table.n_rows is None else min(limit, table.n_rows)
    return Source(path, list(table.features), [], n, items)


def _validated(table: FileTable, validator: RecordValidator, no_labels: bool
               ) -> Iterator[Record | DeadLetter]:
    for offset, row in enumerate(table.rows()):
        if isinstance(row, MalformedRow):
            yield DeadLetter(offset=offset, reason=row.reason, raw=row.raw)
        elif no_labels:   # a label column, if any, is not read
            x = {k: v for k, v in row.items() if k != table.target}
            yield validator.validate_parts(x, None, offset, raw=row)
        else:
            yield validator.validate(row, offset)
