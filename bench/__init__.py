"""driftflow's benchmark harness: its models and River's peers on the same streams, in one run.

``python -m bench`` or ``driftflow bench``; see `bench.harness` for what is measured and how.
"""
from __future__ import annotations

from bench.harness import MODEL_REGISTRY, main

__all__ = ["MODEL_REGISTRY", "main"]
