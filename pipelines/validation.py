"""Record validation: raw rows and Kafka messages become a `Record` or a `DeadLetter`.

Bad records never crash a job: each one becomes a `DeadLetter` whose reason is one line. Problems
that make a whole source unusable (missing file, unknown format, no target column) raise
`SourceError`, which the CLI maps to exit code 2. (Past 300 lines: one check per kind of bad
value, each with its reason text, is what this module is.)

Values a model cannot hold are dead letters too: a number beyond +-`MAX_MAGNITUDE` (its square
and running sums of squares must stay finite in the models' statistics) and a text value longer
than `MAX_TEXT_CHARS`. Input text quoted in a reason or message goes through `printable`, so a
terminal never receives raw control characters from a file or a message.
"""
from __future__ import annotations

import decimal
import json
import math
from collections.abc import Hashable, Mapping
from typing import Any, Literal

from pipelines.records import DeadLetter, Record

Kind = Literal["numeric", "nominal"]
NUMERIC: Kind = "numeric"
NOMINAL: Kind = "nominal"

# The largest magnitude a numeric feature may have: its square (1e200) and a billion records'
# sums of squares (1e209) stay far below the float maximum (1.8e308) in every running variance.
MAX_MAGNITUDE = 1e100
# The longest nominal value or text label (characters): a category name, not a document; a
# longer one is almost surely a broken row (an unterminated quote swallowing lines).
MAX_TEXT_CHARS = 4096

_MISSING = object()
# Key of a record's identifier in JSON messages; never a feature (labels are joined by it).
_ID_KEY = "id"


class SourceError(ValueError):
    """A source cannot be read at all; the message is one line meant for the user."""


def printable(text: object, limit: int = 200) -> str:
    """``text`` safe for a terminal and one line: characters that are not printable (control
    characters, line breaks, bidi overrides) are escaped as in a Python literal; at most
    ``limit`` characters, then "..."."""
    text = str(text)
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class RecordValidator:
    """Checks raw rows against a fixed schema and builds records.

    ``features`` maps each feature name, in order, to its kind: numeric values become floats
    (numeric strings are parsed), nominal values become strings. ``target_kind`` says how a label
    given as a string is read: "numeric" parses it ("3" -> 3), "nominal" or None keeps it.
    With ``require_label`` False a missing or null label gives a record with ``y=None`` (the label
    may arrive later, joined by id) instead of a dead letter.
    """

    def __init__(
        self,
        features: Mapping[str, Kind],
        target: str = "y",
        target_kind: Kind | None = None,
        require_label: bool = True,
    ) -> None:
        self.features = dict(features)
        self.target = target
        self.target_kind = target_kind
        self.require_label = require_label
        self._items = tuple(self.features.items())

    def to_state(self) -> dict[str, Any]:
        """The schema as JSON-able data, for a checkpoint."""
        return {"features": [[name, kind] for name, kind in self._items], "target": self.target,
                "target_kind": self.target_kind, "require_label": self.require_label}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RecordValidator:
        """A validator from `to_state`'s data; ValueError when a kind is not one of ours."""
        features = {str(name): kind for name, kind in state["features"]}
        kinds = set(features.values()) | ({state["target_kind"]} - {None})
        if not kinds <= {NUMERIC, NOMINAL}:
            raise ValueError(f"unknown feature kinds {sorted(map(repr, kinds))}")
        return cls(features, target=str(state["target"]), target_kind=state["target_kind"],
                   require_label=bool(state["require_label"]))

    @classmethod
    def infer(
        cls, x: Mapping[str, Any], target: str = "y", require_label: bool = True
    ) -> RecordValidator:
        """A validator whose schema is taken from one record's features (numbers are numeric,
        everything else nominal); used when the first valid message fixes the schema."""
        kinds: dict[str, Kind] = {
            name: NUMERIC if _is_number(v) else NOMINAL for name, v in x.items()
        }
        return cls(kinds, target=target, require_label=require_label)

    def validate(
        self,
        row: Mapping[str, Any],
        offset: int,
        *,
        partition: int = 0,
        id: Hashable | None = None,
        key: Hashable | None = None,
    ) -> Record | DeadLetter:
        """Turn a flat row (features plus the target column) into a record, or a dead letter
        saying what is wrong with it."""
        y = row.get(self.target)
        x = {k: v for k, v in row.items() if k != self.target}
        return self.validate_parts(
            x, y, offset, partition=partition, id=id, key=key, raw=row
        )

    def validate_parts(
        self,
        x: Mapping[str, Any],
        y: Any,
        offset: int,
        *,
        partition: int = 0,
        id: Hashable | None = None,
        key: Hashable | None = None,
        raw: Any = None,
    ) -> Record | DeadLetter:
        """Like `validate` with features and label already separated."""
        raw = raw if raw is not None else {"x": x, "y": y}
        try:
            clean = self._features(x)
            label = self._label(y)
        except _Invalid as bad:
            return DeadLetter(offset=offset, reason=str(bad), raw=raw, partition=partition)
        return Record(x=clean, y=label, id=id, key=key, offset=offset, partition=partition)

    def _features(self, x: Mapping[str, Any]) -> dict[str, float | str]:
        clean: dict[str, float | str] = {}
        for name, kind in self._items:
            value = x.get(name, _MISSING)
            if value is _MISSING:
                raise _Invalid(f"missing feature {name!r}")
            if value is None:
                raise _Invalid(f"feature {name!r} is null")
            clean[name] = _numeric(name, value) if kind == NUMERIC else _nominal(name, value)
        if len(x) > len(clean):  # every schema feature is present, so the rest are extra
            extra = next(name for name in x if name not in self.features)
            raise _Invalid(f"unexpected feature {extra!r}")
        return clean

    def _label(self, y: Any) -> Hashable | None:
        if y is None:
            if self.require_label:
                raise _Invalid(f"label {self.target!r} is missing or null")
            return None
        if isinstance(y, str) and self.target_kind == NUMERIC:
            y = _numeric(self.target, y, what="label")
        if isinstance(y, bool):
            return int(y)
        if isinstance(y, str):
            return _text(self.target, y, what="label")
        if isinstance(y, int):
            return y
        if isinstance(y, decimal.Decimal):   # Parquet and Arrow decimal columns
            y = _numeric(self.target, y, what="label")
        if isinstance(y, float):
            y = _numeric(self.target, y, what="label")   # finite, or a dead letter
            return int(y) if y.is_integer() else y
        raise _Invalid(f"label {self.target!r} has unsupported type {type(y).__name__}")


class InputError(ValueError):
    """A record or label that cannot be used: the one error the data path turns into a dead
    letter (raised by validation and by a model's input checks). Anything else a model raises
    is a bug and surfaces."""


class _Invalid(InputError):
    """Internal: one record is bad; becomes a dead letter's reason."""


def check_features(x: Any) -> None:
    """Raise `InputError` unless ``x`` maps names to finite numbers or strings: the host's check
    for records built without a `RecordValidator`."""
    if not isinstance(x, dict):
        raise _Invalid(f"features are a {type(x).__name__}, not a dict")
    for name, value in x.items():
        if isinstance(value, float):
            _numeric(name, value)   # finite and within +-MAX_MAGNITUDE, or a dead letter
        elif not isinstance(value, int | str) or isinstance(value, bool):
            raise _Invalid(f"feature {name!r} has unsupported type {type(value).__name__}")


def check_label(y: Any) -> None:
    """Raise `InputError` unless ``y`` is a label a model can learn (an int, a string or a
    finite float): the host's check before learning, as late labels meet no validator."""
    if isinstance(y, float):
        _numeric("y", y, what="label")   # finite, or a dead letter
    elif not isinstance(y, int | str):
        raise _Invalid(f"label has unsupported type {type(y).__name__}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _non_finite(value: float) -> str:
    return "NaN" if math.isnan(value) else "infinite"


def _numeric(name: str, value: Any, what: str = "feature") -> float:
    """A numeric value as a float; numeric strings (CSV, ARFF) are parsed here. The one check
    that a number is finite (and a feature within +-`MAX_MAGNITUDE`) on the data path."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _Invalid(f"{what} {name!r} is not a number: {value[:40]!r}") from None
    elif isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            raise _Invalid(f"{what} {name!r} is out of the float range") from None
    else:
        raise _Invalid(f"{what} {name!r} has unsupported type {type(value).__name__}")
    if not math.isfinite(number):
        raise _Invalid(f"{what} {name!r} is {_non_finite(number)}")
    if what == "feature" and abs(number) > MAX_MAGNITUDE:
        raise _Invalid(f"{what} {name!r} is {number:.3g}, beyond +-{MAX_MAGNITUDE:.0e} "
                       "(it would overflow the model's statistics)")
    return number


def _text(name: str, value: str, what: str = "feature") -> str:
    if len(value) > MAX_TEXT_CHARS:
        raise _Invalid(f"{what} {name!r} is {len(value):,} characters long, over the "
                       f"{MAX_TEXT_CHARS:,} allowed")
    return value


def _nominal(name: str, value: Any) -> str:
    """A nominal value as a string; booleans become "True"/"False", numbers their text."""
    if isinstance(value, str):
        return _text(name, value)
    if isinstance(value, bool | int | float | decimal.Decimal):
        return str(value)
    raise _Invalid(f"feature {name!r} has unsupported type {type(value).__name__}")


def decode_json(
    value: bytes,
    offset: int,
    partition: int = 0,
    target: str = "y",
    *,
    validator: RecordValidator | None = None,
    require_label: bool = True,
    key: Hashable | None = None,
) -> Record | DeadLetter:
    """Decode one Kafka message: ``{"id": ..., "x": {...}, "y": ...}`` or a flat object holding
    the features, the ``target`` field and optionally ``id``. Never raises: anything unusable
    becomes a dead letter. Without a ``validator`` the schema is taken from this message."""

    def dead(reason: str) -> DeadLetter:
        return DeadLetter(offset=offset, reason=reason, raw=value, partition=partition)

    if not isinstance(value, bytes | bytearray | str):
        return dead(f"message value is {type(value).__name__}, not JSON text")
    try:
        obj = json.loads(value)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        return dead(f"invalid JSON: {printable(exc, 80)}")
    if not isinstance(obj, dict):
        return dead(f"JSON message is a {type(obj).__name__}, not an object")
    record_id = obj.get(_ID_KEY)
    if not isinstance(record_id, Hashable):
        return dead(f"'{_ID_KEY}' has unsupported type {type(record_id).__name__}")
    if isinstance(obj.get("x"), dict):
        x, y = obj["x"], obj.get(target)
    else:
        x = {k: v for k, v in obj.items() if k not in (target, _ID_KEY)}
        y = obj.get(target)
    if validator is None:
        validator = RecordValidator.infer(x, target=target, require_label=require_label)
    return validator.validate_parts(
        x, y, offset, partition=partition, id=record_id, key=key, raw=value
    )


NULL_MESSAGE = "message has no value (null)"   # a tombstone's dead-letter reason


class JsonDecoder:
    """Stateful `decode_json`: the first valid message fixes the schema (feature names and
    kinds) unless a validator is given, and later messages are checked against it."""

    def __init__(
        self,
        target: str = "y",
        validator: RecordValidator | None = None,
        require_label: bool = True,
    ) -> None:
        self.target = target
        self.require_label = require_label
        self._validator = validator

    def __call__(
        self,
        value: bytes | None,
        offset: int,
        partition: int = 0,
        *,
        key: Hashable | None = None,
    ) -> Record | DeadLetter:
        """Decode one message (see `decode_json`); a message with no value at all (a Kafka
        tombstone, ``None``) is a dead letter of its own reason, in every runtime."""
        if value is None:
            return DeadLetter(offset, NULL_MESSAGE, raw=b"", partition=partition)
        item = decode_json(
            value, offset, partition, self.target, validator=self._validator,
            require_label=self.require_label, key=key,
        )
        if self._validator is None and isinstance(item, Record):
            self._validator = RecordValidator.infer(
                item.x, target=self.target, require_label=self.require_label
            )
        return item
