"""driftflow's pipelines: the model composition, sources, evaluation, checkpoints, runners, CLI."""
from __future__ import annotations

from pipelines.checkpoint import CheckpointError
from pipelines.evaluate import PrequentialMetrics
from pipelines.model import MODELS, AdaptiveModel, make_model
from pipelines.records import DeadLetter, Record
from pipelines.sources import STREAMS, Source, SourceError, open_source
from pipelines.validation import JsonDecoder, RecordValidator, decode_json

__all__ = [
    "MODELS", "STREAMS", "AdaptiveModel", "CheckpointError", "DeadLetter", "JsonDecoder",
    "PrequentialMetrics", "Record", "RecordValidator", "Source", "SourceError", "decode_json",
    "make_model", "open_source",
]
