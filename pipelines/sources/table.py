"""What every file reader gives: a `FileTable` whose rows are dicts or `MalformedRow`s.

A reader turns what it cannot split into columns (a broken line, a damaged page or record batch)
into `MalformedRow`s at their position, so they become dead letters and reading goes on. When
nothing further can be read (a truncated compressed stream, a broken Arrow stream), the rows
end with a `SourceError` saying where and why: the runner then writes what it did and stops.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipelines.validation import Kind, SourceError, printable

# What reading a damaged or truncated file can raise (pyarrow's errors, I/O, decompression,
# text decoding, a decimal type damaged out of range); anything else is a bug and surfaces.
READ_ERRORS = (pa.ArrowException, OSError, EOFError, UnicodeDecodeError, ArithmeticError)


@dataclass(frozen=True)
class MalformedRow:
    """An input position that could not be read into columns; ``raw`` is what there was of it
    (None when nothing of it could be read)."""

    reason: str
    raw: Any


@dataclass(frozen=True)
class FileTable:
    """A readable file: column kinds in file order (target included), the target's name, the item
    count when known before reading (the format records it, or a CSV's sample read it all), and
    a function that starts a fresh pass over the rows."""

    path: str
    columns: dict[str, Kind]
    target: str
    n_rows: int | None
    rows: Callable[[], Iterator[dict[str, Any] | MalformedRow]]

    @property
    def features(self) -> dict[str, Kind]:
        """Feature kinds in file order, without the target."""
        return {name: kind for name, kind in self.columns.items() if name != self.target}


def make_table(path: str, columns: dict[str, Kind], target: str, n_rows: int | None,
               rows: Callable[[], Iterator[dict[str, Any] | MalformedRow]]) -> FileTable:
    """The `FileTable`, its rows guarded (`guarded`)."""
    return FileTable(path, columns, target, n_rows, lambda: guarded(rows(), path))


def guarded(rows: Iterator[dict[str, Any] | MalformedRow],
            path: str) -> Iterator[dict[str, Any] | MalformedRow]:
    """``rows``, with a read error part-way turned into a one-line `SourceError` that says how
    many items came before it."""
    n = 0
    try:
        for row in rows:
            yield row
            n += 1
    except READ_ERRORS as exc:
        raise SourceError(f"stopped reading {printable(path)} after {n:,} rows: "
                          f"{error_text(exc)}") from None


def unique_names(names: Iterable[str], path: str) -> list[str]:
    """``names`` as a list; `SourceError` when one is used twice (which column would it be?)."""
    names = list(names)
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SourceError(f"column name {printable(repr(name))} is used twice in "
                              f"{printable(path)}: rename one so each name means one column")
        seen.add(name)
    return names


def error_text(exc: BaseException, limit: int = 160) -> str:
    """An exception's first line, escaped (`printable`): pyarrow quotes the file's bytes."""
    lines = str(exc).strip().splitlines()
    return printable(lines[0] if lines else type(exc).__name__, limit)
