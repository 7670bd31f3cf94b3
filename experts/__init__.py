"""Incremental experts behind one protocol, and the pool that grows, reweights and prunes them.

A new expert is one module plus one ``REGISTRY`` line: a factory taking ``seed`` and keyword
overrides of its settings.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from river import tree

from . import _jit_cache  # noqa: F401 - before any compiled kernel is defined
from ._base import Expert, Features, Label, top_class
from ._compiled_tree_expert import CompiledHoeffdingTree
from ._features import FeatureVectorizer
from ._mlp import MLPExpert
from ._pool import ExpertPool
from ._river import RiverExpert
from ._vector_nb import VectorNBHoeffdingTree

# The DriftMoE paper's tree settings (MOA through CapyMOA): grace period 50, split confidence
# 1e-7 (River's ``delta``), multiway nominal splits, naive-Bayes-adaptive leaves. River's own
# memory management (100 MiB per tree) stays on; the pool's byte budget is the real limit.
PAPER_TREE = {"grace_period": 50, "delta": 1e-7, "binary_split": False, "leaf_prediction": "nba"}


def hoeffding_tree(seed: int = 0, **overrides: Any) -> RiverExpert:
    """Hoeffding tree with the paper's settings (deterministic: ``seed`` is unused): River's
    tree with leaves that score naive Bayes in numpy, the same predictions several times
    faster on many classes x features (see :mod:`experts._vector_nb`)."""
    return RiverExpert(VectorNBHoeffdingTree(**{**PAPER_TREE, **overrides}))


def hoeffding_adaptive_tree(seed: int = 0, **overrides: Any) -> RiverExpert:
    """Hoeffding adaptive tree (ADWIN-monitored subtrees) with the paper's settings, seeded."""
    return RiverExpert(
        tree.HoeffdingAdaptiveTreeClassifier(**{**PAPER_TREE, "seed": seed, **overrides})
    )


def efdt(seed: int = 0, **overrides: Any) -> RiverExpert:
    """Extremely fast decision tree (Hoeffding anytime tree) with the paper's settings
    (deterministic: ``seed`` is unused)."""
    return RiverExpert(tree.ExtremelyFastDecisionTreeClassifier(**{**PAPER_TREE, **overrides}))


def compiled_tree(seed: int = 0, **overrides: Any) -> CompiledHoeffdingTree:
    """MOA's Hoeffding tree compiled with numba, with the paper's settings (deterministic:
    ``seed`` is unused)."""
    return CompiledHoeffdingTree(**{"grace_period": 50, **overrides})


def mlp(seed: int = 0, **overrides: Any) -> MLPExpert:
    """Online softmax MLP (32 ReLU units, Adam, standardised inputs)."""
    return MLPExpert(**{"seed": seed, **overrides})


REGISTRY: dict[str, Callable[..., Expert]] = {
    "hoeffding-tree": hoeffding_tree,
    "hoeffding-adaptive-tree": hoeffding_adaptive_tree,
    "efdt": efdt,
    "mlp": mlp,
    "compiled-tree": compiled_tree,
}

__all__ = [
    "REGISTRY",
    "CompiledHoeffdingTree",
    "Expert",
    "ExpertPool",
    "FeatureVectorizer",
    "Features",
    "Label",
    "MLPExpert",
    "RiverExpert",
    "VectorNBHoeffdingTree",
    "PAPER_TREE",
    "top_class",
]
