"""Insights and recommended actions per segment, from its own figures, sized and ranked.

Every statement says what the data shows and how strongly:

* **Over- and under-indexing.** A category, channel or trait level is named only when the
  segment's share of it is at least :data:`INDEX_MIN` times the base's (and at least
  :data:`MIN_SHARE` of the segment), or at most :data:`UNDER_INDEX` times for an
  under-indexing insight; the index and both shares are given.
* **Price point and timing.** The median order value against the base's; the median days since
  the last order against the data's typical gap between orders.
* **Outcomes.** Rates of outcome columns (churn, campaign response …) against the base, where
  they differ by :data:`INDEX_MIN` or more.
* **Size.** Every action carries the customers it reaches, the segment's value share and the
  value at stake in the data's currency; segments are ranked by value at stake (customers when
  there is no value).

Actions start from the naming rule the segment earned (plain text, no slots: see
``rules/naming.toml``) or, for a segment named after its traits, from what sets it apart; then
the data-driven specifics above are added. No template slot ever reaches the output.
"""

from __future__ import annotations

import numpy as np

from custseg.labels import money
from custseg.profile import (
    NamingRule,
    Profiles,
    SegmentFacts,
    SegmentProfile,
    _fmt,
    feature_label,
    trait_words,
)

THEMES = ("targeted_marketing", "personalisation", "retention", "product_development")
THEME_LABELS = {
    "targeted_marketing": "Targeted marketing",
    "personalisation": "Personalisation",
    "retention": "Customer retention",
    "product_development": "Product development",
}
INDEX_MIN = 1.2     # a level is "over-indexing" at 1.2x the base's share or more
UNDER_INDEX = 0.8   # ... and "under-indexing" at 0.8x or less
MIN_SHARE = 0.05    # and only when it is at least 5% of the segment's spend / orders
MIN_OUTCOME_GAP = 0.02  # and an outcome rate at least 2 points from the base's
PRICE_INDEX = 1.25  # median order value 25% above (or 1/1.25 below) the base's: a price point


def indexing_levels(seg: SegmentProfile, profiles: Profiles, group: str, *,
                    over: bool = True) -> list[dict]:
    """Levels of a share group (category_share, channel_share) or a categorical column the
    segment over-indexes on (``over=False``: under-indexes on), strongest first:
    ``{"level", "share", "base", "index"}``."""
    mix = seg.mixes.get(group) or {}
    pop = profiles.population_mixes.get(group) or {}
    out = []
    for lv, share in mix.items():
        base = pop.get(lv, 0.0)
        if base <= 0 or lv in ("(missing)", "Unknown"):
            continue
        idx = share / base
        if over and idx >= INDEX_MIN and share >= MIN_SHARE or not over and idx <= UNDER_INDEX and base >= MIN_SHARE:
            out.append({"level": lv, "share": share, "base": base, "index": idx})
    out.sort(key=lambda d: (-(d["share"] - d["base"]) if over else d["share"] - d["base"],
                            d["level"]))
    return out


def _levels_text(levels: list[dict], what: str) -> str:
    parts = [f"{d['level']} ({d['share']:.0%} of their {what} vs {d['base']:.0%} overall, "
             f"index {d['index']:.1f})" for d in levels]
    return " and ".join(parts)


def _generic_actions(seg: SegmentProfile) -> dict[str, str]:
    """Actions for a segment no archetype fits, from what sets it apart."""
    z = seg.z
    high_value = (seg.revenue_share or 0) > seg.share * 1.2
    traits = [t for t in (trait_words(d) for d in seg.distinguishing[:3]) if t][:2]
    actions = {
        "targeted_marketing": (f"Build the message on what sets them apart: "
                               f"{' and '.join(t[:1].lower() + t[1:] for t in traits)}."
                               if traits else "Test messages on a sample before a full send."),
        "personalisation": "Personalise offers on their own purchase history.",
        "retention": ("Protect this revenue: service priority and loyalty rewards." if high_value
                      else "Grow their value with cross-sell offers and a second-purchase "
                      "incentive."),
        "product_development": "Study what this group buys most for gaps in the range.",
    }
    if z.get("recency_days", 0) > 0.5:
        actions["retention"] = "They are drifting away: a win-back offer before they lapse for good."
    if z.get("discount_share", 0) > 0.5:
        actions["targeted_marketing"] = "Price-led promotions and coupons work for this group."
    return actions


def recommend(profiles: Profiles, rules: list[NamingRule], currency: str = "", *,
              facts: SegmentFacts | None = None, outcomes: list[str] | None = None,
              horizon_months: int = 12) -> None:
    """Fill in ``insights``, ``recommendations`` and ``opportunity`` of every segment (in place)."""
    by_name = {r.name: r for r in rules}
    n_total = sum(s.size for s in profiles.segments)
    total_value = sum(s.revenue or 0.0 for s in profiles.segments) if profiles.value_column \
        else None
    outcomes = outcomes or []
    for seg in profiles.segments:
        cats = indexing_levels(seg, profiles, "category_share")[:2]
        chans = indexing_levels(seg, profiles, "channel_share")[:1]
        specifics = _specifics(seg, profiles, cats, chans, facts, outcomes, currency)
        rule = by_name.get(seg.name_rule or "")
        templates = dict(_generic_actions(seg))
        if rule is not None:
            templates.update({k: v for k, v in rule.actions.items() if k in THEMES})
        value = seg.revenue if total_value else None
        clv = seg.value.get("clv_total")
        sizing = {"customers": seg.size, "share_of_customers": round(seg.share, 6),
                  "value_share": None if value is None else round(seg.revenue_share or 0.0, 6),
                  "value_at_stake": None if value is None else round(value, 2),
                  "expected_value": None if clv is None else round(clv, 2),
                  "expected_value_share": (None if seg.value.get("clv_share") is None
                                           else round(seg.value["clv_share"], 6)),
                  "horizon_months": horizon_months if clv is not None else None,
                  "currency": currency}
        seg.recommendations = []
        for t in THEMES:
            if t not in templates:
                continue
            action = " ".join([templates[t], *specifics.get(t, [])]).strip()
            seg.recommendations.append({"theme": t, "label": THEME_LABELS[t], "action": action,
                                        "reach": _reach(sizing, currency), **sizing})
        seg.insights = _insights(seg, profiles, cats, chans, n_total, currency, facts, outcomes)
        seg.opportunity = {
            "customers": seg.size,
            "share_of_customers": seg.share,
            "revenue": seg.revenue,
            "revenue_share": seg.revenue_share,
            "value_per_customer": seg.value_per_customer,
            "value_at_stake": value,
            "expected_value": clv,
            "currency": currency,
        }
    # rank by the value expected next (CLV), else the value so far, else customers
    has_clv = any(s.value.get("clv_total") is not None for s in profiles.segments)

    def worth(s: SegmentProfile) -> float:
        if has_clv:
            return s.value.get("clv_total") or 0.0
        return (s.revenue or 0.0) if total_value else float(s.size)

    order = sorted(profiles.segments, key=lambda s: (-worth(s), s.segment_id))
    for rank, s in enumerate(order, start=1):
        s.opportunity["rank"] = rank
        for r in s.recommendations:
            r["priority"] = rank


def _reach(sizing: dict, currency: str) -> str:
    text = f"reaches {sizing['customers']:,} customers ({sizing['share_of_customers']:.0%})"
    if sizing["value_share"] is not None:
        text += (f", {sizing['value_share']:.0%} of value so far "
                 f"({money(sizing['value_at_stake'], currency)})")
    if sizing.get("expected_value") is not None:
        text += (f", {money(sizing['expected_value'], currency)} expected in the next "
                 f"{sizing['horizon_months']} months ({sizing['expected_value_share']:.0%})")
    return text


def _specifics(seg: SegmentProfile, profiles: Profiles, cats: list[dict], chans: list[dict],
               facts: SegmentFacts | None, outcomes: list[str], currency: str
               ) -> dict[str, list[str]]:
    """What the data adds to each theme's action: only what it shows."""
    out: dict[str, list[str]] = {t: [] for t in THEMES}
    if cats:
        out["personalisation"].append(f"Lead with {_levels_text(cats, 'spend')}.")
        out["product_development"].append(
            f"Deepen the {' and '.join(d['level'] for d in cats)} "
            f"{'ranges' if len(cats) > 1 else 'range'} they over-index on.")
    if chans:
        out["targeted_marketing"].append(f"Reach them through {_levels_text(chans, 'orders')}.")
    price = _price_point(seg, profiles, currency)
    if price:
        out["personalisation"].append(price)
    timing = _timing(seg, facts)
    if timing:
        out["retention"].append(timing)
    v = seg.value
    if v.get("customers_at_risk") and v.get("value_at_risk"):
        out["retention"].append(
            f"{v['customers_at_risk']:,} of them ({v['customers_at_risk'] / seg.size:.0%}) are "
            f"probably no longer active (P(alive) below the threshold) and hold "
            f"{money(v['value_at_risk'], currency)} of expected value: reach them first.")
    high, low = [], []
    for c, m, b in _outcome_rates(seg, profiles, outcomes):
        if abs(m - b) < MIN_OUTCOME_GAP * (1 if 0 <= b <= 1 else abs(b)):
            continue  # 1% vs 0.7%: an index, not a difference worth acting on
        if m / b >= INDEX_MIN:
            high.append((c, m, b))
        elif m / b <= UNDER_INDEX and not _is_churn(c):
            low.append((c, m, b))
    churn = [o for o in high if _is_churn(o[0])]
    response = sorted((o for o in high if not _is_churn(o[0])), key=lambda o: -o[1] / o[2])
    if churn:
        out["retention"].append(f"Act on the risk: {_outcomes_text(churn[:2])}.")
    if response:
        out["targeted_marketing"].append(
            f"Include them early in campaigns: {_outcomes_text(response[:2])}.")
    if low:
        low.sort(key=lambda o: o[1] / o[2])
        out["targeted_marketing"].append(
            f"Expect weaker response: {_outcomes_text(low[:2])}.")
    return out


def _outcome_rates(seg: SegmentProfile, profiles: Profiles, outcomes: list[str]
                   ) -> list[tuple[str, float, float]]:
    """(outcome, segment mean, base mean) for the outcomes with a positive base."""
    out = []
    for c in outcomes:
        m, b = seg.means.get(c), profiles.population.get(c, {}).get("mean")
        if m is not None and b is not None and np.isfinite(m) and np.isfinite(b) and b > 0:
            out.append((c, m, b))
    return out


def _outcomes_text(items: list[tuple[str, float, float]]) -> str:
    return "; ".join(f"{feature_label(c)} {_rate(m)} vs {_rate(b)} overall (index {m / b:.1f})"
                     for c, m, b in items)


def _is_churn(column: str) -> bool:
    c = column.lower()
    return any(w in c for w in ("churn", "exit", "attrit", "complain", "left"))


def _rate(x: float) -> str:
    if 0 <= x < 0.1:
        return f"{x:.1%}"
    return f"{x:.0%}" if 0 <= x <= 1 else _fmt(x)


def _price_point(seg: SegmentProfile, profiles: Profiles, currency: str) -> str | None:
    f = "avg_order_value"
    m, b = seg.medians.get(f), profiles.population.get(f, {}).get("median")
    if m is None or b is None or not (np.isfinite(m) and np.isfinite(b)) or b <= 0:
        return None
    idx = m / b
    if idx >= PRICE_INDEX:
        return (f"Premium price points work: median order {money(m, currency)} vs "
                f"{money(b, currency)} overall.")
    if idx <= 1 / PRICE_INDEX:
        return (f"Keep to entry price points: median order {money(m, currency)} vs "
                f"{money(b, currency)} overall.")
    return None


def _timing(seg: SegmentProfile, facts: SegmentFacts | None) -> str | None:
    if facts is None or facts.gap is None:
        return None
    rec = seg.medians.get("recency_days")
    if rec is None or not np.isfinite(rec):
        return None
    gap = facts.gap
    if rec > 2 * gap:
        return (f"Overdue: a median {rec:.0f} days since the last order against a typical "
                f"{gap:.0f}-day gap between orders; contact them now.")
    if rec <= gap:
        return (f"Next order due: a median {rec:.0f} days since the last one and a typical "
                f"{gap:.0f}-day gap; time reminders for the next {max(gap - rec, 1):.0f} days.")
    return None


def _insights(seg: SegmentProfile, profiles: Profiles, cats: list[dict], chans: list[dict],
              n_total: int, currency: str, facts: SegmentFacts | None,
              outcomes: list[str]) -> list[str]:
    out = [f"{seg.size:,} customers ({seg.share:.1%} of {n_total:,})."]
    if seg.revenue_share is not None:
        ratio = seg.revenue_share / seg.share if seg.share else np.nan
        pop_vpc = (sum(s.revenue or 0 for s in profiles.segments) / n_total) if n_total else np.nan
        out.append(
            f"They bring {seg.revenue_share:.1%} of value, {ratio:.1f}× their share of customers; "
            f"{money(seg.value_per_customer, currency)} per customer vs "
            f"{money(pop_vpc, currency)} on average.")
    for d in seg.distinguishing[:3]:
        if d["kind"] == "numeric" and d.get("binary"):
            out.append(f"{d['segment']:.0%} have {d['label'].lower()} vs "
                       f"{d['population']:.0%} overall.")
        elif d["kind"] == "numeric":
            word = "higher" if d["score"] > 0 else "lower"
            out.append(f"{d['label']} is {word} than average: {_fmt(d['segment'])} vs "
                       f"{_fmt(d['population'])} ({d['score']:+.1f} SD).")
        else:
            col, level = d["feature"].split("=", 1)
            share = seg.mixes.get(col, {}).get(level)
            if share is None:
                continue
            base = share - d["difference"]
            word = "over" if d["difference"] > 0 else "under"
            out.append(f"{feature_label(col)} '{level}' {word}-indexes: {share:.0%} of the "
                       f"segment vs {base:.0%} overall.")
    if cats:
        out.append(f"Over-indexes on {_levels_text(cats, 'spend')}.")
    under = indexing_levels(seg, profiles, "category_share", over=False)[:2]
    if under:
        out.append(f"Under-indexes on {_levels_text(under, 'spend')}.")
    if chans:
        out.append(f"Over-indexes on the {_levels_text(chans, 'orders')} channel.")
    rates = _outcome_rates(seg, profiles, outcomes)
    if rates:
        out.append("Outcomes vs overall: " + "; ".join(
            f"{feature_label(c)} {_rate(m)} vs {_rate(b)} (index {m / b:.1f})"
            for c, m, b in rates) + ".")
    return out


__all__ = ["INDEX_MIN", "THEMES", "feature_label", "indexing_levels", "money", "recommend"]
