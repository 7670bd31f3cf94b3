"""A batch of records as the arrays a compiled prequential loop reads: encoding stays in Python
(:class:`experts.RecordEncoder`), the loop gets one matrix."""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import NamedTuple

import numpy as np

from experts._encoding import RecordEncoder
from pipelines.models.base import Features


class EncodedBatch(NamedTuple):
    """Records encoded in order, as learning them one at a time would register them."""

    X: np.ndarray       # (records, features) float64: encoded rows; NaN where missing
    y: np.ndarray       # (records,) int64: class indices
    w: np.ndarray       # (records,) float64: sample weights
    widths: np.ndarray  # (records,) int64: features the encoder knew once it had read record i


def encode_batch(encoder: RecordEncoder, X: Sequence[Features], y: Sequence[Hashable],
                 w: Sequence[float] | np.ndarray | None = None) -> EncodedBatch:
    """``X``, ``y`` (and weights ``w``, 1 when None) encoded with ``learn=True``, registering
    new features, nominal values and labels; ValueError when the lengths differ."""
    if len(X) != len(y):
        raise ValueError(f"{len(X)} records for {len(y)} labels")
    rows = [encoder.encode(x, learn=True) for x in X]
    labels = np.fromiter((encoder.encode_label(v, learn=True) for v in y), np.int64, len(rows))
    widths = np.fromiter((len(row) for row in rows), np.int64, len(rows))
    n_features = encoder.n_features
    if rows and widths[0] == n_features:   # no feature appeared in the batch: one copy
        matrix = np.stack(rows)
    else:   # rows encoded before a feature first appeared are shorter: NaN (missing) there
        matrix = np.full((len(rows), n_features), np.nan)
        for i, row in enumerate(rows):
            matrix[i, : len(row)] = row
    weights = np.ones(len(rows)) if w is None else np.ascontiguousarray(w, dtype=np.float64)
    if weights.shape != (len(rows),):
        raise ValueError(f"{weights.shape} weights for {len(rows)} records")
    return EncodedBatch(matrix, labels, weights, widths)
