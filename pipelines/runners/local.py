"""The local runner: one process, the embedded default of ``driftflow run``."""
from __future__ import annotations

import os
import time
from typing import Any

from tqdm import tqdm

from pipelines.host import ModelHost
from pipelines.models import AdaptiveModel
from pipelines.sinks.report import plot_accuracy
from pipelines.sinks.run_outputs import RunOutputs
from pipelines.sources import Source, SourceError

# Records handed to the model's compiled batch path at once: large enough that entering the
# kernel (~0.1 ms) is noise, small enough that outputs and the progress bar move smoothly.
BATCH_RECORDS = 1000


def _process(host: ModelHost, batch: list[Any], outputs: RunOutputs | None, bar: tqdm) -> None:
    """Run ``batch`` through ``host`` (batch path), write its results and events; empties it."""
    for result in host.process_many(batch):
        if outputs is not None:
            outputs.write(result)
    if outputs is not None:
        outputs.write_events(host.take_events())
    bar.update(len(batch))
    batch.clear()


def run_local(source: Source, model: AdaptiveModel, *, out_dir: str | None = None,
              progress: bool = True, no_labels: bool = False) -> dict[str, Any]:
    """Run ``model`` test-then-train over ``source``; return the ``metrics.json`` fields.

    With ``out_dir``, also write predictions, dead letters, drift and input-drift events,
    ``metrics.json`` and ``report.png`` there. ``no_labels``: the source has no labels (predict
    and watch the inputs; no accuracy). The progress bar goes to stderr and only shows on a
    terminal. When the source stops part-way (a `SourceError`: a truncated or broken file), the
    outputs and ``metrics.json`` (with ``stopped``: the reason) still cover every item read,
    then the error is raised again for the caller to report.
    """
    host = ModelHost(model, no_labels=no_labels)
    outputs = RunOutputs(out_dir) if out_dir else None
    bar = tqdm(total=source.n_records, unit="rec", desc=f"{model.name} on {source.name}",
               disable=None if progress else True, mininterval=0.5)
    started = time.perf_counter()
    stopped: SourceError | None = None
    batch: list[Any] = []
    try:
        for item in source:
            batch.append(item)
            if len(batch) == BATCH_RECORDS:
                _process(host, batch, outputs, bar)
    except SourceError as exc:   # nothing further can be read: keep what was done, then stop
        stopped = exc
    _process(host, batch, outputs, bar)
    seconds = time.perf_counter() - started
    bar.close()
    metrics = {"source": source.name, **host.summary(seconds)}
    if stopped is not None:
        metrics["stopped"] = str(stopped)
    if outputs is not None:
        outputs.close(metrics)
        plot_accuracy(host.metrics.curve, os.path.join(out_dir, "report.png"),
                      title=f"{model.name} on {source.name}", detected=host.drift_positions,
                      true_drifts=source.drift_positions, window=host.metrics.window,
                      features=host.input_monitor.features if host.input_monitor else (),
                      input_drifts=host.input_drifts, n_records=host.records)
    if stopped is not None:
        raise stopped
    return metrics
