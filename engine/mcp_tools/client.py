"""MCP client connections on the official ``mcp`` SDK (2.x).

Owns :class:`ServerConfig` (a stdio command with args/env, a streamable HTTP
URL, or — in tests — an in-process server object), :class:`McpConnection`
(one live session, opened and closed by its own task so anyio's cancel
scopes stay in one task) and :class:`McpClientPool` (connect with a timeout,
at most ``max_concurrent_connections`` open at once, list tools, call with a
timeout, ``tools/list_changed`` notifications forwarded to a callback).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from engine.errors import ErrorCode, SymbiError

log = logging.getLogger("symbi.mcp.client")


@dataclass
class ServerConfig:
    """One MCP server. Exactly one of ``command``, ``url`` or ``server`` (in-process object)."""

    name: str
    command: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None
    url: str | None = None
    server: Any = None  # an mcp Server/MCPServer for in-process use (tests, demos)
    # SchemaPin: the domain whose key signs this server's tools (None = the server is unsigned)
    domain: str | None = None
    # explicitly allow this server's tools without a valid SchemaPin signature
    allow_unsigned: bool = False
    # detached signatures: tool name -> base64 signature (signed packages on disk)
    signatures: dict[str, str] = field(default_factory=dict)
    # stdio only: run the command confined by bubblewrap (see engine.mcp_tools.confine)
    sandbox: bool = False
    network: bool = False
    paths: list[str] = field(default_factory=list)
    writable_paths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        given = [x for x in (self.command, self.url, self.server) if x is not None]
        if len(given) != 1:
            raise SymbiError(
                ErrorCode.CONFIG_001,
                f"MCP server '{self.name}' needs exactly one of command, url",
                offending=self.name,
            )
        if not self.name or "/" in self.name:
            raise SymbiError(
                ErrorCode.CONFIG_001, "MCP server names are non-empty and contain no '/'", offending=self.name
            )
        if self.sandbox and self.command is None:
            raise SymbiError(
                ErrorCode.CONFIG_001,
                f"MCP server '{self.name}': sandbox applies to stdio servers (command)",
                offending=self.name,
                hint="confine the server where it runs, or remove sandbox = true",
            )

    def target(self) -> Any:
        if self.server is not None:
            return self.server
        if self.url is not None:
            return self.url
        from mcp import StdioServerParameters

        command = cast(str, self.command)  # neither server nor url: __post_init__ saw to it that command is set
        if self.sandbox:
            from engine.mcp_tools.confine import confined_argv

            argv = confined_argv(
                str(command),
                list(self.args),
                cwd=self.cwd,
                paths=self.paths,
                writable_paths=self.writable_paths,
                network=self.network,
            )
            return StdioServerParameters(command=argv[0], args=argv[1:], env=self.env, cwd=self.cwd)
        return StdioServerParameters(command=command, args=list(self.args), env=self.env, cwd=self.cwd)

    def describe(self) -> str:
        if self.url:
            return self.url
        if self.command:
            return " ".join([self.command, *self.args]) + (" (sandboxed)" if self.sandbox else "")
        return f"in-process:{type(self.server).__name__}"


@dataclass
class ToolDefinition:
    """A tool as listed by a server (the fields that are pinned, plus its _meta)."""

    server: str
    name: str
    description: str
    input_schema: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.server}/{self.name}"

    def signed_object(self) -> dict[str, Any]:
        """What SchemaPin signs and the registry pins: the MCP wire form of the definition."""
        return {"name": self.name, "description": self.description, "inputSchema": self.input_schema}


ListChanged = Callable[[str], Awaitable[object] | None]  # what an awaitable result holds is ignored


def connection_closed(exc: BaseException) -> bool:
    """Did a request fail because the transport closed (as opposed to an error the server answered)?"""
    from mcp.shared.exceptions import MCPError
    from mcp_types import CONNECTION_CLOSED

    return isinstance(exc, MCPError) and exc.code == CONNECTION_CLOSED


class McpConnection:
    def __init__(self, config: ServerConfig, *, on_list_changed: ListChanged | None = None) -> None:
        self.config = config
        self.client: Any = None
        self._on_list_changed = on_list_changed
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._target: Any = None
        self._timeout = 30.0  # open() sets the caller's; bounds the listen subscription's acknowledgment
        # set when a request failed because the transport closed (a stdio server that exited):
        # the SDK's client context does not end by itself then, so the pool reconnects on next use
        self.broken = False

    async def _message_handler(self, message: Any) -> None:
        from mcp_types import ToolListChangedNotification

        # mcp 2.x hands over the notification itself (ServerNotification is a plain union, not a
        # RootModel: `message.root` raised AttributeError); a wrapper with `.root` is still unwrapped
        root = getattr(message, "root", message)
        if isinstance(root, ToolListChangedNotification) and self._on_list_changed is not None:
            result = self._on_list_changed(self.config.name)
            if inspect.isawaitable(result):
                asyncio.ensure_future(result)

    async def _listen_for_changes(self, client: Any, stack: contextlib.AsyncExitStack) -> None:
        """Open a ``subscriptions/listen`` stream for tool-list changes (2026-07-28 connections).

        At that protocol version a server sends ``notifications/tools/list_changed`` only on a listen
        stream the client opened (never on the bare connection); the SDK tees those notifications to
        ``message_handler``, so :meth:`_message_handler` handles both eras. The stream's own event
        backlog is left undrained (it holds at most one deduplicated event). Earlier protocol versions,
        and servers that do not serve listen, keep working without it."""
        import anyio
        from mcp.client.subscriptions import ListenNotSupportedError, SubscriptionLost
        from mcp.shared.exceptions import MCPError
        from mcp_types.version import MODERN_PROTOCOL_VERSIONS

        if self._on_list_changed is None or client.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            return
        try:
            with anyio.fail_after(self._timeout):
                await stack.enter_async_context(client.listen(tools_list_changed=True))
        except (ListenNotSupportedError, SubscriptionLost, MCPError, TimeoutError) as exc:
            log.info(
                "MCP server '%s': no tools/list_changed subscription (%s: %s)",
                self.config.name,
                type(exc).__name__,
                exc,
            )

    async def _run(self) -> None:
        from mcp import Client

        try:
            async with (
                Client(self._target, message_handler=self._message_handler, cache=None) as client,
                contextlib.AsyncExitStack() as stack,
            ):
                self.client = client
                await self._listen_for_changes(client, stack)
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:  # noqa: BLE001 - surfaced to open()/callers
            self._error = exc
        finally:
            self.client = None
            self._ready.set()

    async def open(self, timeout: float) -> None:
        self._target = self.config.target()  # a bad sandbox setup fails here, with its own code
        self._timeout = timeout
        self._task = asyncio.create_task(self._run(), name=f"mcp:{self.config.name}")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError as exc:
            await self.close()
            raise SymbiError(
                ErrorCode.MCP_004,
                f"MCP server '{self.config.name}' did not complete the handshake within {timeout:g} s",
                offending=self.config.describe(),
            ) from exc
        if self.client is None:
            err = self._error
            await self.close()
            raise SymbiError(
                ErrorCode.MCP_005,
                f"could not connect to MCP server '{self.config.name}': {type(err).__name__}: {err}",
                offending=self.config.describe(),
                hint="check the command/URL; run it by hand to see its errors",
            ) from (err if isinstance(err, Exception) else None)

    @property
    def alive(self) -> bool:
        return self.client is not None and not self.broken and self._task is not None and not self._task.done()

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5.0)
            except (TimeoutError, Exception):  # noqa: BLE001
                self._task.cancel()
                with contextlib.suppress(BaseException):
                    await self._task


class McpClientPool:
    """Open MCP connections by server name, bounded by ``max_concurrent_connections``."""

    def __init__(
        self,
        *,
        max_concurrent_connections: int = 10,
        connection_timeout: float = 30.0,
        on_list_changed: ListChanged | None = None,
    ) -> None:
        self.configs: dict[str, ServerConfig] = {}
        self.connections: dict[str, McpConnection] = {}
        self.max_concurrent_connections = max_concurrent_connections
        self.connection_timeout = connection_timeout
        self.on_list_changed = on_list_changed
        self._locks: dict[str, asyncio.Lock] = {}

    def add(self, config: ServerConfig) -> None:
        if config.name in self.configs:
            raise SymbiError(ErrorCode.CONFIG_001, f"duplicate MCP server name '{config.name}'", offending=config.name)
        self.configs[config.name] = config

    def config(self, server: str) -> ServerConfig:
        try:
            return self.configs[server]
        except KeyError:
            raise SymbiError(ErrorCode.MCP_002, f"unknown MCP server '{server}'", offending=server) from None

    async def connection(self, server: str) -> McpConnection:
        cfg = self.config(server)
        lock = self._locks.setdefault(server, asyncio.Lock())
        async with lock:
            conn = self.connections.get(server)
            if conn is not None and conn.alive:
                return conn
            if conn is not None:
                await conn.close()
                del self.connections[server]
            if len(self.connections) >= self.max_concurrent_connections:
                raise SymbiError(
                    ErrorCode.MCP_005,
                    f"max_concurrent_connections ({self.max_concurrent_connections}) reached",
                    offending=server,
                    hint="raise [mcp] max_concurrent_connections or disconnect a server",
                )
            conn = McpConnection(cfg, on_list_changed=self.on_list_changed)
            await conn.open(self.connection_timeout)
            self.connections[server] = conn
            return conn

    async def list_tools(self, server: str) -> list[ToolDefinition]:
        """Every tool of ``server`` (all pages). Listing is idempotent, so a connection found
        closed (the server process exited) is reopened and the listing tried once more."""
        try:
            return await self._list_tools(server)
        except SymbiError as exc:
            if not isinstance(exc.__cause__, BaseException) or not connection_closed(exc.__cause__):
                raise
            log.warning("MCP server '%s' closed its connection; reconnecting to list its tools", server)
            return await self._list_tools(server)

    async def _list_tools(self, server: str) -> list[ToolDefinition]:
        conn = await self.connection(server)
        tools: list[ToolDefinition] = []
        cursor: str | None = None
        try:
            for _ in range(100):
                page = await asyncio.wait_for(conn.client.list_tools(cursor=cursor), self.connection_timeout)
                for t in page.tools:
                    meta = getattr(t, "meta", None) or {}
                    tools.append(
                        ToolDefinition(
                            server=server,
                            name=t.name,
                            description=t.description or "",
                            input_schema=dict(t.input_schema or {}),
                            meta=dict(meta),
                        )
                    )
                cursor = page.next_cursor
                if not cursor:
                    break
        except TimeoutError as exc:
            raise SymbiError(ErrorCode.MCP_004, f"tools/list on '{server}' timed out", offending=server) from exc
        except SymbiError:
            raise
        except Exception as exc:
            if connection_closed(exc):
                conn.broken = True
            raise SymbiError(
                ErrorCode.MCP_005, f"tools/list on '{server}' failed: {type(exc).__name__}: {exc}", offending=server
            ) from exc
        return tools

    async def call_tool(self, server: str, name: str, arguments: dict[str, Any], timeout: float) -> Any:
        """The raw ``CallToolResult``; ``MCP_004`` on timeout, ``MCP_005`` on transport failure."""
        conn = await self.connection(server)
        try:
            return await asyncio.wait_for(conn.client.call_tool(name, arguments), timeout)
        except TimeoutError as exc:
            raise SymbiError(
                ErrorCode.MCP_004,
                f"tool {server}/{name} did not answer within {timeout:g} s",
                offending=f"{server}/{name}",
            ) from exc
        except Exception as exc:
            hint = None
            if connection_closed(exc):
                # not retried: a tool call may have side effects; the next call reconnects
                conn.broken = True
                hint = "the server closed its connection (did its process exit?); it is restarted on the next call"
            raise SymbiError(
                ErrorCode.MCP_005,
                f"tool {server}/{name} failed: {type(exc).__name__}: {exc}",
                offending=f"{server}/{name}",
                hint=hint,
            ) from exc

    async def disconnect(self, server: str) -> None:
        conn = self.connections.pop(server, None)
        if conn is not None:
            await conn.close()

    async def close(self) -> None:
        for name in list(self.connections):
            await self.disconnect(name)
