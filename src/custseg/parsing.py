"""Typing raw columns: numbers, dates, ids and text.

Every parser takes the raw column (text as read, or already typed by the reader) and returns the
typed values plus a mask of the non-empty cells it could not read. With ``on_invalid="error"`` the
first such cell stops the run with an :class:`~custseg.errors.InputError` naming the file, column,
row and value; with ``on_invalid="exclude"`` the caller decides (the cleaning rules in
:mod:`custseg.cleaning` exclude the row or set the value to missing, and say so in the ledger).

Rows are numbered from 1 for the first data row (the header is not counted).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from custseg.derive import MAX_LABEL_CHARS, cap_label
from custseg.errors import InputError

DATE_FORMATS = [  # month-first before day-first: an all-ambiguous column reads month-first
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%Y/%m/%d",
    "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y", "%m-%d-%Y", "%m/%d/%y %H:%M",
    "%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y", "%d/%m/%Y %H:%M", "%d-%m-%Y %H:%M", "%Y%m%d",
    # ISO 8601 with fractions of a second or a UTC offset ("Z", "+02:00"): read as naive UTC
    "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%d %H:%M:%S%z",
]


def to_naive_utc(text: pd.Series, fmt: str) -> pd.Series:
    """``pd.to_datetime`` with one format (or "mixed"), unparseable values NaT; values with a
    UTC offset ("Z", "+02:00") are converted to UTC and returned without a time zone, so that
    every date the pipeline compares is naive UTC (offsets may differ from row to row)."""
    aware = fmt == "mixed" or "%z" in fmt
    values = pd.to_datetime(text, format=fmt, errors="coerce", utc=aware)
    if aware:
        values = values.dt.tz_convert(None)
    return values


def _first_bad(frame_rows: np.ndarray, raw: pd.Series, bad: np.ndarray) -> tuple[int, object]:
    """The row number and raw value of the first cell flagged in ``bad`` (for an error message)."""
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
        # an aware column (Parquet, a database) is converted to UTC, like offsets in text
        values = raw.dt.tz_convert(None) if getattr(raw.dt, "tz", None) else raw
        return values.astype("datetime64[ns]"), np.zeros(len(raw), dtype=bool)
    text = raw.astype("string").str.strip()
    present = (text.notna() & (text != "")).to_numpy()
    if not present.any():
        return pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]"), np.zeros(len(raw), bool)
    formats = [fmt] if fmt else DATE_FORMATS
    # score formats on values spread over the whole column, not just its head
    idx = np.flatnonzero(present)
    sample = text.iloc[idx[np.linspace(0, len(idx) - 1, min(len(idx), 2000)).astype(int)]]
    ok_counts = [(f, int(to_naive_utc(sample, f).notna().sum()))
                 for f in formats]
    full = [f for f, ok in ok_counts if ok == len(sample)]
    values, best_fmt = None, None
    for f in full:  # in DATE_FORMATS order: month-first before day-first when both parse
        v = to_naive_utc(text, f)
        if not (present & v.isna().to_numpy()).any():
            values, best_fmt = v, f
            break
    if values is None:
        best_fmt, best_ok = max(ok_counts, key=lambda t: t[1])
        values = to_naive_utc(text, best_fmt)
        if best_ok == 0 and not fmt:
            # nothing matched a known format: let pandas try per value (mixed formats)
            values = to_naive_utc(text, "mixed")
    # dates a customer table can hold: anything else (year -1, year 9999) is unparseable
    values = values.where((values >= pd.Timestamp("1800-01-01"))
                          & (values < pd.Timestamp("2262-01-01")))
    values = values.astype("datetime64[ns]")
    bad = present & values.isna().to_numpy()
    if bad.any() and on_invalid == "error":
        row, value = _first_bad(rows, raw, bad)
        raise InputError(date_error(best_fmt, int(bad.sum()), value),
                         file=file, column=column, row=row, value=value)
    return values, bad


def clean_ids(raw: pd.Series) -> pd.Series:
    """Customer ids as text; "17850.0" becomes "17850", blanks become missing."""
    s = raw.astype("string").str.strip()
    s = s.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
    return s.where(s != "")


def clean_text(raw: pd.Series) -> pd.Series:
    """Text, stripped; blank cells become missing; a value longer than
    :data:`~custseg.derive.MAX_LABEL_CHARS` is capped (:func:`~custseg.derive.cap_label`), as
    it may become a category level, a feature name and a label in every output."""
    s = raw.astype("string").str.strip()
    s = s.where(s != "")
    long = (s.str.len() > MAX_LABEL_CHARS).fillna(False).to_numpy(dtype=bool)
    if long.any():
        s = s.copy()
        s[long] = [cap_label(v) for v in s[long]]
    return s


def check_not_all_missing(series: pd.Series, file: str, column: str,
                          scoring: bool = False) -> None:
    """Stop when a column used has no value at all (not when scoring a batch, which may be one
    customer with a blank cell)."""
    if not scoring and series.isna().all():
        raise InputError("column has no values at all (every cell is empty)", file=file, column=column)


# --------------------------------------------------------------------------------------------
# plausible dates: the same rule for the pandas, DuckDB and Spark paths, computed from the
# number of lines per day (which every engine can count exactly)

FUTURE_QUANTILE = 0.99       # "the bulk of the data": the day by which 99% of the lines happened
FUTURE_MARGIN_DAYS = 366     # a date more than this after it is implausible
PAST_MARGIN_DAYS = 20 * 365  # a date this long before the first 1% of the lines warns
IMPLAUSIBLE_FUTURE = (f"implausible future date (over {FUTURE_MARGIN_DAYS} days after "
                      f"{FUTURE_QUANTILE:.0%} of the dates)")


def _day_quantile(days: np.ndarray, counts: np.ndarray, q: float) -> np.datetime64:
    """The day at quantile ``q`` of the lines (the first day whose cumulative count reaches
    ``q`` of all lines), exact and the same whatever engine counted the days."""
    order = np.argsort(days)
    days, counts = days[order], counts[order]
    cum = np.cumsum(counts)
    return days[int(np.searchsorted(cum, q * cum[-1], side="left"))]


def date_plausibility(day_counts: pd.Series, *, what: str = "lines"
                      ) -> tuple[pd.Timestamp | None, str | None]:
    """The cutoff beyond which dates are implausible, and a warning about far-past dates.

    ``day_counts``: the number of lines per day (index: the days, as timestamps at midnight).
    Returns ``(cutoff, warning)``: ``cutoff`` is the first instant excluded (None when no date
    lies beyond the horizon: more than :data:`FUTURE_MARGIN_DAYS` after the day by which
    :data:`FUTURE_QUANTILE` of the lines had happened); ``warning`` names dates long before the
    bulk of the data (kept: old customers and archives exist), or is None.

    >>> days = pd.Series([500, 500, 20], index=pd.to_datetime(["2024-01-01", "2024-06-01",
    ...                                                          "2200-01-01"]))
    >>> date_plausibility(days)[0]
    Timestamp('2025-06-02 00:00:00')
    """
    day_counts = day_counts[day_counts > 0]
    if day_counts.empty:
        return None, None
    days = pd.DatetimeIndex(day_counts.index).to_numpy(dtype="datetime64[D]")
    counts = day_counts.to_numpy(dtype="int64")
    bulk = _day_quantile(days, counts, FUTURE_QUANTILE)
    horizon = bulk + np.timedelta64(FUTURE_MARGIN_DAYS, "D")
    cutoff = pd.Timestamp(horizon + np.timedelta64(1, "D")) if days.max() > horizon else None
    start = _day_quantile(days, counts, 1 - FUTURE_QUANTILE)
    old = days < start - np.timedelta64(PAST_MARGIN_DAYS, "D")
    warning = None
    if old.any():
        warning = (f"{int(counts[old].sum())} {what} dated long before the bulk of the data "
                   f"(the earliest {pd.Timestamp(days[old].min()).date()}, while 99% are on or "
                   f"after {pd.Timestamp(start).date()}); kept, check them")
    return cutoff, warning


def no_lines_before_as_of(as_of: object, first: object) -> str:
    """The message when no line is dated on or before the as-of date."""
    return (f"no transactions on or before the as-of date {as_of} (the first is dated "
            f"{pd.Timestamp(first).date()}); give a later --as-of")


def date_error(fmt: str | None, n_bad: int, value: object) -> str:
    """The message for an unusable date (``value``, the first of ``n_bad``): a date the format
    reads but outside the years a table can hold (before 1800, after 2261) says so, rather
    than "cannot parse"."""
    if fmt and fmt != "mixed" and isinstance(value, str):
        from datetime import datetime

        try:
            datetime.strptime(value.strip(), fmt)
        except ValueError:
            pass
        else:
            return (f"implausible date: it matches the format {fmt} but lies outside the years "
                    f"1800 to 2261 ({n_bad} unusable dates)")
    hint = f" with format {fmt}" if fmt else ""
    if fmt and fmt != "mixed" and isinstance(value, str):
        other = to_naive_utc(pd.Series([value.strip()], dtype="string"), "mixed").iloc[0]
        if pd.notna(other):  # a date, written another way: the column mixes formats
            return (f"cannot parse as a date{hint}: the column mixes date formats (this value "
                    f"is a date written another way; {n_bad} values do not match the format "
                    "the others use); write every date in one format, or set date_format")
    return f"cannot parse as a date{hint} ({n_bad} such values)"
