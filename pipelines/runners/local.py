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
    try:
        for item in source:
            result = host.process(item)
            if outputs is not None:
                outputs.write(result)
                outputs.write_events(host.take_events())
            bar.update()
    except SourceError as exc:   # nothing further can be read: keep what was done, then stop
        stopped = exc
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
