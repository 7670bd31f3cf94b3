"""Benchmarks that decide: driftflow's models, River's and MOA's peers on the same streams, in one
run.

``driftflow bench`` / ``python -m bench``. For every stream and seed one worker process (spawned)
generates the stream once into a list, then runs every model on it one after the other, so the
timings within a stream share a process, a CPU and a stream. Per (stream, model):

- **Prequential accuracy** (test-then-train on every record): ``predict_one`` then ``learn_one``.
  Accuracy, kappa, kappa-M, kappa-T and the windowed-accuracy curve come from
  `pipelines.PrequentialMetrics`, computed from the stored predictions *after* the timed loop.
- **Throughput**: ``time.perf_counter`` around the whole loop of ``predict_one`` + ``learn_one``
  over the pre-generated records (stream generation/decoding, scoring and tracemalloc are *not*
  timed; a progress-bar update every ``_CHUNK`` records is). records/s = records / seconds.
- **Memory**: a *second*, separate pass with a fresh model (same seed) over the first
  ``min(N, --mem-records)`` records (default 2,500; 500 for smoke runs) under ``tracemalloc``:
  the peak of traced Python allocations from just before the model is built to the end of that
  pass, minus the traced size at the start. tracemalloc slows Python several-fold, which is why
  the timed run does not use it; the peak includes the transient allocations of predict/learn,
  and, measured at ``mem-records``, it understates a model that keeps growing after that.
  **State** is the pickled size of the model at the end of the timed run (the whole stream), a
  cheap measure of what it retains.
- **Experts** at the end: ``model.n_experts`` (driftflow), ``n_models`` (River ensembles), 1 for
  a single tree. **Detected drifts**: positions of ``events()`` of kind ``"drift"`` (driftflow's
  models only; River's peers expose none).
- **MOA's peers** (``moa-*``, `bench.moa_peers`): the same records written to an ARFF file and
  run by MOA's own jar in a JVM subprocess; the JVM times its predict+learn loop alone, the
  predictions come back and are scored as above. No memory pass or state size for them.
- **Ratios**: accuracy minus ARF(10)'s (percentage points), throughput / ARF(10)'s and throughput
  / HoeffdingTree's (River's), accuracy minus MOA ARF(100)'s and throughput / MOA ARF(10)'s, on
  the same stream and seed.

Writes ``RESULTS.md``, ``results.json`` (every raw number) and one PNG per stream to ``--out``.
The parts: `bench.catalog` (models, streams), `bench.measure` (one worker's runs),
`bench.results` (ratios and means), `bench.results_md` (RESULTS.md and plots); BLAS runs one
thread per worker (`pipelines.blas`).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import multiprocessing as mp
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench.catalog import (
    ALL_MODELS,
    DEFAULT_MODELS,
    DEFAULT_STREAMS,
    ELEC,
    MODEL_REGISTRY,
    PAPER_MOE_DATA,
    SIZES,
    SLOW_PEERS,
    resolve_stream,
)
from bench.measure import (
    DEFAULT_MEM_RECORDS,
    SMOKE_MEM_RECORDS,
    _init_worker,
    run_stream,
)
from bench.moa_peers import MOA_LEARNERS, MoaUnavailable, ensure_built
from bench.provenance import code_version, machine_info
from bench.results import _json_default, add_ratios, aggregate, summarise
from bench.results_md import plot_stream, render, summary_table, write_markdown
from pipelines.sources.datasets import electricity_path

__all__ = ["ALL_MODELS", "MODEL_REGISTRY", "build_parser", "expected_minutes", "machine_info", "main"]

# Wall seconds per stream record per model on one core, from the ci run in bench/results.json
# (7 streams x 100,000 records x the 6 Python default models, 2 jobs: 1,664 s); MOA's three
# peers together cost about two of those (ARF(100): 1-2 ms of CPU a record, 0.9 on SEA, 1.8 on
# LED; HT and ARF(10) a few seconds a stream), so counting them as models overestimates a
# little. A busy or slower machine takes up to `_BUSY_FACTOR` times longer.
_SECONDS_PER_RECORD_MODEL = 0.79e-3
_BUSY_FACTOR = 1.6


def expected_minutes(records: int, models: int, jobs: int) -> float:
    """Rough wall minutes of a bench run over ``records`` stream records in all (streams x
    seeds x records each), for ``models`` models, in ``jobs`` processes."""
    return records * models * _SECONDS_PER_RECORD_MODEL / jobs / 60


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def build_parser(prog: str = "driftflow bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description="Run driftflow's models and River's peers prequentially on the "
        "same streams; write RESULTS.md, results.json and one accuracy plot per stream.")
    p.add_argument("--streams", type=_csv_list, default=DEFAULT_STREAMS,
                   help=f"comma list (default: {','.join(DEFAULT_STREAMS)}); synthetic names, "
                        "'elec' (Electricity, from $DRIFTFLOW_DATASETS or ../shared/datasets) "
                        "or file:PATH")
    p.add_argument("--models", type=_csv_list, default=DEFAULT_MODELS,
                   help=f"comma list, or 'all' for every one of {', '.join(ALL_MODELS)} "
                        f"(default: all but {' and '.join(SLOW_PEERS)}, ~40 records/s on LED)")
    p.add_argument("--size", choices=list(SIZES), default="ci",
                   help="records per stream: smoke 2,000 (~1 min); ci 100,000 (~40-60 min on 2 "
                        "cores); full 1,000,000 (hours). Files are capped at that; Electricity "
                        "is whole from ci up. Default ci")
    p.add_argument("--limit", type=int, default=None, help="records per stream, overrides --size")
    p.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per stream (default 1)")
    p.add_argument("--out", type=Path, default=None,
                   help="output directory (default: a new runs/bench-SIZE-TIME/; pass "
                        "--out bench/ to replace the tracked results)")
    p.add_argument("--jobs", type=int, default=2,
                   help="worker processes, one (stream, seed) each (default 2; 1 = in-process)")
    p.add_argument("--mem-records", type=int, default=None,
                   help="records of the separate tracemalloc pass (default 2,500; 500 with "
                        "--size smoke; 0 = skip)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--render", action="store_true",
                   help="run nothing: rewrite RESULTS.md in --out (default bench/) from its "
                        "results.json, e.g. after editing bench/ANALYSIS.md")
    p.add_argument("--merge", type=Path, default=None, metavar="DIR",
                   help="with --render: first add the streams of DIR/results.json (another "
                        "run of the same size and seeds) to --out's, replacing same-named ones")
    return p


def _command(argv: list[str]) -> str:
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    head = ("driftflow bench" if prog == "driftflow"
            else "python -m bench" if prog in ("__main__.py", "-m", "bench")
            else "bench.harness.main")
    return " ".join([head, *map(shlex.quote, argv)])


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``driftflow bench`` and ``python -m bench``; returns the exit code
    (0 ok, 1 some stream or model failed, 2 bad arguments)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.models == ["all"]:
        args.models = list(ALL_MODELS)
    unknown = [m for m in args.models if m not in ALL_MODELS]
    if unknown:
        parser.print_usage(sys.stderr)
        print(f"unknown model(s): {', '.join(unknown)}; choose from "
              f"{', '.join(ALL_MODELS)}", file=sys.stderr)
        return 2
    if args.seeds < 1 or args.jobs < 1 or (args.limit is not None and args.limit < 1):
        print("--seeds, --jobs and --limit must be >= 1", file=sys.stderr)
        return 2
    if args.mem_records is not None and args.mem_records < 0:
        print("--mem-records must be >= 0", file=sys.stderr)
        return 2
    if args.merge is not None and not args.render:
        print("--merge needs --render", file=sys.stderr)
        return 2
    if args.render:
        return render(args.out or Path(__file__).resolve().parent, args.merge)
    limit = args.limit if args.limit is not None else SIZES[args.size]
    if any(m in MOA_LEARNERS for m in args.models):
        try:   # MOA's jars and bench/moa/Prequential.class, once, before any worker starts
            ensure_built()
        except MoaUnavailable as exc:
            print(f"driftflow bench: {exc}", file=sys.stderr)
            return 2
    if args.mem_records is None:
        args.mem_records = SMOKE_MEM_RECORDS if args.size == "smoke" else DEFAULT_MEM_RECORDS

    streams: list[tuple[str, str]] = []
    skipped: list[str] = []
    for name in args.streams:
        try:
            label, spec = resolve_stream(name)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        if label == ELEC and not electricity_path().is_file():
            print(f"skipping elec: {electricity_path()} not found (set DRIFTFLOW_DATASETS)",
                  file=sys.stderr)
            skipped.append(f"elec ({electricity_path()} not found)")
            continue
        streams.append((label, spec))

    if args.out is None:   # a run directory; bench/'s tracked results only when asked for
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        args.out = Path("runs") / f"bench-{args.size if args.limit is None else limit}-{stamp}"
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    n_runs = len(streams) * args.seeds
    low = expected_minutes(limit * n_runs, len(args.models), min(args.jobs, max(1, n_runs)))
    expected = (f"~{low:.0f}-{low * _BUSY_FACTOR:.0f} min" if low * _BUSY_FACTOR >= 2
                else "about a minute")
    print(f"driftflow bench: {n_runs} stream run(s) x {len(args.models)} model(s), "
          f"{limit:,} records each; expected time {expected}; results go to {out}",
          file=sys.stderr)

    seeds = list(range(args.seeds))
    tasks = [{"label": label, "spec": spec, "seed": seed, "limit": limit,
              "models": args.models, "mem_records": args.mem_records, "quiet": args.quiet}
             for label, spec in streams for seed in seeds]
    started = time.perf_counter()
    date = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    code = code_version()   # at the start: the code that runs, before any result is written
    results: list[dict[str, Any]] = []
    jobs = min(args.jobs, max(1, len(tasks)))
    if jobs == 1:
        results = [run_stream(t) for t in tasks]
    else:
        ctx = mp.get_context("spawn")
        lock, counter = ctx.RLock(), ctx.Value("i", 0)
        with ctx.Pool(jobs, initializer=_init_worker, initargs=(lock, counter)) as pool:
            for res in pool.imap_unordered(run_stream, tasks):
                results.append(res)
                if not args.quiet:
                    tqdm.write(f"done: {res['label']} seed {res['seed']}", file=sys.stderr)
    wall = time.perf_counter() - started

    add_ratios(results)
    per_stream = aggregate(results, args.models)
    per_stream = {label: per_stream[label] for label, _ in streams if label in per_stream}
    summary = summarise(per_stream, args.models)
    figures: dict[str, str] = {}
    for label in per_stream:
        runs = [r for r in results if r["label"] == label]
        if any("error" not in r for r in runs):
            figures[label] = f"{label}.png"
            plot_stream(out / figures[label], label, runs, args.models)

    meta = {
        "date": date, "command": _command(argv), "argv": argv, "size": args.size,
        "limit": limit, "seeds": args.seeds, "seed_list": seeds, "jobs": jobs,
        "mem_records": args.mem_records, "wall_seconds": wall, "machine": machine_info(),
        "code": code, "models": args.models, "streams": [label for label, _ in streams],
        "skipped_streams": skipped, "paper_moe_data": PAPER_MOE_DATA,
    }
    write_markdown(out / "RESULTS.md", meta, per_stream, summary, figures)
    raw = sorted(results, key=lambda r: (r["label"], r["seed"]))
    (out / "results.json").write_text(json.dumps(
        {"meta": meta, "summary": summary, "streams": per_stream, "runs": raw},
        indent=1, default=_json_default))

    print()
    print(f"driftflow bench: {len(streams)} stream(s) x {len(args.models)} model(s) x "
          f"{args.seeds} seed(s), {limit:,} records per stream, {wall:.1f} s")
    print(summary_table(summary))
    print(f"\nwritten: {out / 'RESULTS.md'}, {out / 'results.json'}, "
          f"{len(figures)} PNG(s) in {out}")
    failed = [f"{r['label']}/s{r['seed']}: {r['error']}" for r in results if "error" in r]
    failed += [f"{r['label']}/s{r['seed']} {name}: {run['error']}" for r in results
               for name, run in r.get("runs", {}).items() if "error" in run]
    for line in failed:
        print(f"FAILED {line}", file=sys.stderr)
    return 1 if failed else 0
