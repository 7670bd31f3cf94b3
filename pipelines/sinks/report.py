"""The PNG report: accuracy over time with the true drift points marked; under it a strip counting
the detected drifts, and a heat strip per input feature showing when each feature drifted."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")   # files only; no display on servers or CI
import matplotlib.pyplot as plt  # noqa: E402

from pipelines.validation import printable  # noqa: E402

#: Most feature rows drawn; a wider stream shows the features that drifted most.
MAX_FEATURE_ROWS = 40
#: Columns of the drift and heat strips: each cell counts drifts in 1/200 of the stream, so
#: hundreds of marks stay readable (a taller bar or darker cell, not a forest of lines).
STRIP_BINS = 200


def plot_accuracy(curve: list[tuple[int, float, float]], path: str, *, title: str,
                  detected: list[int] = (), true_drifts: list[int] = (), window: int = 1000,
                  features: Sequence[str] = (), input_drifts: Sequence[dict[str, Any]] = (),
                  n_records: int = 0) -> None:
    """Write `report_figure` to ``path`` (PNG)."""
    fig = report_figure(curve, title=title, detected=detected, true_drifts=true_drifts,
                        window=window, features=features, input_drifts=input_drifts,
                        n_records=n_records)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report_figure(curve: list[tuple[int, float, float]], *, title: str,
                  detected: Sequence[int] = (), true_drifts: Sequence[int] = (),
                  window: int = 1000, features: Sequence[str] = (),
                  input_drifts: Sequence[dict[str, Any]] = (), n_records: int = 0) -> Any:
    """Windowed and cumulative prequential accuracy against record position, grey lines at the
    true drift centres; under it a thin strip counting the detected drifts per 1/200 of the
    stream (bars, so 3 detections read as ticks and 280 as a density, never hidden by the
    legend); with ``features`` (the watched input features) a last panel with one row per
    feature, darker where its input drifts (``input_drifts``: ``{"position", "features":
    [names]}``) fall. ``n_records`` is the x range (else the last position seen)."""
    end = max([n_records, 1, *(p + 1 for p in detected),
               *(e["position"] + 1 for e in input_drifts), *(n for n, _, _ in curve)])
    rows = min(len(features), MAX_FEATURE_ROWS)
    heights = [4, 0.5] + ([0.22 * rows + 0.6] if features else [])
    fig, axes = plt.subplots(len(heights), 1, sharex=True, figsize=(10, 3.6 + sum(heights[1:])),
                             gridspec_kw={"height_ratios": heights})
    ax, rug = axes[0], axes[1]
    if curve:
        n, windowed, cumulative = zip(*curve)
        ax.plot(n, windowed, label=f"accuracy, last {window} records", lw=1)
        ax.plot(n, cumulative, label="cumulative accuracy", lw=1.5)
    else:
        ax.text(0.5, 0.5, "no labels: accuracy not measured", ha="center", va="center",
                transform=ax.transAxes, color="grey")
    for i, position in enumerate(true_drifts):
        ax.axvline(position, color="grey", ls="--", lw=1, label="true drift" if i == 0 else None)
    ax.set(ylabel="accuracy", title=printable(title), ylim=(0, 1), xlim=(0, end))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    _drift_strip(rug, detected, true_drifts, end)
    if features:
        _feature_strip(axes[2], list(features), input_drifts, end, true_drifts)
    axes[-1].set_xlabel("record")
    fig.tight_layout()
    return fig


def _drift_strip(ax: Any, detected: Sequence[int], true_drifts: Sequence[int], end: int) -> None:
    """Detected drifts counted per 1/`STRIP_BINS` of the stream, as red bars."""
    width = end / STRIP_BINS
    counts = np.bincount(np.minimum((np.asarray(detected, dtype=float) / width).astype(int),
                                    STRIP_BINS - 1), minlength=STRIP_BINS)
    bins = np.flatnonzero(counts)
    ax.bar(bins * width, counts[bins], width=width, align="edge", color="tab:red", lw=0)
    for position in true_drifts:
        ax.axvline(position, color="grey", ls="--", lw=1)
    ax.set_ylim(0, max(1, int(counts.max(initial=0))))
    ax.set_yticks([])
    ax.set_ylabel(f"{len(detected)}\ndrifts", rotation=0, ha="right", va="center", fontsize=8)
    ax.set_facecolor("#f4f4f4")


def _feature_strip(ax: Any, features: list[str], input_drifts: Sequence[dict[str, Any]],
                   end: int, true_drifts: Sequence[int]) -> None:
    """One row per feature; each cell's colour counts that feature's input drifts in it."""
    counts = np.zeros((len(features), STRIP_BINS))
    row = {name: i for i, name in enumerate(features)}
    for event in input_drifts:
        col = min(int(event["position"] * STRIP_BINS / end), STRIP_BINS - 1)
        for name in event["features"]:
            if name in row:
                counts[row[name], col] += 1
    order = np.argsort(-counts.sum(axis=1), kind="stable")[:MAX_FEATURE_ROWS]
    order.sort()   # the most drifting rows, kept in the features' own order
    shown = counts[order]
    ax.imshow(np.ma.masked_equal(shown, 0), aspect="auto", cmap="Reds", interpolation="nearest",
              vmin=0, vmax=max(1.0, shown.max()), extent=(0, end, len(order), 0))
    ax.set_facecolor("#f4f4f4")
    ax.set_yticks(np.arange(len(order)) + 0.5, [printable(features[i], 40) for i in order],
                  fontsize=7)   # a file's column names may hold control characters
    for position in true_drifts:
        ax.axvline(position, color="grey", ls="--", lw=1)
    hidden = len(features) - len(order)
    ax.set(xlim=(0, end), title="input drift by feature"
           + (f" ({hidden} quiet features not shown)" if hidden else ""))
    ax.title.set_fontsize(9)
