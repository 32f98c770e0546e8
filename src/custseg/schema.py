"""Column roles, typing and cleaning with a ledger.

Raw tables come in with arbitrary column names and text values. This module

* finds which column plays which *role* (customer id, order date, amount, age, income …) from
  common names, overridable in the config; when a required role is missing the error lists the
  columns that were seen;
* types every column it uses, and stops with an :class:`~custseg.errors.InputError` naming the
  file, column, row and value when a value can't be read;
* applies the documented cleaning rules, recording every excluded row (with its reason) and every
  value it changed in a :class:`Ledger`, so that the run summary accounts for every row.

Rows are numbered from 1 for the first data row (the header is not counted).
"""

from __future__ import annotations

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from custseg.config import TableConfig
from custseg.errors import ConfigError, InputError

# --------------------------------------------------------------------------------------------
# role tables: role -> normalised column names that play it (lower case, letters and digits only)

ID_NAMES = ["customerid", "customer", "custid", "customerno", "customernumber", "clientid",
            "client", "userid", "memberid", "accountid", "id"]

CUSTOMER_ROLES: dict[str, list[str]] = {
    "customer_id": ID_NAMES,
    "age": ["age", "customerage", "agey", "ageyears"],
    "birth_year": ["yearbirth", "birthyear", "yearofbirth", "yob"],
    "birth_date": ["birthdate", "dateofbirth", "dob"],
    "gender": ["gender", "sex", "genre"],
    "occupation": ["occupation", "job", "profession", "jobtitle", "employment"],
    "income": ["income", "annualincome", "annualincomek", "householdincome", "salary", "yearlyincome"],
    "education": ["education", "educationlevel", "edu", "degree"],
    "marital_status": ["maritalstatus", "marital", "married"],
    "location_type": ["locationtype", "urbanicity", "areatype", "urbanrural", "settlement"],
    "household_size": ["householdsize", "familysize", "household", "hhsize"],
    "children": ["children", "kids", "numchildren", "childrencount", "nchildren", "dependents"],
    "signup_date": ["signupdate", "dtcustomer", "customersince", "joindate", "joineddate",
                    "registrationdate", "registered", "enrollmentdate", "signup"],
    "recency_days": ["recency", "recencydays", "dayssincelastpurchase", "dayssincelastorder"],
}

TRANSACTION_ROLES: dict[str, list[str]] = {
    "customer_id": ID_NAMES[:-1],  # a bare "id" in a transactions log is usually the line id
    "order_id": ["orderid", "invoice", "invoiceno", "invoicenumber", "invoiceid", "transactionid",
                 "order", "orderno", "ordernumber", "receiptid", "txnid", "basketid"],
    "timestamp": ["invoicedate", "orderdate", "timestamp", "transactiondate", "datetime",
                  "purchasedate", "date", "orderdatetime", "time", "ts"],
    "amount": ["amount", "total", "linetotal", "lineamount", "sales", "revenue", "totalamount",
               "netamount", "value", "spend", "totalprice"],
    "quantity": ["quantity", "qty", "units", "unitsold", "quantityordered"],
    "unit_price": ["unitprice", "price", "itemprice", "priceeach"],
    "category": ["category", "productcategory", "department", "productline", "categoryname"],
    "channel": ["channel", "purchasechannel", "saleschannel", "orderchannel"],
    "discount": ["discountused", "discount", "promo", "promoused", "coupon", "couponused",
                 "promotion", "ondiscount"],
    "is_return": ["returned", "isreturn", "return", "returnflag"],
}

# columns of pre-aggregated customer tables, recognised by pattern (e.g. marketing_campaign.csv)
CATEGORY_SPEND = re.compile(r"^mnt[_ ]?(?P<name>.+?)(?:_?prods?|_?products)?$", re.IGNORECASE)
CHANNEL_PURCHASES = re.compile(r"^num[_ ]?(?P<name>.+?)[_ ]?purchases$", re.IGNORECASE)
KIDS_PARTS = {"kidhome", "teenhome"}

EDUCATION_LEVELS: dict[str, int] = {
    "none": 0, "primary": 0, "basic": 0, "elementary": 0,
    "highschool": 1, "secondary": 1, "hs": 1,
    "somecollege": 2, "2ncycle": 2, "associate": 2, "vocational": 2, "diploma": 2,
    "bachelor": 3, "bachelors": 3, "graduation": 3, "graduate": 3, "tertiary": 3, "undergraduate": 3,
    "master": 4, "masters": 4, "mba": 4, "postgraduate": 4,
    "phd": 5, "doctorate": 5, "doctoral": 5,
}
UNKNOWN_TOKENS = {"unknown", "unk", "missing", "notknown", "na", "other"}

AGE_RANGE = (16, 100)
INCOME_FENCE = 10.0  # income above Q3 + 10 * IQR is treated as a data-entry error

DATE_FORMATS = [  # month-first before day-first: an all-ambiguous column reads month-first
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%Y/%m/%d",
    "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y", "%m-%d-%Y", "%m/%d/%y %H:%M",
    "%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y", "%d/%m/%Y %H:%M", "%d-%m-%Y %H:%M", "%Y%m%d",
]


def normalise(name: str) -> str:
    """Lower-case a column name and keep letters and digits only.

    >>> normalise("Annual Income (k$)")
    'annualincomek'
    """
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def slug(text: str) -> str:
    """A safe lower-case identifier for a category or channel level.

    >>> slug("Home & Garden")
    'home_garden'
    """
    s = re.sub(r"[^a-z0-9]+", "_", str(text).strip().lower()).strip("_")
    return s or "blank"


# --------------------------------------------------------------------------------------------
# the ledger


@dataclass
class SourceLedger:
    """What happened to the rows of one input file."""

    file: str
    rows_read: int = 0
    excluded: Counter = field(default_factory=Counter)
    returns: int = 0

    @property
    def rows_used(self) -> int:
        return self.rows_read - sum(self.excluded.values())

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "read": self.rows_read,
            "used": self.rows_used,
            "excluded": dict(sorted(self.excluded.items())),
            **({"returns_and_cancellations": self.returns} if self.returns else {}),
        }


@dataclass
class Ledger:
    """Accounts for every input row and customer, and every value the cleaning rules changed."""

    sources: dict[str, SourceLedger] = field(default_factory=dict)
    cleaned: Counter = field(default_factory=Counter)
    warnings: list[dict] = field(default_factory=list)
    _excluded: list[pd.DataFrame] = field(default_factory=list)

    def source(self, name: str, file: str, rows: int) -> SourceLedger:
        self.sources[name] = SourceLedger(file=file, rows_read=rows)
        return self.sources[name]

    def exclude_rows(self, source: str, rows: pd.Series | np.ndarray, ids: pd.Series | None,
                     reason: str) -> None:
        """Record rows (1-based numbers) of ``source`` excluded for ``reason``."""
        rows = np.asarray(rows)
        if len(rows) == 0:
            return
        self.sources[source].excluded[reason] += len(rows)
        ids_arr = (np.asarray(ids, dtype=object) if ids is not None
                   else np.full(len(rows), None, dtype=object))
        self._excluded.append(pd.DataFrame({
            "source": source, "row": rows.astype("int64"), "customer_id": ids_arr, "reason": reason,
        }))

    def exclude_customers(self, ids: pd.Series | np.ndarray | list, reason: str) -> None:
        """Record customers excluded from segmentation as a whole (not tied to one row)."""
        ids = list(ids)
        if not ids:
            return
        self._excluded.append(pd.DataFrame({
            "source": "customer", "row": pd.array([pd.NA] * len(ids), dtype="Int64"),
            "customer_id": pd.Series(ids, dtype=object), "reason": reason,
        }))

    def warn(self, category: str, message: str) -> None:
        self.warnings.append({"category": category, "message": message})

    def excluded_frame(self) -> pd.DataFrame:
        cols = ["source", "row", "customer_id", "reason"]
        if not self._excluded:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
        out = pd.concat(self._excluded, ignore_index=True)
        out["row"] = out["row"].astype("Int64")
        return out[cols]

    def excluded_customers(self) -> Counter:
        frame = self.excluded_frame()
        cust = frame[frame["source"] == "customer"]
        return Counter(cust["reason"].tolist())


# --------------------------------------------------------------------------------------------
# role detection


def detect_roles(columns: list[str], table: dict[str, list[str]], cfg: TableConfig,
                 file: str) -> dict[str, str]:
    """Map roles to column names: config overrides first, then exact synonyms, then substrings."""
    roles: dict[str, str] = {}
    overrides = dict(cfg.columns)
    if cfg.id:
        overrides["customer_id"] = cfg.id
    for role, col in overrides.items():
        if role not in table:
            raise ConfigError(
                f"{file}: unknown column role '{role}'; available roles: {', '.join(sorted(table))}")
        if col not in columns:
            raise ConfigError(
                f"{file}: role '{role}' is set to column '{col}', which is not in the file; "
                f"columns seen: {', '.join(columns)}")
        roles[role] = col
    taken = set(roles.values()) | set(cfg.ignore) | set(cfg.categorical) | set(cfg.numeric)
    by_norm = {normalise(c): c for c in columns if c not in taken}
    for role, names in table.items():
        if role in roles:
            continue
        for n in names:
            if n in by_norm and by_norm[n] not in roles.values():
                roles[role] = by_norm[n]
                break
    # substring fallbacks for a few roles whose names vary a lot
    for role, needle in (("income", "income"), ("timestamp", "date"), ("customer_id", "customerid")):
        if role in table and role not in roles:
            for norm, col in by_norm.items():
                if needle in norm and col not in roles.values():
                    roles[role] = col
                    break
    return roles


# --------------------------------------------------------------------------------------------
# typing helpers


def _first_bad(frame_rows: np.ndarray, raw: pd.Series, bad: np.ndarray) -> tuple[int, object]:
    i = int(np.flatnonzero(bad)[0])
    return int(frame_rows[i]), raw.iloc[i]


def parse_numeric(raw: pd.Series, *, file: str, column: str, rows: np.ndarray,
                  on_invalid: str = "error") -> tuple[pd.Series, np.ndarray]:
    """Parse numbers; returns (values, mask of unparseable non-empty cells).

    Accepts thousands separators and a leading currency symbol ("£1,234.50").
    With ``on_invalid="error"`` an unparseable value raises an InputError naming it.
    """
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        values = raw.astype("float64")
        return values, np.zeros(len(raw), dtype=bool)
    # plain numbers, as they stand or once stripped, parse in one Arrow cast (no regex)
    parsed = _cast_plain(raw)
    if parsed is None:
        text = raw.astype("string").str.strip()
        text = text.where(text != "")
        parsed = _cast_plain(text)
    if parsed is not None:
        values, bad = parsed
    else:
        cleaned = text.str.replace(r"^[£$€¥]\s*|(?<=\d),(?=\d{3}(\D|$))", "", regex=True)
        values = pd.to_numeric(cleaned, errors="coerce").astype("float64")
        bad = (text.notna() & (text != "") & values.isna()).to_numpy()
        bad |= np.isinf(values.to_numpy(dtype="float64", na_value=np.nan))
        values = values.where(~bad)
    if bad.any() and on_invalid == "error":
        row, value = _first_bad(rows, raw, bad)
        raise InputError(f"cannot parse as a number ({int(bad.sum())} such values)",
                         file=file, column=column, row=row, value=value)
    return values, bad


def _cast_plain(raw: pd.Series) -> tuple[pd.Series, np.ndarray] | None:
    """Text whose every value is a plain number (no blanks, spaces, currency or separators) in
    one Arrow cast, straight from the column's own buffers; None when any value needs cleaning
    (or the column is not text).

    Arrow's cast rejects surrounding spaces and empty strings, so whenever it succeeds on the
    raw text the stripped text would have cast to the same numbers. "nan" and "inf" cast, but
    they are not numbers a table should hold: they are flagged unparseable.
    """
    if not isinstance(raw.dtype, pd.StringDtype | pd.ArrowDtype):
        return None
    try:
        arr = pa.array(raw, from_pandas=True)
        if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
            return None
        parsed = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    bad = ~np.isfinite(parsed)
    if bad.any():
        bad &= pc.is_valid(arr).to_numpy(zero_copy_only=False)
        parsed = np.where(bad, np.nan, parsed)
    return pd.Series(parsed, index=raw.index, dtype="float64"), bad


def parse_dates(raw: pd.Series, *, file: str, column: str, rows: np.ndarray,
                fmt: str | None = None, on_invalid: str = "error") -> tuple[pd.Series, np.ndarray]:
    """Parse dates with one format for the whole column (given, or the one that parses most).

    Formats are scored on values spread over the whole column; the first (in
    :data:`DATE_FORMATS` order) that parses every value wins, so a column whose days are all
    <= 12 reads month-first, and one with a day > 12 in the first field reads day-first.
    """
    if pd.api.types.is_datetime64_any_dtype(raw):
        values = pd.to_datetime(raw).dt.tz_localize(None) if getattr(raw.dt, "tz", None) else raw
        return values.astype("datetime64[ns]"), np.zeros(len(raw), dtype=bool)
    text = raw.astype("string").str.strip()
    present = (text.notna() & (text != "")).to_numpy()
    if not present.any():
        return pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]"), np.zeros(len(raw), bool)
    formats = [fmt] if fmt else DATE_FORMATS
    # score formats on values spread over the whole column, not just its head
    idx = np.flatnonzero(present)
    sample = text.iloc[idx[np.linspace(0, len(idx) - 1, min(len(idx), 2000)).astype(int)]]
    ok_counts = [(f, int(pd.to_datetime(sample, format=f, errors="coerce").notna().sum()))
                 for f in formats]
    full = [f for f, ok in ok_counts if ok == len(sample)]
    values, best_fmt = None, None
    for f in full:  # in DATE_FORMATS order: month-first before day-first when both parse
        v = pd.to_datetime(text, format=f, errors="coerce")
        if not (present & v.isna().to_numpy()).any():
            values, best_fmt = v, f
            break
    if values is None:
        best_fmt, best_ok = max(ok_counts, key=lambda t: t[1])
        values = pd.to_datetime(text, format=best_fmt, errors="coerce")
        if best_ok == 0 and not fmt:
            # nothing matched a known format: let pandas try per value (mixed formats)
            values = pd.to_datetime(text, format="mixed", errors="coerce")
    # dates a customer table can hold: anything else (year -1, year 9999) is unparseable
    values = values.where((values >= pd.Timestamp("1800-01-01"))
                          & (values < pd.Timestamp("2262-01-01")))
    values = values.astype("datetime64[ns]")
    bad = present & values.isna().to_numpy()
    if bad.any() and on_invalid == "error":
        row, value = _first_bad(rows, raw, bad)
        hint = f" with format {best_fmt}" if best_fmt else ""
        raise InputError(f"cannot parse as a date{hint} ({int(bad.sum())} such values)",
                         file=file, column=column, row=row, value=value)
    return values, bad


def clean_ids(raw: pd.Series) -> pd.Series:
    """Customer ids as text; "17850.0" becomes "17850", blanks become missing."""
    s = raw.astype("string").str.strip()
    s = s.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
    return s.where(s != "")


def _text(raw: pd.Series) -> pd.Series:
    s = raw.astype("string").str.strip()
    return s.where(s != "")


# --------------------------------------------------------------------------------------------
# typed tables


@dataclass
class CustomerTable:
    """Customers, one row each, indexed by ``customer_id`` (text).

    ``numeric`` / ``binary`` / ``categorical`` list the feature columns of each kind in ``frame``;
    ``roles`` maps canonical roles to the source columns they came from.
    """

    file: str
    frame: pd.DataFrame
    roles: dict[str, str]
    numeric: list[str]
    binary: list[str]
    categorical: list[str]
    dates: list[str]
    category_spend: dict[str, str] = field(default_factory=dict)   # level -> column
    channel_purchases: dict[str, str] = field(default_factory=dict)
    deal_purchases: str | None = None
    ignored: dict[str, str] = field(default_factory=dict)          # column -> why
    seen_ids: pd.Index = field(default_factory=pd.Index)           # every id in the file
    fences: dict[str, float | None] = field(default_factory=dict)  # learned cleaning bounds


@dataclass
class TransactionTable:
    """Clean transaction lines: customer_id, order_id, ts, amount (negative for returns) and
    optional quantity, category, channel, discount, plus is_return."""

    file: str
    frame: pd.DataFrame
    roles: dict[str, str]
    as_of: date
    seen_ids: pd.Index = field(default_factory=pd.Index)           # every id in the file


def duplicate_rows(raw: pd.DataFrame, first: str | None = None) -> np.ndarray:
    """Exact duplicate rows (all but the first of each group), like ``raw.duplicated()``.

    Rows that are exact duplicates agree in every column, so candidates are narrowed one column
    at a time (``first`` first, usually the id) and only the survivors are compared whole: on
    1,000,000 rows × 17 text columns with unique ids this takes 0.07 s instead of 1.5 s.
    """
    n = len(raw)
    cand = np.ones(n, dtype=bool)
    cols = list(raw.columns)
    if first in cols:
        cols.remove(first)
        cols.insert(0, first)
    for col in cols:
        idx = np.flatnonzero(cand)
        if len(idx) == 0:
            return cand
        if len(idx) < 50_000:
            break
        cand[idx] = raw[col].iloc[idx].duplicated(keep=False).to_numpy()
    idx = np.flatnonzero(cand)
    out = np.zeros(n, dtype=bool)
    if len(idx):
        out[idx] = raw.iloc[idx].duplicated(keep="first").to_numpy()
    return out


def _all_distinct(ids: pd.Series, keep: np.ndarray) -> bool:
    """Whether the kept ids are all different: one hash pass in Arrow (about half the time of
    ``duplicated(keep=False)`` on a million text ids), so the usual case -- unique ids -- is
    cheap."""
    kept = ids if keep.all() else ids[keep]
    try:
        arr = pa.array(kept, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return bool(kept.is_unique)
    return len(pc.unique(arr)) == len(arr)


def _row_numbers(n: int) -> np.ndarray:
    return np.arange(1, n + 1, dtype="int64")


def _check_not_all_missing(series: pd.Series, file: str, column: str,
                           scoring: bool = False) -> None:
    if not scoring and series.isna().all():
        raise InputError("column has no values at all (every cell is empty)", file=file, column=column)


def prepare_customers(raw: pd.DataFrame, cfg: TableConfig, *, file: str, ledger: Ledger,
                      as_of: date | None, on_invalid: str = "error",
                      scoring: bool = False, fences: dict[str, float] | None = None,
                      ) -> CustomerTable:
    """Type, validate and clean a customers table.

    With ``scoring=True`` (a batch to score with a fitted model, possibly one customer) columns
    are never dropped for being constant or empty in the batch, unknown education levels become
    missing instead of turning the column into categories, and outlier fences are not derived
    from the batch: ``fences`` (the ones learned at fit time, see ``CustomerTable.fences``) apply.
    """
    columns = list(raw.columns)
    for c in [*cfg.ignore, *cfg.categorical, *cfg.numeric]:
        if c not in columns:
            raise ConfigError(f"{file}: column '{c}' named in the config is not in the file; "
                              f"columns seen: {', '.join(columns)}")
    roles = detect_roles(columns, CUSTOMER_ROLES, cfg, file)
    ledger.source("customers", file, len(raw))
    rows = _row_numbers(len(raw))
    keep = np.ones(len(raw), dtype=bool)

    # ---- id
    if cfg.row_ids:
        ids = pd.Series(rows.astype(str), index=raw.index, dtype="string")
        roles.pop("customer_id", None)
    else:
        if "customer_id" not in roles:
            raise InputError(
                "no customer id column found; name it in the config ([customers] id = \"...\") "
                f"or set row_ids = true. Columns seen: {', '.join(columns)}", file=file)
        ids = clean_ids(raw[roles["customer_id"]])
        _check_not_all_missing(ids, file, roles["customer_id"])
        missing = ids.isna().to_numpy()
        ledger.exclude_rows("customers", rows[missing], None, "missing customer_id")
        keep &= ~missing

    used_cols = set(roles.values()) | set(cfg.ignore)
    # ---- exact duplicate rows, then conflicting duplicate ids
    distinct = cfg.row_ids or _all_distinct(ids, keep)
    if distinct and not cfg.row_ids:
        dup = np.zeros(len(raw), dtype=bool)  # duplicate rows share an id: there are none
    else:
        dup = duplicate_rows(raw, roles.get("customer_id")) & keep
    ledger.exclude_rows("customers", rows[dup], ids[dup], "duplicate row")
    keep &= ~dup
    dup_id = np.zeros(len(ids), dtype=bool)
    if not distinct:  # (row numbers as ids, or ids all different: no id is shared)
        dup_id[keep] = ids[keep].duplicated(keep=False).to_numpy()
    if dup_id.any():
        first_id = ids[dup_id].iloc[0]
        where = rows[(ids == first_id).to_numpy() & keep][:2]
        raise InputError(
            f"duplicate customer id {first_id!r} in rows {where[0]} and {where[1]} with different "
            f"values ({int(dup_id.sum())} rows share an id); ids must be unique",
            file=file, column=roles.get("customer_id"), row=int(where[1]), value=first_id)

    frame = pd.DataFrame(index=pd.Index(ids.to_numpy(dtype=object), name="customer_id"))
    numeric: list[str] = []
    binary: list[str] = []
    categorical: list[str] = []
    dates: list[str] = []
    ignored: dict[str, str] = {c: "ignored in config" for c in cfg.ignore}

    def num(col: str) -> pd.Series:
        vals, bad = parse_numeric(raw[col], file=file, column=col, rows=rows, on_invalid=on_invalid)
        if bad.any():
            ledger.cleaned[f"{col}: unparseable number set to missing"] += int(bad.sum())
        _check_not_all_missing(vals[keep], file, col, scoring)
        return pd.Series(vals.to_numpy(), index=frame.index)

    def dt(col: str) -> pd.Series:
        vals, bad = parse_dates(raw[col], file=file, column=col, rows=rows,
                                fmt=cfg.date_format, on_invalid=on_invalid)
        if bad.any():
            ledger.cleaned[f"{col}: unparseable date set to missing"] += int(bad.sum())
        _check_not_all_missing(vals[keep], file, col, scoring)
        return pd.Series(vals.to_numpy(), index=frame.index)

    # ---- dates first: they may define the as-of date
    signup = None
    if "signup_date" in roles:
        signup = dt(roles["signup_date"])
    birth_date = dt(roles["birth_date"]) if "birth_date" in roles else None
    if as_of is None and signup is not None and signup[keep].notna().any():
        as_of = signup[keep].max().date()
    if signup is not None:
        assert as_of is not None
        late = (signup > pd.Timestamp(as_of) + pd.Timedelta(days=1)).to_numpy() & keep
        ledger.exclude_rows("customers", rows[late], ids[late], "signed up after the as-of date")
        keep &= ~late
        frame["signup_date"] = signup
        dates.append("signup_date")

    # ---- demographics
    learned: dict[str, float | None] = {}
    age = None
    if "age" in roles:
        age = num(roles["age"])
    elif "birth_year" in roles:
        by = num(roles["birth_year"])
        if as_of is None:
            raise ConfigError(f"{file}: column '{roles['birth_year']}' holds birth years; give the "
                              "as-of date (--as-of) to turn them into ages")
        age = as_of.year - by
    elif birth_date is not None:
        if as_of is None:
            raise ConfigError(f"{file}: give the as-of date (--as-of) to compute ages from birth dates")
        age = (pd.Timestamp(as_of) - birth_date).dt.days / 365.25
    if age is not None:
        absurd = (age < AGE_RANGE[0]) | (age > AGE_RANGE[1])
        if absurd.any():
            ledger.cleaned[f"age outside {AGE_RANGE[0]}-{AGE_RANGE[1]} set to missing"] += int(
                (absurd & keep).sum())
        frame["age"] = age.where(~absurd)
        numeric.append("age")

    if "income" in roles:
        inc = num(roles["income"])
        neg = inc < 0
        if scoring:
            fence = (fences or {}).get("income_max")
        else:
            q1, q3 = inc[keep & inc.notna().to_numpy()].quantile([0.25, 0.75])
            fence = float(q3 + INCOME_FENCE * (q3 - q1)) if pd.notna(q3) else None
        learned["income_max"] = fence
        absurd = neg | (inc > fence) if fence is not None else neg
        if absurd.any():
            ledger.cleaned["income negative or above Q3 + 10 x IQR set to missing"] += int(
                (absurd & keep).sum())
        frame["income"] = inc.where(~absurd)
        numeric.append("income")

    for role in ("household_size", "recency_days"):
        if role in roles:
            v = num(roles[role])
            frame[role] = v.where(v >= 0)
            numeric.append(role)

    kids_cols = [c for c in columns if normalise(c) in KIDS_PARTS and c not in used_cols]
    if "children" in roles:
        v = num(roles["children"])
        frame["children"] = v.where(v >= 0)
        numeric.append("children")
    elif kids_cols:
        frame["children"] = sum(num(c).clip(lower=0) for c in kids_cols)
        numeric.append("children")
        used_cols |= set(kids_cols)
        roles["children"] = "+".join(kids_cols)

    if "education" in roles:
        edu = _text(raw[roles["education"]])
        _check_not_all_missing(edu[keep], file, roles["education"], scoring)
        norm = edu.astype(object).map(lambda v: normalise(v) if isinstance(v, str) else None)
        mapped = norm.map(EDUCATION_LEVELS)
        unknown = norm.notna() & mapped.isna() & ~norm.isin(UNKNOWN_TOKENS)
        if unknown[keep].any() and not scoring:
            # levels we can't order: keep education as a category instead of an ordinal
            frame["education"] = pd.Series(edu.to_numpy(), index=frame.index)
            categorical.append("education")
            ledger.warn("schema", f"{file}: education levels not recognised as an order "
                        f"({', '.join(sorted(set(edu[unknown].dropna())))[:200]}); used as categories")
        else:
            frame["education_level"] = pd.Series(mapped.to_numpy(dtype="float64"), index=frame.index)
            numeric.append("education_level")

    for role in ("gender", "occupation", "marital_status", "location_type"):
        if role in roles:
            v = _text(raw[roles[role]])
            _check_not_all_missing(v[keep], file, roles[role], scoring)
            frame[role] = pd.Series(v.to_numpy(), index=frame.index)
            categorical.append(role)

    # ---- pre-aggregated behaviour (marketing_campaign.csv style)
    category_spend: dict[str, str] = {}
    channel_purchases: dict[str, str] = {}
    deal_purchases = None
    for c in columns:
        if c in used_cols or c in cfg.categorical:
            continue
        m_ch = CHANNEL_PURCHASES.match(normalise(c)) or CHANNEL_PURCHASES.match(c)
        m_sp = CATEGORY_SPEND.match(c)
        if m_ch:
            name = slug(m_ch.group("name"))
            if name in ("deals", "deal", "discount", "discounts", "promo"):
                deal_purchases = c
            else:
                channel_purchases[name] = c
        elif m_sp and normalise(c).startswith("mnt"):
            category_spend[slug(m_sp.group("name"))] = c
    for c in [*category_spend.values(), *channel_purchases.values()]:
        frame[f"__raw__{c}"] = num(c).clip(lower=0)
        used_cols.add(c)
    if deal_purchases:
        frame[f"__raw__{deal_purchases}"] = num(deal_purchases).clip(lower=0)
        used_cols.add(deal_purchases)

    # ---- every other column: numeric, binary, categorical, date or ignored
    rest = [c for c in columns if c not in used_cols]

    def prepare_column(c: str) -> tuple[pd.Series, tuple[pd.Series, np.ndarray] | None]:
        col = raw[c]
        parsed = None if c in cfg.categorical else parse_numeric(
            col, file=file, column=c, rows=rows, on_invalid="exclude")
        if pd.api.types.is_numeric_dtype(col):
            text = col
        elif parsed is not None and not parsed[1].any():
            text = parsed[0]  # every cell a number or empty: the numbers say which are empty
        else:
            text = _text(col)
        return text, parsed

    # the columns are parsed side by side (Arrow's string kernels and casts release the GIL);
    # every check below still runs column by column, in order, exactly as before
    if len(raw) >= 200_000 and len(rest) > 1:
        with ThreadPoolExecutor(max_workers=2) as pool:
            prepared = dict(zip(rest, pool.map(prepare_column, rest), strict=True))
    else:
        prepared = {}
    keep_all = bool(keep.all())
    for c in rest:
        col = raw[c]
        forced = "numeric" if c in cfg.numeric else "categorical" if c in cfg.categorical else None
        text, parsed = prepared[c] if c in prepared else prepare_column(c)
        if text[keep].isna().all() and not scoring:
            raise InputError("column has no values at all (every cell is empty); "
                             "add it to `ignore` in the config to skip it", file=file, column=c)
        if forced != "categorical":
            # a column the config says is numeric must parse; others are numeric if they do
            assert parsed is not None
            vals, bad = parsed
            if forced == "numeric" and on_invalid == "error" and bad.any():
                parse_numeric(col, file=file, column=c, rows=rows, on_invalid="error")  # raises
            if forced == "numeric" or not bad.any():
                arr = vals.to_numpy(dtype="float64")
                present = arr if keep_all else arr[keep]
                empty = np.isnan(present)
                if empty.any():
                    present = present[~empty]
                name = _feature_name(c, frame)
                if (present.size == 0 or present.min() == present.max()) and not scoring:
                    ignored[c] = "constant column"
                    ledger.warn("schema", f"{file}: column '{c}' is constant; not used")
                    continue
                frame[name] = pd.Series(arr, index=frame.index)
                is_binary = bool(np.all((present == 0.0) | (present == 1.0)))
                (binary if is_binary else numeric).append(name)
                continue
        # text: a date, a category or free text
        if forced is None:
            sample = text[keep].dropna()
            parsed = pd.to_datetime(sample.iloc[:200], format="mixed", errors="coerce") \
                if sample.str.contains(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}", regex=True).all() else None
            if parsed is not None and parsed.notna().all():
                ignored[c] = "date column (only the signup date is used)"
                continue
        levels = text[keep].nunique()
        if forced is None and not scoring and levels > 50 and levels > 0.05 * int(keep.sum()):
            ignored[c] = f"free text or identifier ({levels} distinct values)"
            ledger.warn("schema", f"{file}: column '{c}' has {levels} distinct text values; not used")
            continue
        if levels <= 1 and not scoring:
            ignored[c] = "constant column"
            ledger.warn("schema", f"{file}: column '{c}' is constant; not used")
            continue
        name = _feature_name(c, frame)
        frame[name] = pd.Series(text.to_numpy(), index=frame.index)
        categorical.append(name)

    frame = frame.loc[keep]
    return CustomerTable(file=file, frame=frame, roles=roles, numeric=numeric, binary=binary,
                         categorical=categorical, dates=dates, category_spend=category_spend,
                         channel_purchases=channel_purchases, deal_purchases=deal_purchases,
                         ignored=ignored,
                         seen_ids=pd.Index(ids.dropna() if distinct else ids.dropna().unique()),
                         fences=learned)


def _feature_name(column: str, frame: pd.DataFrame) -> str:
    name = column
    while name in frame.columns:
        name = f"{name}_"
    return name


def transaction_roles(columns: list[str], cfg: TableConfig, file: str) -> dict[str, str]:
    """The roles of a transactions log's columns, or an InputError naming what is missing
    (every engine reads the roles through this)."""
    roles = detect_roles(columns, TRANSACTION_ROLES, cfg, file)
    for need in ("customer_id", "timestamp"):
        if need not in roles:
            what = "customer id" if need == "customer_id" else "order date/time"
            raise InputError(f"no {what} column found; name it in the config "
                             f"([transactions.columns] {need} = \"...\"). "
                             f"Columns seen: {', '.join(columns)}", file=file)
    if "amount" not in roles and not {"quantity", "unit_price"} <= roles.keys():
        raise InputError("no amount column found, and no quantity and unit price to compute it "
                         "from; name it in the config ([transactions.columns] amount = \"...\"). "
                         f"Columns seen: {', '.join(columns)}", file=file)
    return roles


def prepare_transactions(raw: pd.DataFrame, cfg: TableConfig, *, file: str, ledger: Ledger,
                         as_of: date | None, on_invalid: str = "error",
                         window_days: int | None = None) -> TransactionTable:
    """Type, validate and clean a transactions log.

    Rules, applied in order (a row is excluded for the first that applies): missing customer id;
    exact duplicate row; missing date; date after the as-of date; date before the feature window
    (``window_days`` before the as-of date, when set); zero amount or a zero/negative unit price. Cancellations (order id
    starting with "C"), negative quantities or amounts and rows flagged as returns are kept as
    returns and reduce the customer's net monetary value.
    """
    roles = transaction_roles(list(raw.columns), cfg, file)
    src = ledger.source("transactions", file, len(raw))
    rows = _row_numbers(len(raw))
    keep = np.ones(len(raw), dtype=bool)

    ids = clean_ids(raw[roles["customer_id"]])
    _check_not_all_missing(ids, file, roles["customer_id"])
    miss = ids.isna().to_numpy()
    ledger.exclude_rows("transactions", rows[miss], None, "missing customer_id")
    keep &= ~miss

    dup = duplicate_rows(raw, roles.get("timestamp")) & keep
    ledger.exclude_rows("transactions", rows[dup], ids[dup], "duplicate row")
    keep &= ~dup

    def num(role: str) -> pd.Series:
        col = roles[role]
        vals, bad = parse_numeric(raw[col], file=file, column=col, rows=rows, on_invalid=on_invalid)
        nonlocal keep
        if bad.any():
            ledger.exclude_rows("transactions", rows[bad & keep], ids[bad & keep],
                                f"unparseable {role}")
            keep &= ~bad
        _check_not_all_missing(vals[keep], file, col)
        return vals

    ts, bad_ts = parse_dates(raw[roles["timestamp"]], file=file, column=roles["timestamp"],
                             rows=rows, fmt=cfg.date_format, on_invalid=on_invalid)
    _check_not_all_missing(ts[keep], file, roles["timestamp"])
    if bad_ts.any():
        ledger.exclude_rows("transactions", rows[bad_ts & keep], ids[bad_ts & keep],
                            "unparseable date")
        keep &= ~bad_ts
    no_ts = ts.isna().to_numpy() & keep
    ledger.exclude_rows("transactions", rows[no_ts], ids[no_ts], "missing date")
    keep &= ~no_ts

    if as_of is None:
        as_of = ts[keep].max().date()
    cutoff = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    late = (ts >= cutoff).to_numpy() & keep
    ledger.exclude_rows("transactions", rows[late], ids[late], "dated after the as-of date")
    keep &= ~late
    if window_days is not None:
        early = (ts < cutoff - pd.Timedelta(days=window_days)).to_numpy() & keep
        ledger.exclude_rows("transactions", rows[early], ids[early],
                            f"dated before the {window_days}-day feature window")
        keep &= ~early

    qty = num("quantity") if "quantity" in roles else None
    price = num("unit_price") if "unit_price" in roles else None
    if "amount" in roles:
        amount = num("amount")
    else:
        assert qty is not None and price is not None
        amount = qty * price
    if price is not None:
        badp = (price <= 0).to_numpy() & keep
        ledger.exclude_rows("transactions", rows[badp], ids[badp], "zero or negative unit price")
        keep &= ~badp
    zero = (amount.fillna(0) == 0).to_numpy() & keep
    ledger.exclude_rows("transactions", rows[zero], ids[zero], "zero or missing amount")
    keep &= ~zero

    order = (clean_ids(raw[roles["order_id"]]) if "order_id" in roles
             else ids + "@" + ts.astype("string"))
    is_return = (amount < 0).to_numpy() | ((qty < 0).to_numpy() if qty is not None else False)
    if "order_id" in roles:
        is_return |= order.str.upper().str.startswith("C").fillna(False).to_numpy()
    if "is_return" in roles:
        flag = _text(raw[roles["is_return"]]).str.lower()
        is_return |= flag.isin(["1", "true", "yes", "y", "t", "returned"]).to_numpy()

    src.returns = int((is_return & keep).sum())
    out = pd.DataFrame({
        "customer_id": ids.to_numpy(dtype=object),
        "order_id": order.fillna("").to_numpy(dtype=object),
        "ts": ts.to_numpy(),
        "amount": np.where(is_return, -np.abs(amount.to_numpy()), np.abs(amount.to_numpy())),
        "is_return": is_return,
        "row": rows,
    })
    if qty is not None:
        out["quantity"] = np.abs(qty.to_numpy())
    for role in ("category", "channel"):
        if role in roles:
            out[role] = _text(raw[roles[role]]).fillna("Unknown").to_numpy(dtype=object)
    if "discount" in roles:
        d_raw = raw[roles["discount"]]
        d_num, d_bad = parse_numeric(d_raw, file=file, column=roles["discount"], rows=rows,
                                     on_invalid="exclude")
        if d_bad.any():  # yes/no style flags
            flag = _text(d_raw).str.lower()
            d_num = flag.isin(["1", "true", "yes", "y", "t"]).astype("float64").where(flag.notna())
        out["discount"] = (d_num.to_numpy() > 0).astype("float64")
        out.loc[d_num.isna().to_numpy(), "discount"] = np.nan
    out = out.loc[keep].reset_index(drop=True)
    return TransactionTable(file=file, frame=out, roles=roles, as_of=as_of,
                            seen_ids=pd.Index(ids.dropna().unique()))


def restrict_to_customers(tx: TransactionTable, known_ids: pd.Index, ledger: Ledger) -> None:
    """Exclude transaction rows of customers missing from the customers table (in place)."""
    frame = tx.frame
    unknown = ~frame["customer_id"].isin(known_ids).to_numpy()
    if not unknown.any():
        return
    ledger.exclude_rows("transactions", frame["row"].to_numpy()[unknown],
                        frame["customer_id"][unknown], "customer not in the customers table")
    ledger.sources["transactions"].returns -= int(frame["is_return"].to_numpy()[unknown].sum())
    tx.frame = frame.loc[~unknown].reset_index(drop=True)
