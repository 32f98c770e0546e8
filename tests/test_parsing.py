"""Tests for custseg.parsing: numbers, dates, ids and text typed from raw columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custseg.errors import InputError
from custseg.parsing import clean_ids, parse_dates, parse_numeric


def _rows(n: int) -> np.ndarray:
    return np.arange(1, n + 1, dtype="int64")


# ------------------------------------------------------------------------------------ ids


def test_clean_ids() -> None:
    out = clean_ids(pd.Series(["17850.0", " 13047 ", "", None, "A-1", "12.5"]))
    assert out.tolist()[:2] == ["17850", "13047"]
    assert out.isna().tolist() == [False, False, True, True, False, False]
    assert out.tolist()[4:] == ["A-1", "12.5"]


# ------------------------------------------------------------------------------------ numbers


def test_parse_numeric_currency_and_thousands() -> None:
    raw = pd.Series(["£1,234.50", "$5", "€ 7", "1,000,000", "-12.5", "", None, " 3 "])
    values, bad = parse_numeric(raw, file="f", column="c", rows=_rows(len(raw)))
    np.testing.assert_array_equal(
        values.to_numpy(), [1234.5, 5.0, 7.0, 1_000_000.0, -12.5, np.nan, np.nan, 3.0])
    assert not bad.any()


@pytest.mark.parametrize("dtype", ["str", "string", object])
def test_parse_numeric_plain_numbers_fast_path_equals_cleaning_path(dtype) -> None:
    """Columns whose every value is a plain number take one Arrow cast (no strip, no regex);
    the result and the unparseable mask equal the cleaning path's, non-finite values included."""
    from custseg import parsing

    plain = ["1", "-2.5", "1e3", ".5", "+4", None, "nan", "inf", "0", "-0.0"]
    messy = [*plain, " 7 "]  # one value that needs stripping sends the column the long way
    raw = pd.Series(plain, dtype=dtype)
    fast_v, fast_bad = parse_numeric(raw, file="f", column="c", rows=_rows(len(raw)),
                                     on_invalid="exclude")
    slow_v, slow_bad = parse_numeric(pd.Series(messy, dtype=dtype), file="f", column="c",
                                     rows=_rows(len(messy)), on_invalid="exclude")
    np.testing.assert_array_equal(fast_v.to_numpy(), slow_v.to_numpy()[:-1])
    np.testing.assert_array_equal(fast_bad, slow_bad[:-1])
    assert fast_bad.tolist() == [False] * 6 + [True, True, False, False]
    assert (parsing._cast_plain(raw) is None) == (dtype is object)
    assert parsing._cast_plain(pd.Series(messy, dtype="string")) is None
    with pytest.raises(InputError) as info:
        parse_numeric(raw, file="f", column="c", rows=_rows(len(raw)))
    assert info.value.row == 7 and info.value.value == "nan"


def test_parse_numeric_numeric_dtype_passthrough() -> None:
    raw = pd.Series([1, 2, 3], dtype="int64")
    values, bad = parse_numeric(raw, file="f", column="c", rows=_rows(3))
    assert values.dtype == np.float64
    assert values.tolist() == [1.0, 2.0, 3.0]
    assert not bad.any()


def test_parse_numeric_error_names_column_row_value() -> None:
    raw = pd.Series(["1", "2.5", "n/a-ish", "4", "abc"])
    with pytest.raises(InputError) as info:
        parse_numeric(raw, file="tx.csv", column="Quantity", rows=_rows(5))
    err = info.value
    assert (err.file, err.column, err.row, err.value) == ("tx.csv", "Quantity", 3, "n/a-ish")
    assert str(err) == ("tx.csv, column 'Quantity', row 3: cannot parse as a number "
                        "(2 such values) (value 'n/a-ish')")


def test_parse_numeric_error_uses_given_row_numbers() -> None:
    raw = pd.Series(["1", "x"])
    with pytest.raises(InputError) as info:
        parse_numeric(raw, file="f", column="c", rows=np.array([10, 11]))
    assert info.value.row == 11


def test_parse_numeric_exclude_mode_returns_mask() -> None:
    raw = pd.Series(["1", "abc", "inf", "2"])
    values, bad = parse_numeric(raw, file="f", column="c", rows=_rows(4), on_invalid="exclude")
    assert bad.tolist() == [False, True, True, False]
    assert values.isna().tolist() == [False, True, True, False]


# ------------------------------------------------------------------------------------ dates


def test_parse_dates_day_first_detected() -> None:
    raw = pd.Series(["04-09-2012", "21-08-2013", "10-08-2012", ""])
    values, bad = parse_dates(raw, file="m.csv", column="Dt_Customer", rows=_rows(4))
    assert values.iloc[:3].tolist() == [pd.Timestamp("2012-09-04"), pd.Timestamp("2013-08-21"),
                                        pd.Timestamp("2012-08-10")]
    assert pd.isna(values.iloc[3])
    assert not bad.any()


def test_parse_dates_month_first_when_a_day_exceeds_12() -> None:
    raw = pd.Series(["12/1/2010 8:26", "12/13/2010 9:01", "1/5/2011 10:00"])
    values, _ = parse_dates(raw, file="f", column="InvoiceDate", rows=_rows(3))
    assert values.tolist() == [pd.Timestamp("2010-12-01 08:26"), pd.Timestamp("2010-12-13 09:01"),
                               pd.Timestamp("2011-01-05 10:00")]


def test_parse_dates_iso() -> None:
    raw = pd.Series(["2009-12-01 07:45:00", "2010-12-09 20:01:00"])
    values, bad = parse_dates(raw, file="f", column="InvoiceDate", rows=_rows(2))
    assert values.tolist() == [pd.Timestamp("2009-12-01 07:45"), pd.Timestamp("2010-12-09 20:01")]
    assert values.dtype == "datetime64[ns]"
    assert not bad.any()


def test_parse_dates_explicit_format() -> None:
    raw = pd.Series(["01/02/2013"])
    values, _ = parse_dates(raw, file="f", column="d", rows=_rows(1), fmt="%m/%d/%Y")
    assert values.iloc[0] == pd.Timestamp("2013-01-02")


def test_parse_dates_error_names_row_and_value() -> None:
    raw = pd.Series(["2011-01-01", "2011-01-02", "2011-02-30"])
    with pytest.raises(InputError) as info:
        parse_dates(raw, file="tx.csv", column="InvoiceDate", rows=_rows(3))
    err = info.value
    assert (err.file, err.column, err.row, err.value) == ("tx.csv", "InvoiceDate", 3, "2011-02-30")
    assert "cannot parse as a date" in str(err)


def test_parse_dates_exclude_mode() -> None:
    raw = pd.Series(["2011-01-01", "not a date", None])
    values, bad = parse_dates(raw, file="f", column="d", rows=_rows(3), on_invalid="exclude")
    assert bad.tolist() == [False, True, False]
    assert values.isna().tolist() == [False, True, True]


def test_parse_dates_datetime_dtype_passthrough_drops_timezone() -> None:
    raw = pd.Series(pd.to_datetime(["2011-01-01 10:00"]).tz_localize("UTC"))
    values, bad = parse_dates(raw, file="f", column="d", rows=_rows(1))
    assert values.dtype == "datetime64[ns]"
    assert values.iloc[0] == pd.Timestamp("2011-01-01 10:00")
    assert not bad.any()


def test_parse_dates_ambiguous_column_is_month_first() -> None:
    raw = pd.Series(["04/09/2012", "01/02/2013"])
    values, _ = parse_dates(raw, file="f", column="d", rows=_rows(2))
    assert values.tolist() == [pd.Timestamp("2012-04-09"), pd.Timestamp("2013-01-02")]


def test_parse_dates_online_retail_style_ambiguous_head() -> None:
    raw = pd.Series(["12/1/2010 8:26"] * 2000 + ["12/13/2010 9:00"])
    values, _ = parse_dates(raw, file="f", column="InvoiceDate", rows=_rows(len(raw)))
    assert values.iloc[0] == pd.Timestamp("2010-12-01 08:26")
    assert values.iloc[-1] == pd.Timestamp("2010-12-13 09:00")


def test_parse_dates_utc_offsets_and_z_become_naive_utc() -> None:
    """ISO timestamps ending in Z or carrying an offset (which crashed the as-of comparison
    with "Invalid comparison between datetime64[us, UTC] and Timestamp") read as naive UTC."""
    raw = pd.Series(["2025-01-01T08:28:34Z", "2025-01-01T10:28:34+02:00",
                     "2025-01-01T07:28:34-01:00", None])
    values, bad = parse_dates(raw, file="f", column="d", rows=_rows(len(raw)))
    assert values.dtype == "datetime64[ns]"
    assert values.iloc[:3].tolist() == [pd.Timestamp("2025-01-01 08:28:34")] * 3
    assert not bad.any()
    frac = pd.Series(["2025-01-01T08:28:34.250Z", "2025-01-02T08:28:34.5Z"])
    values, _ = parse_dates(frac, file="f", column="d", rows=_rows(2))
    assert values.iloc[0] == pd.Timestamp("2025-01-01 08:28:34.250")
    # values no known format reads go through the per-value fallback: naive UTC too
    mixed = pd.Series(["1 Jan 2025 08:00 +0100", "Jan 2 2025 08:00", "2025-01-03T09:00+01:00"])
    values, bad = parse_dates(mixed, file="f", column="d", rows=_rows(3))
    assert values.dtype == "datetime64[ns]" and not bad.any()
    assert values.tolist() == [pd.Timestamp("2025-01-01 07:00"), pd.Timestamp("2025-01-02 08:00"),
                               pd.Timestamp("2025-01-03 08:00")]


def test_parse_dates_aware_column_is_converted_to_utc_not_stripped() -> None:
    raw = pd.Series(pd.to_datetime(["2011-01-01 10:00"]).tz_localize("Europe/Paris"))
    values, _ = parse_dates(raw, file="f", column="d", rows=_rows(1))
    assert values.iloc[0] == pd.Timestamp("2011-01-01 09:00")


def test_date_plausibility_future_cutoff_and_far_past_warning() -> None:
    from custseg.parsing import date_plausibility

    days = pd.date_range("2024-01-01", periods=365, freq="D")
    counts = pd.Series(10, index=days)
    assert date_plausibility(counts) == (None, None)
    counts[pd.Timestamp("2200-01-01")] = 20       # 0.5% of the lines
    counts[pd.Timestamp("1990-03-01")] = 1
    cutoff, warning = date_plausibility(counts)
    assert pd.Timestamp("2025-12-01") < cutoff < pd.Timestamp("2026-03-01")
    assert "1 lines dated long before" in warning and "1990-03-01" in warning
    counts[pd.Timestamp("2025-06-01")] = 1        # a few months late: plausible
    assert date_plausibility(counts)[0] > pd.Timestamp("2025-06-01")


def test_date_in_the_format_but_out_of_range_says_so() -> None:
    raw = pd.Series(["2024-01-01", "2999-01-01"])
    with pytest.raises(InputError) as exc:
        parse_dates(raw, file="f", column="d", rows=_rows(2))
    assert "implausible date: it matches the format %Y-%m-%d" in str(exc.value)
    assert "cannot parse" not in str(exc.value) and "row 2" in str(exc.value)
    with pytest.raises(InputError, match="cannot parse as a date with format %Y-%m-%d"):
        parse_dates(pd.Series(["2024-01-01", "2024-13-45"]), file="f", column="d", rows=_rows(2))
