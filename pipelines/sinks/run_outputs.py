"""What ``--out DIR`` holds: predictions (Parquet), dead letters and drift events (JSON lines),
``metrics.json`` and ``report.png``. Rows are written in batches so memory stays bounded."""
from __future__ import annotations

import json
import os
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.host import Prediction
from pipelines.records import DeadLetter

# Rows held before a Parquet row group is written: large enough for efficient files, small
# enough (a few MB) that a long stream never holds its predictions in memory.
_BATCH_ROWS = 50_000

_SCHEMA = pa.schema([
    ("offset", pa.int64()), ("partition", pa.int32()), ("id", pa.string()), ("key", pa.string()),
    ("y_pred", pa.string()), ("confidence", pa.float64()), ("y_true", pa.string()),
])


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class RunOutputs:
    """Writes a run's outputs into ``out_dir`` (created if needed)."""

    def __init__(self, out_dir: str) -> None:
        os.makedirs(out_dir, exist_ok=True)
        self.out_dir = out_dir
        self._rows: list[Prediction] = []
        self._writer = pq.ParquetWriter(os.path.join(out_dir, "predictions.parquet"), _SCHEMA)
        self._dead = open(os.path.join(out_dir, "dead_letters.jsonl"), "w", encoding="utf-8")
        self._events = open(os.path.join(out_dir, "drift_events.jsonl"), "w", encoding="utf-8")

    def write(self, item: Prediction | DeadLetter) -> None:
        if isinstance(item, DeadLetter):
            self._dead.write(json.dumps({"offset": item.offset, "partition": item.partition,
                                         "reason": item.reason, "raw": repr(item.raw)}) + "\n")
            return
        self._rows.append(item)
        if len(self._rows) >= _BATCH_ROWS:
            self._flush_rows()

    def write_events(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self._events.write(json.dumps(event, default=str) + "\n")

    def _flush_rows(self) -> None:
        if self._rows:
            columns = {
                "offset": [r.offset for r in self._rows],
                "partition": [r.partition for r in self._rows],
                "id": [_text(r.id) for r in self._rows],
                "key": [_text(r.key) for r in self._rows],
                "y_pred": [_text(r.y_pred) for r in self._rows],
                "confidence": [r.confidence for r in self._rows],
                "y_true": [_text(r.y_true) for r in self._rows],
            }
            self._writer.write_table(pa.table(columns, schema=_SCHEMA))
            self._rows = []

    def close(self, metrics: dict[str, Any]) -> None:
        """Flush everything and write ``metrics.json``."""
        self._flush_rows()
        self._writer.close()
        self._dead.close()
        self._events.close()
        write_metrics(self.out_dir, metrics)


def write_metrics(out_dir: str, metrics: dict[str, Any]) -> None:
    """``out_dir/metrics.json`` (the folder made if needed): every runner's summary file."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "metrics.json"), "w", encoding="utf-8") as fh:
        json.dump(metrics, fh, indent=2, default=str)
