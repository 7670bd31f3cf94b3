"""Seeded streams with known change points for the detector scoreboard (``bench.detectors``).

Every stream has ``n`` records and, unless it is a stationary one, three changes starting at
``n/4``, ``n/2`` and ``3n/4``. The stream alternates between two regimes (A -> B -> A -> B), so
the first and third changes go one way ("up": error rate, mean or variance rises) and the second
goes back ("down"); the new-class stream adds a fresh class at each change instead. An abrupt
change is complete at its start record; a gradual one moves linearly from A to B over ``ramp``
records starting there (``Change.end`` is where it is complete).

Families and the detector input kind they feed:

- ``bernoulli`` (binary 0/1 errors): abrupt error-rate shift 0.1 <-> 0.3, the same shift made
  gradually over ``ramp`` records, a small abrupt shift 0.2 <-> 0.25, stationary 0.1.
- ``gaussian`` (real values): mean shift N(0, 1) <-> N(1, 1) abrupt and gradual, variance shift
  N(0, 1) <-> N(0, 2^2), stationary N(0, 1).
- ``multinomial`` (categorical labels): abrupt class-proportion shift (.5, .3, .2) <->
  (.2, .3, .5) over labels a/b/c; a new class appearing at each change with 20 % of the mass
  (the others scaled down); stationary (.5, .3, .2).

``generate(name, n, seed, ramp)`` is deterministic in (name, seed): each stream draws from its own
``numpy`` generator seeded with ``(seed, crc32(name))``.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["Change", "StreamSpec", "STREAMS", "FAMILIES", "change_starts", "generate"]


@dataclass(frozen=True)
class Change:
    """One known change: it starts at record ``start`` (0-based) and is complete at ``end``."""

    start: int
    end: int
    direction: str  # "up", "down" or "new" (a new class)


@dataclass(frozen=True)
class StreamSpec:
    name: str
    family: str  # "bernoulli", "gaussian" or "multinomial"
    kind: str  # detector input kind: "binary", "real" or "categorical"
    description: str
    gradual: bool
    stationary: bool
    draw: Callable[[np.random.Generator, int, list[Change]], list]


def change_starts(n: int) -> list[int]:
    """Where the three changes of an n-record stream start."""
    return [n // 4, n // 2, 3 * n // 4]


def _changes(n: int, ramp: int, gradual: bool, new_class: bool = False) -> list[Change]:
    width = ramp if gradual else 0
    dirs = ["new"] * 3 if new_class else ["up", "down", "up"]
    return [Change(s, s + width, d) for s, d in zip(change_starts(n), dirs)]


def _regime_weight(n: int, changes: list[Change]) -> np.ndarray:
    """Per record, how far the stream is in regime B (0 = A, 1 = B), ramps included."""
    w = np.zeros(n)
    t = np.arange(n, dtype=float)
    for c in changes:
        target = 1.0 if c.direction == "up" else 0.0
        if c.end > c.start:
            frac = np.clip((t - c.start + 1) / (c.end - c.start), 0.0, 1.0)
        else:
            frac = (t >= c.start).astype(float)
        prev = w.copy()
        mask = t >= c.start
        w[mask] = prev[mask] + (target - prev[mask]) * frac[mask]
    return w


def _bernoulli(p_a: float, p_b: float):
    def draw(rng, n, changes):
        p = p_a + (p_b - p_a) * _regime_weight(n, changes)
        return (rng.random(n) < p).astype(int).tolist()
    return draw


def _gaussian(mu_a: float, mu_b: float, sd_a: float, sd_b: float):
    def draw(rng, n, changes):
        w = _regime_weight(n, changes)
        return (mu_a + (mu_b - mu_a) * w + (sd_a + (sd_b - sd_a) * w) * rng.standard_normal(n)).tolist()
    return draw


_LABELS = "abcdefgh"
_P_A = np.array([0.5, 0.3, 0.2])
_P_B = np.array([0.2, 0.3, 0.5])


def _proportions(rng, n, changes):
    w = _regime_weight(n, changes)
    u = rng.random(n)
    p_b_wins = u < w  # mixture: regime B with probability w (w is 0 or 1 for abrupt changes)
    idx = np.where(p_b_wins, rng.choice(3, n, p=_P_B), rng.choice(3, n, p=_P_A))
    return [_LABELS[i] for i in idx]


def _new_class(rng, n, changes):
    out = np.empty(n, dtype=int)
    bounds = [0] + [c.start for c in changes] + [n]
    p = _P_A.copy()
    for seg, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
        if seg:  # a fresh class takes 20 % of the mass
            p = np.r_[p * 0.8, 0.2]
        out[lo:hi] = rng.choice(len(p), hi - lo, p=p)
    return [_LABELS[i] for i in out]


def _spec(name, family, kind, description, draw, gradual=False, stationary=False):
    return StreamSpec(name, family, kind, description, gradual, stationary, draw)


#: Stream name -> spec, in report order (change streams of a family first, then its stationary).
STREAMS: dict[str, StreamSpec] = {s.name: s for s in [
    _spec("bern-abrupt", "bernoulli", "binary", "error rate 0.1 <-> 0.3, abrupt",
          _bernoulli(0.1, 0.3)),
    _spec("bern-gradual", "bernoulli", "binary", "error rate 0.1 <-> 0.3, linear over the ramp",
          _bernoulli(0.1, 0.3), gradual=True),
    _spec("bern-small", "bernoulli", "binary", "error rate 0.2 <-> 0.25, abrupt",
          _bernoulli(0.2, 0.25)),
    _spec("bern-stationary", "bernoulli", "binary", "error rate 0.1, no change",
          _bernoulli(0.1, 0.1), stationary=True),
    _spec("gauss-mean", "gaussian", "real", "N(0,1) <-> N(1,1), abrupt",
          _gaussian(0.0, 1.0, 1.0, 1.0)),
    _spec("gauss-mean-gradual", "gaussian", "real", "N(0,1) <-> N(1,1), linear over the ramp",
          _gaussian(0.0, 1.0, 1.0, 1.0), gradual=True),
    _spec("gauss-variance", "gaussian", "real", "N(0,1) <-> N(0,2^2), abrupt",
          _gaussian(0.0, 0.0, 1.0, 2.0)),
    _spec("gauss-stationary", "gaussian", "real", "N(0,1), no change",
          _gaussian(0.0, 0.0, 1.0, 1.0), stationary=True),
    _spec("multi-proportions", "multinomial", "categorical",
          "labels a/b/c at (.5,.3,.2) <-> (.2,.3,.5), abrupt", _proportions),
    _spec("multi-new-class", "multinomial", "categorical",
          "a new label (d, e, f) takes 20 % of the mass at each change", _new_class),
    _spec("multi-stationary", "multinomial", "categorical", "labels a/b/c at (.5,.3,.2)",
          _proportions, stationary=True),
]}

FAMILIES: dict[str, list[str]] = {}
for _s in STREAMS.values():
    FAMILIES.setdefault(_s.family, []).append(_s.name)


def generate(name: str, n: int, seed: int, ramp: int = 1000) -> tuple[list, list[Change]]:
    """The values of stream ``name`` and its changes (empty for a stationary stream)."""
    spec = STREAMS[name]
    changes = [] if spec.stationary else _changes(
        n, ramp, spec.gradual, new_class=name == "multi-new-class")
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    return spec.draw(rng, n, changes), changes
