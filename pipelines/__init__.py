"""driftflow's pipelines: the model composition, sources, evaluation, checkpoints, runners, CLI."""
from __future__ import annotations

import os

# The router and neural experts multiply small matrices once per record or mini-batch; BLAS
# threads cost more than they give there (measured: a 256x256 @ 256x128 product took 1,810 us
# with 2 threads against 355 us with 1 on a 2-core machine). A user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pipelines.checkpoints.envelope import CheckpointError
from pipelines.evaluate import PrequentialMetrics
from pipelines.models import MODELS, AdaptiveModel, make_model
from pipelines.records import DeadLetter, Record
from pipelines.sources import STREAMS, Source, SourceError, open_source
from pipelines.validation import JsonDecoder, RecordValidator, decode_json

__all__ = [
    "MODELS", "STREAMS", "AdaptiveModel", "CheckpointError", "DeadLetter", "JsonDecoder",
    "PrequentialMetrics", "Record", "RecordValidator", "Source", "SourceError", "decode_json",
    "make_model", "open_source",
]
