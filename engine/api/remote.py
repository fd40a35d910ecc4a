"""The engine interface over HTTP: a client for an engine in another process.

:class:`RemoteEngine` implements :class:`engine.api.Engine` with httpx, on a
URL (``symbi-console --connect URL``, token from ``SYMBI_API_TOKEN``) or on
the Unix socket of a data dir an engine holds (``symbi-console --data-dir D``
attaches; ``symbiont agents ...`` too). Every method is the
``POST /api/v1/engine/<group>/<method>`` of :mod:`engine.api.http.calls`, so
client and server share one table of names and types; errors come back as the
engine's own :class:`SymbiError` (code, message, hint).

The event stream is read as server-sent events; when the connection drops the
stream reconnects with backoff and resumes after the last position it
delivered, so nothing is lost or repeated (``missed`` says when the engine no
longer had what was missed). :attr:`RemoteEngine.connected` and the optional
``on_connection`` callback tell a client when the engine is out of reach.
Closing a remote engine closes the connection; the engine and its agents go on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any, cast

import httpx

from engine.api.codec import decode, encode
from engine.api.http.calls import PREFIX, Call, calls
from engine.api.http.errors import error_from_body
from engine.api.interface import GROUPS, Engine
from engine.api.types import AuditFilter, AuditRecord, EngineInfo, EventBatch
from engine.errors import ErrorCode, SymbiError

log = logging.getLogger("symbi.remote")
BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)


class _Group:
    def __init__(self, remote: RemoteEngine, name: str) -> None:
        self._remote = remote
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        call = calls().get(f"{self._name}.{attr}")
        if call is None:
            raise AttributeError(f"the engine interface has no {self._name}.{attr}")
        if call.streaming:
            raise AttributeError(attr)  # defined on the subclasses below

        async def invoke(*args: Any, **kwargs: Any) -> Any:
            return await self._remote._invoke(call, args, kwargs)

        invoke.__name__ = attr
        return invoke


class _Events(_Group):
    async def position(self) -> int:
        return int(await self._remote._invoke(calls()["events.position"], (), {}))

    async def stream(
        self, after: int | None = None, *, types: tuple[str, ...] = (), max_batch: int = 500
    ) -> AsyncGenerator[EventBatch, None]:
        position = after if after is not None else await self.position()
        params = {"types": ",".join(types)} if types else {}
        async for ident, data in self._remote._sse(f"{PREFIX}/events/stream", params, position):
            batch: EventBatch = decode(EventBatch, data)
            yield batch
            position = ident

    # the audit tail lives on the audit group; see _Audit


class _Audit(_Group):
    async def follow(self, flt: AuditFilter | None = None, *, after_seq: int = 0) -> AsyncGenerator[AuditRecord, None]:
        flt = flt or AuditFilter()
        params: dict[str, str] = {}
        if flt.types:
            params["types"] = ",".join(flt.types)
        for key in ("agent", "actor", "decision", "text"):
            value = getattr(flt, key)
            if value is not None:
                params[key] = str(value)
        async for _ident, data in self._remote._sse(f"{PREFIX}/audit/follow", params, after_seq):
            record: AuditRecord = decode(AuditRecord, data)
            yield record


class RemoteEngine:
    """An engine reached over HTTP (see the module docstring)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        socket_path: str | Path | None = None,
        timeout: float = 30.0,
        on_connection: Callable[[bool, str], None] | None = None,
    ) -> None:
        if (url is None) == (socket_path is None):
            raise SymbiError(ErrorCode.API_007, "give a URL or a socket path, not both", offending=url or socket_path)
        self.url = url or "http://engine"
        self.socket_path = None if socket_path is None else str(socket_path)
        if token is None and socket_path is not None:  # the data dir's token, beside its socket
            token = _read_token(Path(socket_path).parent / "api_token")
        self.token = token
        self.timeout = timeout
        self.on_connection = on_connection
        self.connected = False
        self._client: httpx.AsyncClient | None = None
        self._info: EngineInfo | None = None
        self.agents = _Group(self, "agents")
        self.resources = _Group(self, "resources")
        self.audit = _Audit(self, "audit")
        self.policies = _Group(self, "policies")
        self.secrets = _Group(self, "secrets")
        self.knowledge = _Group(self, "knowledge")
        self.tools = _Group(self, "tools")
        self.messages = _Group(self, "messages")
        self.events = _Events(self, "events")

    @property
    def where(self) -> str:
        return self.socket_path or self.url

    def _new_client(self) -> httpx.AsyncClient:
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        transport = httpx.AsyncHTTPTransport(uds=self.socket_path) if self.socket_path else None
        return httpx.AsyncClient(
            base_url=self.url, headers=headers, transport=transport, timeout=httpx.Timeout(self.timeout, connect=5.0)
        )

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = self._new_client()
        return self._client

    def _set_connected(self, up: bool, why: str = "") -> None:
        if up != self.connected:
            self.connected = up
            if self.on_connection is not None:
                self.on_connection(up, why)

    def _unreachable(self, exc: Exception) -> SymbiError:
        self._set_connected(False, str(exc) or type(exc).__name__)
        return SymbiError(
            ErrorCode.API_007,
            f"the engine at {self.where} is out of reach ({type(exc).__name__})",
            offending=self.where,
            hint="is the engine running? (symbi-console --headless); check the URL and SYMBI_API_TOKEN",
        )

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        try:
            response = await self._http().request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        self._set_connected(True)
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400:
            raise error_from_body(data, response.status_code)
        return data

    async def _invoke(self, call: Call, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        named = dict(zip((p.name for p in call.params), args, strict=False))
        named.update(kwargs)
        body = {k: encode(v) for k, v in named.items()}
        data = await self._request("POST", call.path, body)
        return call.decode_result(data)

    async def _sse(self, path: str, params: dict[str, str], position: int) -> AsyncGenerator[tuple[int, Any], None]:
        """(id, data) of each server-sent event, reconnecting with backoff and resuming after ``position``."""
        attempt = 0
        while True:
            headers = {"last-event-id": str(position)}
            try:
                async with self._http().stream(
                    "GET", path, params=params, headers=headers, timeout=httpx.Timeout(None, connect=5.0)
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        raise error_from_body(response.json(), response.status_code)
                    self._set_connected(True)
                    attempt = 0
                    ident: int | None = None
                    async for line in response.aiter_lines():
                        if line.startswith("id:"):
                            ident = int(line[3:].strip())
                        elif line.startswith("data:") and ident is not None:
                            data = json.loads(line[5:])
                            position = ident
                            yield ident, data
                            ident = None
                if self._client is None:
                    return  # closed by us
            except httpx.HTTPError as exc:
                if self._client is None:
                    return
                self._set_connected(False, str(exc) or type(exc).__name__)
            delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
            attempt += 1
            log.info("event stream from %s lost; reconnecting in %.1fs", self.where, delay)
            await asyncio.sleep(delay)

    # -- the Engine protocol's own methods -----------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._client is not None and self._info is not None

    async def open(self) -> None:
        if self.is_open:
            return
        self._info = await self.info()

    async def close(self, reason: str = "engine shutdown") -> None:
        """Disconnect (the engine goes on running)."""
        client, self._client = self._client, None
        self._info = None
        if client is not None:
            await client.aclose()

    async def info(self) -> EngineInfo:
        """The engine's own info, its mode as seen from here: ``attached`` (its socket) or ``remote``."""
        data = await self._request("GET", f"{PREFIX}/info")
        info: EngineInfo = decode(EngineInfo, data)
        return dataclasses.replace(info, mode="attached" if self.socket_path else "remote")


def _read_token(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def remote(url: str | None = None, **kwargs: Any) -> Engine:
    """A RemoteEngine typed as the interface."""
    return cast(Engine, RemoteEngine(url, **kwargs))


__all__ = ["GROUPS", "RemoteEngine", "remote"]
