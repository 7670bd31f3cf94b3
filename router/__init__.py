"""Routers: per-record weights over the expert pool, co-trained with it.

A new router is one module plus one ``REGISTRY`` line (a factory taking ``n_experts``, ``seed``
and keyword overrides).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._base import Router
from ._driftmoe import DriftMoERouter
from ._expweights import ExpWeightsRouter


def driftmoe(n_experts: int = 12, seed: int = 0, **overrides: Any) -> DriftMoERouter:
    """The DriftMoE MLP router with the paper's settings."""
    return DriftMoERouter(n_experts=n_experts, seed=seed, **overrides)


def exp_weights(n_experts: int = 12, seed: int = 0, **overrides: Any) -> ExpWeightsRouter:
    """Fixed-share exponential weights (deterministic: ``seed`` is unused)."""
    return ExpWeightsRouter(n_experts=n_experts, **overrides)


REGISTRY: dict[str, Callable[..., Router]] = {"driftmoe": driftmoe, "exp-weights": exp_weights}

__all__ = ["REGISTRY", "DriftMoERouter", "ExpWeightsRouter", "Router"]
