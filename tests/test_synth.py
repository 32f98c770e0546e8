"""Tests for :mod:`custseg.synth`: determinism, schema, planted structure and planted mess."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from custseg import synth
from custseg.errors import ConfigError
from custseg.pipeline import prepare_data
from custseg.profile import SegmentFacts, load_rules, name_segments, profile_segments

CUSTOMER_COLUMNS = [
    "customer_id",
    "age",
    "gender",
    "occupation",
    "income",
    "education",
    "location_type",
    "household_size",
    "children",
    "signup_date",
]
TRANSACTION_COLUMNS = [
    "order_id",
    "customer_id",
    "timestamp",
    "amount",
    "quantity",
    "category",
    "channel",
    "discount_used",
]


@pytest.fixture(scope="module")
def data() -> synth.SynthData:
    return synth.generate(n_customers=2000, months=12, seed=0)


@pytest.fixture(scope="module")
def small() -> synth.SynthData:
    return synth.generate(n_customers=300, months=6, seed=3, end_date="2024-06-30")


def _persona(data: synth.SynthData) -> pd.Series:
    return data.truth.set_index("customer_id")["persona"]


def _purchases(data: synth.SynthData) -> pd.DataFrame:
    tx = data.transactions
    return tx[tx["order_id"].str.startswith("O")]


def _returns(data: synth.SynthData) -> pd.DataFrame:
    tx = data.transactions
    return tx[tx["order_id"].str.startswith("R")]


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_identical_data(small: synth.SynthData) -> None:
    again = synth.generate(n_customers=300, months=6, seed=3, end_date="2024-06-30")
    pd.testing.assert_frame_equal(small.customers, again.customers)
    pd.testing.assert_frame_equal(small.transactions, again.transactions)
    pd.testing.assert_frame_equal(small.truth, again.truth)
    assert small.as_of == again.as_of
    assert small.description == again.description


def test_different_seed_gives_different_data(small: synth.SynthData) -> None:
    other = synth.generate(n_customers=300, months=6, seed=4, end_date="2024-06-30")
    assert not small.customers.equals(other.customers)
    assert not small.transactions.equals(other.transactions)
    assert not small.truth["persona"].equals(other.truth["persona"])


def test_end_date_is_a_parameter_not_the_clock() -> None:
    a = synth.generate(n_customers=50, months=3, seed=1, end_date="2020-03-31")
    assert a.as_of == pd.Timestamp("2020-03-31 23:59:59")
    assert a.transactions["timestamp"].max() <= a.as_of
    assert a.transactions["timestamp"].min() >= pd.Timestamp("2020-01-01")
    assert a.description["window"] == {
        "start": "2020-01-01",
        "end": "2020-03-31",
        "as_of": "2020-03-31 23:59:59",
        "days": 91,
    }


# ---------------------------------------------------------------- schema


def test_customer_schema(data: synth.SynthData) -> None:
    c = data.customers
    assert list(c.columns) == CUSTOMER_COLUMNS
    assert len(c) == 2000
    for col in ("customer_id", "gender", "occupation", "education", "location_type"):
        assert pd.api.types.is_string_dtype(c[col]), col
    assert c["age"].dtype == "Int64"
    assert c["income"].dtype == "Int64"
    assert c["household_size"].dtype == np.int64
    assert c["children"].dtype == np.int64
    assert c["signup_date"].dtype == "datetime64[s]"
    assert c["customer_id"].is_unique
    assert c["customer_id"].str.fullmatch(r"C\d{6}").all()
    assert set(c["gender"].dropna()) == set(synth.GENDERS)
    assert set(c["occupation"]) <= set(synth.OCCUPATIONS)
    assert (
        {"High School", "Bachelor", "Master"} <= set(c["education"]) <= set(synth.EDUCATION_LEVELS)
    )
    assert set(c["location_type"]) == set(synth.LOCATION_TYPES)
    assert (c["household_size"] >= 1).all()
    assert (c["children"] >= 0).all()
    assert (c["children"] <= c["household_size"] - 1).all()
    assert (c["signup_date"] == c["signup_date"].dt.normalize()).all()
    assert (c["signup_date"] < pd.Timestamp("2025-12-31")).all()
    assert (c["income"].dropna() > 0).all()


def test_transaction_schema(data: synth.SynthData) -> None:
    t = data.transactions
    assert list(t.columns) == TRANSACTION_COLUMNS
    for col in ("order_id", "customer_id", "category", "channel"):
        assert pd.api.types.is_string_dtype(t[col]), col
    assert t["timestamp"].dtype == "datetime64[s]"
    assert t["amount"].dtype == np.float64
    assert t["quantity"].dtype == np.int64
    assert t["discount_used"].dtype == np.int64
    assert t["order_id"].str.fullmatch(r"[OR]\d{7}").all()
    assert set(t["category"]) == set(synth.CATEGORIES)
    assert set(t["channel"]) == set(synth.CHANNELS)
    assert set(t["discount_used"]) == {0, 1}
    assert not t.isna().any().any()
    assert (t["amount"] != 0).all()
    assert np.allclose(t["amount"], t["amount"].round(2))
    assert (np.sign(t["amount"]) == np.sign(t["quantity"])).all()
    # sorted by timestamp, then order id
    ts = t["timestamp"].to_numpy()
    oid = t["order_id"].to_numpy(dtype=object)
    assert (ts[1:] >= ts[:-1]).all()
    same = ts[1:] == ts[:-1]
    assert (oid[1:][same] >= oid[:-1][same]).all()


def test_truth_covers_all_customers(data: synth.SynthData) -> None:
    truth = data.truth
    assert list(truth.columns) == ["customer_id", "persona"]
    assert truth["customer_id"].tolist() == data.customers["customer_id"].tolist()
    assert set(truth["persona"]) == set(synth.PERSONAS)
    shares = truth["persona"].value_counts(normalize=True)
    expected = {
        "Young Professionals": 0.20,
        "Family-Oriented": 0.25,
        "Budget-Conscious": 0.22,
        "Loyalists": 0.18,
        "At-Risk / Lapsed": 0.15,
    }
    for name, share in expected.items():
        assert abs(shares[name] - share) < 0.04, name
    counts = {k: v["customers"] for k, v in data.description["personas"].items()}
    assert counts == truth["persona"].value_counts().to_dict()


def test_all_personas_present_even_when_tiny() -> None:
    d = synth.generate(n_customers=10, months=1, seed=5)
    assert set(d.truth["persona"]) == set(synth.PERSONAS)
    assert set(_purchases(d)["customer_id"]) == set(d.customers["customer_id"])


# ---------------------------------------------------------------- transactional invariants


def test_every_customer_has_a_purchase(data: synth.SynthData) -> None:
    buyers = set(_purchases(data)["customer_id"])
    assert buyers == set(data.customers["customer_id"])


def test_signup_not_after_first_transaction(data: synth.SynthData) -> None:
    first = data.transactions.groupby("customer_id")["timestamp"].min()
    signup = data.customers.set_index("customer_id")["signup_date"].reindex(first.index)
    assert (signup <= first).all()


def test_timestamps_within_window_and_daytime(data: synth.SynthData) -> None:
    t = data.transactions
    start = pd.Timestamp(data.description["window"]["start"])
    assert start == pd.Timestamp("2025-01-01")
    assert data.as_of == pd.Timestamp("2025-12-31 23:59:59")
    assert t["timestamp"].min() >= start
    assert t["timestamp"].max() <= data.as_of
    hours = _purchases(data)["timestamp"].dt.hour
    assert hours.between(8, 21).all()


def test_returns_are_negative_and_follow_their_order(data: synth.SynthData) -> None:
    purchases = _purchases(data).drop_duplicates()
    returns = _returns(data)
    assert len(returns) == data.description["counts"]["return_rows"]
    assert (returns["amount"] < 0).all()
    assert (returns["quantity"] < 0).all()
    key = returns["order_id"].str.replace("R", "O", regex=False)
    merged = returns.assign(order_id=key).merge(
        purchases,
        on=["order_id", "customer_id", "category", "channel", "discount_used"],
        suffixes=("_r", "_o"),
        how="left",
        validate="one_to_one",
    )
    assert merged["timestamp_o"].notna().all()
    assert (merged["timestamp_r"] > merged["timestamp_o"]).all()
    lag = merged["timestamp_r"] - merged["timestamp_o"]
    assert (lag <= pd.Timedelta(days=31)).all()
    clipped = merged["timestamp_r"] == data.as_of
    assert (lag[~clipped] >= pd.Timedelta(hours=1)).all()
    assert (-merged["amount_r"] <= merged["amount_o"] + 1e-9).all()
    assert (-merged["quantity_r"] <= merged["quantity_o"]).all()
    # about 5% of orders are returned, Budget-Conscious more often than the rest
    share = len(returns) / data.description["counts"]["orders"]
    assert 0.03 < share < 0.07
    persona = _persona(data)
    orders = purchases.drop_duplicates("order_id")
    per_persona = (
        returns["customer_id"].map(persona).value_counts()
        / orders["customer_id"].map(persona).value_counts()
    )
    assert per_persona.idxmax() == "Budget-Conscious"


def test_multi_line_orders(data: synth.SynthData) -> None:
    lines = _purchases(data).drop_duplicates()
    per_order = lines.groupby("order_id").agg(
        n=("category", "size"),
        categories=("category", "nunique"),
        stamps=("timestamp", "nunique"),
        channels=("channel", "nunique"),
        discounts=("discount_used", "nunique"),
        customers=("customer_id", "nunique"),
    )
    assert per_order["n"].max() == 3
    assert 0.05 < (per_order["n"] > 1).mean() < 0.3
    assert (per_order["categories"] == per_order["n"]).all()
    assert (per_order[["stamps", "channels", "discounts", "customers"]] == 1).all().all()
    assert data.description["counts"]["multi_line_orders"] == int((per_order["n"] > 1).sum())


def test_duplicates_are_adjacent_and_counted(data: synth.SynthData) -> None:
    t = data.transactions
    dup = t.duplicated(keep="first")
    n_dup = data.description["mess"]["duplicate_rows"]
    assert n_dup > 0
    assert int(dup.sum()) == n_dup
    assert 0.001 < n_dup / data.description["counts"]["purchase_lines"] < 0.006
    idx = np.flatnonzero(dup.to_numpy())
    assert (t.iloc[idx].to_numpy() == t.iloc[idx - 1].to_numpy()).all()


# ---------------------------------------------------------------- planted mess


def test_mess_is_counted(data: synth.SynthData) -> None:
    c = data.customers
    mess = data.description["mess"]
    assert mess["missing"] == {
        "age": int(c["age"].isna().sum()),
        "gender": int(c["gender"].isna().sum()),
        "income": int(c["income"].isna().sum()),
    }
    assert 0.005 < mess["missing"]["age"] / len(c) < 0.04
    assert 0.02 < mess["missing"]["income"] / len(c) < 0.07
    assert mess["absurd_age"] == int((c["age"] >= 120).sum())
    assert mess["absurd_income"] == int((c["income"] == 9_999_999).sum())
    assert (
        int(c["age"].dropna().between(18, 85).sum())
        == int(c["age"].notna().sum()) - mess["absurd_age"]
    )
    assert 0.004 < mess["outlier_lines"] / data.description["counts"]["purchase_lines"] < 0.02
    assert mess["full_returns"] + mess["partial_returns"] == mess["returned_orders"]
    assert sum(mess["returned_orders_by_persona"].values()) == mess["returned_orders"]
    counts = data.description["counts"]
    assert counts["transaction_rows"] == len(data.transactions)
    assert counts["transaction_rows"] == (
        counts["purchase_lines"] + counts["duplicate_rows"] + counts["return_rows"]
    )


def test_description_is_json_serialisable(data: synth.SynthData) -> None:
    text = json.dumps(data.description)
    assert json.loads(text) == data.description
    params = data.description["personas"]["Young Professionals"]["parameters"]
    assert params["categories"]["Electronics"] == pytest.approx(0.40)
    assert set(data.description["personas"]) == set(synth.PERSONAS)


# ---------------------------------------------------------------- persona sanity


def test_persona_demographics(data: synth.SynthData) -> None:
    c = data.customers.set_index("customer_id").join(_persona(data))
    c = c[c["age"] < 110]
    by = c.groupby("persona")
    age = by["age"].mean()
    assert age["Young Professionals"] < age["Family-Oriented"] < age["Loyalists"]
    income = c[c["income"] < 1_000_000].groupby("persona")["income"].mean()
    assert income.idxmax() == "Young Professionals"
    assert income.idxmin() == "Budget-Conscious"
    assert by["children"].mean().idxmax() == "Family-Oriented"
    urban = by["location_type"].apply(lambda s: (s == "urban").mean())
    assert urban.idxmax() == "Young Professionals"
    tenure = data.as_of - c["signup_date"]
    assert tenure.groupby(c["persona"]).median().idxmax() == "Loyalists"


def test_persona_behaviour(data: synth.SynthData) -> None:
    persona = _persona(data)
    lines = _purchases(data)
    orders = lines.drop_duplicates("order_id")
    p = orders["customer_id"].map(persona)
    discount = orders.groupby(p)["discount_used"].mean()
    assert discount.idxmax() == "Budget-Conscious"
    assert discount["Budget-Conscious"] > 0.55
    per_customer = orders.groupby("customer_id").size().groupby(persona).mean()
    assert per_customer.idxmax() == "Loyalists"
    assert per_customer.idxmin() == "At-Risk / Lapsed"
    line_amount = lines.groupby(lines["customer_id"].map(persona))["amount"].median()
    assert line_amount.idxmax() == "Young Professionals"
    assert line_amount.idxmin() == "Budget-Conscious"
    recency = (data.as_of - lines.groupby("customer_id")["timestamp"].max()).dt.days
    rec = recency.groupby(persona).median()
    assert rec["At-Risk / Lapsed"] > 110
    assert (recency[persona[persona == "At-Risk / Lapsed"].index] >= 100).mean() > 0.95
    for other in ("Young Professionals", "Family-Oriented", "Budget-Conscious", "Loyalists"):
        assert rec[other] < 45, other
    yp = lines[lines["customer_id"].map(persona) == "Young Professionals"]
    assert yp["category"].value_counts().idxmax() == "Electronics"
    assert yp.drop_duplicates("order_id")["channel"].value_counts().idxmax() == "app"
    fam = lines[lines["customer_id"].map(persona) == "Family-Oriented"]
    assert fam["category"].value_counts().idxmax() == "Groceries"
    # Loyalists' first order in the window comes within two weeks of its start
    loyal = persona[persona == "Loyalists"].index
    first = lines.groupby("customer_id")["timestamp"].min().reindex(loyal)
    assert (first < pd.Timestamp("2025-01-15")).all()


@pytest.mark.parametrize("which", ["data", "small"])
def test_each_persona_earns_its_name(which: str, request: pytest.FixtureRequest) -> None:
    # Taken as a segment, every planted persona fires its own rule in the built-in naming table
    # (a rule, not the descriptive fallback): deleting or breaking any of the five rules fails.
    d: synth.SynthData = request.getfixturevalue(which)
    features = prepare_data(d.customers, d.transactions).features
    persona = _persona(d).reindex(features.frame.index)
    codes = persona.map({p: i for i, p in enumerate(synth.PERSONAS)}).to_numpy()
    profiles = profile_segments(features, codes)
    name_segments(profiles, load_rules(), SegmentFacts(features, codes))
    earned = {synth.PERSONAS[s.segment_id]: s.name_rule for s in profiles.segments}
    assert earned == {p: p for p in synth.PERSONAS}, {
        synth.PERSONAS[s.segment_id]: s.names_rejected for s in profiles.segments}
    # every absolute check of every name holds on the segment's own customers
    for s in profiles.segments:
        assert s.checks and all(c["holds"] for c in s.checks), s.checks


# ---------------------------------------------------------------- write


def _read_back(paths: dict[str, Path]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    customers = pd.read_csv(
        paths["customers"], dtype={"age": "Int64", "income": "Int64"}, parse_dates=["signup_date"]
    )
    customers["signup_date"] = customers["signup_date"].astype("datetime64[s]")
    transactions = pd.read_csv(paths["transactions"], parse_dates=["timestamp"])
    transactions["timestamp"] = transactions["timestamp"].astype("datetime64[s]")
    truth = pd.read_csv(paths["truth"])
    description = json.loads(Path(paths["description"]).read_text(encoding="utf-8"))
    return customers, transactions, truth, description


def test_write_round_trip(small: synth.SynthData, tmp_path: Path) -> None:
    out = tmp_path / "synth-out"
    paths = synth.write(small, out)
    assert set(paths) == {"customers", "transactions", "truth", "description"}
    assert {p.name for p in paths.values()} == {
        "customers.csv",
        "transactions.csv",
        "truth.csv",
        "synth.json",
    }
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths.values())
    customers, transactions, truth, description = _read_back(paths)
    pd.testing.assert_frame_equal(customers, small.customers, check_dtype=False)
    pd.testing.assert_frame_equal(transactions, small.transactions, check_dtype=False)
    pd.testing.assert_frame_equal(truth, small.truth, check_dtype=False)
    assert description == small.description
    header = paths["transactions"].read_text(encoding="utf-8").splitlines()[:2]
    assert header[0] == ",".join(TRANSACTION_COLUMNS)
    assert re.match(r"O\d{7},C\d{6},\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,", header[1])
    line = paths["customers"].read_text(encoding="utf-8").splitlines()[1]
    assert re.search(r",\d{4}-\d\d-\d\d$", line)


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_customers": 9}, "n_customers must be at least 10"),
        ({"months": 0}, "months must be at least 1"),
        ({"seed": -1}, "seed"),
        ({"n_customers": 2.5}, "n_customers must be an integer"),
        ({"end_date": "31/02/2025"}, "end_date"),
        ({"end_date": "not a date"}, "end_date"),
    ],
)
def test_invalid_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        synth.generate(**kwargs)


def test_long_and_short_windows() -> None:
    short = synth.generate(n_customers=40, months=1, seed=2, end_date="2025-02-28")
    assert short.transactions["timestamp"].min() >= pd.Timestamp("2025-02-01")
    assert set(_purchases(short)["customer_id"]) == set(short.customers["customer_id"])
    long = synth.generate(n_customers=40, months=36, seed=2)
    assert long.transactions["timestamp"].min() >= pd.Timestamp("2023-01-01")
    first = long.transactions.groupby("customer_id")["timestamp"].min()
    signup = long.customers.set_index("customer_id")["signup_date"].reindex(first.index)
    assert (signup <= first).all()


# ---------------------------------------------------------------- helpers


def test_ids_are_zero_padded_for_any_width() -> None:
    ids = synth._ids("C", np.array([1, 42, 1234567, 99_999_999]), 8)
    assert list(ids) == ["C00000001", "C00000042", "C01234567", "C99999999"]
    prefixes = np.array([ord("O"), ord("R")], dtype=np.uint8)
    assert list(synth._ids(prefixes, np.array([7, 7]), 3)) == ["O007", "R007"]


def test_order_packs_keys_like_lexsort() -> None:
    rng = np.random.default_rng(0)
    a, b, c = rng.integers(0, 50, 500), rng.integers(0, 3, 500), rng.permutation(500)
    expected = np.lexsort((c, b, a))
    np.testing.assert_array_equal(synth._order((a, 50), (b, 3), (c, 500)), expected)
    # bounds too large to pack fall back to lexsort
    np.testing.assert_array_equal(synth._order((a, 2**40), (b, 2**20), (c, 2**20)), expected)


def test_choice_rows_follows_the_row_probabilities() -> None:
    rng = np.random.default_rng(1)
    probs = np.array([[1.0, 0.0, 0.0], [0.0, 0.25, 0.75]])
    rows = np.repeat([0, 1], 20_000)
    draws = synth._choice_rows(rng, probs, rows)
    assert (draws[:20_000] == 0).all()
    share = np.bincount(draws[20_000:], minlength=3) / 20_000
    np.testing.assert_allclose(share, [0.0, 0.25, 0.75], atol=0.015)


def test_trait_words_read_as_plain_words() -> None:
    from custseg.profile import trait_words

    def words(feature: str, score: float = 1.0, kind: str = "level") -> str | None:
        return trait_words({"kind": kind, "feature": feature, "score": score,
                            "label": feature})

    assert words("marital_status=married") == "Married"            # "status" adds nothing
    assert words("Contract=Month-to-month") == "Month-to-month contract"
    assert words("InternetService=Fiber optic") == "Fiber optic internet service"
    assert words("DeviceProtection=No internet service") == "No internet service"
    assert words("Dependents=No") == "No dependents" and words("Partner=Yes") == "Partner"
    assert words("Channel=1") == "Channel 1"                        # a code stays with its column
    assert words("poutcome=unknown") is None                        # never named after "unknown"
    assert words("Contract=Two year", score=-1.0) is None           # an under-represented level
    assert words("age", 1.0, "numeric") == "Older" and words("age", -1.0, "numeric") == "Younger"
