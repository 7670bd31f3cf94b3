"""Seeded tabular streams with known covariate shifts, for the input-drift table
(``bench.input_drift``).

Every stream has five numeric features of different shapes (f0 normal, f1 uniform, f2 normal,
f3 exponential, f4 Poisson counts) and one nominal feature ``colour`` (red/green/blue at
.5/.3/.2), plus a label ``y``. One change starts at ``n / 2``; an abrupt one is complete there,
a gradual one moves linearly over ``ramp`` records. What changes:

- mean: the feature's mean moves by one of its standard deviations;
- spread: the feature's deviations from its mean are doubled;
- category mix: ``colour`` goes to .2/.3/.5;
- correlation: f2 becomes 0.8 * f0 + 0.6 * f2 (both marginals stay N(0, 1));
- concept: only the label function changes (y = f0 + f2 > 0, then f0 - f2 > 0).

``generate(name, n, seed, ramp)`` returns (rows, shifted feature names, start, end); it is
deterministic in (name, seed).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["SCENARIOS", "Scenario", "generate"]


@dataclass(frozen=True)
class Scenario:
    description: str
    mean: tuple[str, ...] = ()
    spread: tuple[str, ...] = ()
    mix: bool = False
    correlation: bool = False
    concept: bool = False
    gradual: bool = False

    @property
    def shifted(self) -> tuple[str, ...]:
        """The features whose distribution moves (what attribution should name)."""
        return (*self.mean, *self.spread, *(("colour",) if self.mix else ()),
                *(("f0", "f2") if self.correlation else ()))


SCENARIOS: dict[str, Scenario] = {
    "mean-1": Scenario("f1 mean +1 sd, abrupt", mean=("f1",)),
    "mean-1-gradual": Scenario("f1 mean +1 sd, gradual", mean=("f1",), gradual=True),
    "mean-3": Scenario("f0, f3, f4 means +1 sd, abrupt", mean=("f0", "f3", "f4")),
    "spread-1": Scenario("f3 spread x2, abrupt", spread=("f3",)),
    "spread-2-gradual": Scenario("f0, f1 spread x2, gradual", spread=("f0", "f1"), gradual=True),
    "mix": Scenario("colour mix (.5,.3,.2) -> (.2,.3,.5), abrupt", mix=True),
    "mix-gradual": Scenario("colour mix (.5,.3,.2) -> (.2,.3,.5), gradual", mix=True,
                            gradual=True),
    "several": Scenario("f1 mean, f4 spread and colour mix, abrupt", mean=("f1",),
                        spread=("f4",), mix=True),
    "correlation": Scenario("f0 and f2 become correlated (0.8), marginals unchanged",
                            correlation=True),
    "concept": Scenario("label function changes, inputs do not (must stay quiet)", concept=True),
    "stationary": Scenario("nothing changes"),
}


def generate(name: str, n: int, seed: int, ramp: int = 2000
             ) -> tuple[list[dict], list, tuple[str, ...], int, int]:
    """(feature rows, labels, shifted features, change start, change end) of one stream."""
    spec = SCENARIOS[name]
    r = np.random.default_rng([seed, zlib.crc32(name.encode())])
    start = n // 2
    end = start + (ramp if spec.gradual else 0)
    t = np.arange(n)
    w = np.clip((t - start + 1) / max(end - start, 1), 0.0, 1.0) if spec.gradual else (
        (t >= start).astype(float))
    if name == "stationary":
        w[:] = 0.0
    cols = {"f0": r.normal(size=n), "f1": r.uniform(-1.7, 1.7, n), "f2": r.normal(size=n),
            "f3": r.exponential(1.0, n), "f4": r.poisson(3, n).astype(float)}
    for f in spec.mean:
        cols[f] = cols[f] + w * cols[f].std()
    for f in spec.spread:
        mid = cols[f].mean()
        cols[f] = mid + (1.0 + w) * (cols[f] - mid)
    if spec.correlation:
        cols["f2"] = np.where(w > 0, 0.8 * cols["f0"] + 0.6 * cols["f2"], cols["f2"])
    mixed = r.random(n) < (w if spec.mix else 0.0)
    colour = np.where(mixed, r.choice(3, n, p=[0.2, 0.3, 0.5]), r.choice(3, n, p=[0.5, 0.3, 0.2]))
    flip = (w > 0) if spec.concept else np.zeros(n, dtype=bool)
    y = np.where(flip, cols["f0"] - cols["f2"] > 0, cols["f0"] + cols["f2"] > 0).astype(int)
    names = np.array(["red", "green", "blue"])[colour]
    rows = [{**{k: float(v[i]) for k, v in cols.items()}, "colour": str(names[i])}
            for i in range(n)]
    return rows, y.tolist(), spec.shifted, start, end
