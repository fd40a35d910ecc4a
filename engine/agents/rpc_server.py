"""One agent's protocol endpoint: a Unix socket the engine listens on.

The socket lives in a short per-agent directory (socket paths are limited to
108 bytes) that sandboxes mount. A connection must first say ``hello`` with
the launch token; then every request goes to one handler (the runtime's
gate) and is answered on the same connection. Requests run concurrently, so
a long ``bus.receive`` never blocks a ``heartbeat``. Oversized or malformed
messages get a JSON-RPC error; an oversized one also closes the connection
(the stream cannot be resynchronised safely), a malformed or too deeply
nested one does not.

An agent that closes a connection with replies unread (it exited, was killed,
or does not care) makes the kernel reset the connection; that is counted in
``resets`` and logged as one line, for the 1st, 10th, 100th ... reset, never
with a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from engine.agents import protocol
from engine.errors import ErrorCode, SymbiError

Handler = Callable[[str, dict[str, Any]], Awaitable[Any]]
SOCKET_NAME = "rpc.sock"
log = logging.getLogger("symbi.engine.rpc")


def rpc_dir_for(data_dir: Path, agent_id: str) -> Path:
    """A short directory for the agent's socket, unique per data dir and agent."""
    tag = hashlib.sha256(str(data_dir).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"symbi-{tag}" / agent_id.replace("-", "")[:16]


class AgentRpcServer:
    def __init__(self, rpc_dir: Path, token: str, handler: Handler, *, max_message_bytes: int = 1_048_576) -> None:
        self.rpc_dir = rpc_dir
        self.path = rpc_dir / SOCKET_NAME
        self._token = token
        self._handler = handler
        self._max = max_message_bytes
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self.requests = 0
        self.errors = 0
        self.resets = 0  # connections the agent reset / broke (closed with replies unread)
        self._resets_logged = 0

    def _note_reset(self, exc: ConnectionError) -> None:
        """Count a connection the agent dropped; one log line at the 1st, 10th, 100th ... (no traceback)."""
        self.resets += 1
        n = self.resets
        if str(n).rstrip("0") != "1":  # 1, 10, 100, ...: a flood is a few lines, not one per reset
            return
        self._resets_logged = n
        how = "broken pipe" if isinstance(exc, BrokenPipeError) else "connection reset"
        log.info(
            "agent rpc %s: the agent closed a connection with replies unread (%s); %d so far%s",
            self.rpc_dir.name, how, n, " (counted; logged again at 10, 100, 1000 ...)" if n == 1 else "",
        )

    async def start(self) -> None:
        self.rpc_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.rpc_dir.parent, 0o711)
        os.chmod(self.rpc_dir, 0o711)  # sandboxed agents run as another uid; the token is the auth
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path), limit=self._max + 1)
        os.chmod(self.path, 0o666)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._conns):
                task.cancel()
            await asyncio.gather(*self._conns, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None
            if self.resets > self._resets_logged:
                log.info("agent rpc %s: %d connection resets in all", self.rpc_dir.name, self.resets)
                self._resets_logged = self.resets
        shutil.rmtree(self.rpc_dir, ignore_errors=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        lock = asyncio.Lock()
        inflight: set[asyncio.Task[None]] = set()

        async def send(data: bytes) -> None:
            async with lock:
                if writer.is_closing():  # the agent is gone: nothing to answer (no warnings from asyncio)
                    return
                writer.write(data)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()

        try:
            authed = False
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    return  # peer closed (mid-call requests are cancelled below)
                except ConnectionError as exc:  # reset / broken pipe: closed with replies unread
                    self._note_reset(exc)
                    return
                except asyncio.LimitOverrunError:
                    self.errors += 1
                    err = SymbiError(
                        ErrorCode.PROTO_002,
                        f"message over {self._max} bytes",
                        hint="send smaller messages; large data belongs in files in the workspace",
                    )
                    await send(protocol.error_response(None, protocol.INVALID_REQUEST, err))
                    return
                if not line.strip():
                    continue
                try:
                    req = protocol.parse(line)
                except protocol.ProtocolError as exc:
                    self.errors += 1
                    await send(protocol.error_response(exc.request_id, exc.rpc_code, exc.error))
                    continue
                if not authed:
                    token = req.params.get("token")
                    if (
                        req.method != "hello"
                        or not isinstance(token, str)
                        or not hmac.compare_digest(token, self._token)
                    ):
                        err = SymbiError(ErrorCode.PROTO_005, "the first message must be hello with the launch token")
                        await send(protocol.error_response(req.id, protocol.APPLICATION_ERROR, err))
                        return
                    authed = True
                    await send(protocol.response(req.id, {"ok": True, "methods": list(protocol.METHODS)}))
                    continue
                self.requests += 1
                call = asyncio.create_task(self._call(req, send))
                inflight.add(call)
                call.add_done_callback(inflight.discard)
        except asyncio.CancelledError:
            # close() (or loop shutdown) ends the connection. Finish normally: this task is ours alone,
            # and Python 3.11's streams callback calls task.exception() on a cancelled task, logging a
            # traceback ("Exception in callback StreamReaderProtocol.connection_made...").
            pass
        except Exception as exc:  # noqa: BLE001 - never "Unhandled exception in client_connected_cb"
            self.errors += 1
            log.error("agent rpc %s: connection dropped after an internal error: %s: %s",
                      self.rpc_dir.name, type(exc).__name__, exc)
        finally:
            for call in inflight:
                call.cancel()
            await asyncio.gather(*inflight, return_exceptions=True)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._conns.discard(task)

    async def _call(self, req: protocol.Request, send: Callable[[bytes], Awaitable[None]]) -> None:
        try:
            result = await self._handler(req.method, req.params)
        except SymbiError as exc:
            self.errors += 1
            if req.id is not None:
                await send(protocol.error_response(req.id, protocol.rpc_code_for(exc), exc))
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - an agent must get an answer, never a hang
            self.errors += 1
            err = SymbiError(ErrorCode.PROTO_001, f"internal error serving {req.method}: {type(exc).__name__}")
            if req.id is not None:
                await send(protocol.error_response(req.id, protocol.INTERNAL_ERROR, err))
            return
        if req.id is not None:
            await send(protocol.response(req.id, result))
