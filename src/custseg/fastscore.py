"""Scoring one customer of a customers-only model in pure Python and NumPy (the API's fast path).

:class:`FastScorer` reproduces, for one record of plain values, the steps batch scoring
(:func:`custseg.score.score`) takes on a one-row table: :func:`custseg.cleaning.prepare_customers`
with ``scoring=True``, :func:`custseg.features.build_features`,
:meth:`custseg.preprocess.Preprocessor.transform` and :meth:`custseg.score.LoadedModel.assign`.
Which role becomes which feature, and the value rules on the way (age bounds, the learned income
fence, counts that cannot be negative, the education order), are not restated here: they are the
declarative objects of :mod:`custseg.derive`, applied to one float exactly as batch cleaning
applies them to a column. Whenever a record needs anything else (dates, pre-aggregated spend
columns, currency signs, blanks, a rule that would reject the record ...), the scorer raises
:class:`Fallback` and the caller uses :func:`~custseg.score.score`.

This module knows nothing of HTTP (that is :mod:`custseg.serve`) and never imports Spark.
"""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from custseg.derive import (
    CATEGORY_ROLES,
    EDUCATION_FEATURE,
    EDUCATION_LEVELS,
    NUMERIC_ROLES,
    NumericRole,
    cap_label,
)
from custseg.errors import CustsegError
from custseg.preprocess import ONE_HOT_SCALE, ColumnSpec
from custseg.roles import (
    CATEGORY_SPEND,
    CHANNEL_PURCHASES,
    CUSTOMER_ROLES,
    KIDS_PARTS,
    detect_roles,
    normalise,
)
from custseg.roles_infer import name_hint
from custseg.score import LoadedModel

Cell = str | int | float | bool | None  # a JSON value, read like a CSV cell


class Fallback(Exception):
    """The record is outside what the fast path handles: score it with :func:`score`."""


# values the fast path parses itself; anything else (currency signs, thousands separators,
# blanks around the value, ...) goes to score(), which knows every rule
_NUMBER = re.compile(r"-?[0-9]{1,20}(?:\.[0-9]{1,20})?(?:[eE][-+]?[0-9]{1,2})?")
_INTEGER = re.compile(r"-?[0-9]{1,15}")
_SAFE_EDGE = frozenset(chr(c) for c in range(0x21, 0x7F))  # printable ASCII, not a space
_DECIMAL_ID = re.compile(r"-?\d+\.0+\s*")  # clean_ids() turns "17850.0" into "17850"
_UNSUPPORTED_ROLES = ("signup_date", "birth_date", "birth_year")  # need dates: score() does
_PLAN_CACHE = 256


# ------------------------------------------------------------------------------ one plain value


def cell_text(v: Cell) -> str | None:
    """A JSON value as :func:`~custseg.score.records_frame` turns a one-record column into text."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**63:
        raise Fallback
    return str(v)


def _safe(t: str) -> bool:
    """True when stripping blanks cannot change ``t`` (in Python or in Arrow)."""
    return t[0] in _SAFE_EDGE and t[-1] in _SAFE_EDGE


def number(t: str | None) -> float:
    """:func:`custseg.parsing.parse_numeric` of one plain number.

    Up to 15 digits without a point, pandas' parser reads an integer exactly and converts it to
    float64 (``float(int(t))``, which is exact); other numbers go through the same
    :func:`pandas.to_numeric` call on the same text.
    """
    if t is None:
        return math.nan
    if _INTEGER.fullmatch(t):
        return float(int(t))
    if not _NUMBER.fullmatch(t):
        raise Fallback
    value = float(pd.to_numeric(np.array([t], dtype=object), errors="coerce")[0])
    if not math.isfinite(value):
        raise Fallback
    return value


def text(t: str | None) -> str | None:
    """:func:`custseg.parsing.clean_text` (strip; blank is missing) for one plain value."""
    if t is None or t == "":
        return None
    if not _safe(t):
        raise Fallback
    return t


def label(t: str | None) -> str | None:
    """:func:`text` for a category value: long values capped as the batch path caps them."""
    v = text(t)
    return None if v is None else cap_label(v)


def education_level(t: str | None) -> float:
    """The ordinal education feature of one value (unknown levels are missing, as when scoring)."""
    t = text(t)
    return math.nan if t is None else float(EDUCATION_LEVELS.get(normalise(t), math.nan))


def clip(x: float, lo: float, hi: float) -> float:
    """``np.clip(x, lo, hi)`` for one float, ties included (``x`` is kept on a tie, so the sign
    of a zero survives, as in NumPy)."""
    return lo if x < lo else (hi if x > hi else x)


# ------------------------------------------------------------------------------- record shapes


class _Step(NamedTuple):
    """One derived feature of a demographic role: read ``column``, apply ``rule``."""

    kind: str                    # "numeric", "education" or "category"
    column: str
    feature: str
    rule: NumericRole | None = None


class _Other(NamedTuple):
    """A column with no role: kept under ``feature`` (numeric or text, or as forced)."""

    column: str
    feature: str
    forced: str | None


class _Plan(NamedTuple):
    """How the columns of one record shape (names in order) become feature values."""

    id_col: str
    steps: list[_Step]
    others: list[_Other]


# ------------------------------------------------------------------------------------ the scorer


class FastScorer:
    """Scores one customer of a customers-only model without pandas or DuckDB.

    For the common case: an id, the numeric demographic roles of
    :data:`custseg.derive.NUMERIC_ROLES`, education, the categorical roles, and other numeric
    or text columns, with plain values. Anything else raises :class:`Fallback`.
    ``tests/test_serve.py`` and ``tests/test_parity.py`` check that both paths agree exactly.
    """

    def __init__(self, lm: LoadedModel) -> None:
        cfg = lm.config()
        self.lm = lm
        self.table = cfg.customers
        self.features = cfg.features
        self.fences: dict[str, float] = lm.manifest.get("cleaning_fences") or {}
        self.specs: list[ColumnSpec] = list(lm.preprocessor.specs_)
        self.names = lm.names()
        self._plans: dict[tuple[str, ...], _Plan | None] = {}

    @classmethod
    def for_model(cls, lm: LoadedModel) -> FastScorer | None:
        """A fast scorer when the model was fitted on a customers table only, else None."""
        inputs = lm.manifest.get("training", {}).get("inputs", {})
        cfg = lm.config()
        if set(inputs) != {"customers"} or cfg.customers.row_ids \
                or cfg.features.include is not None:
            return None
        return cls(lm)

    def score_one(self, record: dict[str, Cell]) -> dict[str, Any]:
        """customer_id, segment_id, segment_name, distance, confidence (as LoadedModel.assign)."""
        cid, values = self.features_of(record)
        x = self.matrix(values)
        distances = self.lm.model.transform(x)
        row = {"customer_id": cid, **self._assign(distances[0])}
        why = self._why(x, row["segment_id"], values)
        if why is not None:
            row["why"] = why
        return row

    def _why(self, x: np.ndarray, segment_id: int, values: dict) -> str | None:
        """Why the customer is in its segment, as the batch scorer says it."""
        numeric = {c: np.array([np.nan if v is None else v], dtype="float64")
                   for c, v in values.items() if not isinstance(v, str)}
        why = self.lm.why(x, np.array([segment_id]), numeric)
        return None if why is None else why[0]

    # ---------------------------------------------------------------- per record shape
    def plan(self, columns: tuple[str, ...]) -> _Plan | None:
        """The plan for records with these columns (cached); None: score() must decide."""
        if columns not in self._plans:
            if len(self._plans) >= _PLAN_CACHE:
                self._plans.clear()
            try:
                self._plans[columns] = self._make_plan(list(columns))
            except CustsegError:
                self._plans[columns] = None
        return self._plans[columns]

    def _make_plan(self, columns: list[str]) -> _Plan | None:
        cfg = self.table
        if any(c not in columns for c in [*cfg.ignore, *cfg.categorical, *cfg.numeric]):
            return None
        roles = detect_roles(columns, CUSTOMER_ROLES, cfg, "customers")
        if "customer_id" not in roles or any(r in roles for r in _UNSUPPORTED_ROLES):
            return None
        used = set(roles.values()) | set(cfg.ignore)
        if self._needs_batch_rules(columns, roles, used):
            return None
        if any(name_hint(c) for c in columns if c not in used
               and c not in cfg.categorical and c not in cfg.numeric):
            return None  # row numbers, outcomes, integer codes: their content decides
        steps = self._role_steps(roles)
        others = self._other_columns(columns, used, [s.feature for s in steps])
        if others is None or not self._fits_model([s.feature for s in steps]
                                                  + [o.feature for o in others]):
            return None
        return _Plan(roles["customer_id"], steps, others)

    def _needs_batch_rules(self, columns: list[str], roles: dict[str, str],
                           used: set[str]) -> bool:
        """Columns that prepare_customers combines or aggregates: kid counts to add up,
        pre-aggregated spend or purchase counts."""
        if "children" not in roles \
                and any(normalise(c) in KIDS_PARTS and c not in used for c in columns):
            return True
        for c in columns:
            if c in used or c in self.table.categorical:
                continue
            m_sp = CATEGORY_SPEND.match(c)
            if CHANNEL_PURCHASES.match(normalise(c)) or CHANNEL_PURCHASES.match(c) \
                    or (m_sp and normalise(c).startswith("mnt")):
                return True
        return False

    @staticmethod
    def _role_steps(roles: dict[str, str]) -> list[_Step]:
        """The demographic features, in the order prepare_customers builds them."""
        steps = [_Step("numeric", roles[r.role], r.feature, r)
                 for r in NUMERIC_ROLES if r.role in roles]
        if "education" in roles:
            steps.append(_Step("education", roles["education"], EDUCATION_FEATURE))
        steps += [_Step("category", roles[r], r) for r in CATEGORY_ROLES if r in roles]
        return steps

    def _other_columns(self, columns: list[str], used: set[str],
                       names: list[str]) -> list[_Other] | None:
        """Every column without a role, under its feature name; None: score() must decide."""
        cfg = self.table
        names = list(names)
        others: list[_Other] = []
        for c in columns:
            if c in used:
                continue
            if c.startswith("__raw__"):  # build_features drops such columns: score() decides
                return None
            name = c
            while name in names:
                name = f"{name}_"
            names.append(name)
            forced = "numeric" if c in cfg.numeric else "categorical" if c in cfg.categorical \
                else None
            others.append(_Other(c, name, forced))
        return others

    def _fits_model(self, names: list[str]) -> bool:
        """The feature config and the model's columns can be applied to these features."""
        feats = self.features
        if any(n not in names for n in [*feats.exclude, *feats.weights]) \
                or not set(names) - set(feats.exclude):
            return False
        return all(s.name in names for s in self.specs)

    # ---------------------------------------------------------------- one customer
    def features_of(self, record: dict[str, Cell]) -> tuple[str, dict[str, float | str | None]]:
        """(customer id, feature values by name) as prepare_customers + build_features."""
        plan = self.plan(tuple(record))
        if plan is None:
            raise Fallback
        cid = text(cell_text(record[plan.id_col]))
        if cid is None or _DECIMAL_ID.fullmatch(cid):
            raise Fallback
        out: dict[str, float | str | None] = {}
        for step in plan.steps:
            out[step.feature] = self._role_value(step, cell_text(record[step.column]))
        for other in plan.others:
            out[other.feature] = self._other_value(other, cell_text(record[other.column]))
        return cid, out

    def _role_value(self, step: _Step, t: str | None) -> float | str | None:
        """A demographic feature: the role's rule from :mod:`custseg.derive` on the value."""
        if step.kind == "category":
            return label(t)
        if step.kind == "education":
            return education_level(t)
        rule = step.rule
        assert rule is not None
        fence = self.fences.get(rule.fence) if rule.fence is not None else None
        return rule.clean(number(t), fence)

    @staticmethod
    def _other_value(other: _Other, t: str | None) -> float | str | None:
        """A column without a role: a number, or text when it cannot be one (nor a date)."""
        if other.forced == "categorical":
            return label(t)
        if t is None or t == "" or _NUMBER.fullmatch(t):
            return number(t or None)
        if other.forced is None and _safe(t) and not any(ch.isnumeric() for ch in t):
            return cap_label(t)  # no digit at all: not a number, cannot be a date
        raise Fallback

    # ---------------------------------------------------------------- the model matrix
    def matrix(self, values: dict[str, float | str | None]) -> np.ndarray:
        """:meth:`Preprocessor.transform` for one row.

        The same IEEE operations in the same order on Python floats (``+ - * /`` and
        comparisons give the same results as NumPy's); ``log1p`` runs in NumPy on a one-element
        array, exactly as in the batch path; :func:`clip` keeps ``x`` on a tie, as NumPy does.
        """
        row: list[float] = []
        for s in self.specs:
            if s.kind == "categorical":
                row += _one_hot(s, values[s.name])
            else:
                row.append(_scaled(s, values[s.name]))
        return np.array([row], dtype="float64")

    # ---------------------------------------------------------------- the nearest segment
    def _assign(self, d: np.ndarray) -> dict[str, Any]:
        """segment_id, segment_name, distance, confidence from one row of centroid distances."""
        order = np.argsort(d, kind="stable")
        nearest = int(order[0])
        d1 = float(d[nearest])
        if d.shape[0] > 1:
            d2 = float(d[order[1]])
            conf = 1.0 - d1 / d2 if d2 > 0 else 0.0
        else:
            conf = 1.0
        dist, conf = np.round(np.array([d1, conf]), 6).tolist()
        sid = int(self.lm.model.segment_ids_[nearest])
        return {"segment_id": sid, "segment_name": self.names.get(sid, f"Segment {sid}"),
                "distance": dist, "confidence": conf}


def _one_hot(s: ColumnSpec, value: float | str | None) -> list[float]:
    """A categorical column's one-hot block (missing and unseen levels as in batch)."""
    if not (value is None or isinstance(value, str)):
        raise Fallback
    v = "(missing)" if value is None else value
    levels = s.levels or []
    if "other" in levels and v not in levels:
        v = "other"
    return [(float(v == lv) * ONE_HOT_SCALE) * s.weight for lv in levels]


def _scaled(s: ColumnSpec, value: float | str | None) -> float:
    """A numeric or binary column: impute, (log1p), clip, standardise, weight."""
    if not isinstance(value, float):
        raise Fallback
    x = value if math.isfinite(value) else float(s.impute)  # type: ignore[arg-type]
    if s.kind == "binary":
        return x * s.weight
    if s.log:
        x = float(np.log1p(np.maximum(np.array([x], dtype="float64"), 0.0))[0])
    x = clip(x, s.lo, s.hi)  # type: ignore[arg-type]
    return ((x - s.mean) / s.scale) * s.weight


__all__ = ["FastScorer", "Fallback", "clip", "number", "text", "cell_text", "education_level"]
