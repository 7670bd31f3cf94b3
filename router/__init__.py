"""The router: per-record weights over the expert pool, co-trained with it.

Every model builds the DriftMoE MLP router (`DriftMoERouter`) itself; there is no router
choice, so no registry. A second router would come with a model setting that selects it.
"""
from __future__ import annotations

import experts._jit_cache  # noqa: F401 - before any compiled kernel is defined

from ._base import Router
from ._driftmoe import DriftMoERouter

__all__ = ["DriftMoERouter", "Router"]
