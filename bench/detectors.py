"""Drift-detector scoreboard: every ``detectors.REGISTRY`` entry on every stream it accepts.

Streams (``bench.detector_streams``) have known change points; each detector runs fresh on each
(stream, seed) and is scored per change:

- a change starting at record ``s`` and complete at ``e`` (``e = s`` when abrupt, ``s + ramp``
  when gradual) is **detected** if the detector fires in ``[s, e + window)``, the tolerance window;
- **delay** = records from ``s`` to the first such detection (0 = fired on record ``s``);
- **missed** = no detection in that window;
- **false alarms** = detections outside every window, per 10,000 records;
- **us/update** = wall time of the update loop (``update`` + reading ``drift_detected``) per record.

Two baselines are added so naive scores are visible: ``always-fire`` (fires on every record) and
``never-fire`` (never fires; the registry's ``none`` is the same thing). Slow detectors (KSWIN,
~200-300 us a record) run on the first ``--slow-seeds`` seeds only.

Run ``python -m bench.detectors`` (``--help`` for sizes); writes ``bench/DETECTORS.md`` and
``bench/detectors.json`` next to this file unless ``--out-dir`` says otherwise.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import detectors
from bench.detector_streams import FAMILIES, STREAMS, Change, change_starts, generate
from bench.input_drift import BEGIN as INPUT_BEGIN
from bench.input_drift import END as INPUT_END
from bench.provenance import code_line, code_version

__all__ = ["AlwaysFire", "NeverFire", "contenders", "score_run", "run_benchmark", "main"]

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


# ---------------------------------------------------------------------------- report


def _machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for mod in ("numpy", "river"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - reporting only
            versions[mod] = "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), **versions,
            "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "unset")}


def _fmt(v, digits: int = 0) -> str:
    if v is None:
        return "—"
    return f"{v:,.{digits}f}"


def _missed_cell(d: dict) -> str:
    if not d["changes"]:
        return "—"
    cell = f"{d['missed']}/{d['changes']}"
    by = d["missed_by_direction"]
    if d["missed"] and len(by) > 1:
        arrows = {"up": "↑", "down": "↓", "new": "+"}
        cell += " (" + " ".join(f"{arrows.get(k, k)}{v}" for k, v in by.items() if v) + ")"
    return cell


def _family_table(family: str, names: Sequence[str], results: dict) -> list[str]:
    streams = [s for s in FAMILIES[family] if any((n, s) in results for n in names)]
    change = [s for s in streams if not STREAMS[s].stationary]
    still = [s for s in streams if STREAMS[s].stationary]
    head = ["detector", "seeds"]
    short = {s: s.split("-", 1)[1] for s in streams}
    for s in change:
        head += [f"{short[s]} delay", f"{short[s]} missed", f"{short[s]} FA/10k"]
    head += [f"{short[s]} FA/10k" for s in still] + ["µs/update"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in names:
        row_res = [results.get((n, s)) for s in streams]
        if not any(row_res):
            continue
        seeds = max(r["seeds"] for r in row_res if r)
        cells = [f"`{n}`", str(seeds)]
        for s in change:
            r = results.get((n, s))
            cells += ([_fmt(r["delay_mean"]), _missed_cell(r), _fmt(r["false_alarms_per_10k"], 1)]
                      if r else ["", "", ""])
        for s in still:
            r = results.get((n, s))
            cells.append(_fmt(r["false_alarms_per_10k"], 2) if r else "")
        secs = sum(r["us_per_update"] * r["records"] for r in row_res if r)
        recs = sum(r["records"] for r in row_res if r)
        cells.append(_fmt(secs / recs, 1))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


#: Bars for "usable" in the reading: share of (relevant) changes missed, stationary FA/10k.
MAX_MISSED, MAX_STATIONARY_FA = 0.10, 1.0


def _relevant(family: str) -> set[str]:
    """Change directions that count in the reading: rises only for error rates."""
    return {"up"} if family == "bernoulli" else {"up", "down", "new"}


def _rank(stream: str, results: dict, names: Sequence[str]
          ) -> tuple[list[tuple[str, float, float, float]], list[tuple[str, float, float, float]]]:
    """(usable, others) on one change stream, each (name, mean delay, missed share, stationary
    FA/10k): usable by mean delay, others by missed share then delay. Baselines excluded."""
    family = STREAMS[stream].family
    still = [s for s in FAMILIES[family] if STREAMS[s].stationary]
    dirs = _relevant(family)
    usable, others = [], []
    for n in names:
        r = results.get((n, stream))
        if r is None or n in BASELINES or n == "none":
            continue
        n_dir = sum(v for k, v in r["changes_by_direction"].items() if k in dirs)
        missed = sum(v for k, v in r["missed_by_direction"].items() if k in dirs) / max(1, n_dir)
        ds = [(r["delay_mean_by_direction"][k], r["changes_by_direction"][k]
               - r["missed_by_direction"][k]) for k in dirs if k in r["changes_by_direction"]]
        ds = [(d, w) for d, w in ds if d is not None and w]
        fa = max((results[(n, s)]["false_alarms_per_10k"] for s in still if (n, s) in results),
                 default=0.0)
        delay = sum(d * w for d, w in ds) / sum(w for _, w in ds) if ds else float("inf")
        row = (n, delay, missed, fa)
        (usable if missed <= MAX_MISSED and fa <= MAX_STATIONARY_FA else others).append(row)
    usable.sort(key=lambda x: x[1])
    others.sort(key=lambda x: (x[2], x[1]))
    return usable, others


def _row_txt(row: tuple[str, float, float, float]) -> str:
    n, d, m, fa = row
    return f"`{n}` {_fmt(None if d == float('inf') else d)}"


def _reading(results: dict, names: Sequence[str], window: int) -> list[str]:
    lines = ["## Reading", "",
             f"Computed from the tables above (regenerated with them). On each change stream a "
             f"detector is *usable* if it misses at most {MAX_MISSED:.0%} of the changes and "
             f"raises at most {MAX_STATIONARY_FA:g} false alarm per 10k records on the family's "
             "stationary stream; usable ones are listed fastest first with their mean delay in "
             "records. On the bernoulli (error-rate) streams only the rises count here (misses "
             "and delays): a falling error rate needs no reaction, and DDM/EDDM/HDDM ignore it by "
             "design. The small shift 0.2 -> 0.25 carries about 0.007 nats of evidence a record "
             f"(KL), ~{0.0074 * window:.0f} nats over the {window:,}-record window: it marks the "
             "floor of what a detector with few false alarms can see in that window.",
             ""]
    for family, streams in FAMILIES.items():
        for s in streams:
            if STREAMS[s].stationary:
                continue
            usable, others = _rank(s, results, names)
            if not usable and not others:
                continue
            if usable:
                txt = "usable: " + ", ".join(_row_txt(r) for r in usable)
            else:
                best = others[0]
                txt = (f"no detector is usable; fewest misses: `{best[0]}` ({best[2]:.0%} "
                       f"missed, {best[3]:.2f} FA/10k stationary)")
            lines.append(f"- `{s}`: {txt}.")
        picks = {}
        for s in streams:
            if not STREAMS[s].stationary:
                for i, (n, d, _, _) in enumerate(_rank(s, results, names)[0]):
                    picks.setdefault(n, []).append(i)
        if picks:
            best = min(picks, key=lambda n: (-len(picks[n]), statistics.fmean(picks[n])))
            n_change = sum(not STREAMS[s].stationary for s in streams)
            us = [results[(best, s)]["us_per_update"] for s in streams if (best, s) in results]
            lines.append(f"- **{family} pick**: `{best}`, usable on {len(picks[best])} of "
                         f"{n_change} change streams, mean rank {statistics.fmean(picks[best]) + 1:.1f} "
                         f"on delay, {statistics.fmean(us):.0f} µs/update.")
        lines.append("")
    lines += ["The `adaptive` model's defaults (`pipelines/model.py`):", ""]
    for det, (role, family) in ADAPTIVE_DEFAULTS.items():
        if not any((det, s) in results for s in FAMILIES[family]):
            continue
        per = []
        for s in FAMILIES[family]:
            r = results.get((det, s))
            if r is None:
                continue
            if STREAMS[s].stationary:
                per.append(f"{s}: {r['false_alarms_per_10k']:.2f} FA/10k")
                continue
            usable, others = _rank(s, results, names)
            pos = [i for i, u in enumerate(usable) if u[0] == det]
            where = (f"usable, {pos[0] + 1} of {len(usable)}" if pos else "not usable")
            mine = [u for u in usable + others if u[0] == det][0]
            per.append(f"{s}: {_row_txt(mine)[len(det) + 3:]} rec, {mine[2]:.0%} missed ({where})")
        lines.append(f"- `{det}` on {role}: " + "; ".join(per) + ".")
    return lines


def write_report(results: dict, names: Sequence[str], config: dict, machine: dict,
                 elapsed: float, md_path: Path) -> None:
    r_by_key = {(r["detector"], r["stream"]): r for r in results}
    lines = [
        "# Drift-detector scoreboard",
        "",
        "Generated by `bench/detectors.py`; do not edit by hand (rerun it).",
        "",
        f"- Command: `{config['command']}` (also `driftflow bench detectors`)",
        f"- Date: {config['date']}; wall time {elapsed:.0f} s",
        code_line(config.get("code")),
        f"- Machine: {machine['cpu']}, {machine['cores']} cores (shared), {machine['platform']}, "
        f"Python {machine['python']}, numpy {machine['numpy']}, river {machine['river']}, "
        f"OPENBLAS_NUM_THREADS={machine['openblas_threads']}",
        f"- Streams: {config['records']:,} records each, changes starting at records "
        f"{', '.join(f'{s:,}' for s in config['change_starts'])}; gradual changes ramp linearly "
        f"over {config['ramp']:,} records. Seeds 0-{config['seeds'] - 1}; "
        f"{', '.join(sorted(SLOW))} (slow) on seeds 0-{config['slow_seeds'] - 1} only.",
        f"- **Tolerance window: {config['window']:,} records.** A change starting at record s and "
        f"complete at e (e = s if abrupt, s + ramp if gradual) is detected by the first firing in "
        f"[s, e + {config['window']:,}); delay = that record - s (0 = fired on the first changed "
        "record), so a gradual change's delay counts from the start of its ramp. No firing in "
        "the window = missed. A firing outside every window = false alarm, reported per 10,000 "
        "records (over the whole stream).",
        "- Changes alternate A -> B -> A -> B: changes 1 and 3 go \"up\" (error rate, mean or "
        "variance rises), change 2 goes back \"down\"; missed cells split by direction as "
        "↑/↓ (+ = new class). DDM, EDDM and HDDM watch for rising error rates only, so they miss "
        "the ↓ changes by design; for a detector on an error stream only ↑ matters.",
        "- Delay is the mean over detected changes (misses excluded), in records. µs/update = "
        "update loop wall time per record (single process, shared machine: ±30 %).",
        "- Baselines: `always-fire` fires every record, `never-fire` never; the registry's `none` "
        "is a never-fire detector too.",
        "",
    ]
    for family, streams in FAMILIES.items():
        lines += [f"## {family}", ""]
        lines += [f"- `{s}`: {STREAMS[s].description}" for s in streams]
        lines += [""] + _family_table(family, names, r_by_key) + [""]
    lines += _reading(r_by_key, names, config["window"])
    old = md_path.read_text(encoding="utf-8") if md_path.exists() else ""
    if INPUT_BEGIN in old and INPUT_END in old:   # bench/input_drift.py's section stays
        start = old.index(INPUT_BEGIN)
        lines += ["", old[start:old.index(INPUT_END, start) + len(INPUT_END)]]
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.detectors",
        description="Score every drift detector in detectors.REGISTRY on seeded streams with "
                    "known change points; write DETECTORS.md and detectors.json.")
    p.add_argument("--seeds", type=int, default=10, help="seeds per stream (default 10)")
    p.add_argument("--slow-seeds", type=int, default=2,
                   help=f"seeds for the slow detectors {sorted(SLOW)} (default 2)")
    p.add_argument("--records", type=int, default=20_000, help="records per stream (default 20000)")
    p.add_argument("--window", type=int, default=1_000,
                   help="tolerance window after a change is complete (default 1000)")
    p.add_argument("--ramp", type=int, default=1_000,
                   help="records a gradual change takes (default 1000)")
    p.add_argument("--detectors", default="",
                   help="comma-separated subset of detectors (default: all + baselines)")
    p.add_argument("--streams", default="", help=f"comma-separated subset of {list(STREAMS)}")
    p.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent,
                   help="where DETECTORS.md and detectors.json go (default: bench/)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.add_argument("--from-json", type=Path, default=None,
                   help="rewrite DETECTORS.md from a saved detectors.json without rerunning")
    return p


def _split(arg: str, known: Sequence[str], what: str, p: argparse.ArgumentParser) -> list[str]:
    if not arg:
        return list(known)
    items = [x.strip() for x in arg.split(",") if x.strip()]
    bad = [x for x in items if x not in known]
    if bad:
        p.error(f"unknown {what} {bad}; known: {', '.join(known)}")
    return items


def main(argv: Sequence[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    if args.from_json is not None:
        saved = json.loads(args.from_json.read_text(encoding="utf-8"))
        names = [n for n in contenders() if any(r["detector"] == n for r in saved["results"])]
        out = args.out_dir
        out.mkdir(parents=True, exist_ok=True)
        write_report(saved["results"], names, saved["config"], saved["machine"],
                     saved["elapsed_seconds"], out / "DETECTORS.md")
        _print_summary(saved["results"], names, saved["elapsed_seconds"], out / "DETECTORS.md",
                       args.from_json)
        return 0
    names = _split(args.detectors, list(contenders()), "detector(s)", p)
    streams = _split(args.streams, list(STREAMS), "stream(s)", p)
    if args.seeds < 1 or args.slow_seeds < 1:
        p.error("--seeds and --slow-seeds must be >= 1")
    spacing = args.records // 4
    if args.records < 8 or args.window < 1 or args.ramp < 1 or args.ramp + args.window > spacing:
        p.error(f"need ramp + window <= records / 4 = {spacing} so tolerance windows do not "
                f"overlap the next change; got ramp {args.ramp}, window {args.window}")
    argv_list = list(sys.argv[1:] if argv is None else argv)
    config = {
        "command": " ".join(["python -m bench.detectors", *argv_list]).strip(),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "seeds": args.seeds, "slow_seeds": min(args.slow_seeds, args.seeds),
        "records": args.records, "window": args.window, "ramp": args.ramp,
        "change_starts": change_starts(args.records),
        "slow_detectors": sorted(SLOW),
        "code": code_version(),   # at the start: the code that runs
    }
    machine = _machine()
    t0 = time.perf_counter()
    scores = run_benchmark(names, streams, args.seeds, args.records, args.window, args.ramp,
                           args.slow_seeds, progress=not args.no_progress)
    elapsed = time.perf_counter() - t0
    results = [{"detector": n, "stream": s, "family": STREAMS[s].family,
                "stationary": STREAMS[s].stationary, **sc.as_dict()}
               for (n, s), sc in scores.items()]
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    md_path, json_path = out / "DETECTORS.md", out / "detectors.json"
    json_path.write_text(json.dumps({"config": config, "machine": machine,
                                     "elapsed_seconds": round(elapsed, 1),
                                     "results": results}, indent=1) + "\n", encoding="utf-8")
    write_report(results, names, config, machine, elapsed, md_path)
    _print_summary(results, names, elapsed, md_path, json_path)
    return 0


def _print_summary(results: list[dict], names: Sequence[str], elapsed: float, md_path: Path,
                   json_path: Path) -> None:
    """Per detector: mean delay and missed over its change streams, FA/10k on stationary ones."""
    print(f"{'detector':20s} {'streams':>7s} {'delay':>7s} {'missed':>10s} {'FA/10k':>8s} "
          f"{'stat FA/10k':>11s} {'us/upd':>7s}")
    for n in names:
        rs = [r for r in results if r["detector"] == n]
        if not rs:
            continue
        ch = [r for r in rs if not r["stationary"]]
        st = [r for r in rs if r["stationary"]]
        ds = [r["delay_mean"] for r in ch if r["delay_mean"] is not None]
        missed = sum(r["missed"] for r in ch)
        changes = sum(r["changes"] for r in ch)
        fa = statistics.fmean(r["false_alarms_per_10k"] for r in ch) if ch else None
        sfa = statistics.fmean(r["false_alarms_per_10k"] for r in st) if st else None
        us = sum(r["us_per_update"] * r["records"] for r in rs) / sum(r["records"] for r in rs)
        print(f"{n:20s} {len(rs):7d} {_fmt(statistics.fmean(ds) if ds else None):>7s} "
              f"{f'{missed}/{changes}':>10s} {_fmt(fa, 1):>8s} {_fmt(sfa, 2):>11s} {us:7.1f}")
    print(f"wrote {md_path} and {json_path} in {elapsed:.0f} s")


if __name__ == "__main__":
    raise SystemExit(main())
