"""The detector scoreboard's DETECTORS.md: per stream family a table of delay, missed changes,
false alarms and update cost, ranked, and a reading of it."""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

from bench.detector_scoring import ADAPTIVE_DEFAULTS, BASELINES, SLOW
from bench.detector_streams import FAMILIES, STREAMS
from bench.input_drift import BEGIN as INPUT_BEGIN
from bench.input_drift import END as INPUT_END
from bench.provenance import code_line


def _machine_text(m: dict) -> str:
    """One line about the machine: `bench.provenance.machine_info`'s keys, or the older ones
    of a detectors.json written before it (``cpu``, ``cores``, ``openblas_threads``)."""
    threads = (f"BLAS threads {m['blas_threads']}" if "blas_threads" in m
               else f"OPENBLAS_NUM_THREADS={m.get('openblas_threads', '?')}")
    return (f"{m.get('cpu_model', m.get('cpu'))}, {m.get('nproc', m.get('cores'))} cores "
            f"(shared), {m['platform']}, Python {m['python']}, numpy {m['numpy']}, "
            f"river {m['river']}, {threads}")


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
        f"- Machine: {_machine_text(machine)}",
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
