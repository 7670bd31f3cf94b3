"""The detector scoreboard's runs and scores: the contenders (``detectors.REGISTRY`` plus the
always-fire and never-fire baselines), one fresh detector per (stream, seed), and each change
scored as detected (with its delay) or missed, and false alarms outside every change's window.
See `bench.detectors` for the definitions."""
from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import detectors
from bench.detector_streams import STREAMS, Change, generate

SLOW = {"kswin"}
BASELINES = ("always-fire", "never-fire")
#: The adaptive model's defaults (pipelines/model.py) and the stream family each is judged on.
ADAPTIVE_DEFAULTS = {
    "rbocpd": ("the overall 0/1 error stream", "bernoulli"),
    "adwin": ("each expert's 0/1 error stream", "bernoulli"),
    "rbocpd-multinomial": ("the label stream", "multinomial"),
}


class _Baseline:
    input_kinds = ("binary", "real", "categorical")
    warning_detected = False
    _fires = False

    def update(self, value: float | Hashable) -> None:
        pass

    @property
    def drift_detected(self) -> bool:
        return self._fires

    def reset(self) -> None:
        pass

    def clone(self):
        return type(self)()


class AlwaysFire(_Baseline):
    """Fires on every record: zero delay, nothing missed, the most false alarms possible."""

    _fires = True


class NeverFire(_Baseline):
    """Never fires: no false alarms, every change missed."""


def contenders() -> dict[str, Callable[[], object]]:
    """Registry detectors plus the two baselines, name -> factory. Multivariate detectors
    (``vector`` input, scored in bench/input_drift.py) have no univariate stream here."""
    scored = {s.kind for s in STREAMS.values()}
    out: dict[str, Callable[[], object]] = {
        n: f for n, f in detectors.REGISTRY.items() if set(f().input_kinds) & scored}
    out["always-fire"] = AlwaysFire
    out["never-fire"] = NeverFire
    return out


@dataclass
class Score:
    """Per (detector, stream), summed over seeds."""

    seeds: int = 0
    records: int = 0
    changes: int = 0
    delays: list[int] = field(default_factory=list)
    delays_by_dir: dict[str, list[int]] = field(default_factory=dict)
    changes_by_dir: dict[str, int] = field(default_factory=dict)
    missed_by_dir: dict[str, int] = field(default_factory=dict)
    false_alarms: int = 0
    seconds: float = 0.0

    @property
    def missed(self) -> int:
        return sum(self.missed_by_dir.values())

    def as_dict(self) -> dict:
        d = self.delays
        return {
            "seeds": self.seeds,
            "records": self.records,
            "changes": self.changes,
            "detected": len(d),
            "missed": self.missed,
            "missed_by_direction": dict(sorted(self.missed_by_dir.items())),
            "changes_by_direction": dict(sorted(self.changes_by_dir.items())),
            "delay_mean_by_direction": {k: statistics.fmean(v) if v else None
                                        for k, v in sorted(self.delays_by_dir.items())},
            "delay_mean": statistics.fmean(d) if d else None,
            "delay_median": statistics.median(d) if d else None,
            "delay_max": max(d) if d else None,
            "false_alarms": self.false_alarms,
            "false_alarms_per_10k": 1e4 * self.false_alarms / self.records if self.records else None,
            "us_per_update": 1e6 * self.seconds / self.records if self.records else None,
        }


def score_run(hits: Sequence[int], changes: Sequence[Change], window: int
              ) -> tuple[list[int | None], int]:
    """Per change the delay (None = missed), and the number of false alarms."""
    wins = [(c.start, c.end + window) for c in changes]
    delays: list[int | None] = []
    for lo, hi in wins:
        inside = [t for t in hits if lo <= t < hi]
        delays.append(inside[0] - lo if inside else None)
    false = sum(1 for t in hits if not any(lo <= t < hi for lo, hi in wins))
    return delays, false


def _run_one(det, xs: list) -> tuple[list[int], float]:
    hits = []
    append = hits.append
    update = det.update
    t0 = time.perf_counter()
    for t, x in enumerate(xs):
        update(x)
        if det.drift_detected:
            append(t)
    return hits, time.perf_counter() - t0


def run_benchmark(names: Sequence[str], streams: Sequence[str], seeds: int, records: int,
                  window: int, ramp: int, slow_seeds: int, progress: bool = True
                  ) -> dict[tuple[str, str], Score]:
    """Score every named detector on every named stream it accepts."""
    from tqdm import tqdm

    factories = contenders()
    kinds = {n: tuple(factories[n]().input_kinds) for n in names}
    n_seeds = {n: min(seeds, slow_seeds) if n in SLOW else seeds for n in names}
    plan = [(s, n) for s in streams for n in names if STREAMS[s].kind in kinds[n]]
    total = sum(n_seeds[n] * records for _, n in plan)
    scores: dict[tuple[str, str], Score] = {(n, s): Score() for s, n in plan}
    bar = tqdm(total=total, unit="rec", unit_scale=True, disable=not progress,
               desc="detectors", file=sys.stderr, dynamic_ncols=True)
    try:
        for stream in streams:
            runners = [n for s, n in plan if s == stream]
            for seed in range(seeds):
                xs, changes = generate(stream, records, seed, ramp)
                for name in runners:
                    if seed >= n_seeds[name]:
                        continue
                    bar.set_postfix_str(f"{stream} seed {seed} {name}", refresh=False)
                    hits, secs = _run_one(factories[name](), xs)
                    delays, false = score_run(hits, changes, window)
                    sc = scores[(name, stream)]
                    sc.seeds += 1
                    sc.records += records
                    sc.changes += len(changes)
                    sc.false_alarms += false
                    sc.seconds += secs
                    for c, d in zip(changes, delays):
                        sc.missed_by_dir.setdefault(c.direction, 0)
                        sc.changes_by_dir[c.direction] = sc.changes_by_dir.get(c.direction, 0) + 1
                        sc.delays_by_dir.setdefault(c.direction, [])
                        if d is None:
                            sc.missed_by_dir[c.direction] += 1
                        else:
                            sc.delays.append(d)
                            sc.delays_by_dir[c.direction].append(d)
                    bar.update(records)
    finally:
        bar.close()
    return scores
