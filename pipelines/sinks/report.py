"""The PNG report: accuracy over time with detected and true drift points marked."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")   # files only; no display on servers or CI
import matplotlib.pyplot as plt  # noqa: E402


def plot_accuracy(curve: list[tuple[int, float, float]], path: str, *, title: str,
                  detected: list[int] = (), true_drifts: list[int] = (), window: int = 1000) -> None:
    """Windowed and cumulative prequential accuracy against record position; red ticks at the
    detected drifts, grey lines at the true drift centres."""
    fig, ax = plt.subplots(figsize=(10, 4))
    if curve:
        n, windowed, cumulative = zip(*curve)
        ax.plot(n, windowed, label=f"accuracy, last {window} records", lw=1)
        ax.plot(n, cumulative, label="cumulative accuracy", lw=1.5)
    for i, position in enumerate(true_drifts):
        ax.axvline(position, color="grey", ls="--", lw=1, label="true drift" if i == 0 else None)
    for i, position in enumerate(detected):
        ax.axvline(position, color="red", ymin=0, ymax=0.06, lw=1.5,
                   label="detected drift" if i == 0 else None)
    ax.set(xlabel="record", ylabel="accuracy", title=title, ylim=(0, 1))
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
