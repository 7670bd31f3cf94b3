"""Dict records -> float64 vectors for compiled experts; labels -> class indices.

Features get positions in order of first appearance (the new names of one record sorted, so a
record's key order never matters) and never move. A numeric value is kept as is; a nominal one
(a string, anything not a number, or any value of a feature named in ``nominal_features``)
becomes its value index, in order of first appearance; missing, None or non-finite -> NaN.
"""
from __future__ import annotations

import json
import math
from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np

_JSON_SCALARS = (str, int, float, bool)


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones (np.bool_ -> bool), so they hash, compare and serialise."""
    return value.item() if isinstance(value, np.generic) else value


def _sort_key(name: Hashable) -> tuple[str, str]:
    return type(name).__name__, str(name)


class RecordEncoder:
    """Maps River-style records to vectors and labels to indices, growing as new ones appear.

    ``encode(x, learn=True)`` registers new features and nominal values (``version`` counts
    registrations, so a caller can tell cheaply whether to grow its pool); without ``learn``,
    unknown features are ignored and an unseen nominal value maps to the next index (one with no
    statistics yet). ``nominal_sizes()`` gives, per position, 0 for numeric or the number of
    values seen: what a compiled tree pool must have room for.
    """

    def __init__(self, nominal_features: Iterable[Hashable] = ()) -> None:
        self.nominal_features = frozenset(nominal_features)
        self._position: dict[Hashable, int] = {}
        self._values: list[dict[Hashable, int] | None] = []   # None: numeric feature
        self._classes: dict[Hashable, int] = {}
        self.labels: list[Hashable] = []
        self.version = 0   # bumped whenever a feature, nominal value or label is registered

    @property
    def n_features(self) -> int:
        return len(self._values)

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    def nominal_sizes(self) -> np.ndarray:
        """int64 per feature position: 0 numeric, else the number of nominal values seen."""
        return np.array([0 if v is None else max(len(v), 1) for v in self._values], np.int64)

    def _is_nominal(self, name: Hashable, value: Any) -> bool:
        if name in self.nominal_features or isinstance(value, str):
            return True
        try:
            float(value)
        except (TypeError, ValueError):
            return True
        return False

    def _register(self, x: dict[Hashable, Any]) -> None:
        new = [k for k, v in x.items() if k not in self._position and v is not None]
        for name in sorted(new, key=_sort_key):
            self._position[name] = len(self._values)
            self._values.append({} if self._is_nominal(name, x[name]) else None)
            self.version += 1

    def encode(self, x: dict[Hashable, Any], learn: bool = False) -> np.ndarray:
        """The record as float64[n_features]; NaN where a feature is missing."""
        if learn:
            self._register(x)
        out = [math.nan] * len(self._values)
        position, kinds = self._position, self._values
        for name, value in x.items():
            at = position.get(name)
            if at is None or value is None:
                continue
            values = kinds[at]
            if values is None:
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    continue
                if math.isfinite(number):
                    out[at] = number
                continue
            key = _plain(value)
            if isinstance(key, float) and not math.isfinite(key):
                continue        # NaN is missing, and matches no key anyway (NaN != NaN)
            try:
                index = values.get(key)
            except TypeError:   # unhashable: treated as missing
                continue
            if index is None:
                index = len(values)
                if learn:
                    values[key] = index
                    self.version += 1
            out[at] = index
        return np.array(out)

    def encode_label(self, y: Hashable, learn: bool = False) -> int:
        """The class index of ``y`` (registered when ``learn``); -1 for an unknown label."""
        y = _plain(y)
        index = self._classes.get(y)
        if index is None and learn:
            index = self._classes[y] = len(self.labels)
            self.labels.append(y)
            self.version += 1
        return -1 if index is None else index

    def to_json(self) -> str:
        """The encoder as JSON; TypeError when a name, value or label is not a JSON scalar."""
        names = list(self._position)
        for item in [*names, *self.labels, *self.nominal_features,
                     *(k for v in self._values if v is not None for k in v)]:
            if not isinstance(item, _JSON_SCALARS):
                raise TypeError(f"{item!r} is not a JSON scalar: cannot snapshot the encoder")
        return json.dumps({
            "nominal_features": sorted(self.nominal_features, key=_sort_key),
            "features": [[n, None if v is None else list(v)] for n, v in zip(names, self._values)],
            "labels": self.labels,
        })

    @classmethod
    def from_json(cls, text: str) -> RecordEncoder:
        """The encoder ``to_json`` wrote; ValueError on a malformed document."""
        try:
            doc = json.loads(text)
            encoder = cls(doc["nominal_features"])
            for name, values in doc["features"]:
                encoder._position[name] = len(encoder._values)
                encoder._values.append(None if values is None
                                       else {v: i for i, v in enumerate(values)})
            for label in doc["labels"]:
                encoder.encode_label(label, learn=True)
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"malformed encoder JSON: {error}") from error
        if len(encoder._position) != len(encoder._values) or len(encoder._classes) != len(
                encoder.labels):
            raise ValueError("malformed encoder JSON: repeated feature names or labels")
        return encoder
