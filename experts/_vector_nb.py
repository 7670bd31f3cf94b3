"""River's Hoeffding tree with naive-Bayes-adaptive leaves that score naive Bayes in numpy.

River's NB-adaptive leaf evaluates one Gaussian pdf per class and numeric feature in Python for
every prediction, and again inside every ``learn_one`` (it scores both leaf predictors on the
record before learning it): 240 pdf calls each time on LED (10 classes x 24 features), ~90 % of a
tree expert's time. :class:`VectorNBLeaf` changes two things and nothing else:

- once a leaf has ``vector_cells`` or more (class, numeric feature) Gaussians, it keeps them as
  (classes x features) arrays of weight, mean and sum of squared deviations (River's own Welford
  updates, same operations in the same order) and scores them in one vector expression; below
  that, numpy's fixed cost per call is more than the Python loop, so it runs River's code;
- ``learn_one`` reuses the naive-Bayes scores of a ``predict_proba_one`` on the same record and
  the same leaf state (prequential evaluation asks for exactly that), instead of scoring again;
  the majority-class prediction skips River's ``deepcopy`` of the class counts.

River's splitters are still updated (they choose the splits), so the tree is River's tree: the
same splits, and probabilities equal to River's to ~1e-14 (a test checks it). River's scoring
rules are kept: a class of zero weight votes 0, and a feature whose Gaussian is undefined (weight
<= 1 or variance 0) or whose density underflows to 0 adds nothing. Nominal features keep River's
Python scoring.
"""
from __future__ import annotations

import math
from typing import Any, Hashable

import numpy as np
from river.tree import HoeffdingTreeClassifier
from river.tree.nodes.htc_nodes import LeafMajorityClass, LeafNaiveBayesAdaptive
from river.tree.splitter import GaussianSplitter
from river.tree.splitter.nominal_splitter_classif import NominalSplitterClassif
from river.tree.utils import do_naive_bayes_prediction

# Below this log-density, River's exp(...)/sqrt(...) underflows to 0.0 (the smallest subnormal
# double is ~4.9e-324) and River then skips the feature; the vector path does the same.
_LOG_UNDERFLOW = math.log(5e-324)
# A vector-mode leaf's (classes x features) arrays, all grown and dropped together.
_ARRAYS = ("_weight", "_mean", "_sq_dev", "_log_norm", "_neg_half_precision")


class FastCloneGaussianSplitter(GaussianSplitter):
    """River's GaussianSplitter with a direct ``clone()``: a new leaf clones the tree's splitter
    once per feature, and River's generic clone reads the parameters through ``inspect``
    (~12 us against ~0.4 us here; ~2 % of `adaptive`'s time on Electricity, where drifts
    make many young trees)."""

    def clone(self, new_params: dict | None = None, include_attributes: bool = False
              ) -> GaussianSplitter:
        if new_params or include_attributes:
            return super().clone(new_params, include_attributes)
        return type(self)(self.n_splits)


class _FirstSeenValues(dict):
    """The values a nominal splitter has seen, as River's ``set`` is used (``add``, ``in``,
    iteration), iterated in the order they first came."""

    def add(self, value: Hashable) -> None:
        self.setdefault(value)


class FirstSeenNominalSplitter(NominalSplitterClassif):
    """River's nominal splitter keeping its values in first-seen order. River's ``set``
    iterates in the order of the process's string hash seed: ties between binary splits then
    went to whichever value that order put first, and a checkpoint's bytes differed between
    processes (a restarted Ray actor, the local runner) for the same model."""

    def __init__(self) -> None:
        super().__init__()
        self._att_values = _FirstSeenValues()


class VectorNBLeaf(LeafNaiveBayesAdaptive):
    """NB-adaptive leaf with vectorised Gaussian naive Bayes (see the module docstring).

    In vector mode, row ``r`` of every array is the ``r``-th class of ``self.stats`` (the dict
    only ever grows at its end, so rows stay aligned) and column ``c`` is the numeric feature
    ``self._columns`` maps to ``c``.
    """

    def __init__(self, stats: dict, depth: int, splitter: Any, vector_cells: int = 48,
                 **kwargs: Any) -> None:
        super().__init__(stats, depth, splitter, **kwargs)
        self.vector_cells = vector_cells
        self._columns: dict[Hashable, int] | None = None   # None: River's Python scoring
        self._nominal: list[Hashable] = []                   # features scored in Python
        self._last: tuple[dict, dict] | None = None          # (record, its NB scores) this state

    @staticmethod
    def new_nominal_splitter() -> FirstSeenNominalSplitter:
        return FirstSeenNominalSplitter()

    # -- learning ------------------------------------------------------------------------------
    def learn_one(self, x: dict, y: Hashable, *, w: float = 1.0, tree: Any = None) -> None:
        if self.is_active():
            mc_pred = self._majority()
            if len(self.stats) == 0 or max(mc_pred, key=mc_pred.get) == y:
                self._mc_correct_weight += w
            nb_pred = self._naive_bayes(x)
            if nb_pred and max(nb_pred, key=nb_pred.get) == y:
                self._nb_correct_weight += w
        self._last = None
        LeafMajorityClass.learn_one(self, x, y, w=w, tree=tree)

    def update_splitters(self, x: dict, y: Hashable, w: float, nominal_attributes: Any) -> None:
        n_splitters = len(self.splitters)
        super().update_splitters(x, y, w, nominal_attributes)
        new_features = list(self.splitters)[n_splitters:]
        if self._columns is None:
            if len(self.stats) * len(self.splitters) >= self.vector_cells:
                self._to_vectors()   # after River's update, so it copies this record in too
            return
        extra = len(self.stats) - len(self._weight)
        if extra:
            self._grow((extra, 0))
        row = list(self.stats).index(y)
        values, present = self._vector(x)   # the columns River had before this record
        if present is None:
            self._welford(row, values, w, slice(0, len(values)))
        elif present.any():
            cols = np.flatnonzero(present)
            self._welford(row, values[cols], w, cols)
        if new_features:   # copied from River, this record included
            self._add_features(new_features)

    def _welford(self, row: int, values: np.ndarray, w: float, cols: Any) -> None:
        # River's stats.Mean and stats.Var updates, the same operations in the same order
        weight = self._weight[row, cols] + w
        mean_old = self._mean[row, cols]
        mean_new = mean_old + (w / weight) * (values - mean_old)
        self._sq_dev[row, cols] += w * (values - mean_old) * (values - mean_new)
        self._weight[row, cols] = weight
        self._mean[row, cols] = mean_new
        self._refresh(row)

    def _refresh(self, row: int | slice) -> None:
        """Recompute the density coefficients of ``row`` from its weights and deviations:
        log N(v) = log_norm + neg_half_precision * (v - mean)**2, both 0 where undefined."""
        weight, sq_dev = self._weight[row], self._sq_dev[row]
        var = np.divide(sq_dev, weight - 1.0, out=np.zeros_like(weight), where=weight > 1.0)
        defined = var > 0.0
        self._log_norm[row] = -0.5 * np.log(math.tau * var, where=defined, out=np.zeros_like(var))
        self._neg_half_precision[row] = np.divide(-0.5, var, out=np.zeros_like(var),
                                                  where=defined)

    # -- vector state --------------------------------------------------------------------------
    def _to_vectors(self) -> None:
        """Switch to vector mode, copying River's per-class Gaussians into arrays."""
        self._columns = {}
        self._nominal = []
        for name in _ARRAYS:
            setattr(self, name, np.zeros((len(self.stats), 0)))
        self._add_features(list(self.splitters))

    def _add_features(self, features: list[Hashable]) -> None:
        numeric = []
        for feature in features:
            if isinstance(self.splitters[feature], GaussianSplitter):
                self._columns[feature] = len(self._columns)
                numeric.append(feature)
            else:
                self._nominal.append(feature)
        if not numeric:
            return
        self._grow((0, len(numeric)))
        for k, feature in enumerate(numeric, start=len(self._columns) - len(numeric)):
            per_class = self.splitters[feature]._att_dist_per_class   # River's Gaussians
            for row, label in enumerate(self.stats):
                gaussian = per_class.get(label)
                if gaussian is not None:
                    var = gaussian._var
                    self._weight[row, k] = var.mean.n
                    self._mean[row, k] = var.mean._mean
                    self._sq_dev[row, k] = var._S
        self._refresh(slice(None))

    def _grow(self, extra: tuple[int, int]) -> None:
        pad = ((0, extra[0]), (0, extra[1]))
        for name in _ARRAYS:
            setattr(self, name, np.pad(getattr(self, name), pad))

    def activate(self) -> None:
        if not self.is_active():
            self._columns = None   # River restarts the splitters empty
        super().activate()

    def deactivate(self) -> None:
        super().deactivate()
        self._columns = None
        self._last = None
        for name in _ARRAYS:
            self.__dict__.pop(name, None)

    def _vector(self, x: dict) -> tuple[np.ndarray, np.ndarray | None]:
        """``x``'s numeric features in column order and which are present (None: all)."""
        values = [x.get(feature) for feature in self._columns]
        if None in values:
            present = np.array([v is not None for v in values])
            return np.array([0.0 if v is None else v for v in values], dtype=np.float64), present
        return np.array(values, dtype=np.float64), None

    # -- scoring -------------------------------------------------------------------------------
    def _naive_bayes(self, x: dict) -> dict[Hashable, float]:
        """River's ``do_naive_bayes_prediction`` for this leaf, reusing the scores of the last
        ``prediction`` when it was for an equal record and the leaf has not learned since."""
        if self._last is not None and self._last[0] == x:
            return self._last[1]
        if self._columns is None:
            scores = do_naive_bayes_prediction(x, self.stats, self.splitters)
        else:
            scores = self._vector_naive_bayes(x)
        self._last = (dict(x), scores)
        return scores

    def _vector_naive_bayes(self, x: dict) -> dict[Hashable, float]:
        stats = self.stats
        weights = np.fromiter(stats.values(), dtype=np.float64, count=len(stats))
        total = weights.sum()
        if total == 0:
            return {}
        counted = weights > 0.0
        values, present = self._vector(x)
        log_density = self._log_norm + self._neg_half_precision * (values - self._mean) ** 2
        log_density[log_density < _LOG_UNDERFLOW] = 0.0
        if present is not None:
            log_density[:, ~present] = 0.0
        votes = log_density.sum(axis=1)
        votes += np.log(weights / total, where=counted, out=np.zeros_like(weights))
        votes[~counted] = 0.0
        labels = list(stats)
        for feature in self._nominal:
            if feature in x:
                splitter = self.splitters[feature]
                for k, label in enumerate(labels):
                    if counted[k]:
                        p = splitter.cond_proba(x[feature], label)
                        votes[k] += math.log(p) if p > 0 else 0.0
        proba = np.exp(votes - votes.max())
        proba /= proba.sum()
        return dict(zip(labels, proba.tolist()))

    def prediction(self, x: dict, *, tree: Any = None) -> dict[Hashable, float]:
        if self.is_active() and self._nb_correct_weight >= self._mc_correct_weight:
            return self._naive_bayes(x)
        return self._majority()

    def _majority(self) -> dict[Hashable, float]:
        """River's majority-class prediction, ``normalize_values_in_dict(stats, inplace=False)``
        without its ``deepcopy`` (a third of a prediction's time on SEA)."""
        total = sum(self.stats.values())
        if total == 0 or math.isnan(total):
            return dict(self.stats)
        scale = 1 / total
        return {label: weight * scale for label, weight in self.stats.items()}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_last": None}   # a cache, not state


# Bytes of a leaf for the size cap, about what one pickles to: a (feature, class) distribution
# is ~4 KiB (River's Gaussian carries a random.Random, ~3.8 KiB of it), the rest ~0.5 KiB.
CELL_BYTES = 4096
LEAF_BYTES = 512


class VectorNBHoeffdingTree(HoeffdingTreeClassifier):
    """``river.tree.HoeffdingTreeClassifier`` with :class:`VectorNBLeaf` leaves: the same tree
    (same splits, same leaf choices), faster where leaves score many classes x features.

    ``vector_cells``: (class, numeric feature) Gaussians from which a leaf scores in numpy.
    Only ``leaf_prediction="nba"`` (River's default) and ``remove_poor_attrs=False``.
    """

    def __init__(self, vector_cells: int = 48, **settings: Any) -> None:
        if settings.get("leaf_prediction", "nba") != "nba":
            raise ValueError("VectorNBHoeffdingTree has naive-Bayes-adaptive leaves only; use "
                             "river.tree.HoeffdingTreeClassifier for other leaf_prediction")
        if settings.get("remove_poor_attrs", False):
            raise ValueError("VectorNBHoeffdingTree does not support remove_poor_attrs=True")
        if vector_cells < 1:
            raise ValueError(f"vector_cells must be >= 1, not {vector_cells}")
        super().__init__(**settings)
        if type(self.splitter) is GaussianSplitter:
            self.splitter = FastCloneGaussianSplitter(self.splitter.n_splits)
        self.vector_cells = vector_cells
        self.settings = settings   # River's clone() reads **kwargs back from this attribute

    def _estimate_model_size(self) -> None:
        """River's periodic size check (every ``memory_estimate_period`` records; past
        ``max_size`` it deactivates the least promising leaves), with sizes counted instead
        of measured: River's ``sys.getsizeof`` walk counts each Gaussian's own
        ``random.Random``, which a restored checkpoint shares between them (see
        ``pipelines.models.canonical_pickle``), so an uninterrupted tree and its restored copy
        would measure differently and could deactivate different leaves. A leaf counts as
        `LEAF_BYTES` plus `CELL_BYTES` per (feature, class) distribution."""
        sizes = {True: 0.0, False: 0.0}
        for leaf in self._find_leaves():
            sizes[leaf.is_active()] += LEAF_BYTES + CELL_BYTES * sum(
                len(getattr(splitter, "_att_dist_per_class", ()))
                for splitter in (leaf.splitters or {}).values())
        if self._n_active_leaves:
            self._active_leaf_size_estimate = sizes[True] / self._n_active_leaves
        if self._n_inactive_leaves:
            self._inactive_leaf_size_estimate = sizes[False] / self._n_inactive_leaves
        self._size_estimate_overhead_fraction = 1.0
        if sizes[True] + sizes[False] > self._max_byte_size:
            self._enforce_size_limit()

    def _new_leaf(self, initial_stats: dict | None = None, parent: Any = None) -> VectorNBLeaf:
        depth = 0 if parent is None else parent.depth + 1
        return VectorNBLeaf({} if initial_stats is None else initial_stats, depth, self.splitter,
                            vector_cells=self.vector_cells)


__all__ = ["FastCloneGaussianSplitter", "FirstSeenNominalSplitter", "VectorNBHoeffdingTree",
           "VectorNBLeaf"]
