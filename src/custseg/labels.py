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
