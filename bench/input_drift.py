"""Input-drift table: the `InputDriftMonitor` and per-feature candidate detectors on seeded
streams with known covariate shifts (``bench.input_drift_streams``).

Per stream and seed, the change starts at record s and is complete at e (s for abrupt, s + ramp
for gradual); an alarm in [s, e + window) counts for it, anything else is a false alarm.

- **delay**: records from s to the first alarm naming a shifted feature (missed: none);
- **FA/10k**: alarms outside the window per 10,000 records (on ``concept`` and ``stationary``
  every alarm is false: nothing in the inputs changed);
- **attribution precision / recall**: of the features named in the window, the share that
  shifted; of the shifted features, the share named (pooled over seeds).

The candidate scoreboard runs each registry detector alone on each numeric (or nominal)
feature, as the monitor would, to pick the per-feature detector. ``python -m bench.input_drift``
rewrites the input-drift section of bench/DETECTORS.md (between its markers) and
bench/input_drift.json; the header names the git commit measured.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import detectors
from bench.input_drift_streams import SCENARIOS, generate
from bench.provenance import commit_label
from pipelines.monitoring import InputDriftMonitor

BEGIN, END = "<!-- input-drift:begin -->", "<!-- input-drift:end -->"
NUMERIC = ("f0", "f1", "f2", "f3", "f4")
#: Candidates per feature kind, and the streams each is scored on.
CANDIDATES = {"ks-window": NUMERIC, "adwin": NUMERIC, "bocpd-gaussian": NUMERIC,
              "chi2-window": ("colour",), "rbocpd-multinomial": ("colour",)}
NUMERIC_STREAMS = ("mean-1", "mean-1-gradual", "mean-3", "spread-1", "spread-2-gradual",
                   "stationary")
NOMINAL_STREAMS = ("mix", "mix-gradual", "stationary")

Alarm = tuple[int, set[str]]


def score(alarms: list[Alarm], shifted: Sequence[str], start: int, end: int, window: int
          ) -> dict[str, Any]:
    """One run's delay (None: missed), false alarms and attribution counts."""
    shifted_set = set(shifted)
    inside = [(t, names) for t, names in alarms if shifted_set and start <= t < end + window]
    hits = [t for t, names in inside if names & shifted_set]
    named = set().union(*(names for _, names in inside)) if inside else set()
    return {"delay": hits[0] - start if hits else None, "false": len(alarms) - len(inside),
            "named": len(named), "true_named": len(named & shifted_set),
            "shifted": len(shifted_set)}


def monitor_alarms(rows: list[dict], batch: int = 1000) -> tuple[list[Alarm], float]:
    """The monitor fed as the local runner's host feeds it: ``batch`` records a call."""
    monitor = InputDriftMonitor()
    alarms: list[Alarm] = []
    t0 = time.perf_counter()
    for start in range(0, len(rows), batch):
        for t, event in monitor.update_many(rows[start:start + batch]):
            alarms.append((start + t, {f["name"] for f in event["features"]}))
    return alarms, time.perf_counter() - t0


def candidate_alarms(name: str, features: Sequence[str], rows: list[dict]
                     ) -> tuple[list[Alarm], float]:
    """One fresh ``name`` detector per feature, fed that feature's values."""
    dets = {f: detectors.make(name) for f in features}
    alarms: list[Alarm] = []
    t0 = time.perf_counter()
    for t, row in enumerate(rows):
        fired = set()
        for f, det in dets.items():
            det.update(row[f])
            if det.drift_detected:
                fired.add(f)
        if fired:
            alarms.append((t, fired))
    return alarms, time.perf_counter() - t0


def _pool(runs: list[dict[str, Any]], records: int, seconds: float, updates: int
          ) -> dict[str, Any]:
    delays = [r["delay"] for r in runs if r["delay"] is not None]
    changes = sum(1 for r in runs if r["shifted"])
    named, shifted = sum(r["named"] for r in runs), sum(r["shifted"] for r in runs)
    true_named = sum(r["true_named"] for r in runs)
    return {"runs": len(runs), "changes": changes, "detected": len(delays),
            "delay_mean": sum(delays) / len(delays) if delays else None,
            "delay_max": max(delays) if delays else None,
            "false_alarms_per_10k": 1e4 * sum(r["false"] for r in runs) / records,
            "precision": true_named / named if named else None,
            "recall": true_named / shifted if shifted else None,
            "us_per_update": 1e6 * seconds / updates}


def run(seeds: int, records: int, window: int, ramp: int,
        progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Every scenario through the monitor, and the candidates on their streams."""
    monitor: dict[str, Any] = {}
    cand_runs: dict[str, list] = {c: [] for c in CANDIDATES}
    cand_cost = {c: [0.0, 0] for c in CANDIDATES}
    for scenario in SCENARIOS:
        runs, seconds = [], 0.0
        for seed in range(seeds):
            progress(f"{scenario} seed {seed}")
            rows, _, shifted, start, end = generate(scenario, records, seed, ramp)
            alarms, secs = monitor_alarms(rows)
            runs.append(score(alarms, shifted, start, end, window))
            seconds += secs
            for cand, features in CANDIDATES.items():
                streams = NUMERIC_STREAMS if features == NUMERIC else NOMINAL_STREAMS
                if scenario in streams:
                    alarms, secs = candidate_alarms(cand, features, rows)
                    cand_runs[cand].append(score(alarms, shifted, start, end, window))
                    cand_cost[cand][0] += secs
                    cand_cost[cand][1] += records * len(features)
        monitor[scenario] = _pool(runs, seeds * records, seconds, seeds * records)
    candidates = {c: _pool(r, len(r) * records, *cand_cost[c]) for c, r in cand_runs.items()}
    return {"monitor": monitor, "candidates": candidates}


def _f(v: float | None, digits: int = 0) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def render(results: dict[str, Any], config: dict[str, Any]) -> str:
    intro = (
        f"Generated by `bench/input_drift.py` at commit `{config['commit']}` on "
        f"{config['date']} (`{config['command']}`, {config['seconds']:.0f} s on a shared "
        "2-core machine: µs figures are ±50 %). Streams: "
        f"{config['records']:,} records, seeds 0-{config['seeds'] - 1}, five numeric features "
        "(normal, uniform, normal, exponential, Poisson) and one nominal (`colour`); one "
        f"change at record {config['records'] // 2:,}, gradual ones over {config['ramp']:,} "
        f"records; tolerance window {config['window']:,} records after the change is "
        "complete. Delay in records from the change's start (mean, max); FA/10k = alarms "
        "outside the window per 10,000 records; precision / recall = the features named in "
        "the window against the shifted ones.")
    title = ("### The monitor (`InputDriftMonitor`: ks-window per numeric feature, chi2-window "
             "per nominal, correlation-shift over the numeric ones)")
    head = ("| stream | what moves | found | delay mean | delay max | FA/10k | precision | "
            "recall | µs/record |")
    lines = [BEGIN, "## Input drift (covariate shift)", "", intro, "", title, "", head,
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results["monitor"].items():
        found = f"{r['detected']}/{r['changes']}" if r["changes"] else "—"
        lines.append(f"| `{name}` | {SCENARIOS[name].description} | {found} | "
                     f"{_f(r['delay_mean'])} | {_f(r['delay_max'])} | "
                     f"{_f(r['false_alarms_per_10k'], 2)} | {_f(r['precision'], 2)} | "
                     f"{_f(r['recall'], 2)} | {_f(r['us_per_update'], 1)} |")
    where = (f"Numeric candidates on {', '.join(f'`{s}`' for s in NUMERIC_STREAMS)}; nominal "
             f"ones on {', '.join(f'`{s}`' for s in NOMINAL_STREAMS)}. µs per feature update.")
    head = ("| detector | found | delay mean | delay max | FA/10k | precision | recall | "
            "µs/update |")
    lines += ["", "### Per-feature candidates (one detector per feature, alone)", "", where, "",
              head, "|---|---|---|---|---|---|---|---|"]
    for name, r in results["candidates"].items():
        lines.append(f"| `{name}` | {r['detected']}/{r['changes']} | {_f(r['delay_mean'])} | "
                     f"{_f(r['delay_max'])} | {_f(r['false_alarms_per_10k'], 2)} | "
                     f"{_f(r['precision'], 2)} | {_f(r['recall'], 2)} | "
                     f"{_f(r['us_per_update'], 1)} |")
    lines += ["", _reading(results["candidates"]), "", END]
    return "\n".join(lines)


#: A usable per-feature candidate finds every change with fewer false alarms than this.
MAX_FA_PER_10K = 0.5


def _reading(candidates: dict[str, dict[str, Any]]) -> str:
    """The pick per feature kind, computed from the candidate table."""
    picks = []
    for kind, features in (("numeric", NUMERIC), ("nominal", ("colour",))):
        names = [n for n, f in CANDIDATES.items() if f == features]
        usable = [n for n in names if candidates[n]["detected"] == candidates[n]["changes"]
                  and candidates[n]["false_alarms_per_10k"] < MAX_FA_PER_10K]
        best = min(usable, key=lambda n: candidates[n]["delay_mean"], default=None)
        picks.append(f"{kind}: `{best}`" if best else f"{kind}: none usable")
    return (f"Pick per feature kind (every change found, under {MAX_FA_PER_10K:g} false alarms "
            f"per 10k records, then the shortest mean delay): {'; '.join(picks)}. The monitor "
            "uses these.")


def write_section(md_path: Path, section: str) -> None:
    """Replace the input-drift section of ``md_path`` (or append it)."""
    text = md_path.read_text(encoding="utf-8") if md_path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    md_path.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.input_drift", description=__doc__.split(
        "\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--records", type=int, default=20_000)
    p.add_argument("--window", type=int, default=2_000)
    p.add_argument("--ramp", type=int, default=2_000)
    p.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    p.add_argument("--from-json", type=Path, default=None,
                   help="rewrite the DETECTORS.md section from a saved input_drift.json")
    args = p.parse_args(argv)
    if args.from_json is not None:
        saved = json.loads(args.from_json.read_text(encoding="utf-8"))
        write_section(args.out_dir / "DETECTORS.md", render(saved, saved["config"]))
        return 0
    commit, t0 = commit_label(), time.perf_counter()   # the code measured: HEAD at the start
    results = run(args.seeds, args.records, args.window, args.ramp,
                  progress=lambda s: print(s, flush=True))
    config = {"commit": commit, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": " ".join(["python -m bench.input_drift",
                                   *(sys.argv[1:] if argv is None else argv)]),
              "seeds": args.seeds, "records": args.records, "window": args.window,
              "ramp": args.ramp, "seconds": time.perf_counter() - t0}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "input_drift.json").write_text(
        json.dumps({"config": config, **results}, indent=1) + "\n", encoding="utf-8")
    write_section(args.out_dir / "DETECTORS.md", render(results, config))
    print(render(results, config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
