"""InputDriftMonitor: watches every predicted record's features, labelled or not, and says
which features drifted, how (mean, spread, category mix, correlation) and from what to what.

Runtime-neutral: `ModelHost` feeds it each record's ``x``; the events it returns go wherever
the host's events go (``drift_events.jsonl``, the drift topic, the Prometheus counter per
feature). Features are discovered as they appear: a number (not a bool) makes a numeric feature,
anything else a nominal one; a value of the other kind, a missing value or a non-finite number
is skipped for that feature (counted in ``skipped_values``).

Detectors (``detectors/``), one per feature, picked on bench/DETECTORS.md's input-drift table:

- numeric: the windowed KS test (`detectors.KSWindowBank`, every numeric feature in one compiled
  call a record);
- nominal: the windowed chi-square test (`detectors.ChiSquareWindow`);
- multivariate: `detectors.CorrelationShift` over the first ``correlated`` numeric features
  (records with all of them present). A correlation alarm within ``2 * window`` records of a
  per-feature alarm is dropped: a marginal shift explains it better.

An event: ``{"position", "kind": "input_drift", "detector", "features": [{"name", "statistic",
"direction", "before", "after", ...}]}``, one per detector that fired at a record. Memory is
bounded: per numeric feature 2 * window floats, per nominal feature window small ints plus
2 * 65 counts, the correlation detector (window / 50 + 2) * correlated^2 floats; at most
``max_features`` features are watched (later ones are counted in ``unwatched``).
"""
from __future__ import annotations

import base64
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from detectors import ChiSquareWindow, CorrelationShift, KSWindowBank

__all__ = ["InputDriftMonitor", "state_from_json", "state_to_json"]


class InputDriftMonitor:
    """Per-feature input-drift detectors with attribution (see the module docstring).

    ``window`` and ``stride`` are in records, ``alpha`` is each test's level; ``correlated`` is
    how many numeric features the correlation detector watches (0 turns it off).
    """

    def __init__(self, window: int = 1000, stride: int = 50, alpha: float = 1e-5,
                 correlated: int = 8, max_features: int = 256) -> None:
        self.window, self.stride, self.alpha = window, stride, alpha
        self.correlated, self.max_features = correlated, max_features
        self._numeric: list[str] = []
        self._nominal: dict[str, ChiSquareWindow] = {}
        self._bank = KSWindowBank(0, window, stride, alpha)
        self._correlation = (CorrelationShift(window, stride, alpha, max(correlated, 2))
                             if correlated >= 2 else None)
        self._last_marginal: int | None = None   # record count of the last per-feature alarm
        self.n = 0
        self.counts: Counter[str] = Counter()
        self.skipped_values = 0
        self.unwatched: set[str] = set()
        self._known: set[str] = set()   # numeric, nominal and unwatched names
        self._n_known = 0

    @property
    def features(self) -> list[str]:
        """Watched features, numeric first, in order of first appearance."""
        return [*self._numeric, *self._nominal]

    def _add(self, name: str, value: Any) -> None:
        self._known.add(name)
        self._n_known = len(self._known)
        if len(self._numeric) + len(self._nominal) >= self.max_features:
            self.unwatched.add(name)
        elif _is_number(value):
            self._numeric.append(name)
            self._bank.add_channel()
        else:
            self._nominal[name] = ChiSquareWindow(self.window, self.stride, self.alpha)

    def update(self, x: dict[str, Any]) -> list[dict[str, Any]]:
        """Feed one record's features; return the input-drift events it caused (usually [])."""
        return [event for _, event in self.update_many([x])]

    def update_many(self, xs: Sequence[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
        """Feed records in order; return (index in ``xs``, event) for every input drift. Same
        events and state as `update` record by record; the numeric detectors run over the
        whole batch in one compiled call."""
        out: list[tuple[int, dict[str, Any]]] = []
        start = 0
        for i, x in enumerate(xs):
            if len(x) > self._n_known or not self._known.issuperset(x):
                out += self._batch(xs[start:i], start)   # new features join from this record
                start = i
                for name, value in x.items():
                    if name not in self._known and value is not None:
                        self._add(name, value)
        return out + self._batch(xs[start:], start)

    def _batch(self, xs: Sequence[dict[str, Any]], offset: int
               ) -> list[tuple[int, dict[str, Any]]]:
        """Records with no new feature: every detector over them, then the events in order."""
        if not xs:
            return []
        n0 = self.n
        self.n += len(xs)
        values, present = self._numeric_rows(xs)
        numeric: dict[int, list[dict[str, Any]]] = {}
        for row, c, evidence in self._bank.update_many(values, present):
            numeric.setdefault(row, []).append({"name": self._numeric[c], **evidence})
        nominal = {row: hits for row, hits in enumerate(map(self._feed_nominal, xs)) if hits}
        pairs = self._feed_correlation(values, present)
        out = []
        for row in sorted({*numeric, *nominal, *pairs}):
            n = n0 + row + 1
            for detector, hits in (("ks-window", numeric), ("chi2-window", nominal)):
                if row in hits:
                    out.append((offset + row, self._event(detector, hits[row], n)))
                    self._last_marginal = n
            quiet = self._last_marginal is None or n - self._last_marginal > 2 * self.window
            if row in pairs and quiet:
                out.append((offset + row, self._event("correlation-shift", pairs[row], n)))
        return out

    def _numeric_rows(self, xs: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """(values, present) arrays, records x numeric features."""
        names = self._numeric
        try:   # the common case: every numeric feature present (validated records: floats)
            values = np.array([[x[name] for name in names] for x in xs], dtype=np.float64)
            values = values.reshape(len(xs), len(names))
            present = np.isfinite(values)
            if present.all():
                return values, present
        except (KeyError, TypeError, ValueError):
            pass
        values = np.zeros((len(xs), len(names)))
        present = np.zeros((len(xs), len(names)), dtype=np.bool_)
        for r, x in enumerate(xs):   # value by value: missing, non-numeric, non-finite = absent
            for c, name in enumerate(names):
                v = x.get(name)
                if _is_number(v) and math.isfinite(v):
                    values[r, c], present[r, c] = v, True
                elif v is not None:
                    self.skipped_values += 1
        return values, present

    def _feed_nominal(self, x: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for name, det in self._nominal.items():
            v = x.get(name)
            if v is None or _is_number(v) or isinstance(v, (list, dict)):
                self.skipped_values += v is not None
                continue
            det.update(v)
            if det.drift_detected:
                out.append({"name": name, **det.evidence()})
        return out

    def _feed_correlation(self, values: np.ndarray, present: np.ndarray
                          ) -> dict[int, list[dict[str, Any]]]:
        """Rows whose first ``correlated`` numeric features are all present go to the
        correlation detector; its drifts by row, each pair named from both sides."""
        det, k = self._correlation, min(self.correlated, len(self._numeric))
        if det is None or k < 2:
            return {}
        if det.n_features and det.n_features != k:   # a numeric feature joined the first k
            det.reset()
        complete = present[:, :k].all(axis=1)
        rows = None if complete.all() else np.flatnonzero(complete)
        out = {}
        for r, evidence in det.update_many(values[:, :k] if rows is None else values[rows, :k]):
            out[r if rows is None else int(rows[r])] = [
                {"name": self._numeric[a], "with": self._numeric[b], "direction": "correlation",
                 **{key: v for key, v in pair.items() if key != "pair"}}
                for pair in evidence for a, b in (pair["pair"], pair["pair"][::-1])]
        return out

    def _event(self, detector: str, features: list[dict[str, Any]], n: int) -> dict[str, Any]:
        """The event of the n-th record (1-based) seen."""
        self.counts.update({f["name"] for f in features})
        return {"position": n - 1, "kind": "input_drift", "detector": detector,
                "features": features}

    def to_state(self) -> dict[str, Any]:
        """Everything as plain numbers, strings, lists, dicts and numpy arrays."""
        return {"settings": [self.window, self.stride, self.alpha, self.correlated,
                             self.max_features],
                "n": self.n, "numeric": list(self._numeric), "bank": self._bank.to_state(),
                "nominal": {k: d.to_state() for k, d in self._nominal.items()},
                "correlation": (self._correlation.to_state()
                                if self._correlation is not None else None),
                "last_marginal": self._last_marginal, "counts": dict(self.counts),
                "skipped_values": self.skipped_values, "unwatched": sorted(self.unwatched)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> InputDriftMonitor:
        """The monitor ``to_state`` described; it continues exactly where that one was."""
        mon = cls(*state["settings"])
        mon.n = int(state["n"])
        mon._numeric = list(state["numeric"])
        mon._bank = KSWindowBank.from_state(state["bank"])
        mon._nominal = {k: ChiSquareWindow.from_state(s) for k, s in state["nominal"].items()}
        if state["correlation"] is not None:
            mon._correlation = CorrelationShift.from_state(state["correlation"])
        last = state["last_marginal"]
        mon._last_marginal = None if last is None else int(last)
        mon.counts = Counter(state["counts"])
        mon.skipped_values = int(state["skipped_values"])
        mon.unwatched = set(state["unwatched"])
        mon._known = {*mon._numeric, *mon._nominal, *mon.unwatched}
        mon._n_known = len(mon._known)
        return mon


#: Array dtypes a JSON monitor state may hold (nothing else is read back).
_DTYPES = {"<f8": np.float64, "<i8": np.int64, "<i4": np.int32}


def state_to_json(state: Any) -> Any:
    """A ``to_state`` value as JSON data: each numpy array becomes ``{"ndarray": [dtype, shape,
    base64 of its little-endian bytes]}`` (for checkpoints, which are JSON)."""
    if isinstance(state, np.ndarray):
        dtype = state.dtype.newbyteorder("<").str
        if dtype not in _DTYPES:
            raise TypeError(f"monitor state array of dtype {state.dtype}")
        raw = np.ascontiguousarray(state, dtype=dtype).tobytes()
        return {"ndarray": [dtype, list(state.shape), base64.b64encode(raw).decode("ascii")]}
    if isinstance(state, dict):
        return {k: state_to_json(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return [state_to_json(v) for v in state]
    return state


def state_from_json(doc: Any) -> Any:
    """`state_to_json`'s inverse; ValueError on an array it did not write."""
    if isinstance(doc, dict) and set(doc) == {"ndarray"}:
        dtype, shape, data = doc["ndarray"]
        if dtype not in _DTYPES:
            raise ValueError(f"monitor state array of dtype {dtype!r}")
        array = np.frombuffer(base64.b64decode(data, validate=True), dtype=_DTYPES[dtype])
        return array.reshape([int(n) for n in shape]).copy()
    if isinstance(doc, dict):
        return {k: state_from_json(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [state_from_json(v) for v in doc]
    return doc


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))
