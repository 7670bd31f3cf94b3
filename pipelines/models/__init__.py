"""driftflow's models: experts, router and detectors composed into River classifiers.

Every model is a ``river.base.Classifier`` (River's ``evaluate.progressive_val_score`` takes it)
and offers ``events()``, ``snapshot()`` and ``AdaptiveModel.restore()``. Select one by name through
:data:`MODELS` / :func:`make_model`.
"""
from __future__ import annotations

from typing import Any

from pipelines.models.base import SNAPSHOT_SCHEMA, AdaptiveModel, correctness_mask
from pipelines.models.compiled.adaptive import Adaptive
from pipelines.models.driftmoe import DriftMoEData, DriftMoETask

MODELS: dict[str, type[AdaptiveModel]] = {
    "adaptive": Adaptive,
    "driftmoe-data": DriftMoEData,
    "driftmoe-task": DriftMoETask,
}


def make_model(name: str, seed: int = 0, **settings: Any) -> AdaptiveModel:
    """Build the model registered as ``name``; a ValueError names the valid ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(sorted(MODELS))}")
    return MODELS[name](seed=seed, **settings)


__all__ = ["MODELS", "SNAPSHOT_SCHEMA", "Adaptive", "AdaptiveModel", "DriftMoEData",
           "DriftMoETask", "correctness_mask", "make_model"]
