"""Readable labels for feature names, shared by profiling, recommendations and the report."""

from __future__ import annotations


def feature_label(name: str) -> str:
    """A readable label for a feature name.

    >>> feature_label("cat_share_electronics"), feature_label("recency_days")
    ('Electronics share', 'Recency (days)')
    """
    fixed = {
        "recency_days": "Recency (days)", "frequency": "Orders", "monetary": "Net spend",
        "avg_order_value": "Average order value", "tenure_days": "Tenure (days)",
        "purchase_rate": "Orders per month", "mean_gap_days": "Days between orders",
        "return_rate": "Return rate", "discount_share": "Discount use", "age": "Age",
        "income": "Income", "education_level": "Education level", "children": "Children",
        "household_size": "Household size", "items_per_order": "Items per order",
        "online_share": "Online share",
    }
    if name in fixed:
        return fixed[name]
    for prefix, suffix in (("cat_share_", "share"), ("chan_share_", "channel share")):
        if name.startswith(prefix):
            return f"{name[len(prefix):].replace('_', ' ').capitalize()} {suffix}"
    if "=" in name:
        col, level = name.split("=", 1)
        return f"{feature_label(col)}: {level}"
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def money(x: float | None, currency: str = "") -> str:
    """An amount in the data's currency, one format everywhere: "£1.2M", "$45,310", "812",
    "7.50".

    >>> money(1234567, "£"), money(45310.4, "$"), money(7.5)
    ('£1.2M', '$45,310', '7.50')
    """
    if x is None or x != x or x in (float("inf"), float("-inf")):
        return "n/a"
    sign = "-" if x < 0 else ""
    a = abs(x)
    body = (f"{a / 1e9:.1f}B" if a >= 1e9 else f"{a / 1e6:.1f}M" if a >= 1e6
            else f"{a:,.0f}" if a >= 100 else f"{a:,.2f}")
    return f"{sign}{currency}{body}"


def number(x: float | None) -> str:
    """A figure in the one format of every text: 1,146 / 63.2 / 0.56 (never "-0.00").

    >>> number(1146.4), number(63.21), number(0.555), number(-0.0001), number(None)
    ('1,146', '63.2', '0.56', '0.00', 'n/a')
    """
    if x is None or x != x or x in (float("inf"), float("-inf")):
        return "n/a"
    if abs(x) < 0.005:
        return "0.00"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"
