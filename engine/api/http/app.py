"""The HTTP API as a FastAPI application over any :class:`~engine.api.Engine`.

``build_app(engine, settings)`` gives:

* the seed's endpoints (:mod:`engine.api.http.seed`), exactly as symbi-runtime names them;
* the whole engine interface, one ``POST /api/v1/engine/<group>/<method>`` per method
  (:mod:`engine.api.http.calls`), with request and response schemas in ``/openapi.json``;
* the event stream and the audit tail as server-sent events that resume from a position
  (:mod:`engine.api.http.stream`);
* Prometheus text at ``/metrics`` (:mod:`engine.api.http.prom`).

Every request first passes :class:`engine.api.http.guard.Guard` (size, token, rate). Every error is
``{"error": {"code", "message", "hint", "offending"}}`` with the status that fits its code; input
that does not fit is a 422, never a 500.
"""

from __future__ import annotations

import inspect
import logging
import typing
from dataclasses import dataclass
from typing import Any

from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.api.codec import encode
from engine.api.http import prom, seed, stream
from engine.api.http.calls import PREFIX, Call, calls
from engine.api.http.errors import error_body, status_for
from engine.api.http.guard import Guard, RateLimiter
from engine.api.interface import GROUPS, Engine
from engine.api.types import EngineInfo, SecretValue
from engine.errors import ErrorCode, SymbiError

log = logging.getLogger("symbi.http")
OPTIONAL_BODY = Body(default=None)


@dataclass(frozen=True)
class ServerSettings:
    """How the API guards itself. ``token`` None: no token is asked (only for the Unix socket)."""

    token: str | None
    actor: str | None = None  # who a caller with the token is (default: api:<token id>)
    max_body: int = 16 * 1_048_576
    rate_limit: float = 50.0  # requests a second per caller; 0 = no limit
    rate_burst: int = 200
    cors_origins: tuple[str, ...] = ()  # empty: CORS off


class RevealedSecret(BaseModel):
    value: str


class Engines:
    """The engine as each caller acts through it: the local engine records the caller as actor."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._by_actor: dict[str, Engine] = {}

    def for_actor(self, actor: str) -> Engine:
        as_actor = getattr(self.engine, "as_actor", None)
        if as_actor is None:
            return self.engine
        if actor not in self._by_actor:
            self._by_actor[actor] = as_actor(actor)
        return self._by_actor[actor]

    def of(self, request: Request) -> Engine:
        return self.for_actor(str(request.scope.get("state", {}).get("actor", "anonymous")))


def symbi_error_response(error: SymbiError) -> JSONResponse:
    return JSONResponse(error_body(error), status_code=status_for(error.code))


def build_app(engine: Engine, settings: ServerSettings) -> Any:
    """The ASGI application (FastAPI behind the guard)."""
    api = FastAPI(
        title="symbi-console engine API",
        version="1",
        description="The Symbi runtime's HTTP API: the seed's endpoints and the whole engine interface.",
        docs_url=None,
        redoc_url=None,
    )
    engines = Engines(engine)
    api.state.engines = engines

    @api.exception_handler(SymbiError)
    async def _symbi(_request: Request, exc: SymbiError) -> JSONResponse:
        return symbi_error_response(exc)

    @api.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            where, message = "body", "the request body is not valid JSON"
        else:
            where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
            message = f"{where}: {first.get('msg', 'invalid request')}"
        return symbi_error_response(
            SymbiError(
                ErrorCode.API_001,
                message,
                offending=where,
                hint="see /openapi.json for the shape of this request",
            )
        )

    @api.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = ErrorCode.API_001
        hint = "see /openapi.json for the routes"
        if exc.status_code == 404:
            return JSONResponse(
                {"error": {"code": code.value, "message": "no such route", "hint": hint, "offending": None}},
                status_code=404,
            )
        return JSONResponse(
            {"error": {"code": code.value, "message": str(exc.detail), "hint": hint, "offending": None}},
            status_code=exc.status_code,
        )

    @api.exception_handler(Exception)
    async def _crash(_request: Request, exc: Exception) -> JSONResponse:  # a bug of ours, not bad input
        log.exception("HTTP API: unexpected error")
        return JSONResponse(
            {
                "error": {
                    "code": ErrorCode.API_008.value,
                    "message": f"internal error ({type(exc).__name__})",
                    "hint": "see the engine log",
                    "offending": None,
                }
            },
            status_code=500,
        )

    @api.get(f"{PREFIX}/info", response_model=EngineInfo, tags=["engine"], summary="engine.info")
    async def info(request: Request) -> JSONResponse:
        return JSONResponse(encode(await engines.of(request).info()))

    for call in calls().values():
        if not call.streaming:
            _add_call(api, engines, call)
    seed.add_routes(api, engines)
    stream.add_routes(api, engines)
    prom.add_routes(api, engines)

    app: Any = api
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app = CORSMiddleware(app, allow_origins=list(settings.cors_origins), allow_methods=["*"], allow_headers=["*"])
    return Guard(
        app,
        token=settings.token,
        actor=settings.actor,
        max_body=settings.max_body,
        limiter=RateLimiter(settings.rate_limit, settings.rate_burst),
    )


def _schema_ok(tp: Any) -> bool:
    try:
        TypeAdapter(tp).json_schema()
    except Exception:
        return False
    return True


def _add_call(api: FastAPI, engines: Engines, call: Call) -> None:
    fields: dict[str, Any] = {}
    for param in call.params:
        annotation = param.annotation if _schema_ok(param.annotation) else Any
        fields[param.name] = (annotation, ... if param.required else param.default)
    model = create_model(
        f"{call.group}_{call.name}_args".title().replace("_", ""),
        __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
        **fields,
    )
    returns = call.returns
    response_model: Any = None
    if returns is SecretValue:
        response_model = RevealedSecret
    elif returns is not type(None) and _schema_ok(returns):
        response_model = returns

    async def endpoint(request: Request, body: Any = None) -> Response:
        raw = await request.body()
        payload = None if not raw else await request.json()
        kwargs = call.decode_args(payload)
        group = getattr(engines.of(request), call.group)
        result = await getattr(group, call.name)(**kwargs)
        if isinstance(result, SecretValue):
            return JSONResponse({"value": result.reveal()}, headers={"cache-control": "no-store"})
        return JSONResponse(encode(result))

    endpoint.__name__ = f"{call.group}_{call.name}"
    # the body's model is made at run time: FastAPI reads it (for validation and the OpenAPI
    # schema) from the signature, which must hold the class itself, not a name to resolve
    setattr(  # noqa: B010 (a function attribute mypy does not know)
        endpoint,
        "__signature__",
        inspect.Signature(
            [
                inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
                inspect.Parameter(
                    "body", inspect.Parameter.KEYWORD_ONLY, default=OPTIONAL_BODY, annotation=model | None
                ),
            ],
            return_annotation=Response,
        ),
    )
    doc = typing.cast(Any, getattr(getattr(GROUPS[call.group], call.name), "__doc__", None))
    api.add_api_route(
        call.path,
        endpoint,
        methods=["POST"],
        response_model=response_model,
        summary=f"{call.dotted}" + (" (changes engine state)" if call.kind == "mutating" else ""),
        description=doc or None,
        tags=[f"engine: {call.group}"],
        operation_id=f"{call.group}.{call.name}",
    )
