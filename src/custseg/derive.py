"""One definition of each feature derived from a customers table's demographic columns.

Which column role becomes which feature, and the value rule applied on the way, are declared
here once. Batch cleaning applies them to whole columns (pandas Series); the REST API's
single-customer scorer applies the very same objects to one Python float. The rules are written
with comparison operators only, which give the same answer on a float, a NumPy array and a
pandas Series, so the two paths cannot disagree about a value.

>>> AGE.clean(15.0), AGE.clean(42.0)
(nan, 42.0)
>>> INCOME.clean(250.0, fence=200.0)
nan
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any

AGE_RANGE = (16, 100)
INCOME_FENCE = 10.0  # income above Q3 + 10 * IQR is treated as a data-entry error


@dataclass(frozen=True)
class NumericRole:
    """A numeric demographic role: its feature name and the values that become missing.

    ``low`` / ``high``: values strictly below / above are set to missing. ``fence``: the name
    of an upper fence learned at fit time (``CustomerTable.fences``); values above it are set
    to missing. ``cleaned``: the run-summary line that counts the values this rule changed
    (None: changed values are not counted, as for counts that cannot be negative).
    """

    role: str
    feature: str
    low: float | None = None
    high: float | None = None
    fence: str | None = None
    cleaned: str | None = None

    def invalid(self, v: Any, fence: float | None = None) -> Any:
        """True where ``v`` breaks the rule (missing values never do); elementwise on arrays."""
        bad = v < self.low if self.low is not None else v > math.inf  # False everywhere
        if self.high is not None:
            bad = bad | (v > self.high)
        if self.fence is not None and fence is not None:
            bad = bad | (v > fence)
        return bad

    def clean(self, v: Any, fence: float | None = None) -> Any:
        """``v`` with the values that break the rule set to missing (a float or a Series)."""
        bad = self.invalid(v, fence)
        if isinstance(v, float):
            return math.nan if bad else v
        return v.where(~bad)


AGE = NumericRole("age", "age", low=AGE_RANGE[0], high=AGE_RANGE[1],
                  cleaned=f"age outside {AGE_RANGE[0]}-{AGE_RANGE[1]} set to missing")
INCOME = NumericRole("income", "income", low=0, fence="income_max",
                     cleaned="income negative or above Q3 + 10 x IQR set to missing")
HOUSEHOLD_SIZE = NumericRole("household_size", "household_size", low=0)
RECENCY_DAYS = NumericRole("recency_days", "recency_days", low=0)
CHILDREN = NumericRole("children", "children", low=0)

# in the order their features are built
NUMERIC_ROLES: tuple[NumericRole, ...] = (AGE, INCOME, HOUSEHOLD_SIZE, RECENCY_DAYS, CHILDREN)
# roles kept as categories (text, stripped; blank is missing), in the order they are built
CATEGORY_ROLES: tuple[str, ...] = ("gender", "occupation", "marital_status", "location_type")
EDUCATION_FEATURE = "education_level"  # the ordinal feature built from the education role

EDUCATION_LEVELS: dict[str, int] = {
    "none": 0, "primary": 0, "basic": 0, "elementary": 0,
    "highschool": 1, "secondary": 1, "hs": 1,
    "somecollege": 2, "2ncycle": 2, "associate": 2, "vocational": 2, "diploma": 2,
    "bachelor": 3, "bachelors": 3, "graduation": 3, "graduate": 3, "tertiary": 3, "undergraduate": 3,
    "master": 4, "masters": 4, "mba": 4, "postgraduate": 4,
    "phd": 5, "doctorate": 5, "doctoral": 5,
}
UNKNOWN_TOKENS = {"unknown", "unk", "missing", "notknown", "na", "other"}


def income_fence(q1: float, q3: float) -> float:
    """The upper income fence learned from a training table's quartiles: Q3 + 10 x IQR."""
    return float(q3 + INCOME_FENCE * (q3 - q1))


__all__ = ["NumericRole", "NUMERIC_ROLES", "CATEGORY_ROLES", "EDUCATION_FEATURE",
           "EDUCATION_LEVELS", "UNKNOWN_TOKENS", "AGE", "INCOME", "HOUSEHOLD_SIZE",
           "RECENCY_DAYS", "CHILDREN", "AGE_RANGE", "INCOME_FENCE", "income_fence"]


# ---- transaction lines: the values that mark a line, read by every engine (the local pandas
# cleaning and Spark's per-partition parsing), so the engines cannot disagree about a token
# an is_return column's values that mark a return: yes/no flags, or an order status that says
# the line was returned, refunded or cancelled
RETURN_FLAGS: tuple[str, ...] = ("1", "true", "yes", "y", "t", "returned", "return", "refunded",
                                 "refund", "cancelled", "canceled", "void", "voided")
YES_FLAGS: tuple[str, ...] = ("1", "true", "yes", "y", "t")  # a yes/no discount column's yes
CANCELLATION_PREFIX = "C"  # an order id starting with it (any case) is a cancellation
NO_LABEL = "Unknown"  # a line's category / channel when the cell is empty

__all__ += ["RETURN_FLAGS", "YES_FLAGS", "CANCELLATION_PREFIX", "NO_LABEL"]


# ---- outcome columns: results of past marketing, profiled per segment, never clustered on
# (normalised names: lower case, letters and digits only)
OUTCOME_NAMES = re.compile(
    r"^(?:churn|churned|churnflag|churnlabel|exited|attrition|attritionflag|attrited|"
    r"response|responded|acceptedcmp\d*|accepted|complain|complained|complaint|complaints|"
    r"subscribed|y|converted|conversion|deposit|termdeposit)$")
POSITIVE_TOKENS = {"yes", "y", "true", "t", "1", "churned", "attrited", "attritedcustomer",
                   "exited", "subscribed", "responded", "converted", "accepted"}
NEGATIVE_TOKENS = {"no", "n", "false", "f", "0", "stayed", "existingcustomer", "retained",
                   "notsubscribed", "notconverted"}


# ---- the currency an amount column's name shows: (token in the name, symbol)
CURRENCY_TOKENS = (("usd", "$"), ("dollar", "$"), ("dollars", "$"), ("$", "$"), ("eur", "€"),
                   ("euro", "€"), ("euros", "€"), ("€", "€"), ("gbp", "£"), ("pound", "£"),
                   ("pounds", "£"), ("sterling", "£"), ("£", "£"), ("inr", "₹"), ("rupees", "₹"),
                   ("₹", "₹"), ("jpy", "¥"), ("yen", "¥"), ("¥", "¥"))


def infer_currency(names: list[str]) -> str | None:
    """The currency symbol the column names show ("dollar_value", "Amount (EUR)", "price_£"),
    or None when they show none (or several).

    >>> infer_currency(["customer_id", "dollar_value"]), infer_currency(["amount"])
    ('$', None)
    """
    found = set()
    for name in names:
        tokens = set(re.findall(r"[a-z]+|[$€£₹¥]", str(name).lower()))
        found |= {sym for tok, sym in CURRENCY_TOKENS if tok in tokens}
    return found.pop() if len(found) == 1 else None

# --------------------------------------------------------------------------------------------
# labels: a category value becomes a level, a feature name, a label in profiles and the report

MAX_LABEL_CHARS = 80   # a longer text value is cut to this (one 50 MB cell was copied 7 times)
_LABEL_KEEP = 70       # characters kept; then an ellipsis and 8 hex digits of its SHA-256


def cap_label(value: str) -> str:
    """``value``, or when longer than :data:`MAX_LABEL_CHARS` characters its first 70, an
    ellipsis and 8 hex digits of the SHA-256 of the whole value (so two long values that start
    alike stay distinct). The DuckDB path builds the same label in SQL (``cap_label_sql``).

    >>> cap_label("short")
    'short'
    >>> len(cap_label("x" * 10_000))
    79
    """
    if len(value) <= MAX_LABEL_CHARS:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return value[:_LABEL_KEEP] + "\u2026" + digest


def cap_label_sql(expr: str) -> str:
    """:func:`cap_label` as a DuckDB SQL expression on the text ``expr``."""
    return (f"CASE WHEN length({expr}) > {MAX_LABEL_CHARS} THEN left({expr}, {_LABEL_KEEP}) "
            f"|| '\u2026' || left(sha256({expr}), 8) ELSE {expr} END")
