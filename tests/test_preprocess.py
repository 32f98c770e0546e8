"""Tests for custseg.preprocess.Preprocessor."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from custseg.errors import InputError, NotFittedError
from custseg.preprocess import ONE_HOT_SCALE, Preprocessor

S = ONE_HOT_SCALE


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(42)
    n = 400
    city = np.array(["paris"] * 200 + ["rome"] * 150 + ["oslo"] * 44 + ["bern"] * 6)
    rng.shuffle(city)
    return pd.DataFrame({
        "monetary": rng.lognormal(mean=4.0, sigma=1.2, size=n),   # skewed, non-negative
        "age": rng.normal(45.0, 12.0, size=n),                    # symmetric
        "balance": rng.lognormal(mean=2.0, sigma=1.0, size=n) - 3.0,  # skewed, some negative
        "complain": rng.integers(0, 2, size=n).astype("float64"),
        "city": city,
    })


def _pre(**kw) -> Preprocessor:
    kw.setdefault("numeric", ["monetary", "age", "balance"])
    kw.setdefault("binary", ["complain"])
    kw.setdefault("categorical", ["city"])
    kw.setdefault("min_level_share", 0.05)
    return Preprocessor(**kw)


def _spec(pre: Preprocessor, name: str):
    return next(s for s in pre.specs_ if s.name == name)


def test_init_only_stores_parameters() -> None:
    pre = Preprocessor(numeric=("a",), weights={"a": 2.0})
    assert pre.numeric == ["a"] and pre.weights == {"a": 2.0}
    assert not hasattr(pre, "specs_")


def test_fit_returns_self_and_feature_names(frame: pd.DataFrame) -> None:
    pre = _pre()
    assert pre.fit(frame) is pre
    # bern (1.5%) is below the 5% minimum share and becomes "other"
    assert pre.feature_names_out_ == ["monetary", "age", "balance", "complain", "city=paris",
                                      "city=rome", "city=oslo", "city=other"]
    assert pre.transform(frame).shape == (400, 8)


def test_log_only_for_skewed_non_negative(frame: pd.DataFrame) -> None:
    pre = _pre().fit(frame)
    assert _spec(pre, "monetary").log is True
    assert _spec(pre, "age").log is False
    assert frame["balance"].min() < 0 and frame["balance"].skew() > 1
    assert _spec(pre, "balance").log is False  # negative values: never log


def test_standardised_numeric_columns(frame: pd.DataFrame) -> None:
    pre = _pre().fit(frame)
    out = pre.transform(frame)
    np.testing.assert_allclose(out[:, :3].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(out[:, :3].std(axis=0), 1.0, rtol=1e-12)
    # the log makes the skewed column symmetric: the median maps close to 0
    assert abs(np.median(out[:, 0])) < 0.1


def test_standardised_exact_on_small_column() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0]})
    pre = Preprocessor(numeric=["x"]).fit(df)
    spec = _spec(pre, "x")
    # 0.5th/99.5th percentiles of 1..5 are 1.02 and 4.98
    assert (spec.lo, spec.hi) == pytest.approx((1.02, 4.98))
    xc = np.clip(df["x"].to_numpy(), 1.02, 4.98)
    np.testing.assert_allclose(pre.transform(df)[:, 0], (xc - xc.mean()) / xc.std())


def test_median_imputation(frame: pd.DataFrame) -> None:
    df = frame.copy()
    df.loc[[3, 7], "age"] = np.nan
    df.loc[5, "age"] = np.inf
    pre = _pre().fit(df)
    med = float(np.median(df["age"].to_numpy()[np.isfinite(df["age"].to_numpy())]))
    assert _spec(pre, "age").impute == med
    out = pre.transform(df)
    probe = df.iloc[[0]].copy()
    probe["age"] = med
    expected = pre.transform(probe)[0, 1]
    assert out[3, 1] == expected and out[5, 1] == expected and out[7, 1] == expected


def test_binary_imputed_with_mean_and_kept_on_01_scale() -> None:
    df = pd.DataFrame({"flag": [1.0, 0.0, 1.0, np.nan, 1.0]})
    pre = Preprocessor(binary=["flag"]).fit(df)
    np.testing.assert_array_equal(pre.transform(df)[:, 0], [1.0, 0.0, 1.0, 0.75, 1.0])


def test_clipping_at_transform_time(frame: pd.DataFrame) -> None:
    pre = _pre().fit(frame)
    spec = _spec(pre, "age")
    assert frame["age"].min() < spec.lo < spec.hi < frame["age"].max()
    probe = frame.iloc[[0, 0, 0]].copy()
    probe["age"] = [1e9, spec.hi, -1e9]
    out = pre.transform(probe)[:, 1]
    assert out[0] == out[1] == (spec.hi - spec.mean) / spec.scale
    assert out[2] == (spec.lo - spec.mean) / spec.scale


def test_constant_column_does_not_divide_by_zero() -> None:
    df = pd.DataFrame({"x": [5.0] * 10})
    out = Preprocessor(numeric=["x"]).fit_transform(df)
    np.testing.assert_array_equal(out[:, 0], np.zeros(10))


def test_column_without_values_raises() -> None:
    df = pd.DataFrame({"x": [np.nan, np.nan]})
    with pytest.raises(InputError, match="column 'x'"):
        Preprocessor(numeric=["x"]).fit(df)


# ------------------------------------------------------------------------------------ one-hot


def test_one_hot_levels_and_other(frame: pd.DataFrame) -> None:
    pre = _pre().fit(frame)
    assert _spec(pre, "city").levels == ["paris", "rome", "oslo", "other"]
    probe = frame.iloc[:5].copy()
    probe["city"] = ["paris", "bern", "oslo", "tokyo", None]
    block = pre.transform(probe)[:, 4:]
    np.testing.assert_array_equal(block, S * np.array([
        [1, 0, 0, 0],
        [0, 0, 0, 1],   # a rare training level
        [0, 0, 1, 0],
        [0, 0, 0, 1],   # unseen at fit time
        [0, 0, 0, 1],   # missing, rare at fit time
    ], dtype=float))


def test_unseen_level_without_other_is_all_zeros() -> None:
    df = pd.DataFrame({"c": ["a", "b", "a", "b", "b"]})
    pre = Preprocessor(categorical=["c"]).fit(df)
    assert pre.feature_names_out_ == ["c=b", "c=a"]  # by frequency
    out = pre.transform(pd.DataFrame({"c": ["a", "zzz"]}))
    np.testing.assert_array_equal(out, [[0.0, S], [0.0, 0.0]])


def test_max_levels() -> None:
    df = pd.DataFrame({"c": list("aaaabbbccd")})
    pre = Preprocessor(categorical=["c"], max_levels=2).fit(df)
    assert pre.feature_names_out_ == ["c=a", "c=b", "c=other"]
    out = pre.transform(pd.DataFrame({"c": ["c", "d", "a"]}))
    np.testing.assert_array_equal(out, S * np.array([[0, 0, 1], [0, 0, 1], [1, 0, 0]], dtype=float))


# ------------------------------------------------------------------------------------ weights


def test_weights_multiply_columns(frame: pd.DataFrame) -> None:
    base = _pre().fit(frame).transform(frame)
    weighted = _pre(weights={"monetary": 2.0, "complain": 3.0, "city": 0.5}).fit(frame)
    out = weighted.transform(frame)
    np.testing.assert_array_equal(out[:, 0], 2.0 * base[:, 0])
    np.testing.assert_array_equal(out[:, 1:3], base[:, 1:3])
    np.testing.assert_array_equal(out[:, 3], 3.0 * base[:, 3])
    np.testing.assert_array_equal(out[:, 4:], 0.5 * base[:, 4:])


# ------------------------------------------------------------------------------------ errors


def test_missing_column_raises(frame: pd.DataFrame) -> None:
    pre = _pre().fit(frame)
    with pytest.raises(InputError, match="missing feature columns: age, city"):
        pre.transform(frame.drop(columns=["age", "city"]))
    with pytest.raises(InputError, match="missing feature columns: monetary"):
        _pre().fit(frame.drop(columns=["monetary"]))


def test_transform_before_fit(frame: pd.DataFrame) -> None:
    with pytest.raises(NotFittedError):
        _pre().transform(frame)
    with pytest.raises(NotFittedError):
        _pre().to_dict()


# ------------------------------------------------------------------------------------ persistence


def test_to_dict_from_dict_roundtrip_is_bit_identical(frame: pd.DataFrame) -> None:
    pre = _pre(weights={"age": 1.7}).fit(frame)
    expected = pre.transform(frame)
    probe = frame.iloc[:4].copy()
    probe["city"] = ["tokyo", None, "bern", "rome"]
    probe.loc[probe.index[0], "monetary"] = np.nan
    expected_probe = pre.transform(probe)

    again = Preprocessor.from_dict(pre.to_dict())
    assert again.feature_names_out_ == pre.feature_names_out_
    np.testing.assert_array_equal(again.transform(frame), expected)

    through_json = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    assert through_json.feature_names_out_ == pre.feature_names_out_
    assert through_json.transform(frame).tobytes() == expected.tobytes()
    assert through_json.transform(probe).tobytes() == expected_probe.tobytes()
    assert through_json.to_dict() == pre.to_dict()


def test_to_dict_is_plain_json(frame: pd.DataFrame) -> None:
    d = _pre().fit(frame).to_dict()
    text = json.dumps(d, allow_nan=False)  # only standard JSON types, no NaN
    assert json.loads(text)["columns"][0]["name"] == "monetary"
