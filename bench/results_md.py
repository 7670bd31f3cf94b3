"""The bench's RESULTS.md (tables, the hand-written ANALYSIS.md, one accuracy plot per stream),
written after a run or re-rendered from results.json."""
from __future__ import annotations

import json
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.catalog import ADAPTIVE, MOE_DATA, PAPER_MOE_DATA
from bench.provenance import code_line
from bench.results import _json_default, _merged

# Written by hand after a run: what the figures mean, targets met or missed, where time goes.
ANALYSIS = Path(__file__).resolve().parent / "ANALYSIS.md"


def _fmt(value: float | None, spec: str, scale: float = 1.0) -> str:
    return "—" if value is None else format(value * scale, spec)


def _model_row(name: str, agg: dict[str, Any], label: str, seeds: int) -> str:
    if agg["accuracy"] is None:
        return f"| {name} | failed: {'; '.join(agg['errors'])[:120]} |" + " |" * 15
    acc = _fmt(agg["accuracy"], ".2f", 100)
    if seeds > 1 and agg["accuracy_std"] is not None:
        acc += f" ± {agg['accuracy_std'] * 100:.2f}"
    paper = _fmt(PAPER_MOE_DATA.get(label), ".2f") if name == MOE_DATA else ""
    drifts = agg["drifts_detected"]
    shown = ", ".join(str(p) for p in drifts[:8]) + (" …" if len(drifts) > 8 else "")
    drift_cell = f"{len(drifts)}: {shown}" if drifts else ("0" if name in
                                                            ("adaptive",) else "")
    return (f"| {name} | {acc} | {paper} | {_fmt(agg['kappa'], '.3f')} "
            f"| {_fmt(agg['kappa_m'], '.3f')} | {_fmt(agg['kappa_t'], '.3f')} "
            f"| {_fmt(agg['records_per_s'], ',.0f')} | {_fmt(agg['acc_minus_arf_points'], '+.2f')} "
            f"| {_fmt(agg['speed_vs_arf'], '.2f')} | {_fmt(agg['speed_vs_ht'], '.3f')} "
            f"| {_fmt(agg.get('acc_minus_moa_arf100_points'), '+.2f')} "
            f"| {_fmt(agg.get('speed_vs_moa_arf10'), '.2f')} "
            f"| {_fmt(agg['mem_peak_bytes'], ',.1f', 1 / 2**20)} "
            f"| {_fmt(agg['state_bytes'], ',.0f', 1 / 2**10)} "
            f"| {_fmt(agg.get('state_spread_second_half'), '.1f', 100)} "
            f"| {_fmt(agg['experts'], '.3g')} | {drift_cell} |")


_STREAM_HEADER = (
    "| model | acc % | paper MoE-Data % (1M) | kappa | kappa-M | kappa-T | records/s "
    "| acc − ARF (pts) | × ARF speed | × HT speed | acc − MOA ARF100 (pts) | × MOA ARF10 speed "
    "| mem peak MiB | state KiB | state spread, 2nd half % | experts | detected drifts |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")


def summary_table(summary: dict[str, Any]) -> str:
    lines = ["| model | streams | mean acc % | mean kappa | mean records/s "
             "| mean acc − ARF (pts) | mean × ARF speed | mean × HT speed | min × HT speed "
             "| mean acc − MOA ARF100 (pts) | mean × MOA ARF10 speed |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in summary.items():
        lines.append(
            f"| {name} | {s['streams']} | {_fmt(s['accuracy'], '.2f', 100)} "
            f"| {_fmt(s['kappa'], '.3f')} | {_fmt(s['records_per_s'], ',.0f')} "
            f"| {_fmt(s['acc_minus_arf_points'], '+.2f')} | {_fmt(s['speed_vs_arf'], '.2f')} "
            f"| {_fmt(s['speed_vs_ht'], '.3f')} | {_fmt(s.get('speed_vs_ht_min'), '.3f')} "
            f"| {_fmt(s.get('acc_minus_moa_arf100_points'), '+.2f')} "
            f"| {_fmt(s.get('speed_vs_moa_arf10'), '.2f')} |")
    return "\n".join(lines)


def write_markdown(path: Path, meta: dict[str, Any], per_stream: dict[str, Any],
                   summary: dict[str, Any], figures: dict[str, str]) -> None:
    m = meta["machine"]
    ram = f"{m['ram_bytes'] / 2**30:.1f} GiB" if m["ram_bytes"] else "unknown"
    seeds = meta["seeds"]
    lines = [
        "# driftflow benchmark results", "",
        f"- Date: {meta['date']}",
        f"- Command: `{meta['command']}`",
        code_line(meta.get("code")),
        *([f"- Streams still from this command: {', '.join(meta['own_streams']) or 'none'}"]
          if "own_streams" in meta else []),
        f"- Machine: {m['nproc']} usable CPUs ({m['cpu_count']} online), {m['cpu_model']}, "
        f"{ram} RAM; {m['platform']}",
        f"- Versions: Python {m['python']}, river {m['river']}, numpy {m['numpy']}",
        f"- Size: `{meta['size']}`, records per stream: {meta['limit']:,} (files are capped at "
        f"that, Electricity has 45,312); seeds: {', '.join(map(str, meta['seed_list']))}; "
        f"worker processes: {meta['jobs']}; wall time {meta['wall_seconds']:.1f} s",
        *(f"- Merged in: {', '.join(part['streams'])} from `{part['command']}` ({part['date']}, "
          f"wall time {part['wall_seconds']:.1f} s)" for part in meta.get("merged", [])),
        "",
        "## How to read this", "",
        "- Prequential (test-then-train) on every record: `predict_one`, then `learn_one`; "
        "the compiled models (`adaptive`, `driftmoe-*`) through `learn_predict_many` on batches "
        "of 1,000, the path every runner feeds, which gives the same predictions (tested), "
        "after an untimed warm-up of a throw-away copy on 200 records (numba's compile or cache "
        "load, once per machine, is not in the timed loop). "
        "acc, kappa, kappa-M, kappa-T are over the whole stream" +
        (f", mean of {seeds} seeds (± sample std)." if seeds > 1 else ", one seed."),
        "- records/s: records / wall seconds of the timed predict+learn loop alone "
        "(`time.perf_counter`); the stream is generated into a list first and scoring is done "
        "afterwards, so neither is timed. One process per (stream, seed) runs the models one "
        "after another; other streams may run in parallel worker processes on the other cores.",
        f"- mem peak: `tracemalloc` peak of a separate pass (fresh model, same seed) over the "
        f"first min(N, {meta['mem_records']:,}) records, minus the traced size at its start; "
        "tracemalloc slows Python, so the timed run does not use it. state: pickled size of the "
        "model at the end of the timed run. state spread, 2nd half: the model is pickled every "
        "N/20 records over the stream's second half during the timed run (not timed); "
        "(max - min) / min of those sizes, the figure for \"memory flat within 10 %\".",
        "- acc − ARF: accuracy minus River ARF(10)'s in percentage points; × ARF / × HT speed: "
        "throughput divided by River's ARF(10)'s / HoeffdingTree's, same stream and seed; "
        "min × HT speed: the lowest over the streams. acc − MOA ARF100, × MOA ARF10 speed: the "
        "same against MOA's AdaptiveRandomForest with 100 and 10 trees.",
        "- MOA peers (`moa-ht`: HoeffdingTree, grace period 50, confidence 1e-7; `moa-arf10`, "
        "`moa-arf100`: AdaptiveRandomForest, MOA's defaults, 10 / 100 trees): MOA 2024.07.0's "
        "own jar (bench/moa/Prequential.java, Java 17) in a JVM subprocess, on the very records "
        "above written to an ARFF file (LED's attributes nominal, as MOA's LED generator "
        "declares them). The JVM reads the file first and times its predict+learn loop alone "
        "(`System.nanoTime`, JIT warm-up included, JVM start not); its predictions are scored "
        "here like every model's. No memory pass or state size (—).",
        "- paper MoE-Data: the DriftMoE paper's MoE-Data accuracy (mean of 10 seeds, 1,000,000 "
        "records, Electricity whole) beside our `driftmoe-data` at this run's size.",
        "- experts: pool size at the end (`n_experts`), `n_models` for River ensembles, 1 for a "
        "tree. detected drifts: positions (record index) of `drift` events, first seed.",
        "- River peers use River defaults (ARF/SRP/LB with 10 models; SRP's base model is "
        "River's default `HoeffdingTreeClassifier(grace_period=50, delta=0.01)`).",
        "", "## Summary (means over streams)", "", summary_table(summary), "",
    ]
    if ANALYSIS.exists():   # the hand-written reading of these figures (targets, profile)
        lines += [ANALYSIS.read_text(encoding="utf-8").strip(), ""]
    for label, entry in per_stream.items():
        lines += [f"## {label}", ""]
        if entry["errors"]:
            lines += [f"Stream failed: {'; '.join(entry['errors'])}", ""]
        if "n_records" not in entry:
            continue
        centres = ", ".join(f"{p:,}" for p in entry["drift_positions"])
        lines.append(f"`{entry['spec']}`: {entry['n_records']:,} records"
                     + (f", {entry['skipped']:,} skipped (dead letters / no label)"
                        if entry["skipped"] else "")
                     + (f"; true drift centres: {centres}" if centres
                        else "; no marked drift points") + ".")
        lines += ["", _STREAM_HEADER]
        lines += [_model_row(name, agg, label, seeds) for name, agg in entry["models"].items()]
        if label in figures:
            lines += ["", f"![{label}: windowed accuracy]({figures[label]})"]
        lines.append("")
    lines += [f"Skipped streams: {', '.join(meta['skipped_streams'])}", ""] \
        if meta["skipped_streams"] else []
    path.write_text("\n".join(lines))


def plot_stream(path: Path, label: str, results: list[dict[str, Any]], models: list[str]) -> None:
    """Windowed accuracy over time per model (mean over seeds), true drifts as grey lines,
    adaptive's detected drifts (first seed) as red ticks."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = sorted((r for r in results if "error" not in r), key=lambda r: r["seed"])
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=110)
    for pos in ok[0]["drift_positions"]:
        ax.axvline(pos, color="grey", alpha=0.6, linewidth=1, linestyle="--")
    for name in models:
        curves = [r["runs"][name]["curve"] for r in ok
                  if name in r["runs"] and "curve" in r["runs"][name]]
        if not curves or not curves[0]:
            continue
        length = min(len(c) for c in curves)
        xs = [p[0] for p in curves[0][:length]]
        ys = [statistics.fmean(c[i][1] for c in curves) * 100 for i in range(length)]
        ax.plot(xs, ys, label=name, linewidth=1.2 if name in (ADAPTIVE, MOE_DATA) else 0.9)
    adaptive = ok[0]["runs"].get(ADAPTIVE, {})
    ticks = adaptive.get("drifts_detected", [])
    if ticks:
        ax.plot(ticks, [0.02] * len(ticks), "|", color="red", markersize=12, markeredgewidth=1.5,
                transform=ax.get_xaxis_transform(), label="adaptive: detected drift")
    ax.set_xlabel("record")
    ax.set_ylabel(f"windowed accuracy % (last {ok[0]['window']:,})")
    ax.set_title(f"{label}: {ok[0]['n_records']:,} records"
                 + (f", mean of {len(ok)} seeds" if len(ok) > 1 else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def render(out: Path, merge: Path | None = None) -> int:
    """Rewrite ``out/RESULTS.md`` from ``out/results.json`` (with the current ANALYSIS.md),
    without running anything; 2 when a results.json is missing. With ``merge``, the streams of
    ``merge/results.json`` (a run with the same size and seeds) are added to ``out``'s first,
    replacing any stream of the same name, and their plots copied."""
    try:
        data = json.loads((out / "results.json").read_text())
        extra = json.loads((merge / "results.json").read_text()) if merge else None
    except FileNotFoundError as exc:
        print(f"no results.json: {exc.filename}", file=sys.stderr)
        return 2
    if extra is not None:
        if (extra["meta"]["limit"], extra["meta"]["seeds"]) != (data["meta"]["limit"],
                                                                 data["meta"]["seeds"]):
            print("--merge: the two runs differ in records per stream or seeds", file=sys.stderr)
            return 2
        data = _merged(data, extra)
        for label in extra["streams"]:
            if (merge / f"{label}.png").is_file():
                shutil.copyfile(merge / f"{label}.png", out / f"{label}.png")
        (out / "results.json").write_text(json.dumps(data, indent=1, default=_json_default))
    figures = {label: f"{label}.png" for label in data["streams"]
               if (out / f"{label}.png").is_file()}
    write_markdown(out / "RESULTS.md", data["meta"], data["streams"], data["summary"], figures)
    print(f"written: {out / 'RESULTS.md'}")
    return 0
