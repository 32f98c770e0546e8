"""Insights and recommended actions per segment, following from its profile and value.

Actions come from the naming rule the segment earned (its ``actions`` table) with the segment's
own favourite category and channel filled in; segments named descriptively get actions derived
from their distinguishing features. Every segment's opportunity is sized (customers, revenue share)
and ranked, so the team knows where to start.
"""

from __future__ import annotations

import numpy as np

from custseg.profile import NamingRule, Profiles, SegmentProfile, _fmt, feature_label

THEMES = ("targeted_marketing", "personalisation", "retention", "product_development")
THEME_LABELS = {
    "targeted_marketing": "Targeted marketing",
    "personalisation": "Personalisation",
    "retention": "Customer retention",
    "product_development": "Product development",
}


def _top_level(seg: SegmentProfile, profiles: Profiles, group: str) -> tuple[str, float, float] | None:
    """The level of a group (category_share, channel_share) most over-represented in the segment."""
    mix = seg.mixes.get(group)
    pop = profiles.population_mixes.get(group)
    if not mix or not pop:
        return None
    # favourite = largest share, ties to the biggest lift
    lv = max(mix, key=lambda k: (round(mix[k], 6), mix[k] - pop.get(k, 0.0)))
    return lv, mix[lv], pop.get(lv, 0.0)


def _generic_actions(seg: SegmentProfile) -> dict[str, str]:
    z = seg.z
    high_value = (seg.revenue_share or 0) > seg.share * 1.2
    actions = {
        "targeted_marketing": (
            "Campaigns built around what sets them apart: "
            + ", ".join(d["label"].lower() for d in seg.distinguishing[:2]) + "."),
        "personalisation": "Recommend products and offers in {top_category} through {top_channel}.",
        "retention": ("Protect this revenue: service priority and loyalty rewards." if high_value
                      else "Grow their value with cross-sell offers and a second-purchase incentive."),
        "product_development": "Study what this group buys most ({top_category}) for range gaps.",
    }
    if z.get("recency_days", 0) > 0.5:
        actions["retention"] = "They are drifting away: a win-back offer before they lapse for good."
    if z.get("discount_share", 0) > 0.5:
        actions["targeted_marketing"] = "Price-led promotions and coupons work for this group."
    return actions


def recommend(profiles: Profiles, rules: list[NamingRule], currency: str = "") -> None:
    """Fill in ``insights``, ``recommendations`` and ``opportunity`` of every segment (in place)."""
    by_name = {r.name: r for r in rules}
    n_total = sum(s.size for s in profiles.segments)
    for seg in profiles.segments:
        cat = _top_level(seg, profiles, "category_share")
        ch = _top_level(seg, profiles, "channel_share")
        fill = {
            "top_category": cat[0] if cat else "their favourite categories",
            "top_channel": ch[0] if ch else "their preferred channel",
            "size": f"{seg.size:,}",
            "share": f"{seg.share:.0%}",
            "revenue_share": f"{seg.revenue_share:.0%}" if seg.revenue_share is not None else "n/a",
        }
        rule = by_name.get(seg.name_rule or "")
        templates = dict(_generic_actions(seg))
        if rule is not None:
            templates.update({k: v for k, v in rule.actions.items() if k in THEMES})
        seg.recommendations = [
            {"theme": t, "label": THEME_LABELS[t], "action": templates[t].format(**fill)}
            for t in THEMES if t in templates
        ]
        seg.insights = _insights(seg, profiles, cat, ch, n_total, currency)
        seg.opportunity = {
            "customers": seg.size,
            "share_of_customers": seg.share,
            "revenue": seg.revenue,
            "revenue_share": seg.revenue_share,
            "value_per_customer": seg.value_per_customer,
        }
    # rank opportunities by revenue share (or size when there is no value column)
    order = sorted(profiles.segments,
                   key=lambda s: (-(s.revenue_share if s.revenue_share is not None else s.share),
                                  s.segment_id))
    for rank, s in enumerate(order, start=1):
        s.opportunity["rank"] = rank


def _insights(seg: SegmentProfile, profiles: Profiles, cat, ch, n_total: int,
              currency: str) -> list[str]:
    out = [f"{seg.size:,} customers ({seg.share:.1%} of {n_total:,})."]
    if seg.revenue_share is not None:
        ratio = seg.revenue_share / seg.share if seg.share else np.nan
        pop_vpc = (sum(s.revenue or 0 for s in profiles.segments) / n_total) if n_total else np.nan
        out.append(
            f"They bring {seg.revenue_share:.1%} of revenue — {ratio:.1f}× their share of customers; "
            f"{currency}{_fmt(seg.value_per_customer)} per customer vs {currency}{_fmt(pop_vpc)} "
            "on average.")
    for d in seg.distinguishing[:3]:
        if d["kind"] == "numeric":
            word = "higher" if d["score"] > 0 else "lower"
            out.append(f"{d['label']} is {word} than average: {_fmt(d['segment'])} vs "
                       f"{_fmt(d['population'])} ({d['score']:+.1f} SD).")
        else:
            word = "more" if d["difference"] > 0 else "less"
            out.append(f"{d['label']} is {abs(d['difference']):.0%} points {word} common than "
                       "overall.")
    if cat:
        out.append(f"Favourite category: {cat[0]} ({cat[1]:.0%} of their spend vs {cat[2]:.0%} "
                   "overall).")
    if ch:
        out.append(f"Preferred channel: {ch[0]} ({ch[1]:.0%} of their orders vs {ch[2]:.0%} "
                   "overall).")
    return out


__all__ = ["recommend", "THEMES", "feature_label"]
