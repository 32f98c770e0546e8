"""Render a :class:`~custseg.results.segmentation.SegmentationResult` into one self-contained
HTML file and a short Markdown summary.

Rendering reads the result objects and lays them out; it computes nothing about the customers.
The only per-customer work here is drawing fixed-size, seeded samples of the feature table for the
distribution plots, so the report stays the same size (well under 5 MB) at any number of
customers, and the same result always gives byte-identical output (no timestamps, no timings).
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from custseg.labels import feature_label
from custseg.report import plots
from custseg.results.segmentation import STABILITY_MIN, preferred_k

if TYPE_CHECKING:
    from custseg.results.profiles import SegmentProfile
    from custseg.results.segmentation import KSelection, SegmentationResult

POPULATION_SAMPLE = 20_000   # customers drawn for "all customers" in the distribution plots
SEGMENT_SAMPLE = 5_000       # customers drawn per segment for its distribution plots
KEY_FEATURES = 4             # distributions shown per segment
MAX_LEVELS = 8               # levels shown per mix panel
GROUP_TITLES = {"category_share": "Category (share of spend)",
                "channel_share": "Channel (share of orders)"}
GROUP_LABELS = {"category_share": "Category shares", "channel_share": "Channel shares"}
GROUP_DEFINITIONS = {"category_share": "share of the customer's spend in each category",
                     "channel_share": "share of the customer's orders through each channel"}


# ------------------------------------------------------------------------------------ helpers


@dataclass
class Image:
    """An embedded PNG with its alt text and caption."""

    src: str
    alt: str
    caption: str = ""


def _image(png: bytes, alt: str, caption: str = "") -> Image:
    return Image("data:image/png;base64," + base64.b64encode(png).decode("ascii"), alt, caption)


def _num(v: float | None, digits: int = 2) -> str:
    if v is None or not np.isfinite(v):
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def _nice(v: float | None) -> str:
    """A parameter value without noise: 313, 0.38, 6,768, 12.5."""
    if v is None or not np.isfinite(v):
        return "n/a"
    if abs(v - round(v)) < 1e-6 * max(1.0, abs(v)) or abs(v) >= 100:
        return f"{v:,.0f}"
    text = f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}" if abs(v) >= 0.01 else f"{v:.2g}"
    return text.rstrip("0").rstrip(".") if "." in text and "e" not in text else text


def _pct(v: float | None, digits: int = 1) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v * 100:.{digits}f}%"


def _int(v: int | None) -> str:
    return "n/a" if v is None else f"{int(v):,}"


@functools.cache
def _env() -> Environment:
    env = Environment(loader=PackageLoader("custseg", "report/templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters["pct"] = _pct
    env.filters["num"] = _num
    env.filters["int"] = _int
    env.filters["money"] = plots.fmt_money
    return env


def _portrait(s: SegmentProfile) -> str:
    """One line on who they are: the name's description for an archetype, else the first
    piece of evidence (its figures without the check's threshold)."""
    if s.name_rule and s.description:
        return s.description
    return s.evidence[0].split("; needed ", 1)[0] if s.evidence else s.description


def _seg_label(s: SegmentProfile) -> str:
    return f"{s.segment_id}. {s.name}"


def _sampled(n: int, of: int) -> str:
    return f"sampled {n:,} of {of:,} customers" if n < of else f"all {of:,} customers"


# ------------------------------------------------------------------------------------ view model


@dataclass
class Card:
    """Everything one segment card shows."""

    segment: Any
    colour: str
    label: str
    tiles: list[tuple[str, str, str]]
    distinguishing: Image | None = None
    mix: list[dict] = field(default_factory=list)
    distributions: Image | None = None


class _View:
    """Reads a result once and prepares what the template needs."""

    def __init__(self, result: SegmentationResult) -> None:
        self.r = result
        self.summary = result.summary()
        self.segs = result.profiles.segments
        self.colours = [plots.segment_colour(i) for i in range(len(self.segs))]
        self.labels = [_seg_label(s) for s in self.segs]
        self.has_revenue = any(s.revenue_share is not None for s in self.segs)
        n = sum(s.size for s in self.segs)
        self.n_customers = n
        self.average_value = (sum(s.revenue or 0.0 for s in self.segs) / n
                              if self.has_revenue and n else None)
        self.seed = result.config.segmentation.seed
        self.sil_by_segment = result.silhouette.by_segment() if result.silhouette else {}
        self.specs = {s.name: s for s in result.preprocessor.specs_}

    # ---------------------------------------------------------------- overview
    def inputs(self) -> list[dict]:
        out = []
        for name, s in self.summary["rows"].items():
            out.append({"name": name, "file": s["file"], "read": s["read"], "used": s["used"],
                        "excluded": s["excluded"],
                        "returns": s.get("returns_and_cancellations", 0)})
        return out

    def features(self) -> list[dict]:
        """One row per model feature (share groups folded into one row), then profile-only ones."""
        f = self.r.features
        defs = f.definitions
        kinds = {**{c: "numeric" for c in f.numeric}, **{c: "0/1" for c in f.binary},
                 **{c: "category" for c in f.categorical}}
        group_of = {c: g for g, cols in f.groups.items() for c in cols}
        rows: list[dict] = []
        done: set[str] = set()
        for spec in self.r.preprocessor.specs_:
            group = group_of.get(spec.name)
            if group is None:
                rows.append({"label": feature_label(spec.name), "name": spec.name,
                             "role": f"model ({kinds.get(spec.name, spec.kind)})",
                             "definition": defs.get(spec.name, "as given in the input"),
                             "transform": _transform_text(spec)})
                continue
            if group in done:
                continue
            done.add(group)
            members = [self.specs[c] for c in f.groups[group] if c in self.specs]
            levels = [feature_label(m.name).removesuffix(" share").removesuffix(" channel")
                      for m in members]
            rows.append({"label": GROUP_LABELS.get(group, feature_label(group)) +
                         f" ({len(members)})",
                         "name": ", ".join(m.name for m in members),
                         "role": "model (numeric)",
                         "definition": GROUP_DEFINITIONS.get(group, "shares") + ": "
                         + ", ".join(levels),
                         "transform": _group_transform_text(members)})
        for c in f.descriptive:
            if c in f.frame.columns:
                rows.append({"label": feature_label(c), "name": c, "role": "profile only",
                             "definition": defs.get(c, "as given in the input"),
                             "transform": "not in the model; shown in the profiles"})
        return rows

    def parameters(self) -> list[dict]:
        """Every input column's learned preprocessing parameters (for the analysts)."""
        out = []
        for spec in self.r.preprocessor.specs_:
            row = {"name": spec.name, "kind": spec.kind, "impute": "", "log": "", "lo": "",
                   "hi": "", "mean": "", "sd": "", "weight": f"{spec.weight:g}"}
            if spec.kind == "numeric":
                row.update(impute=_nice(spec.impute), log="yes" if spec.log else "no",
                           lo=_nice(spec.lo), hi=_nice(spec.hi), mean=_nice(spec.mean),
                           sd=_nice(spec.scale))
            elif spec.kind == "binary":
                row.update(impute=_nice(spec.impute))
            else:
                row.update(impute=str(spec.impute), log=f"{len(spec.levels or [])} levels")
            out.append(row)
        return out

    def settings(self) -> list[tuple[str, str]]:
        cfg = self.r.config
        seg, feat = cfg.segmentation, cfg.features
        sel = self.r.selection
        k_text = (f"fixed at {sel.k} by the user" if sel.overridden
                  else f"chosen from evidence among k = {seg.k_min}…{seg.k_max}")
        rows = [
            ("k", k_text),
            ("seed", str(seg.seed)),
            ("as-of date", self.r.as_of.isoformat() if self.r.as_of
             else "none (no dates in the data)"),
            ("customers used to score each k", f"{sel.sample_size:,} of {sel.n_customers:,}"),
            ("silhouette sample", f"{sel.silhouette_sample:,} customers"),
            ("stability", f"{seg.bootstrap} refits on 80% subsamples per k" if seg.bootstrap
             else "not measured (bootstrap = 0)"),
            ("K-Means restarts (n_init)", str(seg.n_init)),
            ("invalid values in required columns", seg.on_invalid),
            ("categories kept per column", f"at most {feat.max_categories}, each at least "
             f"{feat.min_category_share:.0%} of customers"),
            ("naming rules", cfg.naming_rules or "built-in table"),
        ]
        if feat.include is not None:
            rows.append(("features included", ", ".join(feat.include)))
        if feat.exclude:
            rows.append(("features excluded", ", ".join(feat.exclude)))
        if feat.weights:
            rows.append(("feature weights", ", ".join(f"{k} × {v:g}"
                                                      for k, v in feat.weights.items())))
        return rows

    def versions(self) -> dict[str, str]:
        import jinja2
        import matplotlib
        import seaborn

        v = dict(self.summary["versions"])
        v.update({"matplotlib": matplotlib.__version__, "seaborn": seaborn.__version__,
                  "jinja2": jinja2.__version__})
        return v

    # ---------------------------------------------------------------- choosing k
    def k_rows(self) -> list[dict]:
        sel = self.r.selection
        rows = []
        for s in sel.scores:
            notes = []
            if s.k == sel.k:
                notes.append("chosen")
            if s.k == sel.knee:
                notes.append("knee")
            if s.stability is not None and s.stability < STABILITY_MIN:
                notes.append(f"stability < {STABILITY_MIN}")
            rows.append({"k": s.k, "inertia": s.inertia, "silhouette": s.silhouette,
                         "ch": s.criteria.get("calinski_harabasz"),
                         "db": s.criteria.get("davies_bouldin"), "stability": s.stability,
                         "chosen": s.k == sel.k, "notes": ", ".join(notes)})
        return rows

    def k_image(self) -> Image:
        sel = self.r.selection
        sc = sel.scores
        ks = [s.k for s in sc]
        png = self.r.charts.get("k_selection") or k_selection_png(sel)
        chosen = sel.score_for(sel.k)
        knee = f"the knee of the inertia curve is at k={sel.knee}" if sel.knee is not None \
            else "the inertia curve has no clear knee"
        alt = (f"Four line charts of the k-selection scores for k = {min(ks)} to {max(ks)}; "
               f"{knee}; the chosen k={sel.k} is highlighted"
               + (f" with silhouette {chosen.silhouette:.3f}" if chosen else "")
               + (f" and stability {chosen.stability:.2f}"
                  if chosen and chosen.stability is not None else "") + ".")
        return _image(png, alt, f"Scores for each k; the chosen k={sel.k} is the green band. "
                      f"K-Means for each k was fitted on "
                      f"{_sampled(sel.sample_size, sel.n_customers)}.")

    def silhouette_image(self) -> Image | None:
        sil = self.r.silhouette
        if sil is None or len(sil.values) == 0:
            return None
        ids = [s.segment_id for s in self.segs]
        png = plots.silhouette_plot(sil.values, sil.labels, ids, [s.name for s in self.segs],
                                    self.colours, sil.mean)
        by = self.sil_by_segment
        parts = "; ".join(f"{lab}: {by[s.segment_id]:.2f}" for lab, s in
                          zip(self.labels, self.segs, strict=True) if s.segment_id in by)
        alt = (f"Silhouette plot for k={self.r.k}: each customer's silhouette, sorted within its "
               f"segment. Mean {sil.mean:.3f}. Mean per segment: {parts}.")
        caption = ((f"Silhouette of a sample of {sil.sample_size:,} of {sil.n_customers:,} "
                    "customers (stratified by segment)" if sil.sample_size < sil.n_customers
                    else f"Silhouette of all {sil.n_customers:,} customers")
                   + ". Bars left of zero are customers closer to another "
                   "segment than to their own.")
        return _image(png, alt, caption)

    # ---------------------------------------------------------------- segment map
    def map_image(self) -> Image | None:
        m = self.r.segment_map
        if m is None:
            return None
        order = {int(sid): i for i, sid in enumerate(m.segment_ids)}
        centroids = np.array([m.centroids[order[s.segment_id]] for s in self.segs])
        png = plots.segment_map_plot(m.points, m.labels, centroids,
                                     [s.segment_id for s in self.segs],
                                     [s.name for s in self.segs], self.colours,
                                     m.explained_variance)
        ev = m.explained_variance
        names = ", ".join(f"{lab} ({c})" for lab, c in
                          zip(self.labels, _colour_names(self.colours), strict=True))
        alt = (f"Scatter plot of {_sampled(m.sample_size, m.n_customers)} on the first two "
               f"principal components, coloured by segment, with each segment's centre marked "
               f"by a numbered circle. Segments: {names}.")
        caption = (f"{_sampled(m.sample_size, m.n_customers).capitalize()}"
                   + (" (stratified by segment, so small segments stay visible)"
                      if m.sampled else "")
                   + ". Smaller segments are drawn on top, with larger dots when they are small; "
                   "numbered circles are the segment centres"
                   + f". The two components explain {ev[0]:.0%} and {ev[1]:.0%} of the variance "
                   f"({ev[0] + ev[1]:.0%} together): segments that overlap here can still be "
                   "separated along other directions.")
        return _image(png, alt, caption)

    # ---------------------------------------------------------------- segment overview
    def sizes_image(self) -> Image:
        png = plots.sizes_plot(self.labels, self.colours, [s.share for s in self.segs],
                               [s.revenue_share for s in self.segs],
                               [s.value_per_customer for s in self.segs], self.average_value)
        parts = []
        for lab, s in zip(self.labels, self.segs, strict=True):
            t = f"{lab}: {_pct(s.share, 0)} of customers"
            if s.revenue_share is not None:
                t += f", {_pct(s.revenue_share, 0)} of revenue"
            if s.value_per_customer is not None:
                t += f", {plots.fmt_money(s.value_per_customer)} per customer"
            parts.append(t)
        alt = "Bar chart of segment sizes" + (" and revenue" if self.has_revenue else "") + \
            ". " + "; ".join(parts) + "."
        return _image(png, alt)

    def heatmap_image(self) -> Image | None:
        feats = [c for c in self.r.profiles.features if all(c in s.z for s in self.segs)]
        if not feats:
            return None
        z = np.array([[s.z[c] for s in self.segs] for c in feats], dtype="float64")
        png = plots.profile_heatmap(z, [feature_label(c) for c in feats], self.labels,
                                    self.colours)
        tops = []
        for lab, s in zip(self.labels, self.segs, strict=True):
            num = [d for d in s.distinguishing if d["kind"] == "numeric"][:2]
            if num:
                tops.append(f"{lab}: " + ", ".join(f"{d['label']} {d['score']:+.1f} SD"
                                                   for d in num))
        alt = (f"Heatmap of {len(feats)} features by {len(self.segs)} segments: each cell is the "
               "segment's difference from all customers in standard deviations, red above and "
               "blue below. Strongest per segment: " + "; ".join(tops) + ".")
        caption = ("Each cell: how far the segment's average is from all customers' average, in "
                   "standard deviations (on a log scale for skewed amounts and counts). Red: "
                   "higher than average; blue: lower; colours saturate at ±2.")
        return _image(png, alt, caption)

    def outcome_columns(self) -> list[dict]:
        """The outcome columns shown beside the segments (at most two: those whose rates
        differ most between segments), with the base rate."""
        f, pop = self.r.features, self.r.profiles.population
        cols = [c for c in f.outcomes if c in pop]
        spread = {c: np.nanmax([s.means.get(c, np.nan) for s in self.segs])
                  - np.nanmin([s.means.get(c, np.nan) for s in self.segs]) for c in cols}
        cols = sorted(cols, key=lambda c: (-spread[c], c))[:2]
        return [{"column": c, "label": feature_label(c), "base": pop[c]["mean"]} for c in cols]

    def overview_rows(self) -> list[dict]:
        rows = []
        for s, colour, lab in zip(self.segs, self.colours, self.labels, strict=True):
            index = (s.revenue_share / s.share if s.revenue_share is not None and s.share
                     else None)
            rows.append({"s": s, "colour": colour, "label": lab, "index": index,
                         "silhouette": self.sil_by_segment.get(s.segment_id),
                         "rank": s.opportunity.get("rank"),
                         "portrait": _portrait(s),
                         "outcomes": {c: s.means.get(c) for c in self.r.features.outcomes},
                         "top_action": s.recommendations[0] if s.recommendations else None})
        return rows

    # ---------------------------------------------------------------- segment cards
    def cards(self) -> list[Card]:
        frame = self.r.features.frame
        labels = np.asarray(self.r.labels)
        rng = np.random.default_rng(self.seed)
        n = len(frame)
        pop_idx = (np.sort(rng.choice(n, size=POPULATION_SAMPLE, replace=False))
                   if n > POPULATION_SAMPLE else np.arange(n))
        pop = frame.iloc[pop_idx]
        cards = []
        for s, colour, lab in zip(self.segs, self.colours, self.labels, strict=True):
            members = np.flatnonzero(labels == s.segment_id)
            n_seg = len(members)
            if n_seg > SEGMENT_SAMPLE:
                members = np.sort(rng.choice(members, size=SEGMENT_SAMPLE, replace=False))
            card = Card(segment=s, colour=colour, label=lab, tiles=self._tiles(s))
            card.distinguishing = self._distinguishing(s, colour, lab)
            card.mix = self._mix(s)
            card.distributions = self._distributions(s, colour, lab, frame.iloc[members], pop,
                                                     n_seg=n_seg, n_pop=n)
            cards.append(card)
        return cards

    def _tiles(self, s: SegmentProfile) -> list[tuple[str, str, str]]:
        tiles = [("customers", f"{s.size:,}", f"{_pct(s.share)} of all")]
        if s.revenue_share is not None:
            ratio = s.revenue_share / s.share if s.share else float("nan")
            tiles.append(("share of revenue", _pct(s.revenue_share),
                          f"{ratio:.1f}× its share of customers"))
        if s.value_per_customer is not None:
            tiles.append(("value per customer", plots.fmt_money(s.value_per_customer),
                          f"vs {plots.fmt_money(self.average_value)} for all customers"))
        if s.segment_id in self.sil_by_segment:
            tiles.append(("mean silhouette", f"{self.sil_by_segment[s.segment_id]:.2f}",
                          f"all segments: {self.r.silhouette.mean:.2f}"))
        if "rank" in s.opportunity:
            tiles.append(("opportunity rank", f"{s.opportunity['rank']} of {len(self.segs)}",
                          "by revenue share" if self.has_revenue else "by size"))
        return tiles

    def _distinguishing(self, s: SegmentProfile, colour: str, lab: str) -> Image | None:
        items = s.distinguishing
        if not items:
            return None
        notes = []
        for d in items:
            if d["kind"] == "numeric":
                notes.append(f"{plots.fmt_num(d['segment'])} vs {plots.fmt_num(d['population'])}")
            else:
                notes.append(f"{d['difference'] * 100:+.0f} pts of share".replace(
                    "+1 pts", "+1 pt").replace("-1 pts", "-1 pt"))
        has_levels = any(d["kind"] != "numeric" for d in items)
        xlabel = "difference from all customers, in SD" + (
            "\n(for a category level, 20 points of share count as 1)" if has_levels else "")
        png = plots.distinguishing_plot([d["label"] for d in items], [d["score"] for d in items],
                                        notes, colour, xlabel)
        alt = (f"Bar chart of what distinguishes {lab} from all customers: "
               + "; ".join(f"{d['label']} {d['score']:+.1f} ({t})"
                           for d, t in zip(items, notes, strict=True)) + ".")
        return _image(png, alt)

    def _mix(self, s: SegmentProfile) -> list[dict]:
        """Demographic / category / channel mix panels, drawn as HTML bars (exact numbers)."""
        panels = []
        for col, pmix in self.r.profiles.population_mixes.items():
            smix = s.mixes.get(col)
            if not smix or len(pmix) < 2:
                continue
            levels = list(pmix)[:MAX_LEVELS]
            top = max([smix.get(lv, 0.0) for lv in levels] + [pmix[lv] for lv in levels]
                      + [1e-9])
            rows = []
            for lv in levels:
                a, b = smix.get(lv, 0.0), pmix[lv]
                diff = (a - b) * 100
                rows.append({"level": lv, "segment": a, "population": b,
                             "seg_w": f"{100 * a / top:.1f}", "pop_w": f"{100 * b / top:.1f}",
                             "diff": (f"{diff:+.0f} pt{'s' if abs(round(diff)) != 1 else ''}"
                                      if abs(diff) >= 0.5 else "±0"),
                             "notable": abs(diff) >= 5})
            panels.append({"title": GROUP_TITLES.get(col, feature_label(col)),
                           "note": (f"top {MAX_LEVELS} of {len(pmix)} levels"
                                    if len(pmix) > MAX_LEVELS else ""), "rows": rows})
        return panels

    def _key_features(self, s: SegmentProfile) -> list[str]:
        f = self.r.features
        grouped = {c for cols in f.groups.values() for c in cols}
        usable = [c for c in [*f.numeric, *f.descriptive]
                  if c in f.frame.columns and c not in grouped and c in s.z
                  and pd.api.types.is_numeric_dtype(f.frame[c])]
        first = [d["feature"] for d in s.distinguishing
                 if d["kind"] == "numeric" and d["feature"] in usable]
        rest = sorted((c for c in usable if c not in first),
                      key=lambda c: (-abs(s.z[c]) if np.isfinite(s.z[c]) else 0.0, c))
        return (first + rest)[:KEY_FEATURES]

    def _distributions(self, s: SegmentProfile, colour: str, lab: str, seg: pd.DataFrame,
                       pop: pd.DataFrame, n_seg: int, n_pop: int) -> Image | None:
        feats = self._key_features(s)
        panels = []
        for c in feats:
            sv = seg[c].to_numpy(dtype="float64")
            pv = pop[c].to_numpy(dtype="float64")
            sv, pv = sv[np.isfinite(sv)], pv[np.isfinite(pv)]
            if sv.size == 0 or pv.size == 0:
                continue
            spec = self.specs.get(c)
            log = bool(spec is not None and spec.log)
            if spec is not None and spec.lo is not None and spec.hi is not None:
                lo, hi = ((float(np.expm1(spec.lo)), float(np.expm1(spec.hi))) if log
                          else (spec.lo, spec.hi))
            else:
                lo, hi = (float(v) for v in np.quantile(pv, (0.005, 0.995)))
            if hi <= lo:
                lo, hi = float(pv.min()), float(pv.max())
            # a few whole numbers (children, household size): one bar per value, linear axis
            discrete = (hi - lo <= 25 and bool(np.all(np.mod(pv, 1) == 0))
                        and bool(np.all(np.mod(sv, 1) == 0)))
            log = log and not discrete
            pop_stats = self.r.profiles.population.get(c, {})
            panels.append(plots.DistributionPanel(
                title=feature_label(c), segment=sv, population=pv,
                segment_median=s.medians.get(c, float(np.median(sv))),
                population_median=pop_stats.get("median", float(np.median(pv))),
                lo=lo, hi=hi, log=log, discrete=discrete))
        if not panels:
            return None
        png = plots.distributions_plot(panels, colour, lab)
        alt = (f"Histograms of {len(panels)} key features for {lab} against all customers: "
               + "; ".join(f"{p.title} median {plots.fmt_num(p.segment_median)} vs "
                           f"{plots.fmt_num(p.population_median)}" for p in panels) + ".")
        sampled = len(seg) < n_seg or len(pop) < n_pop
        caption = ("Distributions of " + (f"sampled {len(seg):,} of {n_seg:,} segment customers "
                                          f"and {len(pop):,} of {n_pop:,} customers overall"
                                          if sampled else f"all {n_seg:,} segment customers and "
                                          f"all {n_pop:,} customers")
                   + ". Each histogram is scaled to the same area; dashed lines are medians. "
                   "Axes span the typical range (0.5th–99.5th percentile); values beyond it are "
                   "counted at the edges"
                   + ("; skewed amounts and counts are on a log scale" if any(p.log for p in panels)
                      else "") + ".")
        return _image(png, alt, caption)


def _transform_text(spec) -> str:
    if spec.kind == "categorical":
        levels = spec.levels or []
        shown = ", ".join(levels[:10]) + (f", … ({len(levels)} levels)" if len(levels) > 10
                                          else "")
        text = f"one-hot over {shown}; each indicator scaled by 1/√2"
    elif spec.kind == "binary":
        text = f"0/1; missing → {_nice(spec.impute)} (the mean)"
    else:
        parts = [f"missing → {_nice(spec.impute)} (median)"]
        lo, hi = spec.lo, spec.hi
        if spec.log:
            parts.append("log(1 + x)")
            lo, hi = float(np.expm1(lo)), float(np.expm1(hi))
        parts.append(f"clipped to {_nice(lo)}–{_nice(hi)}")
        parts.append("standardised")
        text = "; ".join(parts)
    if spec.weight != 1.0:
        text += f"; weight × {spec.weight:g}"
    return text


def _group_transform_text(members: list) -> str:
    n_log = sum(1 for m in members if m.log)
    parts = ["missing → median"]
    if n_log == len(members):
        parts.append("log(1 + x)")
    elif n_log:
        parts.append(f"log(1 + x) for the {n_log} skewed ones")
    parts += ["clipped to the 0.5th–99.5th percentile", "standardised"]
    weights = {m.weight for m in members}
    if weights != {1.0}:
        parts.append("weights " + ", ".join(f"{m.name} × {m.weight:g}" for m in members
                                            if m.weight != 1.0))
    return "; ".join(parts)


_COLOUR_NAMES = {"#0072B2": "blue", "#E69F00": "orange", "#009E73": "green",
                 "#CC79A7": "pink", "#56B4E9": "sky blue", "#D55E00": "vermillion",
                 "#882255": "wine", "#999933": "olive", "#332288": "indigo", "#44AA99": "teal",
                 "#F0E442": "yellow", "#000000": "black"}


def _colour_names(colours: list[str]) -> list[str]:
    return [_COLOUR_NAMES.get(c, c) for c in colours]


# ------------------------------------------------------------------------------------ entry points


def k_selection_png(sel: KSelection) -> bytes:
    """The k-selection chart: it needs only the selection, so a big run draws it while the
    final K-Means runs (see ``SegmentationResult.charts``)."""
    sc = sel.scores
    return plots.k_selection_plot(
        [s.k for s in sc], [s.inertia for s in sc], [s.silhouette for s in sc],
        [s.stability for s in sc], [s.criteria.get("calinski_harabasz") for s in sc],
        [s.criteria.get("davies_bouldin") for s in sc], sel.k, sel.knee)


def render_report(result: SegmentationResult) -> str:
    """The HTML report: overview, how k was chosen, the segment map, the segments and one card
    per segment with evidence, charts, insights and actions. One self-contained file."""
    v = _View(result)
    sel = result.selection
    return _env().get_template("report.html").render(
        r=result, v=v, sel=sel, summary=v.summary,
        inputs=v.inputs(), features=v.features(), parameters=v.parameters(),
        settings=v.settings(), versions=v.versions(),
        k_rows=v.k_rows(), k_image=v.k_image(), silhouette_image=v.silhouette_image(),
        map_image=v.map_image(), sizes_image=v.sizes_image(), heatmap_image=v.heatmap_image(),
        overview=v.overview_rows(), cards=v.cards(), colours=v.colours,
        stability_min=STABILITY_MIN, currency=result.currency,
        outcome_columns=v.outcome_columns(), k_best=_k_best(sel),
        value_model=(result.value_model if (result.value_model or {}).get("bgnbd") else None),
        holdout=_holdout_text(result), holdout_image=_holdout_image(result),
        structure=sel.structure, structure_message=sel.structure_message,
    )


def _holdout_text(result: SegmentationResult) -> dict | None:
    h = result.holdout
    if not h:
        return None
    err = h.get("error")
    text = (f"Fitted on purchases up to {h['calibration_end']}, the model predicted "
            f"{h['predicted_total']:,.0f} repeat purchases by {h['customers']:,} customers between "
            f"then and {h['holdout_end']}; they made {h['actual_total']:,}"
            + (f" ({err:+.1%})" if err is not None else "")
            + (f"; per customer, predicted and actual correlate at {h['correlation']:.2f}"
               if h.get("correlation") is not None else "") + ". By segment: "
            + "; ".join(f"{s['name']} {s['predicted']:,.0f} predicted vs {s['actual']:,} actual"
                        for s in h.get("segments", []))
            + " (the segments are formed on all the data, holdout included, so this split "
            "describes them; it does not test the model).")
    return {"text": text}


def _holdout_image(result: SegmentationResult) -> Image | None:
    h = result.holdout
    if not h:
        return None
    t = h["tracking"]
    png = plots.holdout_plot(t["unit"], t["actual"], t["expected"], t["calibration_end_unit"],
                             h["conditional"], h["unit_days"])
    alt = (f"Two line charts. Left: cumulative repeat purchases per week, actual against the "
           f"BG/NBD expectation, with the calibration end ({h['calibration_end']}) marked; at the "
           f"end {t['actual'][-1]:,.0f} actual vs {t['expected'][-1]:,.0f} expected. Right: mean "
           "repeat purchases in the holdout by repeat purchases in calibration (0 to 7+), actual "
           "against predicted: " + "; ".join(
               f"{c['repeat_purchases']}: {c['actual']:.2f} vs {c['predicted']:.2f}"
               for c in h["conditional"]) + ".")
    caption = ("The value model's holdout check: fitted only on the purchases before the "
               "calibration end, then compared with what the customers did after it.")
    return _image(png, alt, caption)


def _k_best(sel) -> dict:
    """Which k each criterion prefers, for the sentence that names them."""
    sc = sel.scores
    best = {"silhouette": preferred_k(sc, "silhouette"),
            "ch": preferred_k(sc, "calinski_harabasz"),
            "db": preferred_k(sc, "davies_bouldin")}
    stab = [s for s in sc if s.stability is not None]
    if stab:
        ok = [s.k for s in stab if s.stability >= STABILITY_MIN]
        best["stability_text"] = (
            f"at least {STABILITY_MIN} for k = {', '.join(map(str, ok))}" if ok
            else f"below {STABILITY_MIN} for every k")
    else:
        best["stability_text"] = "not measured in this run"
    return best


def _md(text: Any) -> str:
    """Text safe inside a Markdown table cell or list item."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_summary_md(result: SegmentationResult) -> str:
    """A short Markdown version of the report, for pasting into a ticket or an email."""
    v = _View(result)
    sel = result.selection
    segs = v.segs
    lines = [f"# Customer segments: {result.k} segments of {v.n_customers:,} customers", ""]
    data = []
    for name, s in v.summary["rows"].items():
        data.append(f"{name} `{_md(s['file'])}` ({s['read']:,} rows read, {s['used']:,} used)")
    as_of = f" · as of {result.as_of.isoformat()}" if result.as_of else ""
    lines += [f"**Data:** {'; '.join(data)}{as_of}.", ""]
    excluded = v.summary["customers"]["excluded"]
    if excluded:
        lines += ["**Customers excluded:** " + "; ".join(f"{_md(k)}: {n:,}"
                                                         for k, n in excluded.items()) + ".", ""]
    lines += [f"**Why k = {result.k}:** {_md(sel.reason)}.", ""]
    if sel.structure_message:
        lines += [f"> **Cluster structure {_md(sel.structure_message)}.**", ""]
    head = "| # | Segment | Customers | Share |"
    rule = "|---:|---|---:|---:|"
    if v.has_revenue:
        head += " Revenue share | Value per customer |"
        rule += "---:|---:|"
    lines += [head, rule]
    for s in segs:
        row = f"| {s.segment_id} | {_md(s.name)} | {s.size:,} | {_pct(s.share)} |"
        if v.has_revenue:
            row += f" {_pct(s.revenue_share)} | {plots.fmt_money(s.value_per_customer)} |"
        lines.append(row)
    lines += ["", "Segments in order of opportunity (by "
              + ("revenue share" if v.has_revenue else "size") + "):", ""]
    for s in sorted(segs, key=lambda s: (s.opportunity.get("rank", 0), s.segment_id)):
        lines += [f"## {s.segment_id}. {_md(s.name)}", ""]
        if s.description:
            lines += [_md(s.description), ""]
        for e in s.evidence[:3]:
            lines.append(f"- {_md(e)}")
        for a in s.recommendations[:2]:
            lines.append(f"- **{_md(a['label'])}:** {_md(a['action'])}")
        lines.append("")
    lines.append("_Full report with charts: report.html._")
    return "\n".join(lines) + "\n"
