"""Real components started by the project: the Kafka broker (``infra.kafka``), later Ray and Flink.

Submodules are imported lazily so ``python -m infra.kafka`` runs without a double import.
"""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["kafka"]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
