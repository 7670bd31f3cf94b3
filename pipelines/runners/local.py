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
from pipelines.sources import Source


def run_local(source: Source, model: AdaptiveModel, *, out_dir: str | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Run ``model`` test-then-train over ``source``; return the ``metrics.json`` fields.

    With ``out_dir``, also write predictions, dead letters, drift events, ``metrics.json`` and
    ``report.png`` there. The progress bar goes to stderr and only shows on a terminal.
    """
    host = ModelHost(model)
    outputs = RunOutputs(out_dir) if out_dir else None
    bar = tqdm(total=source.n_records, unit="rec", desc=f"{model.name} on {source.name}",
               disable=None if progress else True, mininterval=0.5)
    started = time.perf_counter()
    for item in source:
        result = host.process(item)
        if outputs is not None:
            outputs.write(result)
            outputs.write_events(host.take_events())
        bar.update()
    seconds = time.perf_counter() - started
    bar.close()
    metrics = {"source": source.name, **host.summary(seconds)}
    if outputs is not None:
        outputs.close(metrics)
        plot_accuracy(host.metrics.curve, os.path.join(out_dir, "report.png"),
                      title=f"{model.name} on {source.name}", detected=host.drift_positions,
                      true_drifts=source.drift_positions, window=host.metrics.window)
    return metrics
