"""``CompiledHoeffdingTree``: the compiled (numba) MOA-style Hoeffding tree as a River classifier
and a driftflow expert, a one-slot ``TreePool`` behind a ``RecordEncoder``."""
from __future__ import annotations

import json
from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np
from river import base

from ._compiled_tree import (
    TreePool,
    ensure_tree_capacity,
    grow_tree_pool,
    new_tree_pool,
    tree_learn,
    tree_pool_arrays,
    tree_pool_from_arrays,
    tree_predict_proba,
)
from ._encoding import RecordEncoder

_HEADER = "header.json"   # to_arrays key of the settings and encoder, as UTF-8 bytes


class CompiledHoeffdingTree(base.Classifier):
    """Hoeffding tree as MOA's HoeffdingTree builds it, compiled with numba (see
    :mod:`experts._compiled_tree_kernels` for the algorithm and where it departs from MOA).

    Parameters
    ----------
    grace_period
        Weight a leaf sees between split attempts.
    delta
        Split confidence (MOA's ``splitConfidence``).
    tau
        Tie threshold: split anyway once the Hoeffding bound is below it.
    leaf_prediction
        ``"mc"`` majority class, ``"nb"`` naive Bayes, ``"nba"`` naive-Bayes-adaptive.
    nb_threshold
        Weight a leaf needs before ``"nb"`` leaves use naive Bayes.
    max_nodes
        Size cap; a full tree stops splitting and keeps learning its leaves.
    nominal_features
        Names of features to treat as nominal even when their values are numbers (MOA's LED
        declares its 0/1 segments nominal); strings are always nominal.

    """

    def __init__(
        self, grace_period: int = 200, delta: float = 1e-7, tau: float = 0.05,
        leaf_prediction: str = "nba", nb_threshold: int = 0, max_nodes: int = 10_000,
        nominal_features: tuple[Hashable, ...] | None = None,
    ) -> None:
        self.grace_period = grace_period
        self.delta = delta
        self.tau = tau
        self.leaf_prediction = leaf_prediction
        self.nb_threshold = nb_threshold
        self.max_nodes = max_nodes
        self.nominal_features = nominal_features
        self._encoder = RecordEncoder(nominal_features or ())
        self._pool = self._new_pool()
        self._pool_version = 0   # encoder version the pool was last sized for

    def _new_pool(self) -> TreePool:
        return new_tree_pool(
            1, 0, 0, grace_period=self.grace_period, delta=self.delta, tau=self.tau,
            max_nodes=self.max_nodes, leaf_prediction=self.leaf_prediction,
            nb_threshold=self.nb_threshold)

    @property
    def _multiclass(self) -> bool:
        return True

    @classmethod
    def _unit_test_params(cls) -> Iterable[dict[str, Any]]:
        yield {"grace_period": 50}
        yield {"grace_period": 20, "leaf_prediction": "mc", "max_nodes": 15}

    @property
    def pool(self) -> TreePool:
        """The one-slot pool (read it; learning goes through ``learn_one``)."""
        return self._pool

    @property
    def encoder(self) -> RecordEncoder:
        return self._encoder

    def learn_one(self, x: dict, y: Hashable, w: float = 1.0) -> None:
        """Learns one record of weight ``w`` (new features, nominal values and classes grow the
        pool first)."""
        vector = self._encoder.encode(x, learn=True)
        label = self._encoder.encode_label(y, learn=True)
        if self._encoder.version != self._pool_version:
            self._pool = ensure_tree_capacity(self._pool, self._encoder.n_classes,
                                              self._encoder.nominal_sizes())
            self._pool_version = self._encoder.version
        if tree_learn(self._pool, 0, vector, label, float(w)):
            self._pool = grow_tree_pool(self._pool)

    def predict_proba_one(self, x: dict) -> dict[Hashable, float]:
        """Class probabilities; ``{}`` before anything is learned."""
        n_classes = self._pool.node_class_w.shape[2]
        if n_classes == 0:
            return {}
        out = np.zeros(n_classes)
        vector = self._encoder.encode(x)
        tree_predict_proba(self._pool, 0, vector, out)
        if not out.any():
            return {}
        return dict(zip(self._encoder.labels, out.tolist()))

    def memory_bytes(self) -> int:
        """Bytes held by the tree's arrays (allocated capacity, not just the nodes in use)."""
        return sum(a.nbytes for a in self._pool)

    @property
    def n_nodes(self) -> int:
        return int(self._pool.sizes[0, 0])

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Snapshot as named arrays: the pool's, and a JSON header (settings, encoder) as bytes."""
        header = json.dumps({"params": self._get_params(), "encoder": self._encoder.to_json()})
        return {**tree_pool_arrays(self._pool),
                _HEADER: np.frombuffer(header.encode(), dtype=np.uint8).copy()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> CompiledHoeffdingTree:
        """The tree ``to_arrays`` saved; ValueError on anything malformed."""
        arrays = dict(arrays)
        try:
            header = json.loads(np.asarray(arrays.pop(_HEADER), np.uint8).tobytes().decode())
            params = header["params"]
            if params.get("nominal_features") is not None:
                params["nominal_features"] = tuple(params["nominal_features"])
            tree = cls(**params)
        except (KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"malformed compiled tree header: {error}") from error
        tree._encoder = RecordEncoder.from_json(header["encoder"])
        pool = tree_pool_from_arrays(arrays)
        if pool.settings.shape[0] != 1 or pool.nominal_values.shape[1] != \
                tree._encoder.n_features or pool.node_class_w.shape[2] < tree._encoder.n_classes:
            raise ValueError("compiled tree arrays do not match their encoder")
        tree._pool = pool
        tree._pool_version = tree._encoder.version
        return tree
