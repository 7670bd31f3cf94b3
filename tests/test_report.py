"""The PNG report: detected drifts stay visible and countable, however many there are."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from pipelines.sinks.report import STRIP_BINS, plot_accuracy, report_figure

CURVE = [(n, 0.6 + 0.3 * np.sin(n / 5000), 0.8) for n in range(500, 45_001, 500)]


def _strip_and_legend(fig):
    accuracy, strip = fig.axes[0], fig.axes[1]
    return accuracy, strip, accuracy.get_legend()


@pytest.mark.parametrize("n_detected", [3, 280])   # 280: adaptive on Electricity
def test_detected_drifts_have_their_own_strip_the_legend_cannot_hide(n_detected: int) -> None:
    detected = sorted(np.random.default_rng(0).choice(45_000, n_detected, replace=False).tolist())
    fig = report_figure(CURVE, title="t", detected=detected, true_drifts=[15_000, 30_000],
                        n_records=45_312)
    fig.canvas.draw()
    accuracy, strip, legend = _strip_and_legend(fig)
    bars = strip.patches
    # every detection is counted once, in bins of 1/STRIP_BINS of the stream
    assert sum(b.get_height() for b in bars) == n_detected and len(bars) <= STRIP_BINS
    assert strip.get_ylabel().startswith(f"{n_detected}\n")
    # nothing of the detections is drawn in the accuracy panel, where the legend sits ...
    assert all(line.get_color() != "red" for line in accuracy.get_lines())
    # ... and the legend does not reach into the strip
    renderer = fig.canvas.get_renderer()
    legend_box, strip_box = legend.get_window_extent(renderer), strip.get_window_extent(renderer)
    assert not legend_box.overlaps(strip_box)
    # the densest bin decides the strip's height: 280 ticks are a profile, not a solid band
    assert strip.get_ylim()[1] == max(b.get_height() for b in bars)
    plt.close(fig)


def test_report_png_is_written(tmp_path) -> None:
    path = tmp_path / "report.png"
    plot_accuracy(CURVE, str(path), title="t", detected=[100, 20_000], n_records=45_000)
    assert path.stat().st_size > 10_000
