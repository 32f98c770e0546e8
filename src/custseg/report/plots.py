"""Plots as PNG bytes (matplotlib + seaborn, Agg backend, deterministic bytes).

Every function takes plain numbers, labels and colours (prepared by :mod:`custseg.report.render`
from the result objects) and returns the PNG file content. Nothing here touches the global
matplotlib state: each figure is drawn inside an ``rc_context`` with the report's style, and the
PNG carries no ``Software`` or date metadata, so the same input gives the same bytes.
"""

from __future__ import annotations

import io
import textwrap
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter  # noqa: E402

from custseg.labels import money  # noqa: E402

# Colour-blind-safe qualitative colours: Okabe & Ito (2008) without yellow and black, then Paul
# Tol's "muted" wine, olive, indigo and teal. A segment's colour is PALETTE[its position].
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#882255",
           "#999933", "#332288", "#44AA99", "#F0E442", "#000000"]
POPULATION = "#8c8c8c"   # everyone, in every comparison
HIGHLIGHT = "#009E73"    # the chosen k
KNEE = "#D55E00"
DIVERGING = "RdBu_r"     # standardised differences: blue below, red above the population

DPI = 100
WIDTH = 10.0  # inches; 1,000 px, the report's column width

_RC = {
    **sns.axes_style("whitegrid"),
    **sns.plotting_context("notebook", font_scale=0.85),
    "font.family": "DejaVu Sans",
    "axes.titleweight": "bold",
    "axes.titlesize": 11,
    "axes.titlelocation": "left",
    "axes.edgecolor": "#c9ced6",
    "grid.color": "#e6e9ee",
    "legend.frameon": True,
    "legend.framealpha": 0.9,
    "legend.edgecolor": "#c9ced6",
    "savefig.facecolor": "white",
    "figure.facecolor": "white",
    "svg.hashsalt": "custseg",
}


def segment_colour(index: int) -> str:
    """The colour of the segment at ``index`` in ``Profiles.segments`` (same in every plot)."""
    return PALETTE[index % len(PALETTE)]


def wrap(text: str, width: int = 18, lines: int = 2) -> str:
    """Wrap a long label onto at most ``lines`` lines (ellipsis when cut)."""
    return "\n".join(textwrap.wrap(text, width=width, max_lines=lines, placeholder="…")) or text


def fmt_num(x: float | None) -> str:
    """A short human number: 43,998 / 12.3 / 0.57."""
    if x is None or not np.isfinite(x):
        return "n/a"
    if abs(x) >= 1000 or abs(x - round(x)) < 1e-9:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_money(v: float | None, currency: str = "") -> str:
    """Money in the one format of every output (:func:`custseg.labels.money`)."""
    return money(v, currency)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _figure(nrows: int, ncols: int, height: float, width: float = WIDTH, **kw):
    return plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False,
                        layout="constrained", **kw)


def _mark_chosen(ax, chosen: int) -> None:
    ax.axvspan(chosen - 0.4, chosen + 0.4, color=HIGHLIGHT, alpha=0.15, zorder=0, linewidth=0)


# ------------------------------------------------------------------------------------ choosing k


def k_selection_plot(ks: Sequence[int], inertia: Sequence[float], silhouette: Sequence[float],
                     stability: Sequence[float | None], calinski: Sequence[float | None],
                     davies: Sequence[float | None], chosen: int, knee: int | None) -> bytes:
    """Four small multiples: the elbow with its knee, silhouette with stability, CH and DB.

    The chosen k is a green band in every panel; the knee a vermillion ring on the elbow.
    """
    ks = list(ks)
    with plt.rc_context(_RC):
        fig, axes = _figure(2, 2, 6.6)
        ax = axes[0, 0]
        _mark_chosen(ax, chosen)
        ax.plot(ks, inertia, marker="o", color=PALETTE[0], label="inertia")
        if knee is not None and knee in ks:
            ax.scatter([knee], [inertia[ks.index(knee)]], s=220, facecolors="none",
                       edgecolors=KNEE, linewidths=2.2, zorder=3, label=f"knee (k={knee})")
        ax.set(title="Elbow: within-segment inertia (lower is tighter)", ylabel="inertia")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _short(v)))
        handles = [Patch(color=HIGHLIGHT, alpha=0.3, label=f"chosen k={chosen}"),
                   *ax.get_legend_handles_labels()[0]]

        ax = axes[0, 1]
        _mark_chosen(ax, chosen)
        ax.plot(ks, silhouette, marker="o", color=PALETTE[0], label="silhouette")
        if any(s is not None for s in stability):
            ax.plot(ks, [np.nan if s is None else s for s in stability], marker="s",
                    color=PALETTE[1], label="stability (bootstrap ARI)")
            ax.axhline(0.75, color=PALETTE[1], linestyle=":", linewidth=1.2,
                       label="stability threshold 0.75")
        ax.set(title="Silhouette and stability (higher is better)", ylabel="score")
        lo = min([*silhouette, *[s for s in stability if s is not None], 0.0])
        ax.set_ylim(min(lo - 0.05, 0.0), 1.05)
        handles += ax.get_legend_handles_labels()[0]
        # one legend for all panels, below them: never on top of a curve
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8.5,
                   frameon=False)

        for ax, values, title, colour in (
            (axes[1, 0], calinski, "Calinski-Harabasz (higher is better)", PALETTE[2]),
            (axes[1, 1], davies, "Davies-Bouldin (lower is better)", PALETTE[3]),
        ):
            _mark_chosen(ax, chosen)
            ax.plot(ks, [np.nan if v is None else v for v in values], marker="o", color=colour)
            ax.set(title=title)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _short(v)))
        shown = sorted({*ks, chosen})  # a k set by the user may lie outside the scored range
        for ax in axes.flat:
            ax.set_xticks(shown)
            ax.set_xlim(min(shown) - 0.6, max(shown) + 0.6)
        for ax in axes[1]:
            ax.set_xlabel("k (number of segments)")
        return _png(fig)


def _short(v: float) -> str:
    """Axis tick text: 1.5M, 25k, 1,250, 12, 0.25 (distinct for neighbouring ticks)."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.2f}".rstrip("0").rstrip(".") + "M"
    if a >= 1e4:
        return f"{v / 1e3:.1f}".removesuffix(".0") + "k"
    if a >= 1e3:
        return f"{v:,.0f}"
    if a >= 10 or v == round(v):
        return f"{v:.0f}"
    return f"{v:.2f}".rstrip("0").rstrip(".")


def silhouette_plot(values: np.ndarray, labels: np.ndarray, segment_ids: Sequence[int],
                    names: Sequence[str], colours: Sequence[str], mean: float) -> bytes:
    """The classic silhouette plot: each sampled customer's silhouette, sorted within segment."""
    with plt.rc_context(_RC):
        fig, axes = _figure(1, 1, 0.35 * len(segment_ids) + 3.2, width=8.5)
        ax = axes[0, 0]
        gap = max(10, int(0.02 * len(values)))
        y = 0
        ticks, ticklabels = [], []
        for sid, name, colour in zip(segment_ids, names, colours, strict=True):
            v = np.sort(values[labels == sid])
            if v.size == 0:
                continue
            ax.fill_betweenx(np.arange(y, y + v.size), 0, v, color=colour, linewidth=0)
            ticks.append(y + v.size / 2)
            ticklabels.append(f"{sid}. {wrap(name, 26, 1)}")
            y += v.size + gap
        ax.axvline(mean, color="#333333", linestyle="--", linewidth=1.2)
        ax.axvline(0, color="#333333", linewidth=0.8)
        ax.set_yticks(ticks, ticklabels)
        ax.set_ylim(y, -gap)
        ax.grid(axis="y", visible=False)
        ax.set(xlabel="silhouette of each customer (−1 wrong segment … +1 well inside its own)",
               title=f"Silhouette per customer, by segment (dashed: mean {mean:.3f})")
        ax.set_xlim(min(-0.2, float(values.min()) - 0.05) if values.size else -0.2, 1.0)
        return _png(fig)


# ------------------------------------------------------------------------------------ segment map


def segment_map_plot(points: np.ndarray, labels: np.ndarray, centroids: np.ndarray,
                     segment_ids: Sequence[int], names: Sequence[str], colours: Sequence[str],
                     explained_variance: tuple[float, float]) -> bytes:
    """Customers on the first two principal components, coloured by segment; centroids numbered.

    Large segments are drawn first and small ones on top, so a small segment is not buried
    under a big one (within a segment, customers keep their order). The legend sits below the
    map, never on the data.
    """
    colour_of = dict(zip(segment_ids, colours, strict=True))
    ids, counts = np.unique(labels, return_counts=True)
    size_of = dict(zip(ids.tolist(), counts.tolist(), strict=True))
    order = np.argsort([-size_of[int(s)] for s in labels], kind="stable")
    points, labels = points[order], labels[order]
    n = len(points)
    base = 14 if n <= 1000 else 7 if n <= 3000 else 4
    # a segment with few points on the map gets bigger, opaque dots so it can be seen at all
    small = {sid for sid, cnt in size_of.items() if cnt < max(100, 0.05 * n)}
    rgba = [(*matplotlib.colors.to_rgb(colour_of[int(s)]), 0.9 if int(s) in small else 0.55)
            for s in labels]
    sizes = [base * 2.5 if int(s) in small else base for s in labels]
    with plt.rc_context(_RC):
        fig, axes = _figure(1, 1, 7.4, width=9.0)
        ax = axes[0, 0]
        ax.scatter(points[:, 0], points[:, 1], c=rgba, s=sizes, linewidths=0, rasterized=True)
        for (x, yy), sid, colour in zip(centroids, segment_ids, colours, strict=True):
            ax.scatter([x], [yy], s=420, marker="o", color=colour, edgecolors="white",
                       linewidths=2.5, zorder=4)
            ax.text(x, yy, str(sid), ha="center", va="center", color="white", fontsize=10,
                    fontweight="bold", zorder=5)
        ax.set(xlabel=f"principal component 1 ({explained_variance[0]:.0%} of variance)",
               ylabel=f"principal component 2 ({explained_variance[1]:.0%} of variance)",
               title="Customers on the two main directions of variation")
        longest = max(len(name) for name in names)
        ncols = min(len(names), 3 if longest <= 28 else 2)
        handles = [Line2D([], [], marker="o", linestyle="", markersize=9, color=col,
                          label=wrap(f"{sid}. {name}", 44 if ncols == 2 else 30, 2))
                   for sid, name, col in zip(segment_ids, names, colours, strict=True)]
        fig.legend(handles=handles, loc="outside lower center", ncols=ncols, fontsize=9,
                   frameon=False)
        return _png(fig)


# ------------------------------------------------------------------------------------ overview


def sizes_plot(labels: Sequence[str], colours: Sequence[str], share: Sequence[float],
               revenue_share: Sequence[float | None],
               value_per_customer: Sequence[float | None],
               average_value: float | None) -> bytes:
    """Share of customers (and of revenue) per segment; value per customer when known."""
    has_rev = any(r is not None for r in revenue_share)
    has_value = has_rev and any(v is not None for v in value_per_customer)
    k = len(labels)
    y = np.arange(k)
    ticklabels = [wrap(lab, 30, 2) for lab in labels]
    with plt.rc_context(_RC):
        fig, axes = _figure(1, 2 if has_value else 1, 0.62 * k + 1.5,
                            width=WIDTH if has_value else 7.5)
        ax = axes[0, 0]
        h = 0.38 if has_rev else 0.6
        ax.barh(y - (h / 2 if has_rev else 0), share, height=h, color=colours,
                label="share of customers")
        for yi, v in zip(y, share, strict=True):
            ax.text(v, yi - (h / 2 if has_rev else 0), f" {v:.0%}", va="center", fontsize=8)
        if has_rev:
            rev = [r or 0.0 for r in revenue_share]
            ax.barh(y + h / 2, rev, height=h, color=colours, alpha=0.45, hatch="///",
                    edgecolor="white", label="share of revenue")
            for yi, v in zip(y, rev, strict=True):
                ax.text(v, yi + h / 2, f" {v:.0%}", va="center", fontsize=8)
            fig.legend(handles=[Patch(facecolor="#666666", label="share of customers (solid)"),
                                Patch(facecolor="#666666", alpha=0.45, hatch="///",
                                      edgecolor="white", label="share of revenue (hatched)")],
                       loc="outside lower center", ncols=2, fontsize=8.5, frameon=False)
        ax.set_yticks(y, ticklabels)
        ax.invert_yaxis()
        top = max([*share, *[r or 0 for r in revenue_share]])
        ax.set_xlim(0, min(1.0, top * 1.25) if top > 0 else 1.0)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.grid(axis="y", visible=False)
        ax.set_title("Customers and revenue" if has_rev else "Share of customers")
        if has_value:
            ax = axes[0, 1]
            vals = [v or 0.0 for v in value_per_customer]
            ax.barh(y, vals, height=0.6, color=colours)
            for yi, v in zip(y, vals, strict=True):
                ax.text(v, yi, f" {fmt_money(v)}", va="center", fontsize=8, zorder=4,
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6,
                              "alpha": 0.85})
            if average_value is not None:
                ax.axvline(average_value, color="#333333", linestyle="--", linewidth=1.2)
            ax.set_yticks(y, [""] * k)
            ax.invert_yaxis()
            ax.set_xlim(0, max(vals) * 1.22 if max(vals) > 0 else 1)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _short(v)))
            ax.grid(axis="y", visible=False)
            ax.set_title("Value per customer" + (f" (dashed: average {fmt_money(average_value)})"
                                                 if average_value is not None else ""))
        return _png(fig)


def profile_heatmap(z: np.ndarray, feature_labels: Sequence[str],
                    segment_labels: Sequence[str], colours: Sequence[str]) -> bytes:
    """Standardised differences (segment vs population, in SD) as a features × segments heatmap.

    Colours saturate at ±2 SD; every cell is also written as a signed number.
    """
    n_feat, k = z.shape
    cell_w, cell_h = min(1.15, 7.4 / k), 0.27
    # up to 6 segments: names wrapped under each other; more: one slanted line each
    slanted = k > 6
    xlabels = [wrap(s, 30, 1) if slanted else wrap(s, 15, 4) for s in segment_labels]
    ylabels = list(feature_labels)
    left = _text_width(ylabels, 8) + 0.1
    top = (0.65 * _text_width(xlabels, 8) + 0.2 if slanted
           else 0.16 * max(lab.count("\n") + 1 for lab in xlabels) + 0.15)
    right = 0.95  # the colour bar
    if slanted:  # the last slanted name must not run off the right edge
        right = max(right, 0.77 * _text_width(xlabels[-1:], 8) - cell_w / 2 + 0.1)
    width, height = left + cell_w * k + right, top + cell_h * n_feat + 0.1
    text = np.array([[f"{v:+.1f}".replace("+0.0", "0.0").replace("-0.0", "0.0") for v in row]
                     for row in z])
    with plt.rc_context(_RC):
        fig = plt.figure(figsize=(width, height))
        ax = fig.add_axes((left / width, 0.1 / height, cell_w * k / width,
                           cell_h * n_feat / height))
        bar_h = min(cell_h * n_feat, 2.6)
        cax = fig.add_axes(((left + cell_w * k + 0.15) / width,
                            (0.1 + (cell_h * n_feat - bar_h) / 2) / height,
                            0.14 / width, bar_h / height))
        with warnings.catch_warnings():
            # seaborn 0.13 calls Colormap.set_bad, which matplotlib >= 3.11 flags as pending
            # deprecation; harmless here, and only this call is filtered
            warnings.filterwarnings("ignore", "The set_bad function", PendingDeprecationWarning)
            sns.heatmap(z, ax=ax, cbar_ax=cax, cmap=DIVERGING, vmin=-2, vmax=2, center=0,
                        annot=text, fmt="", annot_kws={"fontsize": 7.5}, linewidths=0.5,
                        linecolor="white", xticklabels=xlabels, yticklabels=ylabels,
                        cbar_kws={"label": "SD from all customers" if bar_h >= 2 else "SD"})
        cax.tick_params(labelsize=7.5)
        ax.xaxis.tick_top()
        ax.tick_params(axis="x", labelsize=8, length=0, rotation=0)
        ax.tick_params(axis="y", labelsize=8, length=0, rotation=0)
        for tick, colour in zip(ax.get_xticklabels(), colours, strict=True):
            tick.set_color(colour)
            tick.set_fontweight("bold")
            if slanted:
                tick.set_rotation(40)
                tick.set_rotation_mode("anchor")
                tick.set_horizontalalignment("left")
        return _png(fig)


# ------------------------------------------------------------------------------------ segment cards


def _text_width(labels: Sequence[str], size: float) -> float:
    """Rough width in inches of the longest label at font ``size`` (for manual margins)."""
    longest = max((max((len(line) for line in lab.split("\n")), default=0) for lab in labels),
                  default=0)
    return longest * size * 0.0075 + 0.1


def distinguishing_plot(labels: Sequence[str], scores: Sequence[float],
                        annotations: Sequence[str], colour: str, xlabel: str) -> bytes:
    """What sets one segment apart: horizontal bars of its differences from the population,
    each annotated with the values behind it (written on the empty side of the zero line)."""
    n = len(labels)
    y = np.arange(n)
    width, height = 5.0, 0.42 * n + 1.05
    ticklabels = [wrap(lab, 26, 1) for lab in labels]
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(width, height))
        left = (_text_width(ticklabels, 9) + 0.1) / width
        fig.subplots_adjust(left=left, right=0.98, top=1 - 0.35 / height, bottom=0.62 / height)
        ax.barh(y, scores, color=colour, height=0.62)
        ax.axvline(0, color="#333333", linewidth=0.8)
        lim = max([abs(s) for s in scores] + [0.5]) * 1.05
        for yi, s, text in zip(y, scores, annotations, strict=True):
            ax.text(-lim * 0.03 if s >= 0 else lim * 0.03, yi, text, va="center",
                    ha="right" if s >= 0 else "left", fontsize=8, color="#333333")
        ax.set_xlim(-lim, lim)
        ax.set_yticks(y, ticklabels, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_title("What sets it apart", fontsize=10)
        return _png(fig)


@dataclass
class DistributionPanel:
    """One feature's values in a segment sample and a population sample (original units)."""

    title: str
    segment: np.ndarray
    population: np.ndarray
    segment_median: float
    population_median: float
    lo: float
    hi: float
    log: bool = False
    discrete: bool = False


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Round values (0, 1, 2, 5, 10, 20, …) between lo and hi, evenly spread on a log(1 + x)
    axis: a candidate is kept only when it is at least a seventh of the axis from the last."""
    cands = sorted({0.0} | {m * 10.0 ** e for e in range(-2, 10) for m in (1, 2, 5)})
    span = np.log1p(max(hi, 0)) - np.log1p(max(lo, 0))
    ticks: list[float] = []
    for c in cands:
        if lo <= c <= hi and (not ticks or np.log1p(c) - np.log1p(ticks[-1]) >= span / 7):
            ticks.append(c)
    return ticks if len(ticks) >= 2 else [lo, hi]


def distributions_plot(panels: Sequence[DistributionPanel], colour: str,
                       segment_label: str) -> bytes:
    """Key features of one segment against everyone: density histograms, medians dashed.

    Skewed amounts and counts are binned and drawn on a log(1 + x) axis, as the model sees them,
    with ticks in the original units; the axis spans the population's typical range (the
    model's clipping bounds), values beyond it are counted in the edge bins.
    """
    ncols = len(panels)
    width, height = min(9.6, 2.4 * ncols + 0.3), 2.75
    with plt.rc_context(_RC):
        fig, axes = plt.subplots(1, ncols, figsize=(width, height), squeeze=False)
        fig.subplots_adjust(left=0.02, right=0.98, top=1 - 0.32 / height,
                            bottom=0.95 / height, wspace=0.12)
        for ax, p in zip(axes.flat, panels, strict=True):
            lo, hi = p.lo, p.hi
            seg, pop = p.segment, p.population
            seg_med, pop_med = p.segment_median, p.population_median
            if p.log:
                f = np.log1p
                seg, pop = f(np.maximum(seg, 0)), f(np.maximum(pop, 0))
                seg_med, pop_med = f(max(seg_med, 0)), f(max(pop_med, 0))
                ticks = _log_ticks(lo, hi)
                lo, hi = f(max(lo, 0)), f(max(hi, 0))
            if p.discrete:
                bins = np.arange(np.round(lo) - 0.5, np.round(hi) + 1.0, 1.0)
            else:
                bins = np.linspace(lo, hi, 31) if hi > lo else np.linspace(lo - 0.5, hi + 0.5, 31)
            pop_h = np.histogram(np.clip(pop, bins[0], bins[-1]), bins=bins, density=True)[0]
            seg_h = np.histogram(np.clip(seg, bins[0], bins[-1]), bins=bins, density=True)[0]
            ax.stairs(pop_h, bins, fill=True, color=POPULATION, alpha=0.45)
            ax.stairs(seg_h, bins, fill=True, color=colour, alpha=0.2)
            ax.stairs(seg_h, bins, color=colour, linewidth=1.8)
            ax.set_ylim(0, max(pop_h.max(), seg_h.max()) * 1.05 or 1)
            ax.axvline(pop_med, color="#555555", linestyle="--", linewidth=1.2)
            ax.axvline(seg_med, color=colour, linestyle="--", linewidth=1.8)
            if p.log:
                ax.set_xticks(np.log1p(ticks), [_short(t) for t in ticks])
            elif p.discrete and hi - lo <= 12:
                ax.set_xticks(np.arange(np.round(lo), np.round(hi) + 1))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _short(v)))
            else:
                ax.xaxis.set_major_locator(MaxNLocator(5))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _short(v)))
            ax.set_xlim(bins[0], bins[-1])
            ax.set_yticks([])
            ax.grid(axis="y", visible=False)
            ax.set_title(wrap(p.title, 28, 1), fontsize=9)
            ax.set_xlabel(f"median {fmt_num(p.segment_median)} vs {fmt_num(p.population_median)}",
                          fontsize=8)
            ax.tick_params(axis="x", labelsize=7.5)
        fig.legend(handles=[Patch(color=colour, alpha=0.5, label=f"{segment_label} (dashed: median)"),
                            Patch(color=POPULATION, alpha=0.45,
                                  label="all customers (dashed: median)")],
                   loc="lower center", ncols=2, fontsize=8.5, frameon=False)
        return _png(fig)


def holdout_plot(unit: Sequence[float], actual: Sequence[float], expected: Sequence[float],
                 calibration_end_unit: float, conditional: Sequence[dict],
                 unit_days: float) -> bytes:
    """The value model's holdout check: cumulative repeat purchases, actual vs the model's
    expectation, with the calibration end marked (left); mean repeat purchases in the holdout by
    repeat purchases in calibration, actual vs predicted (right)."""
    fig, axes = _figure(1, 2, 3.6)
    left, right = axes[0]
    word = "weeks" if unit_days == 7 else f"units of {unit_days:g} days"
    left.plot(unit, actual, color="#222222", lw=1.8, label="actual")
    left.plot(unit, expected, color="#d55e00", lw=1.8, ls="--", label="BG/NBD expected")
    left.axvline(calibration_end_unit, color="#888888", lw=1, ls=":")
    left.text(calibration_end_unit, left.get_ylim()[1] * 0.97, " calibration end", fontsize=8,
              va="top", color="#555555")
    left.set_xlabel(word)
    left.set_ylabel("cumulative repeat purchases")
    left.set_title("Tracking")
    left.legend(frameon=False, fontsize=8, loc="upper left")
    x = np.arange(len(conditional))
    right.plot(x, [c["actual"] for c in conditional], color="#222222", marker="o", lw=1.8,
               label="actual")
    right.plot(x, [c["predicted"] for c in conditional], color="#d55e00", marker="s", lw=1.8,
               ls="--", label="BG/NBD predicted")
    right.set_xticks(x, [str(c["repeat_purchases"]) for c in conditional])
    right.set_xlabel("repeat purchases in the calibration period")
    right.set_ylabel("mean repeat purchases in the holdout")
    right.set_title("Conditional expectation")
    right.legend(frameon=False, fontsize=8, loc="upper left")
    return _png(fig)
