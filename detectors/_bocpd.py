"""Bayesian online change-point detection (Adams & MacKay, 2007), written in numpy.

The detector keeps the posterior over the run length r_t (records since the last change) as a
numpy array of log-probabilities, one entry per surviving run length, next to the conjugate
sufficient statistics of each run's observation model. Each record does one vectorised pass:

    pred_r   = p(x_t | the last r records)                    (the model's predictive)
    grow     = P(r_{t-1}=r) * pred_r * (1 - H)                 -> run length r + 1
    change   = sum_r P(r_{t-1}=r) * pred_r * H                 -> run length 0
    normalise, prepend the prior statistics, update the others with x_t

with a constant hazard H = 1 / ``hazard_lambda`` (a change every ``hazard_lambda`` records a
priori).

Memory bound: run lengths whose posterior mass falls below ``prune_eps`` are dropped (run
length 0 is always kept, it is where a change enters) and at most ``max_run_lengths`` are kept
(the least probable go first). State is therefore O(max_run_lengths) floats: the log-posterior,
the run lengths and 2 (Bernoulli) or 4 (Gaussian) statistics per run length.

Drift rule. Let A_t be the largest MAP run length seen since the last restart (how long the
current regime has been established). A drift is signalled when

    P(r_t < A_t - min_drop | x)  >  threshold

i.e. the posterior is confident (default 0.9) that a new regime started well inside the
established one: the MAP run length has dropped sharply, and the mass agrees. A fixed threshold
on P(r_t = 0) cannot work (under a constant hazard it always equals H), and a rule on P(r_t < k)
for a fixed k misses changes that need more than k records to show; anchoring on A_t has no such
horizon and needs A_t > min_drop, which is also the grace period after a restart. After firing,
the posterior restarts cleanly from the prior (records before the detection are discarded).
The hazard is the main false-alarm knob: 1 / hazard_lambda is the prior probability of a change
at each record, so a small hazard_lambda on a long stationary stream invites false alarms.
"""
from __future__ import annotations

import math
from collections.abc import Hashable

import numpy as np
from scipy.special import gammaln

from ._base import InputKind
from ._checks import as_binary, as_real
from ._mixin import DetectorMixin

__all__ = ["BOCPD", "GaussianModel", "BernoulliModel"]


class GaussianModel:
    """Gaussian observations with unknown mean and precision: Normal-Gamma prior.

    Prior: precision ~ Gamma(``alpha``, rate ``beta``), mean | precision ~ Normal(``mu``,
    1 / (``kappa`` * precision)). The predictive is a Student-t with 2*alpha degrees of freedom.
    Settings are in the data's units: ``mu`` is a prior mean, ``beta / alpha`` a prior variance.
    Statistics rows: mu, kappa, alpha, beta. Consumes real values only: 0/1 errors are accepted
    as numbers but a Gaussian is the wrong model for them (runs of zeros shrink the variance and
    the next 1 looks like an outlier), so use ``BernoulliModel`` there.
    """

    input_kinds: tuple[InputKind, ...] = ("real",)

    def __init__(
        self, mu: float = 0.0, kappa: float = 1.0, alpha: float = 1.0, beta: float = 1.0
    ) -> None:
        for name, v in (("kappa", kappa), ("alpha", alpha), ("beta", beta)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"GaussianModel: {name} must be a finite number > 0; got {v!r}")
        if not (isinstance(mu, (int, float)) and math.isfinite(mu)):
            raise ValueError(f"GaussianModel: mu must be a finite number; got {mu!r}")
        self.mu = mu
        self.kappa = kappa
        self.alpha = alpha
        self.beta = beta

    def prior_stats(self) -> np.ndarray:
        """Statistics of a run of length 0, shape (4, 1)."""
        return np.array([[self.mu], [self.kappa], [self.alpha], [self.beta]], dtype=np.float64)

    @staticmethod
    def coerce(value: float | Hashable) -> float:
        return as_real(value, "BOCPD(GaussianModel)")

    @staticmethod
    def log_predictive(stats: np.ndarray, x: float) -> np.ndarray:
        """log p(x | run) for every run (Student-t), shape (n,)."""
        mu, kappa, alpha, beta = stats
        c = 2.0 * beta * (kappa + 1.0) / kappa  # 2 * alpha * (Student-t scale)^2
        return (
            gammaln(alpha + 0.5)
            - gammaln(alpha)
            - 0.5 * np.log(np.pi * c)
            - (alpha + 0.5) * np.log1p((x - mu) ** 2 / c)
        )

    @staticmethod
    def update_stats(stats: np.ndarray, x: float) -> None:
        """Posterior statistics after one more observation x, in place."""
        mu, kappa = stats[0], stats[1]
        d = x - mu
        stats[3] += kappa * d * d / (2.0 * (kappa + 1.0))
        stats[0] += d / (kappa + 1.0)
        stats[1] += 1.0
        stats[2] += 0.5

    def __repr__(self) -> str:
        return (
            f"GaussianModel(mu={self.mu}, kappa={self.kappa}, alpha={self.alpha}, "
            f"beta={self.beta})"
        )


class BernoulliModel:
    """0/1 observations with a Beta(``a``, ``b``) prior on P(x = 1). Statistics rows: a, b."""

    input_kinds: tuple[InputKind, ...] = ("binary",)

    def __init__(self, a: float = 1.0, b: float = 1.0) -> None:
        for name, v in (("a", a), ("b", b)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"BernoulliModel: {name} must be a finite number > 0; got {v!r}")
        self.a = a
        self.b = b

    def prior_stats(self) -> np.ndarray:
        """Statistics of a run of length 0, shape (2, 1)."""
        return np.array([[self.a], [self.b]], dtype=np.float64)

    @staticmethod
    def coerce(value: float | Hashable) -> float:
        return float(as_binary(value, "BOCPD(BernoulliModel)"))

    @staticmethod
    def log_predictive(stats: np.ndarray, x: float) -> np.ndarray:
        """log P(x | run) for every run, shape (n,)."""
        return np.log(stats[0 if x else 1] / (stats[0] + stats[1]))

    @staticmethod
    def update_stats(stats: np.ndarray, x: float) -> None:
        """Posterior statistics after one more observation x, in place."""
        stats[0 if x else 1] += 1.0

    def __repr__(self) -> str:
        return f"BernoulliModel(a={self.a}, b={self.b})"


ObservationModel = GaussianModel | BernoulliModel


class BOCPD(DetectorMixin):
    """Adams & MacKay's BOCPD with a pluggable conjugate model (see the module docstring).

    Parameters
    ----------
    model
        ``GaussianModel()`` (real values; the default) or ``BernoulliModel()`` (0/1 values).
    hazard_lambda
        Expected records between changes, a priori (hazard H = 1 / hazard_lambda), > 1.
    min_drop
        Records a new regime must start after the established one's start (>= 1).
    threshold
        Posterior probability of that new regime needed to signal a drift, in (0, 1).
    prune_eps
        Run lengths with posterior probability below this are dropped (0 <= eps < 1).
    max_run_lengths
        Hard cap on kept run lengths (>= 2): state is O(max_run_lengths) floats.
    """

    def __init__(
        self,
        model: ObservationModel | None = None,
        hazard_lambda: float = 10000.0,
        min_drop: int = 20,
        threshold: float = 0.9,
        prune_eps: float = 1e-8,
        max_run_lengths: int = 100,
    ) -> None:
        if model is not None and not isinstance(model, (GaussianModel, BernoulliModel)):
            raise TypeError(f"BOCPD: model must be GaussianModel or BernoulliModel; got {model!r}")
        if not (isinstance(hazard_lambda, (int, float)) and hazard_lambda > 1):
            raise ValueError(f"BOCPD: hazard_lambda must be > 1 record; got {hazard_lambda!r}")
        if not (isinstance(min_drop, int) and min_drop >= 1):
            raise ValueError(f"BOCPD: min_drop must be an int >= 1; got {min_drop!r}")
        if not (isinstance(threshold, (int, float)) and 0 < threshold < 1):
            raise ValueError(f"BOCPD: threshold must be in (0, 1); got {threshold!r}")
        if not (isinstance(prune_eps, (int, float)) and 0 <= prune_eps < 1):
            raise ValueError(f"BOCPD: prune_eps must be in [0, 1); got {prune_eps!r}")
        if not (isinstance(max_run_lengths, int) and max_run_lengths >= 2):
            raise ValueError(f"BOCPD: max_run_lengths must be an int >= 2; got {max_run_lengths!r}")
        self.model = model
        self.hazard_lambda = hazard_lambda
        self.min_drop = min_drop
        self.threshold = threshold
        self.prune_eps = prune_eps
        self.max_run_lengths = max_run_lengths
        self._model: ObservationModel = model if model is not None else GaussianModel()
        self.input_kinds: tuple[InputKind, ...] = self._model.input_kinds
        self._log_h = math.log(1.0 / hazard_lambda)
        self._log_1mh = math.log1p(-1.0 / hazard_lambda)
        self._log_eps = math.log(prune_eps) if prune_eps > 0 else -math.inf
        self.reset()

    def _restart(self) -> None:
        self._log_r = np.zeros(1)  # log P(r_t | x) over kept run lengths; starts at r = 0
        self._run = np.zeros(1, dtype=np.int64)  # the run lengths themselves (records)
        self._stats = self._model.prior_stats()
        self._map = 0  # MAP run length after the last update (records)
        self._anchor = 0  # largest MAP run length since the restart (records)

    def reset(self) -> None:
        """Forget everything learned; settings kept."""
        self._restart()
        self._drift = False
        self._n_seen = 0
        self._n_detections = 0

    def update(self, value: float | Hashable) -> None:
        """Feed one observation (a real value, or a 0/1 error for the Bernoulli model)."""
        x = self._model.coerce(value)
        if self._drift:
            self._drift = False
        self._n_seen += 1
        lj = self._log_r + self._model.log_predictive(self._stats, x)
        top = lj.max()
        log_change = top + math.log(np.exp(lj - top).sum()) + self._log_h
        log_r = np.concatenate(([log_change], lj + self._log_1mh))
        top = log_r.max()
        log_r -= top + math.log(np.exp(log_r - top).sum())
        self._model.update_stats(self._stats, x)
        stats = np.concatenate((self._model.prior_stats(), self._stats), axis=1)
        run = np.concatenate(([0], self._run + 1))
        # Prune: negligible mass (run length 0 always stays), then the hard cap; renormalise.
        keep = log_r >= self._log_eps
        keep[0] = True
        pruned = not keep.all()
        if pruned:
            log_r, run, stats = log_r[keep], run[keep], stats[:, keep]
        cap = self.max_run_lengths
        if log_r.size > cap:
            idx = np.argpartition(log_r[1:], -(cap - 1))[-(cap - 1):]
            idx = np.concatenate(([0], np.sort(idx) + 1))
            log_r, run, stats = log_r[idx], run[idx], stats[:, idx]
            pruned = True
        if pruned:
            top = log_r.max()
            log_r -= top + math.log(np.exp(log_r - top).sum())
        new_map = int(run[int(log_r.argmax())])
        cut = self._anchor - self.min_drop
        if cut > 0 and np.exp(log_r[run < cut]).sum() > self.threshold:
            self._drift = True
            self._n_detections += 1
            self._restart()
            return
        self._log_r, self._run, self._stats, self._map = log_r, run, stats, new_map
        if new_map > self._anchor:
            self._anchor = new_map

    @property
    def map_run_length(self) -> int:
        """Most probable run length (records since the last change) after the last update."""
        return self._map

    def run_length_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """(run lengths, probabilities) currently kept, copies."""
        return self._run.copy(), np.exp(self._log_r)
