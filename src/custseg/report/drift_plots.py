"""Plots for drift and evolution reports (same style and palette as the segment report)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Polygon
from matplotlib.ticker import PercentFormatter

from custseg.report.plots import _RC, POPULATION, _figure, _png, segment_colour, wrap

THRESHOLD_COLOURS = {"material": "#E69F00", "major": "#D55E00"}


def psi_bars(features: Sequence[str], psi: Sequence[float], thresholds: Sequence[float],
             drifted: Sequence[bool], material: float, major: float) -> bytes:
    """PSI per feature (largest first) with the material and major levels and each feature's
    calibrated threshold."""
    n = len(features)
    with plt.rc_context(_RC):
        fig, axes = _figure(1, 1, height=0.32 * n + 1.2)
        ax = axes[0, 0]
        y = np.arange(n)
        colours = ["#D55E00" if d else "#0072B2" for d in drifted]
        ax.barh(y, psi, color=colours, height=0.6)
        ax.scatter(thresholds, y, marker="|", s=180, color="#333333", zorder=3,
                   label="calibrated threshold")
        ax.axvline(material, color=THRESHOLD_COLOURS["material"], linestyle="--", linewidth=1.2,
                   label=f"material (PSI {material})")
        ax.axvline(major, color=THRESHOLD_COLOURS["major"], linestyle="--", linewidth=1.2,
                   label=f"major (PSI {major})")
        ax.set_yticks(y, [wrap(f, 28, 1) for f in features])
        ax.invert_yaxis()
        ax.set_xlabel("PSI (population stability index)")
        ax.set_title("Drift per feature (orange bars drifted)")
        ax.set_xlim(0, max(max(psi, default=0) * 1.1, major * 1.2))
        ax.legend(loc="lower right", fontsize=8)
        return _png(fig)


def share_bars(names: Sequence[str], reference: Sequence[float], current: Sequence[float],
               ref_label: str, cur_label: str) -> bytes:
    """Segment shares in the reference and current snapshot side by side."""
    n = len(names)
    with plt.rc_context(_RC):
        fig, axes = _figure(1, 1, height=0.55 * n + 1.2)
        ax = axes[0, 0]
        y = np.arange(n)
        ax.barh(y - 0.2, reference, height=0.38, color=POPULATION, label=ref_label)
        ax.barh(y + 0.2, current, height=0.38, color=[segment_colour(i) for i in range(n)],
                label=cur_label)
        ax.set_yticks(y, [wrap(nm, 24) for nm in names])
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_title("Segment shares: reference (grey) and current (segment colour)")
        ax.legend(loc="lower right", fontsize=8)
        return _png(fig)


def trajectories(x: Sequence[str], series: dict[str, Sequence[float]], title: str,
                 ylabel: str, percent: bool = False,
                 hlines: dict[str, float] | None = None,
                 colours: Sequence[str] | None = None) -> bytes:
    """Lines over snapshots (segment shares, drift score)."""
    with plt.rc_context(_RC):
        fig, axes = _figure(1, 1, height=3.6)
        ax = axes[0, 0]
        pos = np.arange(len(x))
        for i, (name, ys) in enumerate(series.items()):
            ax.plot(pos, ys, marker="o", linewidth=2,
                    color=colours[i] if colours else segment_colour(i), label=wrap(name, 26, 1))
        for label, v in (hlines or {}).items():
            ax.axhline(v, linestyle="--", linewidth=1.2,
                       color=THRESHOLD_COLOURS.get(label.split()[0], "#555555"), label=label)
        ax.set_xticks(pos, [wrap(s, 12) for s in x])
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if percent:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        return _png(fig)


def migration_flow(names: Sequence[str], matrix: np.ndarray, source: str, target: str) -> bytes:
    """A flow chart (two stacked columns joined by bands) of customers moving between segments.

    ``matrix[i, j]`` counts customers in segment i then j; the last row is "new" customers and
    the last column "gone" ones.
    """
    rows = [*names, "new"]
    cols = [*names, "gone"]
    total = max(matrix.sum(), 1)
    gap = 0.01
    with plt.rc_context(_RC):
        fig, axes = _figure(1, 1, height=5.0)
        ax = axes[0, 0]
        ax.set_xlim(-0.35, 1.35)
        ax.set_ylim(0, 1 + gap * (len(rows) + 1))
        ax.axis("off")

        def colour(i: int, n: int) -> str:
            return segment_colour(i) if i < n - 1 else "#bbbbbb"

        def stack(sizes: np.ndarray) -> np.ndarray:
            tops = np.zeros(len(sizes))
            y = 1 + gap * len(sizes)
            for i, s in enumerate(sizes):
                tops[i] = y
                y -= s / total + gap
            return tops

        left_sizes, right_sizes = matrix.sum(axis=1), matrix.sum(axis=0)
        ltop, rtop = stack(left_sizes), stack(right_sizes)
        lcur, rcur = ltop.copy(), rtop.copy()
        for i in range(len(rows)):
            for j in range(len(cols)):
                h = matrix[i, j] / total
                if h <= 0:
                    continue
                poly = Polygon([(0.08, lcur[i]), (0.92, rcur[j]), (0.92, rcur[j] - h),
                                (0.08, lcur[i] - h)], closed=True, alpha=0.35,
                               color=colour(i, len(rows)), linewidth=0)
                ax.add_patch(poly)
                lcur[i] -= h
                rcur[j] -= h
        for i, s in enumerate(left_sizes):
            ax.add_patch(plt.Rectangle((0, ltop[i] - s / total), 0.08, s / total,
                                       color=colour(i, len(rows))))
            if s:
                ax.text(-0.02, ltop[i] - s / total / 2, f"{wrap(rows[i], 22, 1)} ({int(s):,})",
                        ha="right", va="center", fontsize=8)
        for j, s in enumerate(right_sizes):
            ax.add_patch(plt.Rectangle((0.92, rtop[j] - s / total), 0.08, s / total,
                                       color=colour(j, len(cols))))
            if s:
                ax.text(1.02, rtop[j] - s / total / 2, f"{wrap(cols[j], 22, 1)} ({int(s):,})",
                        ha="left", va="center", fontsize=8)
        ax.set_title(f"Where customers went: {source} → {target}")
        return _png(fig)
