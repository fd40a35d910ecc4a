"""What every HTTP request passes before it reaches a route: size, token, rate.

A pure ASGI middleware, so a refused request costs no parsing:

* the body may not exceed ``max_body`` bytes (``API_005``, 413), by its
  ``Content-Length`` or, without one, as it streams in;
* a bearer token, compared in constant time (``hmac.compare_digest``), on
  every route but ``GET /api/v1/health`` (``API_003``, 401). On the Unix
  socket in the data dir it is the data dir's own token (``api_token``, 0600),
  which local clients read and the engine's agents cannot;
* a token bucket per caller (``API_004``, 429 with ``Retry-After``).

The caller's identity, ``api:<8 hex digits of the token's SHA-256>`` (never
the token), or ``operator`` on the socket, is put in ``scope["state"]["actor"]``;
the engine records it as the actor of what the call changes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from engine.api.http.errors import error_body, status_for
from engine.errors import ErrorCode, SymbiError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ANONYMOUS = {("GET", "/api/v1/health")}


def token_id(token: str) -> str:
    """What the audit trail names a token by: never the token itself."""
    return "api:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:8]


def check_token(presented: str | None, expected: str) -> bool:
    """Constant-time comparison (the one every request goes through)."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


@dataclass
class Bucket:
    tokens: float
    at: float


@dataclass
class RateLimiter:
    """A token bucket per caller: ``rate`` requests a second, bursts of ``burst``."""

    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    buckets: dict[str, Bucket] = field(default_factory=dict)

    def allow(self, caller: str) -> float:
        """0 if the request may go on, else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        bucket = self.buckets.get(caller)
        if bucket is None:
            bucket = self.buckets[caller] = Bucket(float(self.burst), now)
            if len(self.buckets) > 10_000:  # forget the oldest callers rather than grow without bound
                for key in list(self.buckets)[:1_000]:
                    del self.buckets[key]
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


async def send_error(send: Send, error: SymbiError, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(error_body(error)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status_for(error.code),
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """The middleware (see the module docstring). ``token`` None: no token is asked (the socket)."""

    def __init__(
        self, app: ASGIApp, *, token: str | None, max_body: int, limiter: RateLimiter, actor: str | None = None
    ) -> None:
        self.app = app
        self.token = token
        self.actor = actor or (token_id(token) if token is not None else "operator")
        self.max_body = max_body
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await send_error(send, self._too_large(length))
            return
        actor = self.actor  # no token asked (only a test's app): everyone is the configured actor
        anonymous = (scope.get("method"), scope.get("path")) in ANONYMOUS
        if self.token is not None:
            presented = _bearer(headers.get("authorization"))
            if presented is not None and check_token(presented, self.token):
                actor = self.actor
            elif not anonymous:
                await send_error(
                    send,
                    SymbiError(
                        ErrorCode.API_003,
                        "missing or wrong bearer token" if presented is None else "wrong bearer token",
                        hint="send 'Authorization: Bearer <token>' with the token in SYMBI_API_TOKEN "
                        "(or the data dir's api_token file)",
                    ),
                    [(b"www-authenticate", b'Bearer realm="symbi"')],
                )
                return
            else:
                actor = "anonymous"
        caller = actor if actor != "anonymous" else _client(scope)
        wait = self.limiter.allow(caller)
        if wait > 0:
            await send_error(
                send,
                SymbiError(
                    ErrorCode.API_004,
                    "too many requests",
                    offending=f"{self.limiter.rate:g}/s",
                    hint=f"retry in {wait:.2f}s (http_api.rate_limit)",
                ),
                [(b"retry-after", str(max(1, round(wait))).encode())],
            )
            return
        scope.setdefault("state", {})["actor"] = actor
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await send_error(send, self._too_large(f"more than {self.max_body}"))

    def _too_large(self, length: str) -> SymbiError:
        return SymbiError(
            ErrorCode.API_005,
            "request body too large",
            offending=f"{length} bytes",
            hint=f"send at most {self.max_body} bytes (http_api.max_body_size)",
        )


class _BodyTooLarge(Exception):
    pass


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"ip:{client[0]}" if client else "ip:local"
