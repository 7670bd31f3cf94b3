"""driftflow's pipelines: the model composition, sources, evaluation, checkpoints, runners, CLI."""
from __future__ import annotations

from pipelines.print_guard import make_print_reachable

make_print_reachable()   # before numba loads (a Flink cluster's Python worker; see the module)

from pipelines.blas import limit_blas_threads
from pipelines.checkpoints.envelope import CheckpointError
from pipelines.evaluate import PrequentialMetrics
from pipelines.models import MODELS, AdaptiveModel, make_model
from pipelines.records import DeadLetter, Record
from pipelines.sources import STREAMS, Source, SourceError, open_source
from pipelines.validation import JsonDecoder, RecordValidator, decode_json

# numpy and scipy (their BLAS) are loaded now, by the models' imports: every process that runs a
# model (CLI, Ray worker, Flink worker, bench worker) imports `pipelines` first
limit_blas_threads()

__all__ = [
    "MODELS", "STREAMS", "AdaptiveModel", "CheckpointError", "DeadLetter", "JsonDecoder",
    "PrequentialMetrics", "Record", "RecordValidator", "Source", "SourceError", "decode_json",
    "make_model", "open_source",
]
