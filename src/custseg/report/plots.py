"""Plots as PNG bytes (matplotlib + seaborn, Agg backend, deterministic metadata)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

# Okabe-Ito: a colour-blind-safe qualitative palette; the same segment gets the same colour
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000", "#999999", "#882255", "#44AA99", "#117733"]


def segment_colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def k_selection_plot(ks: list[int], inertia: list[float], silhouette: list[float],
                     stability: list[float | None], chosen: int, knee: int | None) -> bytes:
    """Inertia (elbow) with the knee marked, and silhouette/stability per k, chosen k highlighted."""
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ax = axes[0]
    ax.plot(ks, inertia, marker="o", color=PALETTE[0])
    if knee is not None and knee in ks:
        ax.scatter([knee], [inertia[ks.index(knee)]], s=160, facecolors="none",
                   edgecolors=PALETTE[5], linewidths=2, label=f"knee (k={knee})", zorder=3)
        ax.legend()
    ax.axvline(chosen, color=PALETTE[2], linestyle="--", linewidth=1.5)
    ax.set(xlabel="k (number of segments)", ylabel="inertia", title="Elbow: inertia by k")
    ax = axes[1]
    ax.plot(ks, silhouette, marker="o", color=PALETTE[0], label="silhouette")
    if any(s is not None for s in stability):
        ax.plot(ks, [np.nan if s is None else s for s in stability], marker="s",
                color=PALETTE[1], label="stability (bootstrap ARI)")
    ax.axvline(chosen, color=PALETTE[2], linestyle="--", linewidth=1.5, label=f"chosen k={chosen}")
    ax.set(xlabel="k (number of segments)", ylabel="score", title="Silhouette and stability")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def sizes_plot(names: list[str], sizes: list[int], revenue_share: list[float | None]) -> bytes:
    """Segment sizes and revenue shares side by side."""
    sns.set_theme(style="whitegrid", context="notebook")
    has_rev = any(r is not None for r in revenue_share)
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(names) + 1.2))
    y = np.arange(len(names))
    total = sum(sizes)
    ax.barh(y - (0.2 if has_rev else 0), [s / total for s in sizes], height=0.4 if has_rev else 0.6,
            color=[segment_colour(i) for i in range(len(names))], label="share of customers")
    if has_rev:
        ax.barh(y + 0.2, [r or 0 for r in revenue_share], height=0.4, color="#bbbbbb",
                label="share of revenue")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_title("Segment sizes")
    fig.tight_layout()
    return _png(fig)
