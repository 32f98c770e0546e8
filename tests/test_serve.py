"""The scoring API: a real server on loopback, the fast path proven identical to score(),
and random or malformed bodies never answered with a 5xx."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from custseg.cli import app as cli_app
from custseg.fastscore import Fallback, FastScorer, clip
from custseg.outputs import write_outputs
from custseg.pipeline import run_segmentation
from custseg.score import LoadedModel, records_frame, score
from custseg.serve import create_app

API_KEY = "test-key-\u00e9"  # a non-ASCII key must work too (sent as UTF-8)
KEY_HEADER = {"X-API-Key": API_KEY.encode("utf-8")}
MALL_COLUMNS = ["CustomerID", "Gender", "Age", "Annual Income (k$)", "Spending Score (1-100)"]
runner = CliRunner()


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def mall(tmp_path_factory, real_data) -> tuple[Path, list[dict]]:
    """A customers-only model fitted on Mall_Customers.csv, and that file as JSON records."""
    out = tmp_path_factory.mktemp("mall")
    frame = pd.read_csv(real_data / "Mall_Customers.csv")
    write_outputs(run_segmentation(customers=real_data / "Mall_Customers.csv"), out)
    return out / "model", json.loads(frame.to_json(orient="records"))


@pytest.fixture(scope="module")
def synth_tx_model(tmp_path_factory, synth_files) -> Path:
    """A model fitted on synthetic customers + transactions (the first 600 customers)."""
    out = tmp_path_factory.mktemp("synth_tx")
    customers = pd.read_csv(synth_files["customers"], dtype=str).iloc[:600]
    tx = pd.read_csv(synth_files["transactions"], dtype=str)
    tx = tx[tx["customer_id"].isin(customers["customer_id"])]
    write_outputs(run_segmentation(customers, tx), out)
    return out / "model"


@pytest.fixture(scope="module")
def synth_customers(tmp_path_factory, synth_files) -> tuple[Path, list[dict]]:
    """A customers-only model on synthetic demographics (age, income, education, occupation,
    household ...; no dates): the fast path's roles beyond the Mall file's."""
    out = tmp_path_factory.mktemp("synth_cust")
    frame = pd.read_csv(synth_files["customers"], dtype=str).drop(columns="signup_date")
    write_outputs(run_segmentation(customers=frame.iloc[:600]), out)
    records = json.loads(frame.iloc[:600].to_json(orient="records"))
    return out / "model", records


def _start_server(model: Path, log: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """``python -m custseg serve`` on 127.0.0.1 and a free port; returns (process, base URL)."""
    fh = open(log, "w", encoding="utf-8")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-m", "custseg", "serve", "--model", str(model),
                             "--host", "127.0.0.1", "--port", "0", *extra],
                            stdout=fh, stderr=subprocess.STDOUT,
                            env={**os.environ, "CUSTSEG_API_KEY": ""})
    proc.log_file = fh  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    base = None
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()}")
            if base is None:
                m = re.search(r"http://127\.0\.0\.1:(\d+)", log.read_text(encoding="utf-8"))
                if m:
                    base = f"http://127.0.0.1:{m.group(1)}"
            if base is not None:
                try:
                    if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                        return proc, base
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"server not healthy within 60 s: {log.read_text()}")
    except BaseException:
        _stop(proc)
        raise


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.log_file.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def server(mall, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """The real server for the Mall model: API key set, at most 250 customers per request."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    proc, base = _start_server(mall[0], log, "--api-key", API_KEY, "--max-batch", "250")
    try:
        yield base, log
    finally:
        _stop(proc)
    assert "Traceback" not in log.read_text(encoding="utf-8"), log.read_text()


@pytest.fixture(scope="module")
def tx_server(synth_tx_model, tmp_path_factory) -> Iterator[str]:
    """The real server for the synthetic with-transactions model, without an API key."""
    log = tmp_path_factory.mktemp("tx_server") / "server.log"
    proc, base = _start_server(synth_tx_model, log)
    try:
        yield base
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def client(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server[0], headers=KEY_HEADER, timeout=30) as c:
        yield c


def _test_client(app, **kwargs):
    """fastapi.testclient.TestClient (Starlette >= 1.0 deprecates its httpx backend on import)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # only around this import
        from fastapi.testclient import TestClient
    return TestClient(app, **kwargs)


def _assignments(results: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(results).set_index("customer_id")


# ------------------------------------------------------------------------------ the endpoints


@pytest.mark.realdata
def test_healthz_needs_no_key(server) -> None:
    r = httpx.get(server[0] + "/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["k"] >= 2


@pytest.mark.realdata
def test_segments_equal_the_manifest(client, mall) -> None:
    manifest = json.loads((mall[0] / "manifest.json").read_text(encoding="utf-8"))
    r = client.get("/v1/segments")
    assert r.status_code == 200
    body = r.json()
    assert body["k"] == manifest["model"]["k"] == len(body["segments"])
    for got, want in zip(body["segments"], manifest["segments"], strict=True):
        for key in ("segment_id", "name", "size", "share", "description", "evidence",
                    "recommendations"):
            assert got[key] == want[key], key


@pytest.mark.realdata
def test_batch_from_training_file_matches_batch_scoring(client, mall) -> None:
    model, records = mall
    r = client.post("/v1/score", json={"customers": records})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["excluded"] == [] and len(body["results"]) == len(records)
    got = _assignments(body["results"])
    want = score(model, records_frame(records)).assignments.set_index("customer_id")
    assert got.index.tolist() == want.index.tolist()
    assert (got["segment_id"] == want["segment_id"]).all()
    assert (got["segment_name"] == want["segment_name"]).all()
    assert np.array_equal(got["distance"].to_numpy(), want["distance"].to_numpy())
    assert np.array_equal(got["confidence"].to_numpy(), want["confidence"].to_numpy())
    segs = {s["segment_id"]: s for s in LoadedModel.load(model).segments}
    for row in body["results"]:
        assert row["recommendations"] == segs[row["segment_id"]]["recommendations"]


@pytest.mark.realdata
def test_single_customers_match_batch_scoring(client, mall) -> None:
    model, records = mall
    want = score(model, records_frame(records)).assignments.set_index("customer_id")
    for rec in records[::10]:
        r = client.post("/v1/score", json={"customers": [rec]})
        assert r.status_code == 200, r.text
        (row,) = r.json()["results"]
        w = want.loc[str(rec["CustomerID"])]
        assert (row["segment_id"], row["segment_name"]) == (w["segment_id"], w["segment_name"])
        assert row["distance"] == w["distance"] and row["confidence"] == w["confidence"]
    # an unseen level, numbers as text, and a customer only the slow path takes (blank cells)
    for rec in ({"CustomerID": "x1", "Gender": "Other", "Age": "31",
                 "Annual Income (k$)": "70", "Spending Score (1-100)": "80"},
                {"CustomerID": "x2", "Gender": " Female ", "Age": " 44 ",
                 "Annual Income (k$)": "", "Spending Score (1-100)": None}):
        r = client.post("/v1/score", json={"customers": [rec]})
        assert r.status_code == 200, r.text
        (row,) = r.json()["results"]
        w = score(model, records_frame([rec])).assignments.iloc[0]
        assert row["segment_id"] == w["segment_id"] and row["distance"] == w["distance"]
        assert 0 <= row["confidence"] <= 1


def test_with_transactions_on_the_synthetic_model(tx_server, synth_tx_model, synth_files) -> None:
    customers = pd.read_csv(synth_files["customers"], dtype=str).iloc[:5]
    tx = pd.read_csv(synth_files["transactions"], dtype=str)
    tx = tx[tx["customer_id"].isin(customers["customer_id"])]
    body = {"customers": json.loads(customers.to_json(orient="records")),
            "transactions": json.loads(tx.to_json(orient="records"))}
    r = httpx.post(tx_server + "/v1/score", json=body, timeout=30)
    assert r.status_code == 200, r.text
    got = _assignments(r.json()["results"])
    want = score(synth_tx_model, records_frame(body["customers"]),
                 records_frame(body["transactions"])).assignments.set_index("customer_id")
    assert got.index.tolist() == want.index.tolist() == sorted(customers["customer_id"])
    assert (got["segment_id"] == want["segment_id"]).all()
    assert np.array_equal(got["distance"].to_numpy(), want["distance"].to_numpy())
    for c in ("p_alive", "expected_purchases", "expected_spend", "clv"):  # worth next
        assert np.allclose(got[c].to_numpy(float), want[c].to_numpy(float)), c
    assert r.json()["as_of"] == str(want_as_of(synth_tx_model, body))
    # no key configured: the segments need none; without transactions: 422 naming the field
    assert httpx.get(tx_server + "/v1/segments").status_code == 200
    r = httpx.post(tx_server + "/v1/score", json={"customers": body["customers"]})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "transactions"


def want_as_of(model: Path, body: dict):
    return score(model, records_frame(body["customers"]),
                 records_frame(body["transactions"])).as_of


@pytest.mark.realdata
def test_api_key_is_required(server, mall) -> None:
    base = server[0]
    rec = {"customers": mall[1][:1]}
    for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}):
        assert httpx.post(base + "/v1/score", json=rec, headers=headers).status_code == 401
        assert httpx.get(base + "/v1/segments", headers=headers).status_code == 401
    assert httpx.post(base + "/v1/score", json=rec, headers=KEY_HEADER).status_code == 200
    # documented choice: the docs and the schema stay open
    assert httpx.get(base + "/docs").status_code == 200
    assert httpx.get(base + "/openapi.json").status_code == 200


@pytest.mark.realdata
def test_oversized_batch_is_413(client, mall) -> None:
    records = (mall[1] * 2)[:251]
    r = client.post("/v1/score", json={"customers": records})
    assert r.status_code == 413
    assert "250" in r.json()["detail"][0]["msg"]


@pytest.mark.realdata
@pytest.mark.parametrize(("content", "field", "words"), [
    (b"{not json", "body", "not valid JSON"),
    (b"[1, 2]", "body", "valid dictionary"),
    (b'{"transactions": null}', "customers", "required"),
    (b'{"customers": []}', "customers", "at least 1"),
    (b'{"customers": {"CustomerID": 1}}', "customers", "valid list"),
    (b'{"customers": [{"CustomerID": 1, "Age": [30]}]}', "customers[0].Age", "CSV cell"),
    (b'{"customers": [{"CustomerID": 1}], "as_of": "31/01/2024"}', "as_of", "YYYY-MM-DD"),
    (b'{"customers": [{"CustomerID": 1}], "customer": []}', "customer", "not permitted"),
    (b'{"customers": [{"CustomerID": "a", "Gender": "Male", "Age": "abc", '
     b'"Annual Income (k$)": 15, "Spending Score (1-100)": 39}]}', "customers[0].Age",
     "cannot parse as a number"),
    (b'{"customers": [{"CustomerID": "a", "Age": 30}]}', "body", "lacks columns"),
    (b'{"customers": [{"CustomerID": "a", "Gender": "Male", "Age": 1, '
     b'"Annual Income (k$)": 15, "Spending Score (1-100)": 39}, {"CustomerID": "a", '
     b'"Gender": "Male", "Age": 2, "Annual Income (k$)": 15, "Spending Score (1-100)": 39}]}',
     "customers[1].CustomerID", "duplicate customer id"),
])
def test_bad_bodies_are_422_naming_the_field(client, content, field, words) -> None:
    r = client.post("/v1/score", content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(d["field"] == field and words in d["msg"] for d in detail), detail


@pytest.mark.realdata
def test_openapi_documents_the_api(client) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/healthz", "/v1/segments", "/v1/score"} <= set(spec["paths"])
    post = spec["paths"]["/v1/score"]["post"]
    assert {"200", "401", "413", "422"} <= set(post["responses"])
    assert "customers" in spec["components"]["schemas"]["ScoreRequest"]["properties"]
    assert "X-API-Key" in json.dumps(spec["components"].get("securitySchemes", {}))
    assert "swagger" in client.get("/docs").text.lower()


# ------------------------------------------------------------------- random and malformed bodies

_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=10),
                    st.sampled_from(["", " ", "1,000", "$5", "1e400", "nan", "17.0", "-0"]))
_json = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
_record = st.dictionaries(st.sampled_from(MALL_COLUMNS) | st.text(max_size=8),
                          st.one_of(_scalar, _scalar, _json), max_size=6)
_body = st.one_of(
    _json,
    st.fixed_dictionaries({"customers": st.lists(_record, max_size=4)}, optional={
        "transactions": st.none() | st.lists(_record, max_size=2),
        "as_of": st.none() | st.text(max_size=12) | st.just("2024-02-30"), "other": _json}),
)
_payload = st.one_of(_body.map(lambda b: json.dumps(b).encode()), st.binary(max_size=40))


@pytest.mark.realdata
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(payload=_payload, json_type=st.booleans())
def test_random_bodies_never_get_a_5xx(client, payload, json_type) -> None:
    headers = {"Content-Type": "application/json" if json_type else "text/plain"}
    r = client.post("/v1/score", content=payload, headers=headers)
    assert r.status_code < 500, (payload, r.text)
    assert r.status_code in (200, 413, 422), (payload, r.status_code, r.text)
    body = r.json()
    if r.status_code == 200:
        for row in body["results"]:
            assert math.isfinite(row["distance"]) and 0 <= row["confidence"] <= 1


# -------------------------------------------------------- the fast path is exactly score()


def _same_as_score(lm: LoadedModel, fast: FastScorer, record: dict) -> bool:
    """Check the fast path against score() on the same one-record table; False if it fell back."""
    try:
        got = fast.score_one(record)
    except Fallback:
        return False
    want = score(lm, records_frame([record])).assignments.iloc[0].to_dict()
    assert got == {k: (v.item() if hasattr(v, "item") else v) for k, v in want.items()}
    return True


@pytest.mark.realdata
def test_fast_path_takes_and_reproduces_the_training_file(mall) -> None:
    lm = LoadedModel.load(mall[0])
    fast = FastScorer.for_model(lm)
    assert fast is not None
    assert all(_same_as_score(lm, fast, rec) for rec in mall[1][::4])


def test_fast_path_on_more_roles(synth_customers) -> None:
    lm = LoadedModel.load(synth_customers[0])
    fast = FastScorer.for_model(lm)
    assert fast is not None
    assert all(_same_as_score(lm, fast, rec) for rec in synth_customers[1][::30])


_PLAIN_NUMBER = re.compile(r"-?[0-9]{1,15}|-?[0-9]{1,20}(\.[0-9]{1,20})?([eE][-+]?[0-9]{1,2})?")


def _plain_number(v: object) -> bool:
    """A cell the fast path promises to read itself (else it hands the record to score()):
    null, NaN, an integer, or a number whose text is plain digits (no blanks, no sign other
    than a leading minus, at most two exponent digits); a blank string is not one."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return True
    if isinstance(v, bool):
        return False
    return bool(_PLAIN_NUMBER.fullmatch(str(v)))


_GENDERS = st.sampled_from(["Male", "Female", "Other", "", "M", "(missing)", "x y"])
_num_cell = st.one_of(st.none(), st.integers(-50, 300), st.integers(-10**15, 10**15),
                      st.floats(-1e6, 1e6), st.just(math.nan), st.integers(0, 200).map(str),
                      st.floats(0, 300).map(lambda f: f"{f:.3f}"),
                      st.sampled_from(["", "7.5e1", "-0", "0.0", "1e-3", "-0.0"]))


@pytest.mark.realdata
@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=st.fixed_dictionaries({
    "CustomerID": st.integers(0, 10**6) | st.from_regex(r"[A-Za-z0-9_-]{1,10}", fullmatch=True),
    "Gender": _GENDERS | st.none(), "Age": _num_cell, "Annual Income (k$)": _num_cell,
    "Spending Score (1-100)": _num_cell}), order=st.randoms())
def test_fast_path_equals_score_on_random_records(mall, record, order) -> None:
    lm = LoadedModel.load(mall[0])
    items = list(record.items())
    order.shuffle(items)  # column order changes role detection only through names
    taken = _same_as_score(lm, FastScorer.for_model(lm), dict(items))
    numbers = (record["Age"], record["Annual Income (k$)"], record["Spending Score (1-100)"])
    assert taken or not all(map(_plain_number, numbers)), record


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=st.fixed_dictionaries({
    "customer_id": st.from_regex(r"C[0-9]{1,6}", fullmatch=True), "age": _num_cell,
    "gender": _GENDERS, "occupation": st.sampled_from(["Professional", "Student", "Retired",
                                                        "Astronaut", ""]),
    "income": _num_cell, "education": st.sampled_from(["Bachelor", "High School", "PhD",
                                                       "Unknown", "Kindergarten"]),
    "location_type": st.sampled_from(["urban", "rural", "suburban", "moon"]) | st.none(),
    "household_size": _num_cell, "children": _num_cell}))
def test_fast_path_equals_score_on_random_demographics(synth_customers, record) -> None:
    lm = LoadedModel.load(synth_customers[0])
    taken = _same_as_score(lm, FastScorer.for_model(lm), record)
    numbers = (record["age"], record["income"], record["household_size"], record["children"])
    assert taken or not all(map(_plain_number, numbers)), record


def test_score_with_all_education_missing(synth_customers) -> None:
    # the one customer's education is missing: it is imputed (not an error, not excluded), and
    # the fast path gives the very same answer
    record = {**synth_customers[1][0], "education": None}
    result = score(synth_customers[0], records_frame([record]))
    assert result.excluded.empty
    assert result.assignments["customer_id"].tolist() == [record["customer_id"]]
    lm = LoadedModel.load(synth_customers[0])
    fast = FastScorer.for_model(lm)
    assert math.isnan(fast.features_of(record)[1]["education_level"])  # imputed by the model
    assert _same_as_score(lm, fast, record)


def test_prepare_customers_with_an_absurd_signup_date() -> None:
    from custseg.cleaning import prepare_customers
    from custseg.config import TableConfig
    from custseg.errors import InputError
    from custseg.ledger import Ledger

    frame = records_frame([{"customer_id": "C1", "age": "30", "signup_date": "-1.5"}])
    with pytest.raises(InputError, match="cannot parse as a date") as info:
        prepare_customers(frame, TableConfig(), file="customers", ledger=Ledger(), as_of=None,
                          scoring=True)
    assert (info.value.column, info.value.row, info.value.value) == ("signup_date", 1, "-1.5")


def test_clip_keeps_numpy_semantics_on_ties() -> None:
    # fastscore.clip (the fast path's np.clip for one float) against NumPy, signed zeros included
    values = [-0.0, 0.0, 1.0, -1.0, 2.0, -math.inf, math.inf]
    for x in values:
        for lo in values:
            for hi in values:
                if lo > hi:
                    continue
                want = np.clip(np.array([x]), lo, hi)[0]
                got = clip(x, lo, hi)
                assert got == want and np.signbit(got) == np.signbit(want), (x, lo, hi)


@pytest.mark.realdata
def test_fast_lane_gives_the_same_responses_as_the_route(mall) -> None:
    records = [*mall[1][:5], {"CustomerID": "s", "Gender": " Male", "Age": "$30",
                              "Annual Income (k$)": "1,000", "Spending Score (1-100)": 3.5}]
    with _test_client(create_app(mall[0], api_key="k")) as fast_client, \
            _test_client(create_app(mall[0], api_key="k", fast_path=False)) as slow_client:
        for rec in records:
            body = {"customers": [rec], "as_of": "2024-01-31"}
            a = fast_client.post("/v1/score", json=body, headers={"X-API-Key": "k"})
            b = slow_client.post("/v1/score", json=body, headers={"X-API-Key": "k"})
            assert a.status_code == b.status_code == 200
            assert a.content == b.content
        r = fast_client.post("/v1/score", json={"customers": records[:1]})
        assert r.status_code == 401


@pytest.mark.realdata
def test_body_size_limit_is_413(mall) -> None:
    with _test_client(create_app(mall[0], max_body_bytes=200)) as c:
        r = c.post("/v1/score", json={"customers": mall[1][:10]})
        assert r.status_code == 413
        assert c.post("/v1/score", json={"customers": mall[1][:1]}).status_code == 200


# ------------------------------------------------------------------------- limits per request


def _tx_body(synth_files, n_customers: int) -> dict:
    customers = pd.read_csv(synth_files["customers"], dtype=str).iloc[:n_customers]
    tx = pd.read_csv(synth_files["transactions"], dtype=str)
    tx = tx[tx["customer_id"].isin(customers["customer_id"])]
    return {"customers": json.loads(customers.to_json(orient="records")),
            "transactions": json.loads(tx.to_json(orient="records"))}


@pytest.fixture(scope="module")
def limited_server(synth_tx_model, tmp_path_factory) -> Iterator[str]:
    """The with-transactions model behind small limits: 2,000-byte bodies, 3 customers,
    8 lines per request, 3 per customer, and (``--workers 2``) two worker processes."""
    log = tmp_path_factory.mktemp("limited") / "server.log"
    proc, base = _start_server(synth_tx_model, log, "--max-body-bytes", "2000",
                               "--max-batch", "3", "--max-lines", "8",
                               "--max-lines-per-customer", "3", "--workers", "2")
    try:
        yield base
    finally:
        _stop(proc)
    assert "Traceback" not in log.read_text(encoding="utf-8"), log.read_text()


def _lines(customer_ids: list[str], per_customer: int) -> list[dict]:
    return [{"order_id": f"o-{cid}-{i}", "customer_id": cid,
             "timestamp": f"2025-01-{i + 1:02d} 10:00:00", "amount": "10.5", "quantity": "1",
             "category": "Books", "channel": "web", "discount_used": "0"}
            for cid in customer_ids for i in range(per_customer)]


def _customer(cid: str) -> dict:
    return {"customer_id": cid, "age": "40", "gender": "Female", "occupation": "Management",
            "income": "50000", "education": "Bachelor", "location_type": "urban",
            "household_size": "2", "children": "0", "signup_date": "2024-06-01"}


def _post(base: str, body: bytes | dict, **kw) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(base + "/v1/score", content=content, timeout=30,
                      headers={"Content-Type": "application/json"}, **kw)


def _too_large_msg(r: httpx.Response) -> str:
    assert r.status_code == 413, r.text
    (item,) = r.json()["detail"]
    assert item["type"] == "too_large"
    return item["msg"]


def test_body_over_the_limit_is_413_without_parsing_it(limited_server) -> None:
    # not JSON at all: parsed, it would be a 422; over the limit it is never parsed
    junk = b"{" + b"x" * 2500
    assert "--max-body-bytes" in _too_large_msg(_post(limited_server, junk))
    # streamed without a Content-Length (chunked): counted as it arrives
    streamed = httpx.post(limited_server + "/v1/score", timeout=30,
                          content=iter([b"{" + b"x" * 999] * 3),
                          headers={"Content-Type": "application/json"})
    assert "content-length" not in streamed.request.headers  # sent chunked
    assert "2000 bytes" in _too_large_msg(streamed)
    # a declared length over the limit is answered before the body is read: the client here
    # sends the headers and no body at all, and still gets its 413
    host, port = limited_server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000000000\r\n\r\n")
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 413"), head
    # within the limit the same server scores
    ok = _post(limited_server, {"customers": [_customer("a")],
                                "transactions": _lines(["a"], 1)})
    assert ok.status_code == 200, ok.text


def test_too_many_customers_or_lines_is_413_before_validation(limited_server) -> None:
    # four customers whose values are not even valid cells: the count is checked first
    bad = [{"customer_id": str(i), "age": [i]} for i in range(4)]
    assert "limit is 3 (custseg serve --max-batch)" in _too_large_msg(
        _post(limited_server, {"customers": bad}))
    # nine lines in one request (three customers, three each): over --max-lines 8
    small = {"customers": [{"customer_id": c} for c in "abc"], "transactions": [{"x": [1]}] * 9}
    assert "9 transaction lines" in _too_large_msg(_post(limited_server, small))
    # four lines of one customer: over --max-lines-per-customer 3, the customer named
    msg = _too_large_msg(_post(limited_server, {"customers": [_customer("a")],
                                                "transactions": _lines(["a"], 4)}))
    assert "customer 'a' has 4 transaction lines" in msg and "per customer" in msg
    # two customers with three lines each: within every limit, scored
    r = _post(limited_server, {"customers": [_customer(c) for c in ("a", "b")],
                               "transactions": _lines(["a", "b"], 3)})
    assert r.status_code == 200, r.text
    assert sorted(x["customer_id"] for x in r.json()["results"]) == ["a", "b"]


def _blocking_app(mall_model: Path, timeout_s: float):
    """An app whose batch scoring blocks until released (at most 10 s), and its release."""
    import threading

    app = create_app(mall_model, timeout_s=timeout_s)
    service = app.gate.__self__
    release = threading.Event()
    real = service.slow

    def slow(body):
        release.wait(10)
        return real(body)

    service.slow = slow
    return app, release


@pytest.mark.realdata
def test_scoring_past_the_time_limit_is_503(mall) -> None:
    app, release = _blocking_app(mall[0], timeout_s=0.2)
    try:
        with _test_client(app) as c:
            r = c.post("/v1/score", json={"customers": mall[1][:20]})
            assert r.status_code == 503, r.text
            (item,) = r.json()["detail"]
            assert item["type"] == "timeout" and "--timeout" in item["msg"]
            # the single-customer fast path is not held up by the blocked thread
            assert c.post("/v1/score", json={"customers": mall[1][:1]}).status_code == 200
    finally:
        release.set()


@pytest.mark.realdata
def test_time_limit_from_the_command_line(mall, tmp_path: Path) -> None:
    # 1 ms cannot hold batch scoring (pandas and DuckDB take tens of ms), the fast path needs
    # no scoring thread
    proc, base = _start_server(mall[0], tmp_path / "server.log", "--timeout", "0.001")
    try:
        r = _post(base, {"customers": mall[1][:50]})
        assert r.status_code == 503 and "0.001 s" in r.json()["detail"][0]["msg"], r.text
        assert _post(base, {"customers": mall[1][:1]}).status_code == 200
    finally:
        _stop(proc)


@pytest.mark.realdata
def test_nan_null_and_missing_texts_are_all_missing(mall) -> None:
    """JSON NaN, "NaN", null, "" (and the readers' other missing texts) give one answer, the
    one batch scoring gives for a CSV with those cells empty."""
    model = mall[0]
    base = {"CustomerID": "m1", "Gender": None, "Age": None, "Annual Income (k$)": 70,
            "Spending Score (1-100)": 80}
    want = score(model, records_frame([base])).assignments.iloc[0]
    bodies = [
        b'{"customers": [{"CustomerID": "m1", "Gender": NaN, "Age": NaN, '
        b'"Annual Income (k$)": 70, "Spending Score (1-100)": 80}]}',
    ]
    for missing in ("NaN", "nan", "", "NA", "null", None):
        rec = {**base, "Gender": missing, "Age": missing}
        bodies.append(json.dumps({"customers": [rec]}).encode())
        # the same in a batch (the slow path), next to a customer with values
        bodies.append(json.dumps({"customers": [rec, mall[1][0]]}).encode())
    with _test_client(create_app(model)) as c:
        for content in bodies:
            r = c.post("/v1/score", content=content,
                       headers={"Content-Type": "application/json"})
            assert r.status_code == 200, (content, r.text)
            row = next(x for x in r.json()["results"] if x["customer_id"] == "m1")
            assert (row["segment_id"], row["distance"], row["confidence"]) == \
                (want["segment_id"], want["distance"], want["confidence"]), content


def test_all_customers_excluded_gives_their_reasons_inline(tx_server) -> None:
    """No "see excluded.csv" (an API client has no such file): each customer's reason."""
    lines = _lines(["r1"], 2)
    for line in lines:
        line["amount"] = "-10.5"  # returns only: no purchase
    r = _post(tx_server, {"customers": [_customer("r1"), _customer("r2")],
                          "transactions": lines})
    assert r.status_code == 200, r.text
    assert "excluded.csv" not in r.text
    body = r.json()
    assert body["results"] == []
    reasons = {x["customer_id"]: x["reason"] for x in body["excluded"]
               if x["source"] == "customer"}
    assert "no purchases" in reasons["r1"] and "no transactions" in reasons["r2"], body


@pytest.mark.realdata
def test_large_bodies_are_parsed_off_the_event_loop_the_same_way(mall) -> None:
    """Bodies over 64 KiB are parsed and validated in a scoring thread: same answers."""
    records = [{**r, "CustomerID": f"{r['CustomerID']}-{i}"} for i in range(5) for r in mall[1]]
    body = json.dumps({"customers": records}).encode()
    assert len(body) > 64 * 1024
    with _test_client(create_app(mall[0])) as c:
        r = c.post("/v1/score", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 200 and len(r.json()["results"]) == 1000, r.text[:300]
        records[700]["Age"] = [1]
        r = c.post("/v1/score", json={"customers": records})
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == "customers[700].Age"


def test_kept_duckdb_connections_give_the_same_answers(synth_tx_model, synth_files) -> None:
    """The scoring threads keep one DuckDB connection each: request after request (different
    customers, the same ones again) answers as score() does."""
    bodies = [_tx_body(synth_files, 3), _tx_body(synth_files, 7), _tx_body(synth_files, 3)]
    with _test_client(create_app(synth_tx_model)) as c:
        for body in bodies:
            r = c.post("/v1/score", json=body)
            assert r.status_code == 200, r.text
            got = _assignments(r.json()["results"])
            want = score(synth_tx_model, records_frame(body["customers"]),
                         records_frame(body["transactions"])).assignments
            want = want.set_index("customer_id")
            assert got.index.tolist() == want.index.tolist()
            assert np.array_equal(got["distance"].to_numpy(), want["distance"].to_numpy())


def test_serve_cli_rejects_a_limit_below_one(tmp_path: Path) -> None:
    for flag, value in (("--max-lines", "0"), ("--timeout", "-1"), ("--workers", "0"),
                        ("--max-body-bytes", "0")):
        r = runner.invoke(cli_app, ["serve", "--model", str(tmp_path), flag, value])
        assert r.exit_code == 2 and flag in r.stderr, (flag, r.stderr)


# -------------------------------------------------------------------------------- the command


def test_serve_cli_bad_model_exits_2(tmp_path: Path) -> None:
    r = runner.invoke(cli_app, ["serve", "--model", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "manifest.json" in r.stderr


def test_serve_cli_port_in_use_exits_2(synth_customers) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = runner.invoke(cli_app, ["serve", "-m", str(synth_customers[0]), "--port", str(port)])
    assert r.exit_code == 2 and "cannot listen" in r.stderr


def test_serve_cli_without_fastapi_names_the_extra(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)
    r = runner.invoke(cli_app, ["serve", "--model", str(tmp_path)])
    assert r.exit_code == 2 and 'pip install "custseg[serve]"' in r.stderr
