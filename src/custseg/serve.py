"""REST API for scoring: a FastAPI app around a saved model.

Endpoints (OpenAPI docs at ``/docs``, the schema at ``/openapi.json``):

``GET /healthz``
    ``{"status": "ok", ...}`` once the model is loaded. Never needs the API key.
``GET /v1/segments``
    The model's segments: id, name, size, share, profile (description and evidence) and
    recommended actions, as in the model manifest.
``POST /v1/score``
    ``{"customers": [{...}, ...], "transactions": [{...}, ...] | null, "as_of": "YYYY-MM-DD" | null}``
    with the same fields as the customers file (and transactions log) the model was fitted on.
    Answers ``{"results": [...], "excluded": [...], "as_of": ...}``: per scored customer the
    segment id and name, the distance to its centroid, the confidence (``1 - d1/d2``) and the
    segment's recommended actions; per customer or row that could not be scored, the reason.
    Results are ordered by customer id.

Values are read like CSV cells: null, JSON ``NaN`` and the texts the file readers take for
missing (``""``, ``"NaN"``, ``"NA"``, ``"null"`` ...; :data:`custseg.io.readers.NA_VALUES`) are
all missing.

Errors: a body that is not valid JSON or does not fit the schema, and input the scorer rejects
(an unparseable number, a missing column, duplicate ids ...), give 422 with
``{"detail": [{"loc": [...], "field": "customers[0].Age", "msg": ..., "type": ...}]}``; an empty
``customers`` list is a 422 too. With an API key set, every endpoint except ``/healthz``,
``/docs`` and ``/openapi.json`` needs the header ``X-API-Key`` (compared in constant time),
otherwise 401. Anything unexpected is logged and answered with a generic 500. When every
customer of a request is excluded, the answer is 200 with no results and each one's reason.

Limits (:class:`Limits`, each a ``custseg serve`` option): a body over ``max_body_bytes``
(16 MiB) is a 413 on its ``Content-Length`` before it is read, or as soon as the streamed body
passes the limit, and is never parsed; more than ``max_batch`` customers (1000), ``max_lines``
transaction lines (50,000) or ``max_lines_per_customer`` lines of one customer (10,000) is a
413 after ``json.loads`` and before validation; scoring that takes longer than ``timeout_s``
(10 s) is a 503. The key is checked before the body is read.

``POST /v1/score`` is answered by a gate in front of FastAPI's middleware and routing
(:class:`ScoringApp`): it bounds the request as above, parses the JSON once, validates it with
the same model as the route (:class:`ScoreRequest`) and scores; bodies it cannot read as a JSON
object go through FastAPI, whose route documents the endpoint and answers the same way.
A single-customer request without transactions on a customers-only model takes the fast path
(:class:`custseg.fastscore.FastScorer`: the same feature rules on plain values in pure Python
and NumPy, well under a millisecond); anything else goes through :func:`custseg.score.score`
with tables built by :func:`custseg.score.records_frame` (pandas and DuckDB, tens of
milliseconds however small the request), in a small thread pool off the event loop.
``tests/test_serve.py`` and ``tests/test_parity.py`` check that both paths give identical
results.

This module is the HTTP layer only: request and response models, the app and its routes, the
server. It never imports Spark.

:func:`serve` runs uvicorn (``log_level="warning"``, no access log) with one worker process
or several (``workers``, uvicorn's process manager on one socket), native thread pools limited
to one thread.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import math
import re
import socket
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import pandas as pd

from custseg._version import __version__
from custseg.errors import CustsegError, InputError
from custseg.io.readers import NA_VALUES
from custseg.ledger import Ledger

try:
    from fastapi import Depends, FastAPI, HTTPException, Request, Security
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from fastapi.security import APIKeyHeader
    from pydantic import (
        BaseModel,
        ConfigDict,
        Field,
        PlainValidator,
        ValidationError,
        WithJsonSchema,
        field_validator,
    )
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise CustsegError(f"the API server needs FastAPI and uvicorn ({exc.name} is not "
                       'installed): pip install "custseg[serve]"') from None

from custseg.fastscore import Fallback, FastScorer
from custseg.features import keep_connection
from custseg.pipeline import prepare_data
from custseg.roles import transaction_roles
from custseg.score import LoadedModel, records_frame, score
from custseg.value import VALUE_COLUMNS

log = logging.getLogger("custseg.serve")

# the limits per request (custseg serve --max-body-bytes, --max-batch, --max-lines,
# --max-lines-per-customer, --timeout): a request within them is scored in about a second or
# less on one core (16 MiB holds ~90,000 transaction lines of eight columns)
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_BATCH = 1000
DEFAULT_MAX_LINES = 50_000
DEFAULT_MAX_LINES_PER_CUSTOMER = 10_000
DEFAULT_TIMEOUT_S = 10.0
SCORING_THREADS = 2  # batch scorings at once per worker process (pandas holds the GIL)
PARSE_IN_LOOP_BYTES = 64 * 1024  # larger bodies are parsed in a scoring thread
API_KEY_HEADER = "X-API-Key"


# the texts a CSV cell is read as missing by (custseg.io.readers), here for JSON strings too
_MISSING_TEXT = frozenset(NA_VALUES)


def _cell(v: Any) -> Any:
    """A JSON value read like a CSV cell: null, JSON ``NaN`` and the texts the file readers
    take for missing (``""``, ``"NaN"``, ``"NA"``, ``"null"`` ...) are all missing (None)."""
    if isinstance(v, str):
        return None if v in _MISSING_TEXT else v
    if isinstance(v, float) and math.isnan(v):
        return None
    if v is None or isinstance(v, int | float | bool):
        return v
    raise ValueError("expected text, a number, true/false or null (a value like a CSV cell)")


Cell = Annotated[str | int | float | bool | None, PlainValidator(_cell), WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]})]


# ------------------------------------------------------------------------------ request/response


class ScoreRequest(BaseModel):
    """Customers to score (fields as in the customers file), optionally with transactions."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "customers": [{"CustomerID": "c1", "Gender": "Female", "Age": 31,
                       "Annual Income (k$)": 70, "Spending Score (1-100)": 80}],
    }]})

    customers: list[dict[str, Cell]] = Field(
        ..., min_length=1,
        description="one record per customer, with the columns of the customers file the model "
        "was fitted on; values are read like CSV cells (numbers may be given as numbers or text)")
    transactions: list[dict[str, Cell]] | None = Field(
        None, description="transaction lines of these customers (required when the model was "
        "fitted on a transactions log), with the columns of that log")
    as_of: str | None = Field(
        None, description="as-of date YYYY-MM-DD for the features (default: the last date in "
        "the data, as in batch scoring)", examples=["2025-01-31"])

    @field_validator("as_of")
    @classmethod
    def _iso_date(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
                    raise ValueError
                date.fromisoformat(v)
            except ValueError:
                raise ValueError(f"expected a date as YYYY-MM-DD, got {v!r}") from None
        return v


class Recommendation(BaseModel):
    model_config = ConfigDict(extra="allow")
    theme: str | None = None
    label: str | None = None
    action: str


class Assignment(BaseModel):
    customer_id: str
    segment_id: int
    segment_name: str
    distance: float | None = Field(description="Euclidean distance to the segment's centroid "
                                   "in the model's (scaled) feature space")
    confidence: float | None = Field(description="1 - d1/d2 (nearest vs second-nearest "
                                     "centroid): 0 on a boundary, towards 1 deep inside")
    recommendations: list[Recommendation]


class Exclusion(BaseModel):
    customer_id: str | None
    reason: str
    source: str | None = Field(None, description="customers, transactions or customer")
    row: int | None = Field(None, description="1-based row in that list, when known")


class ScoreResponse(BaseModel):
    results: list[Assignment]
    excluded: list[Exclusion]
    as_of: str | None = None


class Segment(BaseModel):
    model_config = ConfigDict(extra="allow")
    segment_id: int
    name: str
    size: int | None = None
    share: float | None = None
    description: str | None = None
    evidence: list[str] = []
    recommendations: list[Recommendation] = []


class SegmentsResponse(BaseModel):
    k: int
    segments: list[Segment]
    features: dict[str, Any]
    trained_on: list[str]
    as_of: str | None = None


class ErrorItem(BaseModel):
    loc: list[str | int]
    field: str
    msg: str
    type: str


class ErrorResponse(BaseModel):
    detail: list[ErrorItem] | str


# ------------------------------------------------------------------------------------ the app


def _finite(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _recommendations(seg: dict) -> list[dict]:
    out = []
    for r in seg.get("recommendations") or []:
        out.append(dict(r) if isinstance(r, dict) else {"action": str(r)})
    return out


def _field(loc: list) -> str:
    """("body", "customers", 0, "Age") -> "customers[0].Age"."""
    text = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "body"


def _error(status: int, loc: list, msg: str, kind: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": [
        {"loc": loc, "field": _field(loc), "msg": msg, "type": kind}]})


def _input_error(exc: CustsegError) -> JSONResponse:
    """A scoring error as a 422 naming the list, record and column."""
    if not isinstance(exc, InputError):
        return _error(422, ["body"], str(exc), type(exc).__name__)
    source = next((s for s in ("transactions", "customers") if s in str(exc.file or "")),
                  None)
    loc: list = ["body", source] if source else ["body"]
    if source and exc.row is not None:
        loc.append(int(exc.row) - 1)
    if source and exc.column is not None:
        loc.append(str(exc.column))
    msg = str(InputError(exc.message, file=source, column=exc.column, row=exc.row,
                         value=exc.value))
    return _error(422, loc, msg, "input_error")


def _too_large(msg: str, field: str = "body") -> JSONResponse:
    loc = ["body"] if field == "body" else ["body", field]
    return JSONResponse(status_code=413, content={"detail": [
        {"loc": loc, "field": field, "type": "too_large", "msg": msg}]})


def _body_too_large(limit: int) -> JSONResponse:
    return _too_large(f"request body larger than {limit} bytes (the server's limit, "
                      "custseg serve --max-body-bytes)")


class _BodyLimit:
    """ASGI middleware: 413 for a request body over ``limit`` bytes, declared or streamed
    (the routes other than ``POST /v1/score``, which :class:`ScoringApp` bounds itself)."""

    def __init__(self, app: Any, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _declared_length(scope) > self.limit:
            await _body_too_large(self.limit)(scope, receive, send)
            return
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413, f"request body larger than {self.limit} bytes")
            return message

        await self.app(scope, counted, send)


def _declared_length(scope: dict) -> int:
    for key, value in scope.get("headers") or ():
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


class _TooLarge(Exception):
    pass


async def _read_body(receive: Any, limit: int) -> bytes | None:
    """The request body, counted as it streams in (:class:`_TooLarge` past ``limit`` bytes,
    without reading the rest); None when the client went away."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


class ScoringApp(FastAPI):
    """The FastAPI app with a gate in front of its middleware and routing for ``POST /v1/score``.

    The gate (``gate(scope, receive, send, app)``, :meth:`_Service.gate`) answers 413 on the
    declared ``Content-Length`` and 401 on the key before reading the body, reads the body
    counting bytes (413 past the limit), parses the JSON once, counts customers and lines
    (413 before any validation), validates and scores. Bodies it cannot read as a JSON object
    go through FastAPI unchanged (it answers them). FastAPI's middleware, routing and
    dependency machinery costs more than the single-customer fast path itself.
    """

    gate: Any = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:  # type: ignore[override]
        if self.gate is None or scope["type"] != "http" or scope["method"] != "POST" \
                or scope["path"] != "/v1/score":
            await super().__call__(scope, receive, send)
            return
        await self.gate(scope, receive, send, super().__call__)


def _json_content_type(value: bytes | None) -> bool:
    """A Content-Type FastAPI parses as JSON (application/json or application/*+json)."""
    if not value:
        return False
    kind = value.split(b";", 1)[0].strip().lower()
    return kind == b"application/json" or (kind.startswith(b"application/")
                                           and kind.endswith(b"+json"))


@dataclass(frozen=True)
class Limits:
    """The work one scoring request may ask for (``custseg serve`` options in brackets)."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES       # --max-body-bytes, checked before parsing
    max_batch: int = DEFAULT_MAX_BATCH                 # --max-batch: customers per request
    max_lines: int = DEFAULT_MAX_LINES                 # --max-lines: transaction lines per request
    max_lines_per_customer: int = DEFAULT_MAX_LINES_PER_CUSTOMER  # --max-lines-per-customer
    timeout_s: float = DEFAULT_TIMEOUT_S               # --timeout: seconds to score a request

    def check(self) -> None:
        for name in ("max_body_bytes", "max_batch", "max_lines", "max_lines_per_customer"):
            if getattr(self, name) < 1:
                raise CustsegError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.timeout_s > 0 or not math.isfinite(self.timeout_s):
            raise CustsegError(f"timeout must be a positive number of seconds, got "
                               f"{self.timeout_s}")


_REPLAY = object()  # the gate leaves the request to FastAPI


class _Service:
    """What the routes and the gate share: the model, its segments' actions, the fast
    scorer (or None), the limits, the key check and the scoring threads."""

    def __init__(self, lm: LoadedModel, *, api_key: str | None, limits: Limits,
                 fast_path: bool) -> None:
        self.lm = lm
        self.limits = limits
        self.max_batch = limits.max_batch
        self.inputs = sorted(lm.manifest.get("training", {}).get("inputs", {}))
        self.needs_tx = "transactions" in self.inputs
        self.fast = FastScorer.for_model(lm) if fast_path else None
        self.recs = {int(s["segment_id"]): _recommendations(s) for s in lm.segments}
        self.expected_key = api_key.encode("utf-8") if api_key is not None else None
        self.tx_config = lm.config().transactions
        self._tx_ids: dict[tuple[str, ...], str | None] = {}
        # batch scoring (pandas, DuckDB) runs here, off the event loop; a request still
        # queued when its time is up is never started
        self.pool = ThreadPoolExecutor(max_workers=SCORING_THREADS,
                                       thread_name_prefix="custseg-score",
                                       initializer=keep_connection)

    def key_ok(self, given: bytes | None) -> bool:
        """Constant-time check of the X-API-Key header (raw bytes); True when no key is set."""
        if self.expected_key is None:
            return True
        return given is not None and hmac.compare_digest(given, self.expected_key)

    def segments_payload(self) -> dict:
        """The body of ``GET /v1/segments`` (built once)."""
        manifest = self.lm.manifest
        return {
            "k": int(self.lm.model.k),
            "segments": [{**{k: v for k, v in s.items() if k != "recommendations"},
                          "segment_id": int(s["segment_id"]),
                          "recommendations": self.recs[int(s["segment_id"])]}
                         for s in self.lm.segments],
            "features": {k: manifest.get("features", {}).get(k)
                         for k in ("numeric", "binary", "categorical")},
            "trained_on": self.inputs,
            "as_of": manifest.get("as_of"),
        }

    # ------------------------------------------------------------------ bounds
    def _tx_id_column(self, columns: tuple[str, ...]) -> str | None:
        """The customer id column of transaction lines with these columns (None: unknown)."""
        if columns not in self._tx_ids:
            if len(self._tx_ids) >= 64:
                self._tx_ids.clear()
            try:
                roles = transaction_roles(list(columns), self.tx_config, "transactions")
                self._tx_ids[columns] = roles.get("customer_id")
            except CustsegError:
                self._tx_ids[columns] = None
        return self._tx_ids[columns]

    def too_much(self, customers: Any, transactions: Any) -> JSONResponse | None:
        """413 when a request asks for more than the limits allow (customers per request,
        transaction lines per request and per customer), else None. Runs on the parsed JSON,
        before validation, so an oversized batch costs one ``json.loads`` and no more."""
        lim = self.limits
        if isinstance(customers, list) and len(customers) > lim.max_batch:
            return _too_large(f"{len(customers)} customers in one request; the server's limit "
                              f"is {lim.max_batch} (custseg serve --max-batch)", "customers")
        if not isinstance(transactions, list):
            return None
        if len(transactions) > lim.max_lines:
            return _too_large(f"{len(transactions)} transaction lines in one request; the "
                              f"server's limit is {lim.max_lines} (custseg serve --max-lines)",
                              "transactions")
        if len(transactions) > lim.max_lines_per_customer and isinstance(transactions[0], dict):
            col = self._tx_id_column(tuple(transactions[0]))
            if col is not None:
                counts = Counter(str(t.get(col)) for t in transactions if isinstance(t, dict))
                cid, n = counts.most_common(1)[0]
                if n > lim.max_lines_per_customer:
                    return _too_large(
                        f"customer {cid!r} has {n} transaction lines in this request; the "
                        f"server's limit is {lim.max_lines_per_customer} per customer (custseg "
                        "serve --max-lines-per-customer)", "transactions")
        return None

    # ------------------------------------------------------------------ the gate
    async def gate(self, scope: dict, receive: Any, send: Any, app: Any) -> None:
        """``POST /v1/score`` in front of FastAPI (see :class:`ScoringApp`)."""
        headers = dict(scope.get("headers") or ())
        limit = self.limits.max_body_bytes
        if _declared_length(scope) > limit:
            await _body_too_large(limit)(scope, receive, send)
            return
        if not self.key_ok(headers.get(API_KEY_HEADER.lower().encode())):
            await _no_key()(scope, receive, send)
            return
        try:
            body = await _read_body(receive, limit)
        except _TooLarge:
            await _body_too_large(limit)(scope, receive, send)
            return
        if body is None:
            return  # the client went away
        if len(body) <= PARSE_IN_LOOP_BYTES:
            parsed = self.parse(headers, body)
        else:  # a large body is parsed and validated off the event loop, which keeps serving
            parsed = await asyncio.get_running_loop().run_in_executor(
                self.pool, self.parse, headers, body)
        if parsed is _REPLAY:
            replayed = False

            async def replay() -> dict:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await app(scope, replay, send)
            return
        response = parsed if isinstance(parsed, JSONResponse) else await self.answer(parsed)
        await response(scope, receive, send)

    def parse(self, headers: dict[bytes, bytes], raw: bytes) -> Any:
        """The request (:class:`ScoreRequest`), a 413/422 response, or ``_REPLAY`` for bodies
        FastAPI should answer (not JSON, not an object: its own messages)."""
        if not _json_content_type(headers.get(b"content-type")) or not raw:
            return _REPLAY
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):
            return _REPLAY
        if not isinstance(obj, dict):
            return _REPLAY
        response = self.too_much(obj.get("customers"), obj.get("transactions"))
        if response is not None:
            return response
        try:
            return ScoreRequest.model_validate(obj)
        except ValidationError as exc:
            return JSONResponse(status_code=422, content={
                "detail": _validation_items(exc.errors(), prefix=["body"])})

    # ------------------------------------------------------------------ scoring
    async def answer(self, body: ScoreRequest) -> JSONResponse:
        """The response to a valid request: the fast path, or batch scoring in a thread
        within the time limit (503 past it)."""
        if self.needs_tx and not body.transactions:
            return _error(422, ["body", "transactions"], "this model was fitted on a "
                          "transactions log: give the customers' transactions", "missing")
        payload = self.fast_answer(body)
        if payload is not None:
            return JSONResponse(payload)
        loop = asyncio.get_running_loop()
        try:
            payload = await asyncio.wait_for(loop.run_in_executor(self.pool, self.slow, body),
                                             self.limits.timeout_s)
        except TimeoutError:
            return JSONResponse(status_code=503, headers={"Retry-After": "1"}, content={
                "detail": [{"loc": ["body"], "field": "body", "type": "timeout",
                            "msg": f"scoring this request took longer than the server's limit "
                            f"of {self.limits.timeout_s:g} s (custseg serve --timeout); send "
                            "fewer customers or transaction lines per request"}]})
        except CustsegError as exc:
            return _input_error(exc)
        return JSONResponse(payload)

    def fast_answer(self, body: ScoreRequest) -> dict | None:
        """The response of the fast path, or None when the request needs score()."""
        if self.fast is None or len(body.customers) != 1 or body.transactions is not None:
            return None
        try:
            row = self.fast.score_one(body.customers[0])
        except Fallback:
            return None
        row["recommendations"] = self.recs.get(row["segment_id"], [])
        return {"results": [row], "excluded": [], "as_of": body.as_of}

    def slow(self, body: ScoreRequest) -> dict:
        """Batch scoring (:func:`~custseg.score.score`) of the request, as a response body.

        When no customer is left to score, the answer is no results and every customer's
        reason (not the batch error, which points at an excluded.csv the client never sees).
        """
        customers = records_frame(body.customers)
        transactions = records_frame(body.transactions) if body.transactions is not None \
            else None
        as_of = date.fromisoformat(body.as_of) if body.as_of else None
        ledger = Ledger()
        try:
            result = score(self.lm, customers, transactions, as_of=as_of,
                           prepare=functools.partial(prepare_data, ledger=ledger))
        except InputError as exc:
            if not exc.message.startswith(NOTHING_LEFT):
                raise
            return {"results": [], "excluded": _exclusions(ledger.excluded_frame()),
                    "as_of": body.as_of}
        a = result.assignments
        results = [
            {"customer_id": str(cid), "segment_id": int(sid), "segment_name": str(name),
             "distance": _finite(dist), "confidence": _finite(conf),
             "recommendations": self.recs.get(int(sid), [])}
            for cid, sid, name, dist, conf in zip(a["customer_id"], a["segment_id"],
                                                  a["segment_name"], a["distance"],
                                                  a["confidence"], strict=True)]
        # what each customer is worth next (models fitted on transactions)
        for col in [c for c in VALUE_COLUMNS if c in a.columns]:
            for r, v in zip(results, a[col].to_numpy(float), strict=True):
                r[col] = _finite(v)
        return {"results": results, "excluded": _exclusions(result.excluded),
                "as_of": result.as_of.isoformat() if result.as_of else None}


NOTHING_LEFT = "no customer is left"  # features.build_features' message when all are excluded


def _exclusions(ex: pd.DataFrame) -> list[dict]:
    return [
        {"customer_id": None if pd.isna(cid) else str(cid), "reason": str(reason),
         "source": None if pd.isna(src) else str(src),
         "row": None if pd.isna(row) else int(row)}
        for src, row, cid, reason in zip(ex["source"], ex["row"], ex["customer_id"],
                                         ex["reason"], strict=True)]


def _no_key() -> JSONResponse:
    return JSONResponse(status_code=401, content={
        "detail": f"missing or invalid API key (header {API_KEY_HEADER})"})


def create_app(model_dir: str | Path, *, api_key: str | None = None,
               max_batch: int = DEFAULT_MAX_BATCH,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               max_lines: int = DEFAULT_MAX_LINES,
               max_lines_per_customer: int = DEFAULT_MAX_LINES_PER_CUSTOMER,
               timeout_s: float = DEFAULT_TIMEOUT_S, fast_path: bool = True) -> ScoringApp:
    """The scoring API for one saved model.

    Parameters
    ----------
    model_dir : path
        A ``model/`` folder written by ``custseg segment``. Loaded once, here: a bad folder
        raises :class:`~custseg.errors.ModelFormatError` before any server starts.
    api_key : str, optional
        When set, requests need the header ``X-API-Key`` with this value (401 otherwise);
        ``/healthz``, ``/docs`` and ``/openapi.json`` stay open.
    max_batch : int
        Most customers per scoring request (413 above it, before the body is validated).
    max_body_bytes : int
        Largest request body (413 above it: on ``Content-Length`` before the body is read,
        else as soon as the streamed body passes it; the body is never parsed).
    max_lines, max_lines_per_customer : int
        Most transaction lines per request, and per customer in a request (413 above them,
        before the body is validated).
    timeout_s : float
        Seconds a request may take to score (503 past it; a request still waiting for a
        scoring thread then is never started, one already running finishes in the background).
    fast_path : bool
        Use :class:`~custseg.fastscore.FastScorer` for single-customer requests when the model
        allows it.

    Examples
    --------
    >>> from fastapi.testclient import TestClient              # doctest: +SKIP
    >>> client = TestClient(create_app("run/model"))
    >>> client.post("/v1/score", json={"customers": [{"CustomerID": "a", "Age": 30}]}).json()
    """
    limits = Limits(max_body_bytes=max_body_bytes, max_batch=max_batch, max_lines=max_lines,
                    max_lines_per_customer=max_lines_per_customer, timeout_s=timeout_s)
    _check_settings(api_key, limits)
    lm = LoadedModel.load(model_dir)
    lm.config()  # a manifest with an invalid config fails now, not on the first request
    service = _Service(lm, api_key=api_key, limits=limits, fast_path=fast_path)
    app = ScoringApp(
        title="custseg scoring API", version=__version__,
        description="Assign customers to the segments of a saved custseg model. With an API "
        f"key set, send it in the `{API_KEY_HEADER}` header (everything except /healthz, "
        "/docs and /openapi.json needs it). Limits per request: a body of at most "
        f"{limits.max_body_bytes} bytes, {limits.max_batch} customers, {limits.max_lines} "
        f"transaction lines ({limits.max_lines_per_customer} per customer), "
        f"{limits.timeout_s:g} s of scoring.")
    app.state.model = lm
    app.state.fast_scorer = service.fast
    app.state.limits = limits
    app.add_middleware(_BodyLimit, limit=limits.max_body_bytes)
    app.gate = service.gate
    _add_error_handlers(app)
    _add_routes(app, service, _key_dependencies(service, api_key))
    return app


def _check_settings(api_key: str | None, limits: Limits) -> None:
    if api_key is not None and api_key == "":
        raise CustsegError("the API key must not be empty")
    limits.check()


def _key_dependencies(service: _Service, api_key: str | None) -> list[Any]:
    """The route dependency that answers 401 without the right key (none without a key)."""
    if api_key is None:
        return []
    header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                          description="the key given to `custseg serve --api-key`")

    async def require_key(request: Request, key: str | None = Security(header)) -> None:
        raw = dict(request.scope["headers"]).get(API_KEY_HEADER.lower().encode())
        if not service.key_ok(raw):
            raise HTTPException(401, f"missing or invalid API key (header {API_KEY_HEADER})")

    return [Depends(require_key)]


def _validation_items(errors: list, prefix: list | None = None) -> list[dict]:
    """pydantic's errors as ``{"loc", "field", "msg", "type"}`` items (invalid JSON named)."""
    items = []
    for e in errors:
        loc = [*(prefix or []), *(p if isinstance(p, int) else str(p) for p in e.get("loc", ()))]
        msg = str(e.get("msg", "invalid"))
        ctx = e.get("ctx") or {}
        if e.get("type") == "json_invalid":
            at = loc[1] if len(loc) > 1 else None
            msg = f"body is not valid JSON: {ctx.get('error', msg)}" + \
                (f" (at character {at})" if isinstance(at, int) else "")
            loc = ["body"]
        items.append({"loc": loc, "field": _field(loc), "msg": msg,
                      "type": str(e.get("type", "invalid"))})
    return items


def _add_error_handlers(app: FastAPI) -> None:
    """422 naming the field for invalid bodies, the status for HTTP errors, a generic 500."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _validation_items(exc.errors())})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI could not read the body (e.g. not UTF-8 JSON)
            return _error(422, ["body"], f"body is not valid JSON ({exc.detail})",
                          "json_invalid")
        return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail},
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": "internal error (logged)"})


def _add_routes(app: FastAPI, service: _Service, dependencies: list[Any]) -> None:
    """``GET /healthz``, ``GET /v1/segments`` and ``POST /v1/score``."""
    errors = {401: {"model": ErrorResponse, "description": "missing or invalid API key"},
              413: {"model": ErrorResponse, "description": "body, batch or transaction lines "
                    "over the server's limits"},
              422: {"model": ErrorResponse, "description": "invalid body or input"},
              503: {"model": ErrorResponse, "description": "scoring took longer than the "
                    "server's time limit"}}
    k = int(service.lm.model.k)
    segments_payload = service.segments_payload()

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict:
        """Liveness: the model is loaded and the server answers."""
        return {"status": "ok", "version": __version__, "k": k}

    @app.get("/v1/segments", tags=["model"], response_model=SegmentsResponse,
             dependencies=dependencies, responses={401: errors[401]})
    async def segments() -> JSONResponse:
        """The model's segments: ids, names, sizes, profiles and recommended actions."""
        return JSONResponse(segments_payload)

    @app.post("/v1/score", tags=["scoring"], response_model=ScoreResponse,
              dependencies=dependencies, responses=errors)
    async def score_customers(body: ScoreRequest) -> JSONResponse:
        """Assign customers to segments, with distance, confidence and recommended actions."""
        # the gate in front (ScoringApp) answers JSON bodies itself; this route sees the rest
        # and documents the endpoint
        response = service.too_much(body.customers, body.transactions)
        return response if response is not None else await service.answer(body)


# ------------------------------------------------------------------------------------ running


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say so (accepted sockets
    # inherit it); without it, Nagle's algorithm adds ~40 ms to every keep-alive response
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CustsegError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    sock.set_inheritable(True)
    return sock


def _worker_app(settings: dict) -> ScoringApp:
    """The app of one worker process (``workers > 1``): native thread pools at one thread."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    return create_app(**settings)


def serve(model_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8000,
          api_key: str | None = None, max_batch: int = DEFAULT_MAX_BATCH,
          max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, max_lines: int = DEFAULT_MAX_LINES,
          max_lines_per_customer: int = DEFAULT_MAX_LINES_PER_CUSTOMER,
          timeout_s: float = DEFAULT_TIMEOUT_S, workers: int = 1,
          log_level: str = "warning", on_ready: Any = None) -> None:
    """Load the model, bind ``host:port`` and serve until interrupted.

    The model is loaded and the port bound before the server starts, so a bad model folder
    (:class:`~custseg.errors.ModelFormatError`) or a port in use fails with a clear error.
    Native thread pools (BLAS, OpenMP) are limited to one thread while serving. With
    ``workers > 1``, uvicorn's process manager runs that many worker processes on the one
    socket (each loads the model; a worker that dies is restarted).
    """
    import uvicorn
    from threadpoolctl import threadpool_limits

    if workers < 1:
        raise CustsegError(f"workers must be at least 1, got {workers}")
    settings = {"model_dir": str(model_dir), "api_key": api_key, "max_batch": max_batch,
                "max_body_bytes": max_body_bytes, "max_lines": max_lines,
                "max_lines_per_customer": max_lines_per_customer, "timeout_s": timeout_s}
    app = create_app(**settings)  # in every case: a bad model fails here, before binding
    sock = _listen(host, port)
    if on_ready is not None:
        on_ready(sock.getsockname())
    common = {"log_level": log_level, "access_log": False, "timeout_graceful_shutdown": 5}
    if workers == 1:
        server = uvicorn.Server(uvicorn.Config(app, workers=1, **common))
        with threadpool_limits(limits=1):
            server.run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    del app  # each worker builds its own
    # a worker answers the supervisor's health check only once it has imported pandas,
    # scikit-learn and FastAPI (to unpickle its settings): seconds on a busy machine, more
    # than uvicorn's default wait before it kills and restarts a "hung" worker
    config = uvicorn.Config(functools.partial(_worker_app, settings), factory=True,
                            workers=workers, timeout_worker_healthcheck=30, **common)
    Multiprocess(config, sockets=[sock]).run()


__all__ = ["create_app", "serve", "FastScorer", "Limits", "ScoringApp", "ScoreRequest",
           "ScoreResponse"]
