"""Server-sent events: the engine's event stream and the audit tail, resumable.

``GET /api/v1/engine/events/stream?after=N&types=A,B`` sends each
:class:`~engine.api.types.EventBatch` as one SSE message whose ``id`` is the
batch's position; a client that reconnects with ``Last-Event-ID`` (or
``after``) gets what it missed and nothing twice, or ``missed > 0`` if it fell
further behind than the engine keeps. ``GET /api/v1/engine/audit/follow`` sends
each new audit record, ``id`` = its seq. A comment line every
``KEEPALIVE`` seconds keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from engine.api.codec import encode
from engine.api.http.calls import PREFIX
from engine.api.types import AuditFilter
from engine.errors import ErrorCode, SymbiError

if TYPE_CHECKING:
    from engine.api.http.app import Engines

KEEPALIVE = 15.0
SSE_HEADERS = {"cache-control": "no-store", "x-accel-buffering": "no"}


def _int(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise SymbiError(ErrorCode.API_001, f"{name} must be an integer", offending=value) from None


def _types(value: str | None) -> tuple[str, ...]:
    return tuple(t.strip() for t in (value or "").split(",") if t.strip())


async def _with_keepalive(source: AsyncIterator[str], request: Request) -> AsyncGenerator[str, None]:
    """``source``'s messages, with a keep-alive comment when it is quiet; stops when the client goes."""
    pending: asyncio.Task[str] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(source))
            done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE)
            if await request.is_disconnected():
                return
            if not done:
                yield ": keep-alive\n\n"
                continue
            try:
                message = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield message
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending  # the generator must be idle before it can be closed
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()


def add_routes(api: FastAPI, engines: Engines) -> None:
    @api.get(f"{PREFIX}/events/stream", tags=["engine: events"], summary="events.stream (server-sent events)")
    async def events_stream(request: Request, after: str | None = None, types: str | None = None) -> StreamingResponse:
        position = _int(request.headers.get("last-event-id") or after, "after")
        engine = engines.of(request)
        head = await engine.events.position()
        if position is not None and not 0 <= position <= head:  # refused before the stream starts
            raise SymbiError(
                ErrorCode.API_002,
                f"event position {position} is not one of this engine run (it has published {head})",
                offending=position,
                hint="the engine restarted: reload what you show and stream from now on (no after)",
            )
        batches = engine.events.stream(after=head if position is None else position, types=_types(types))

        async def messages() -> AsyncGenerator[str, None]:
            yield f": open at {head if position is None else position}\n\n"
            async for batch in batches:
                yield _sse(batch.position, encode(batch))

        return StreamingResponse(
            _with_keepalive(messages(), request), media_type="text/event-stream", headers=SSE_HEADERS
        )

    @api.get(f"{PREFIX}/audit/follow", tags=["engine: audit"], summary="audit.follow (server-sent events)")
    async def audit_follow(
        request: Request,
        after_seq: str | None = None,
        types: str | None = None,
        agent: str | None = None,
        actor: str | None = None,
        decision: str | None = None,
        text: str | None = None,
    ) -> StreamingResponse:
        start = _int(request.headers.get("last-event-id") or after_seq, "after_seq") or 0
        flt = AuditFilter.build(types=_types(types) or None, agent=agent, actor=actor, decision=decision, text=text)
        records = engines.of(request).audit.follow(flt, after_seq=start)

        async def messages() -> AsyncGenerator[str, None]:
            async for record in records:
                yield _sse(record.seq, encode(record))

        return StreamingResponse(
            _with_keepalive(messages(), request), media_type="text/event-stream", headers=SSE_HEADERS
        )


def _sse(ident: int, data: Any) -> str:
    return f"id: {ident}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
