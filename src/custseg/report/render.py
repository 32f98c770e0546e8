"""Render a :class:`~custseg.pipeline.SegmentationResult` into one self-contained HTML file."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from jinja2 import Environment, PackageLoader, select_autoescape

from custseg.report import plots

if TYPE_CHECKING:
    from custseg.pipeline import SegmentationResult


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _env() -> Environment:
    env = Environment(loader=PackageLoader("custseg", "report/templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v, d=1: "n/a" if v is None else f"{v * 100:.{d}f}%"
    env.filters["num"] = lambda v, d=2: "n/a" if v is None else (
        f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.{d}f}")
    return env


def render_report(result: SegmentationResult) -> str:
    """The HTML report: overview, how k was chosen, segments with evidence and actions."""
    sel = result.selection
    ks = [s.k for s in sel.scores]
    images = {
        "k_selection": (_data_uri(plots.k_selection_plot(
            ks, [s.inertia for s in sel.scores], [s.silhouette for s in sel.scores],
            [s.stability for s in sel.scores], sel.k, sel.knee)),
            f"Inertia and silhouette by k; k={sel.k} was chosen"),
        "sizes": (_data_uri(plots.sizes_plot(
            [s.name for s in result.profiles.segments], [s.size for s in result.profiles.segments],
            [s.revenue_share for s in result.profiles.segments])),
            "Share of customers and of revenue per segment"),
    }
    return _env().get_template("report.html").render(
        r=result, summary=result.summary(), images=images,
        colours=[plots.segment_colour(i) for i in range(len(result.profiles.segments))],
    )
