"""ARFF replay (Weka's text format).

When the target is the default "y" and there is no attribute ``y``, the target is the last
attribute (Weka's convention; Electricity's is ``class``). ``numeric``/``real``/``integer``
attributes are numeric, ``{a,b,...}`` and ``string`` nominal (values stay strings, even when
they look like numbers: ``{1,2,3}``); ``date`` and ``relational`` are refused, as is a name used
twice. ``?`` is missing; sparse data lines (``{index value, ...}``) are read with omitted values
as 0. The file is read as bytes, line by line: a data line that is not UTF-8, longer than
`MAX_LINE_BYTES` or malformed is a dead letter; the header must be readable.
"""
from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pyarrow.fs as pafs

from pipelines.sources.table import FileTable, MalformedRow, make_table, unique_names
from pipelines.validation import NOMINAL, NUMERIC, Kind, SourceError, printable

# The longest line read (bytes): a data line of a few thousand attributes fits many times over;
# a longer one is a broken file, skipped up to its end without holding it in memory.
MAX_LINE_BYTES = 1 << 20
_DEFAULT_TARGET = "y"
_ATTRIBUTE = re.compile(r"@attribute\s+('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+)\s+(.+)$",
                        re.IGNORECASE)
_INDEX = re.compile(r"[0-9]{1,9}")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


def arff(fs: pafs.FileSystem, fs_path: str, path: str, target: str) -> FileTable:
    with _open_lines(fs, fs_path) as stream:
        columns = _header(_lines(stream), path)
    if target == _DEFAULT_TARGET and target not in columns:
        target = list(columns)[-1]
    names = list(columns)

    def rows() -> Iterator[dict[str, Any] | MalformedRow]:
        with _open_lines(fs, fs_path) as stream:
            lines = _lines(stream)
            _header(lines, path)
            for line in lines:
                if isinstance(line, MalformedRow):
                    yield line
                    continue
                stripped = line.strip()
                if stripped and not stripped.startswith("%"):
                    yield _row(stripped, names)

    return make_table(path, columns, target, None, rows)


def _open_lines(fs: pafs.FileSystem, fs_path: str) -> io.BufferedReader:
    return io.BufferedReader(fs.open_input_stream(fs_path, compression="detect"))


def _lines(stream: io.BufferedReader) -> Iterator[str | MalformedRow]:
    """Each line as text, or a `MalformedRow` when it is not UTF-8 or too long."""
    while line := stream.readline(MAX_LINE_BYTES + 1):
        if len(line) > MAX_LINE_BYTES:
            while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            yield MalformedRow(f"line longer than {MAX_LINE_BYTES:,} bytes", line[:80])
            continue
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield MalformedRow(f"line is not UTF-8 text (byte {exc.start})", line)


def _header(lines: Iterator[str | MalformedRow], path: str) -> dict[str, Kind]:
    """Read up to and including ``@data``; attribute kinds in order."""
    names: list[str] = []
    kinds: list[Kind] = []
    for line in lines:
        if isinstance(line, MalformedRow):
            raise SourceError(f"ARFF header of {printable(path)} unreadable: {line.reason}")
        stripped = line.strip()
        lower = stripped.lower()
        if not stripped or stripped.startswith("%") or lower.startswith("@relation"):
            continue
        if lower.startswith("@data"):
            if not names:
                raise SourceError(f"ARFF file {printable(path)} declares no attributes")
            return dict(zip(unique_names(names, path), kinds))
        match = _ATTRIBUTE.match(stripped)
        if match is None:
            raise SourceError(f"ARFF header line not understood in {printable(path)}: "
                              f"{printable(stripped, 60)}")
        name, kind = _unquote(match.group(1)), match.group(2).strip()
        names.append(name)
        if kind.startswith("{") or kind.lower() == "string":
            kinds.append(NOMINAL)
        elif kind.lower() in ("numeric", "real", "integer"):
            kinds.append(NUMERIC)
        else:
            raise SourceError(f"ARFF attribute {printable(repr(name))} in {printable(path)} has "
                              f"unsupported type {printable(kind, 40)}")
    raise SourceError(f"ARFF file {printable(path)} has no @data section")


def _unquote(token: str) -> str:
    """A quoted token's text, with Weka's escapes (\\n, \\r, \\t; a backslash keeps any other
    character as it is)."""
    token = token.strip()
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), token[1:-1])
    return token


def _split(line: str) -> list[str]:
    """Split a data line on commas outside quotes, unquoting values (Weka's escapes inside)."""
    if "'" not in line and '"' not in line:
        return [v.strip() for v in line.split(",")]
    values, current, quote, escaped = [], [], "", False
    for ch in line:
        if escaped:
            current.append(_ESCAPES.get(ch, ch))
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


def _row(line: str, names: list[str]) -> dict[str, Any] | MalformedRow:
    if line.startswith("{"):
        if not line.endswith("}"):
            return MalformedRow("sparse ARFF line without closing '}'", line)
        row: dict[str, Any] = dict.fromkeys(names, "0")
        for pair in _split(line[1:-1]):
            if not pair:
                continue
            index, _, value = pair.partition(" ")
            if not _INDEX.fullmatch(index) or int(index) >= len(names):
                return MalformedRow(f"sparse ARFF index {printable(repr(index), 40)} out of "
                                    "range", line)
            row[names[int(index)]] = _value(value.strip())
        return row
    values = _split(line)
    if len(values) != len(names):
        return MalformedRow(f"ARFF line has {len(values)} values, expected {len(names)}", line)
    return {name: _value(v) for name, v in zip(names, values)}


def _value(value: str) -> str | None:
    return None if value == "?" else value   # `_split` took the quotes off
