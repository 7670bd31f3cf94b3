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
``bench/detectors.json`` next to this file unless ``--out-dir`` says otherwise. The runs and
scores are in `bench.detector_scoring`, the Markdown in `bench.detector_report`; this module is
the command line.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.detector_report import _fmt, write_report
from bench.detector_scoring import (
    SLOW,
    AlwaysFire,
    NeverFire,
    contenders,
    run_benchmark,
    score_run,
)
from bench.detector_streams import STREAMS, change_starts
from bench.provenance import code_version, machine_info

__all__ = ["AlwaysFire", "NeverFire", "contenders", "score_run", "run_benchmark", "main"]


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
    machine = machine_info()
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
