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

Errors: a body that is not valid JSON or does not fit the schema, and input the scorer rejects
(an unparseable number, a missing column, duplicate ids ...), give 422 with
``{"detail": [{"loc": [...], "field": "customers[0].Age", "msg": ..., "type": ...}]}``; an empty
``customers`` list is a 422 too. More than ``max_batch`` customers (or a body larger than
``max_body_bytes``) gives 413. With an API key set, every endpoint except ``/healthz``,
``/docs`` and ``/openapi.json`` needs the header ``X-API-Key`` (compared in constant time),
otherwise 401. Anything unexpected is logged and answered with a generic 500.

Scoring goes through :func:`custseg.score.score` with tables built by
:func:`custseg.score.records_frame`, so features are built exactly as in batch scoring. A
single-customer request without transactions on a customers-only model takes a fast path
(:class:`custseg.fastscore.FastScorer`, which applies the same feature rules to plain values in
pure Python and NumPy) and falls back to :func:`~custseg.score.score` for anything it does not
handle; ``tests/test_serve.py`` and ``tests/test_parity.py`` check that both give identical
results. Such requests are answered by a fast lane in front of FastAPI's middleware and routing
(:class:`ScoringApp`), with the same parsing, key check and response as the route, because
FastAPI's routing and dependency machinery costs more than the scoring itself (p99 < 20 ms at
16 concurrent clients on a 2-core machine needs well under 1 ms of CPU per request).

This module is the HTTP layer only: request and response models, the app and its routes, the
server. It never imports Spark.

:func:`serve` runs one uvicorn worker (``log_level="warning"``, no access log) with native
thread pools limited to one thread.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
import socket
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import pandas as pd

from custseg._version import __version__
from custseg.errors import CustsegError, InputError

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
        WithJsonSchema,
        field_validator,
    )
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise CustsegError(f"the API server needs FastAPI and uvicorn ({exc.name} is not "
                       'installed): pip install "custseg[serve]"') from None

from custseg.fastscore import Fallback, FastScorer
from custseg.score import LoadedModel, records_frame, score

log = logging.getLogger("custseg.serve")

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
API_KEY_HEADER = "X-API-Key"


def _cell(v: Any) -> Any:
    if v is None or isinstance(v, str | int | float | bool):
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


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(status_code=413, content={"detail": [
        {"loc": ["body"], "field": "body", "type": "too_large",
         "msg": f"request body larger than {limit} bytes"}]})


class _BodyLimit:
    """ASGI middleware: 413 for a request body over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: Any, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _declared_length(scope) > self.limit:
            await _too_large(self.limit)(scope, receive, send)
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


class ScoringApp(FastAPI):
    """The FastAPI app with a fast lane in front of its middleware and routing.

    A ``POST /v1/score`` that the fast path answers (the right key, JSON, a valid body, one
    customer, no transactions, plain values) is answered here: ``lane(headers, body)`` returns
    the very payload the FastAPI route would return, or None, and then the request, body
    included, goes through FastAPI unchanged. FastAPI's middleware, routing and dependency
    machinery costs more than the fast path itself.
    """

    lane: Any = None
    lane_limit: int = DEFAULT_MAX_BODY_BYTES

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:  # type: ignore[override]
        if self.lane is None or scope["type"] != "http" or scope["method"] != "POST" \
                or scope["path"] != "/v1/score" or _declared_length(scope) > self.lane_limit:
            await super().__call__(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.lane_limit:
                await _too_large(self.lane_limit)(scope, receive, send)
                return
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        response = None
        try:
            payload = self.lane(dict(scope.get("headers") or ()), body)
            if payload is not None:
                response = JSONResponse(payload)
        except Exception:  # a bug: let the app answer (and report) it
            log.exception("fast lane failed; answering through the app")
        if response is not None:
            await response(scope, receive, send)
            return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await super().__call__(scope, replay, send)


def _json_content_type(value: bytes | None) -> bool:
    """A Content-Type FastAPI parses as JSON (application/json or application/*+json)."""
    if not value:
        return False
    kind = value.split(b";", 1)[0].strip().lower()
    return kind == b"application/json" or (kind.startswith(b"application/")
                                           and kind.endswith(b"+json"))


class _Service:
    """What the routes and the fast lane share: the model, its segments' actions, the fast
    scorer (or None), the limits and the key check."""

    def __init__(self, lm: LoadedModel, *, api_key: str | None, max_batch: int,
                 fast_path: bool) -> None:
        self.lm = lm
        self.max_batch = max_batch
        self.inputs = sorted(lm.manifest.get("training", {}).get("inputs", {}))
        self.needs_tx = "transactions" in self.inputs
        self.fast = FastScorer.for_model(lm) if fast_path else None
        self.recs = {int(s["segment_id"]): _recommendations(s) for s in lm.segments}
        self.expected_key = api_key.encode("utf-8") if api_key is not None else None

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

    def lane(self, headers: dict[bytes, bytes], raw: bytes) -> dict | None:
        """The fast lane of :class:`ScoringApp`: FastAPI's parsing, then fast_answer."""
        if not self.key_ok(headers.get(API_KEY_HEADER.lower().encode())) \
                or not _json_content_type(headers.get(b"content-type")) or not raw:
            return None
        try:
            body = ScoreRequest.model_validate(json.loads(raw))
        except (ValueError, TypeError, RecursionError):  # pydantic's ValidationError included
            return None
        if len(body.customers) > self.max_batch:
            return None
        return self.fast_answer(body)

    def slow(self, body: ScoreRequest) -> dict:
        """Batch scoring (:func:`~custseg.score.score`) of the request, as a response body."""
        customers = records_frame(body.customers)
        transactions = records_frame(body.transactions) if body.transactions is not None \
            else None
        as_of = date.fromisoformat(body.as_of) if body.as_of else None
        result = score(self.lm, customers, transactions, as_of=as_of)
        a = result.assignments
        results = [
            {"customer_id": str(cid), "segment_id": int(sid), "segment_name": str(name),
             "distance": _finite(dist), "confidence": _finite(conf),
             "recommendations": self.recs.get(int(sid), [])}
            for cid, sid, name, dist, conf in zip(a["customer_id"], a["segment_id"],
                                                  a["segment_name"], a["distance"],
                                                  a["confidence"], strict=True)]
        ex = result.excluded
        excluded = [
            {"customer_id": None if pd.isna(cid) else str(cid), "reason": str(reason),
             "source": None if pd.isna(src) else str(src),
             "row": None if pd.isna(row) else int(row)}
            for src, row, cid, reason in zip(ex["source"], ex["row"], ex["customer_id"],
                                             ex["reason"], strict=True)]
        return {"results": results, "excluded": excluded,
                "as_of": result.as_of.isoformat() if result.as_of else None}


def create_app(model_dir: str | Path, *, api_key: str | None = None, max_batch: int = 1000,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, fast_path: bool = True,
               ) -> ScoringApp:
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
        Most customers per scoring request (413 above it).
    max_body_bytes : int
        Largest request body (413 above it).
    fast_path : bool
        Use :class:`~custseg.fastscore.FastScorer` for single-customer requests when the model
        allows it.

    Examples
    --------
    >>> from fastapi.testclient import TestClient              # doctest: +SKIP
    >>> client = TestClient(create_app("run/model"))
    >>> client.post("/v1/score", json={"customers": [{"CustomerID": "a", "Age": 30}]}).json()
    """
    _check_settings(api_key, max_batch)
    lm = LoadedModel.load(model_dir)
    lm.config()  # a manifest with an invalid config fails now, not on the first request
    service = _Service(lm, api_key=api_key, max_batch=max_batch, fast_path=fast_path)
    app = ScoringApp(
        title="custseg scoring API", version=__version__,
        description="Assign customers to the segments of a saved custseg model. With an API "
        f"key set, send it in the `{API_KEY_HEADER}` header (everything except /healthz, "
        "/docs and /openapi.json needs it).")
    app.state.model = lm
    app.state.fast_scorer = service.fast
    app.add_middleware(_BodyLimit, limit=max_body_bytes)
    app.lane = service.lane if service.fast is not None else None
    app.lane_limit = max_body_bytes
    _add_error_handlers(app)
    _add_routes(app, service, _key_dependencies(service, api_key))
    return app


def _check_settings(api_key: str | None, max_batch: int) -> None:
    if api_key is not None and api_key == "":
        raise CustsegError("the API key must not be empty")
    if max_batch < 1:
        raise CustsegError(f"max_batch must be at least 1, got {max_batch}")


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


def _add_error_handlers(app: FastAPI) -> None:
    """422 naming the field for invalid bodies, the status for HTTP errors, a generic 500."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        items = []
        for e in exc.errors():
            loc = [p if isinstance(p, int) else str(p) for p in e.get("loc", ())]
            msg = str(e.get("msg", "invalid"))
            ctx = e.get("ctx") or {}
            if e.get("type") == "json_invalid":
                at = loc[1] if len(loc) > 1 else None
                msg = f"body is not valid JSON: {ctx.get('error', msg)}" + \
                    (f" (at character {at})" if isinstance(at, int) else "")
                loc = ["body"]
            items.append({"loc": loc, "field": _field(loc), "msg": msg,
                          "type": str(e.get("type", "invalid"))})
        return JSONResponse(status_code=422, content={"detail": items})

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
              413: {"model": ErrorResponse, "description": "batch or body too large"},
              422: {"model": ErrorResponse, "description": "invalid body or input"}}
    k = int(service.lm.model.k)
    segments_payload = service.segments_payload()
    max_batch = service.max_batch

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
        n = len(body.customers)
        if n > max_batch:
            return JSONResponse(status_code=413, content={"detail": [
                {"loc": ["body", "customers"], "field": "customers", "type": "too_large",
                 "msg": f"{n} customers in one request; the limit is {max_batch}"}]})
        if service.needs_tx and not body.transactions:
            return _error(422, ["body", "transactions"], "this model was fitted on a "
                          "transactions log: give the customers' transactions", "missing")
        payload = service.fast_answer(body)
        if payload is not None:
            return JSONResponse(payload)
        try:
            payload = await run_in_threadpool(service.slow, body)
        except CustsegError as exc:
            return _input_error(exc)
        return JSONResponse(payload)


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


def serve(model_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8000,
          api_key: str | None = None, max_batch: int = 1000,
          log_level: str = "warning", on_ready: Any = None) -> None:
    """Load the model, bind ``host:port`` and serve until interrupted (one uvicorn worker).

    The model is loaded and the port bound before the server starts, so a bad model folder
    (:class:`~custseg.errors.ModelFormatError`) or a port in use fails with a clear error.
    Native thread pools (BLAS, OpenMP) are limited to one thread while serving.
    """
    import uvicorn
    from threadpoolctl import threadpool_limits

    app = create_app(model_dir, api_key=api_key, max_batch=max_batch)
    sock = _listen(host, port)
    if on_ready is not None:
        on_ready(sock.getsockname())
    config = uvicorn.Config(app, log_level=log_level, access_log=False, workers=1,
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    with threadpool_limits(limits=1):
        server.run(sockets=[sock])


__all__ = ["create_app", "serve", "FastScorer", "ScoringApp", "ScoreRequest", "ScoreResponse"]
