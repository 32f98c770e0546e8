"""One set of random inputs, every way of scoring it: the same features and the same segments.

Random customers (edge values included: ages and incomes at and beyond the bounds of
:mod:`custseg.derive`, the learned income fence, unknown education tokens, missing values) and
random transaction logs (customers without a line included) are scored through

(a) batch scoring, :func:`custseg.score.score` on CSV files (the ``custseg score`` path),
(b) the REST API: the fast path (one customer per request) and the slow path (the whole batch),
    through the app itself (FastAPI's TestClient), and
(c) the Spark engine in local mode (:func:`custseg.spark.prepare_data_spark` and
    :func:`custseg.spark.assign_spark`, as ``score_spark`` does),

and the per-customer features (to 1e-9) and segment assignments must agree.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from custseg.derive import AGE_RANGE
from custseg.fastscore import Fallback, FastScorer
from custseg.outputs import write_outputs
from custseg.pipeline import prepare_data, run_segmentation
from custseg.score import LoadedModel, score
from custseg.serve import create_app

TOL = 1e-9
CUSTOMER_COLUMNS = ["customer_id", "age", "gender", "occupation", "income", "education",
                    "location_type", "household_size", "children"]
TX_COLUMNS = ["order_id", "customer_id", "timestamp", "amount", "quantity", "category",
              "channel", "discount_used"]
FENCE = "FENCE"  # stands for the model's learned income fence (replaced per model)

# ------------------------------------------------------------------------------- random inputs

_ages = st.one_of(
    st.sampled_from([AGE_RANGE[0] - 1, AGE_RANGE[0], AGE_RANGE[1], AGE_RANGE[1] + 1,
                     AGE_RANGE[0] - 0.5, AGE_RANGE[1] + 0.5, -1, 0, None, ""]),
    st.integers(16, 90), st.floats(10, 110).map(lambda f: round(f, 2)))
_incomes = st.one_of(
    st.sampled_from([-1, 0, -0.5, FENCE, (FENCE, 1), (FENCE, -1), None, ""]),
    st.integers(5_000, 200_000), st.floats(0, 300_000).map(lambda f: round(f, 2)))
_counts = st.one_of(st.sampled_from([-1, 0, None, ""]), st.integers(0, 6))
_customer = st.fixed_dictionaries({
    "age": _ages, "income": _incomes, "household_size": _counts, "children": _counts,
    "gender": st.sampled_from(["Male", "Female", "Non-binary", "Other", "", None]),
    "occupation": st.sampled_from(["Professional", "Student", "Retired", "Astronaut", None]),
    "education": st.sampled_from(["Bachelor", "High School", "PhD", "Master", "Unknown", "other",
                                  "na", "Kindergarten", None]),
    "location_type": st.sampled_from(["urban", "rural", "suburban", "moon", None]),
})
_line = st.fixed_dictionaries({
    "day": st.integers(0, 364), "seconds": st.integers(0, 86_399),
    "amount": st.one_of(st.floats(-200, 900).map(lambda f: round(f, 2)),
                        st.sampled_from([0, 0.01, -15.5])),
    "quantity": st.integers(-2, 4),
    "category": st.sampled_from(["Home", "Books", "Electronics", "Garden", "Toys", None]),
    "channel": st.sampled_from(["web", "store", "phone", "app", None]),
    "discount_used": st.sampled_from(["0", "1", None]),
})
_batches = st.lists(st.tuples(_customer, st.lists(_line, max_size=4)), min_size=1, max_size=6)

# the edges, in one batch: at and beyond every bound, unknown tokens, missing values, a customer
# without transactions
_EDGES = [
    ({"age": AGE_RANGE[0], "income": FENCE, "household_size": 0, "children": 0,
      "gender": "Female", "occupation": "Student", "education": "Unknown",
      "location_type": "urban"}, [{"day": 10, "seconds": 5, "amount": 10.0, "quantity": 1,
                                   "category": "Books", "channel": "web",
                                   "discount_used": "1"}]),
    ({"age": AGE_RANGE[0] - 1, "income": (FENCE, 1), "household_size": -1, "children": -1,
      "gender": None, "occupation": "Astronaut", "education": "other", "location_type": None},
     [{"day": 300, "seconds": 0, "amount": -20.0, "quantity": -1, "category": None,
       "channel": None, "discount_used": None}, {"day": 301, "seconds": 1, "amount": 99.5,
                                                 "quantity": 2, "category": "Garden",
                                                 "channel": "app", "discount_used": "0"}]),
    ({"age": AGE_RANGE[1], "income": 0, "household_size": None, "children": "",
      "gender": "", "occupation": None, "education": "na", "location_type": "moon"}, []),
    ({"age": AGE_RANGE[1] + 1, "income": -1, "household_size": 3, "children": 2,
      "gender": "Male", "occupation": "Retired", "education": "Kindergarten",
      "location_type": "rural"}, [{"day": 364, "seconds": 86_399, "amount": 0, "quantity": 1,
                                   "category": "Toys", "channel": "store",
                                   "discount_used": "0"}]),
    ({"age": None, "income": None, "household_size": "", "children": None, "gender": None,
      "occupation": None, "education": None, "location_type": None}, []),
]


def _value(v, fence: float):
    """A generated cell with the income fence put in (FENCE, or (FENCE, +-1) for one above or
    below it)."""
    if v == FENCE:
        return fence
    if isinstance(v, tuple):
        return fence + v[1]
    return v


def _inputs(batch, fence: float) -> tuple[list[dict], list[dict]]:
    """(customer records, transaction records) as JSON values."""
    customers, lines = [], []
    for i, (cust, tx) in enumerate(batch):
        cid = f"P{i:03d}"
        customers.append({"customer_id": cid, **{k: _value(v, fence) for k, v in cust.items()}})
        for j, line in enumerate(tx):
            ts = pd.Timestamp("2025-01-01") + pd.Timedelta(days=line["day"],
                                                           seconds=line["seconds"])
            lines.append({"order_id": f"O{i:03d}{j}", "customer_id": cid,
                          "timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"),
                          **{k: line[k] for k in ("amount", "quantity", "category", "channel",
                                                  "discount_used")}})
    return customers, lines


def _write_csv(records: list[dict], columns: list[str], path: Path) -> Path:
    """The records as a CSV file (a missing value is an empty cell, numbers as Python prints
    them, exactly the text the API reads from the JSON values)."""
    frame = pd.DataFrame.from_records(records, columns=columns)
    frame = frame.astype(object).where(frame.notna(), None)
    frame = frame.map(lambda v: "" if v is None else str(v))
    frame.to_csv(path, index=False)
    return path


# ------------------------------------------------------------------------------------- models


@pytest.fixture(scope="module")
def customers_model(tmp_path_factory, synth_files) -> Path:
    """A customers-only model on synthetic demographics: the API's fast path applies."""
    out = tmp_path_factory.mktemp("parity_cust")
    frame = pd.read_csv(synth_files["customers"], dtype=str).drop(columns="signup_date")
    write_outputs(run_segmentation(customers=frame.iloc[:500]), out)
    return out / "model"


@pytest.fixture(scope="module")
def tx_model(tmp_path_factory, synth_files) -> Path:
    """A model on synthetic demographics and transactions: the API's slow path."""
    out = tmp_path_factory.mktemp("parity_tx")
    customers = pd.read_csv(synth_files["customers"], dtype=str).iloc[:500] \
        .drop(columns="signup_date")
    tx = pd.read_csv(synth_files["transactions"], dtype=str)
    tx = tx[tx["customer_id"].isin(customers["customer_id"])]
    write_outputs(run_segmentation(customers, tx), out)
    return out / "model"


# ---------------------------------------------------------------------------- the three engines


class _Captured:
    """A prepare function that keeps the feature table it built."""

    def __init__(self, prepare) -> None:
        self.prepare = prepare
        self.features: pd.DataFrame | None = None

    def __call__(self, *args, **kwargs):
        data = self.prepare(*args, **kwargs)
        self.features = data.features.frame
        return data


def _batch(lm: LoadedModel, cust: Path, tx: Path | None):
    capture = _Captured(prepare_data)
    result = score(lm, cust, tx, prepare=capture)
    return result, capture.features


def _spark(spark, lm: LoadedModel, cust: Path, tx: Path | None):
    """score_spark's steps, keeping the features Spark built."""
    from custseg.spark import assign_spark, prepare_data_spark

    def prepare(customers, transactions, **kw):
        return prepare_data_spark(customers, transactions, spark=spark, **kw)

    capture = _Captured(prepare)
    result = score(lm, cust, tx, prepare=capture,
                   assign=lambda model, frame: assign_spark(spark, model, frame))
    return result, capture.features


def _client(app):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette's deprecation of the httpx backend
        from fastapi.testclient import TestClient
    return TestClient(app)


# -------------------------------------------------------------------------------- comparisons


def _assert_same_features(got: pd.DataFrame, want: pd.DataFrame, what: str) -> None:
    assert list(got.index) == list(want.index), what
    assert sorted(got.columns) == sorted(want.columns), what
    for c in want.columns:
        a, b = got[c], want[c]
        if pd.api.types.is_numeric_dtype(b) and pd.api.types.is_numeric_dtype(a):
            x, y = a.to_numpy(dtype="float64"), b.to_numpy(dtype="float64")
            assert np.allclose(x, y, rtol=0, atol=TOL, equal_nan=True), (what, c, x, y)
        else:
            x = [None if pd.isna(v) else v for v in a]
            y = [None if pd.isna(v) else v for v in b]
            assert x == y, (what, c, x, y)


def _assert_same_feature_row(got: dict, want: pd.Series, what: str) -> None:
    assert sorted(got) == sorted(want.index), what
    for name, v in got.items():
        w = want[name]
        if isinstance(v, float):
            assert (math.isnan(v) and pd.isna(w)) or abs(v - float(w)) <= TOL, (what, name, v, w)
        else:
            assert v == (None if pd.isna(w) else w), (what, name, v, w)


def _rows(assignments: pd.DataFrame) -> list[tuple]:
    return [(str(r.customer_id), int(r.segment_id), str(r.segment_name), float(r.distance),
             float(r.confidence)) for r in assignments.itertuples()]


def _assert_same_rows(got: list[tuple], want: list[tuple], what: str) -> None:
    assert [g[:3] for g in got] == [w[:3] for w in want], what
    for g, w in zip(got, want, strict=True):
        assert abs(g[3] - w[3]) <= TOL and abs(g[4] - w[4]) <= TOL, (what, g, w)


def _api_rows(body: dict) -> list[tuple]:
    return [(r["customer_id"], r["segment_id"], r["segment_name"], r["distance"],
             r["confidence"]) for r in body["results"]]


def _excluded(result) -> list[tuple]:
    ex = result.excluded
    return sorted((None if pd.isna(s) else str(s), None if pd.isna(c) else str(c), str(r))
                  for s, c, r in zip(ex["source"], ex["customer_id"], ex["reason"], strict=True))


# ----------------------------------------------------------------------------------- the tests

def _batch_and_spark_agree(spark, lm: LoadedModel, cust: Path, tx: Path | None):
    """Score through batch (a) and Spark (c); the same features, segments, exclusions, as-of date.
    Returns the batch result and its features for the API checks."""
    want, features = _batch(lm, cust, tx)
    got, spark_features = _spark(spark, lm, cust, tx)
    _assert_same_features(spark_features, features, "spark")
    _assert_same_rows(_rows(got.assignments), _rows(want.assignments), "spark")
    assert _excluded(got) == _excluded(want)
    assert got.as_of == want.as_of
    return want, features


_SETTINGS = settings(max_examples=2, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow, HealthCheck.data_too_large])


@_SETTINGS
@example(batch=_EDGES)
@given(batch=_batches)
def test_customers_only_parity(customers_model, spark, tmp_path_factory, batch) -> None:
    lm = LoadedModel.load(customers_model)
    folder = tmp_path_factory.mktemp("parity")
    customers, _ = _inputs(batch, lm.manifest["cleaning_fences"]["income_max"])
    cust = _write_csv(customers, CUSTOMER_COLUMNS, folder / "customers.csv")

    # (a) batch and (c) Spark: the same features, the same segments and exclusions
    want, features = _batch_and_spark_agree(spark, lm, cust, None)
    rows = {r[0]: r for r in _rows(want.assignments)}

    # (b) the API's fast path: one customer's features, and its segment, through the app
    fast = FastScorer.for_model(lm)
    assert fast is not None
    taken = 0
    with _client(create_app(customers_model)) as client:
        for rec in customers:
            r = client.post("/v1/score", json={"customers": [rec]})
            assert r.status_code == 200, r.text
            _assert_same_rows(_api_rows(r.json()), [rows[rec["customer_id"]]], "api")
            try:
                cid, values = fast.features_of(rec)
            except Fallback:  # blank cells: the app answered through score()
                assert "" in rec.values(), rec
                continue
            taken += 1
            _assert_same_feature_row(values, features.loc[cid], f"fast path {cid}")
        # (b) the API's slow path: the whole batch in one request
        r = client.post("/v1/score", json={"customers": customers})
        assert r.status_code == 200, r.text
        _assert_same_rows(_api_rows(r.json()), _rows(want.assignments), "api batch")
    assert taken or all("" in rec.values() for rec in customers)


@_SETTINGS
@example(batch=_EDGES)
@given(batch=_batches)
def test_with_transactions_parity(tx_model, spark, tmp_path_factory, batch) -> None:
    lm = LoadedModel.load(tx_model)
    batch = [*batch, _EDGES[0]]  # at least one customer with a line to score
    folder = tmp_path_factory.mktemp("parity_tx")
    customers, lines = _inputs(batch, lm.manifest["cleaning_fences"]["income_max"])
    cust = _write_csv(customers, CUSTOMER_COLUMNS, folder / "customers.csv")
    tx = _write_csv(lines, TX_COLUMNS, folder / "transactions.csv")

    want, features = _batch_and_spark_agree(spark, lm, cust, tx)

    with _client(create_app(tx_model)) as client:
        r = client.post("/v1/score", json={"customers": customers, "transactions": lines})
        assert r.status_code == 200, r.text
        body = r.json()
    _assert_same_rows(_api_rows(body), _rows(want.assignments), "api")
    assert body["as_of"] == want.as_of.isoformat()
    assert sorted((e["source"], e["customer_id"], e["reason"]) for e in body["excluded"]) \
        == _excluded(want)

