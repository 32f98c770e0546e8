"""Render drift and evolution results into self-contained HTML (the segment report's look)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape

from custseg.report import drift_plots
from custseg.results.drift import PSI_MAJOR, PSI_MATERIAL

if TYPE_CHECKING:
    from custseg.results.drift import DriftReport
    from custseg.results.evolution import EvolutionReport


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _env() -> Environment:
    env = Environment(loader=PackageLoader("custseg", "report/templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v, d=1: "n/a" if v is None else f"{v * 100:.{d}f}%"
    env.filters["num"] = _num
    return env


def _num(v, d: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if not np.isfinite(v):
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if v != 0 and abs(v) < 10 ** (-d):
        return f"{v:.1e}"
    return f"{v:,.{d}f}"


def render_drift(report: DriftReport) -> str:
    feats = report.features
    images = {}
    if feats:
        images["psi"] = (_uri(drift_plots.psi_bars(
            [f.feature for f in feats], [f.psi for f in feats], [f.threshold for f in feats],
            [f.drifted for f in feats], PSI_MATERIAL, PSI_MAJOR)),
            "PSI of every feature with the material and major levels; "
            + (", ".join(f.feature for f in feats if f.drifted) or "no feature") + " drifted")
    seg = report.segments
    if seg is not None:
        images["shares"] = (_uri(drift_plots.share_bars(
            [c.name for c in seg.changes], [c.reference_share for c in seg.changes],
            [c.current_share for c in seg.changes], report.reference["name"],
            report.current["name"])), "Share of customers per segment in both snapshots")
    return _env().get_template("drift.html").render(d=report, images=images)


def render_evolution(report: EvolutionReport) -> str:
    names = [s["name"] for s in report.segments]
    snaps = [s["name"] for s in report.snapshots]
    images = {
        "sizes": (_uri(drift_plots.trajectories(
            snaps, {n: [report.sizes[s][n] for s in snaps] for n in names},
            "Segment shares over time", "share of customers", percent=True)),
            "Share of customers in each segment at every snapshot"),
        "score": (_uri(drift_plots.trajectories(
            snaps, {"drift score (largest PSI vs the first snapshot)":
                    [r["score"] for r in report.drift]},
            "Drift over time", "PSI",
            hlines={f"material (PSI {PSI_MATERIAL})": PSI_MATERIAL,
                    f"major (PSI {PSI_MAJOR})": PSI_MAJOR}, colours=["#0072B2"])),
            "Drift score at every snapshot against the first, with the material and major levels"),
    }
    flows = []
    for m in report.migrations:
        mat = np.array([[m.matrix[r][c] for c in [*names, "gone"]] for r in [*names, "new"]])
        flows.append((m, _uri(drift_plots.migration_flow(names, mat, m.source, m.target)),
                      f"Flow of customers from {m.source} to {m.target}; "
                      f"{m.stayed_share:.0%} of those in both stayed in their segment"))
    features = sorted({f for r in report.drift for f in r["psi"]})
    return _env().get_template("evolve.html").render(e=report, images=images, flows=flows,
                                                      names=names, features=features)
