"""The PNG report: accuracy over time with detected and true drift points marked and, under it,
a heat strip per input feature showing when each feature drifted."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")   # files only; no display on servers or CI
import matplotlib.pyplot as plt  # noqa: E402


#: Most feature rows drawn; a wider stream shows the features that drifted most.
MAX_FEATURE_ROWS = 40
#: Columns of the heat strip: each cell counts a feature's input drifts in 1/200 of the stream,
#: so hundreds of marks stay readable (a darker cell, not a thicker forest of lines).
STRIP_BINS = 200


def plot_accuracy(curve: list[tuple[int, float, float]], path: str, *, title: str,
                  detected: list[int] = (), true_drifts: list[int] = (), window: int = 1000,
                  features: Sequence[str] = (), input_drifts: Sequence[dict[str, Any]] = (),
                  n_records: int = 0) -> None:
    """Windowed and cumulative prequential accuracy against record position; red ticks at the
    detected drifts, grey lines at the true drift centres. With ``features`` (the watched
    input features) a second panel has one row per feature, darker where its input drifts
    (``input_drifts``: ``{"position", "features": [names]}``) fall; ``n_records`` is the
    x range."""
    if not features:
        fig, ax = plt.subplots(figsize=(10, 4))
    else:
        rows = min(len(features), MAX_FEATURE_ROWS)
        fig, (ax, strip) = plt.subplots(
            2, 1, sharex=True, figsize=(10, 4 + 0.22 * rows + 0.6),
            gridspec_kw={"height_ratios": [4, 0.22 * rows + 0.6]})
        _feature_strip(strip, list(features), input_drifts, n_records, true_drifts)
    if curve:
        n, windowed, cumulative = zip(*curve)
        ax.plot(n, windowed, label=f"accuracy, last {window} records", lw=1)
        ax.plot(n, cumulative, label="cumulative accuracy", lw=1.5)
    for i, position in enumerate(true_drifts):
        ax.axvline(position, color="grey", ls="--", lw=1, label="true drift" if i == 0 else None)
    for i, position in enumerate(detected):
        ax.axvline(position, color="red", ymin=0, ymax=0.06, lw=1.5,
                   label="detected drift" if i == 0 else None)
    if not curve:
        ax.text(0.5, 0.5, "no labels: accuracy not measured", ha="center", va="center",
                transform=ax.transAxes, color="grey")
    ax.set(xlabel="" if features else "record", ylabel="accuracy", title=title, ylim=(0, 1))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _feature_strip(ax: Any, features: list[str], input_drifts: Sequence[dict[str, Any]],
                   n_records: int, true_drifts: Sequence[int]) -> None:
    """One row per feature; each cell's colour counts that feature's input drifts in it."""
    end = max([n_records, 1, *(e["position"] + 1 for e in input_drifts)])
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
    ax.set_yticks(np.arange(len(order)) + 0.5, [features[i] for i in order], fontsize=7)
    for position in true_drifts:
        ax.axvline(position, color="grey", ls="--", lw=1)
    hidden = len(features) - len(order)
    ax.set(xlabel="record", xlim=(0, end),
           title="input drift by feature" + (f" ({hidden} quiet features not shown)"
                                             if hidden else ""))
    ax.title.set_fontsize(9)
