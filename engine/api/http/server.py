"""Serving the HTTP API from the engine's process: on TCP (``[http_api]``) and on the data dir's socket.

:func:`open_listeners` binds what the configuration asks for before any
request is served, so a refusal is one clear error at start (``API_006``):

* TCP on ``http_api.host:port`` when ``http_api.enabled``. The bearer token
  comes from the environment variable named by ``http_api.auth_token_env``
  (``SYMBI_API_TOKEN``), or the seed's ``API_AUTH_TOKEN``. Without one the
  engine makes a random token and keeps it in ``<data dir>/api_token``
  (0600), for local clients, but only on a loopback address: a non-loopback
  bind without a token from the environment is refused.
* A Unix socket at ``<data dir>/engine.sock`` (0600), always: local clients
  (``symbiont``, a console on the same data dir) attach through it. It asks
  for the token in ``<data dir>/api_token`` too: the socket's permission keeps
  other users out, the token keeps out the engine's own agents, which run
  with the engine's uid when it is not root and cannot read the data dir.

Each listener runs a uvicorn server on the engine's event loop; uvicorn does
not install signal handlers here (the headless engine owns SIGINT/SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import socket
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.api.http.app import ServerSettings, build_app
from engine.api.interface import Engine
from engine.atomicfile import write_private
from engine.errors import ErrorCode, SymbiError

log = logging.getLogger("symbi.http")

SOCKET_NAME = "engine.sock"
TOKEN_FILE = "api_token"
MAX_UNIX_PATH = 107  # sun_path is 108 bytes with its NUL


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class HttpSettings:
    """``[http_api]`` as the server needs it (see :func:`settings_from_config`)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    max_body: int = 16 * 1_048_576
    rate_limit: float = 50.0
    rate_burst: int = 200
    cors_origins: tuple[str, ...] = ()
    token_env: str = "SYMBI_API_TOKEN"


def settings_from_config(config: Any) -> HttpSettings:
    section = config.http_api
    return HttpSettings(
        enabled=bool(section.enabled),
        host=str(section.host),
        port=int(section.port),
        max_body=int(section.max_body_size),
        rate_limit=float(section.rate_limit),
        rate_burst=int(section.rate_burst),
        cors_origins=("*",) if section.enable_cors else (),
        token_env=str(section.auth_token_env),
    )


def token_from_env(settings: HttpSettings, env: Mapping[str, str]) -> str | None:
    for name in (settings.token_env, "API_AUTH_TOKEN"):
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def local_token(data_dir: Path) -> str:
    """The token kept in the data dir for local clients (made once, 0600)."""
    path = data_dir / TOKEN_FILE
    with contextlib.suppress(FileNotFoundError):
        text = path.read_text().strip()
        if text:
            return text
    token = secrets.token_urlsafe(32)
    write_private(path, (token + "\n").encode())
    return token


class _QuietServer:
    """A uvicorn server that leaves signals to the engine."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
        self.server = Server(config)
        self.sock = sock
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]), name="symbi-http")
        while not self.server.started:
            if self.task.done():
                self.task.result()
                raise SymbiError(ErrorCode.API_006, "the HTTP server stopped at start")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError, SystemExit):
                await asyncio.wait_for(asyncio.shield(self.task), 5)
        with contextlib.suppress(OSError):
            self.sock.close()


@dataclass
class Listeners:
    """What the engine serves; :meth:`close` stops it all."""

    servers: list[_QuietServer] = field(default_factory=list)
    tcp: tuple[str, int] | None = None
    socket_path: Path | None = None
    token: str | None = None  # the TCP bearer token (never logged)

    @property
    def url(self) -> str | None:
        if self.tcp is None:
            return None
        host, port = self.tcp
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    async def close(self) -> None:
        for server in self.servers:
            await server.stop()
        if self.socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()


def _tcp_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # accepted connections inherit it: without, a response written in two parts waits for the
        # client's delayed ACK (about 40 ms a request on loopback)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise SymbiError(
            ErrorCode.API_006,
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            offending=f"{host}:{port}",
            hint="pick a free port ([http_api] port or SYMBI_HTTP_PORT; 0 lets the system choose)",
        ) from None
    return sock


def _unix_socket(path: Path) -> socket.socket:
    if len(str(path)) > MAX_UNIX_PATH:
        raise SymbiError(
            ErrorCode.API_006,
            "the data dir's path is too long for a Unix socket",
            offending=str(path),
            hint=f"use a data dir whose path is shorter than {MAX_UNIX_PATH - len(SOCKET_NAME) - 1} characters",
        )
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            path.unlink()  # a stale socket: the data dir lock says no engine holds it
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise SymbiError(
            ErrorCode.API_006, f"cannot listen on {path}: {exc.strerror or exc}", offending=str(path)
        ) from None
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(64)
    sock.setblocking(False)
    return sock


async def open_listeners(
    engine: Engine,
    data_dir: Path,
    settings: HttpSettings,
    *,
    env: Mapping[str, str] | None = None,
    unix_socket: bool = True,
) -> Listeners:
    """Bind and start what ``settings`` asks for (see the module docstring); ``API_006`` if refused."""
    env = os.environ if env is None else env
    listeners = Listeners()
    try:
        if settings.enabled:
            token = token_from_env(settings, env)
            if token is None:
                if not is_loopback(settings.host):
                    raise SymbiError(
                        ErrorCode.API_006,
                        f"refusing to serve the HTTP API on {settings.host} without a token",
                        offending=settings.host,
                        hint=f"set {settings.token_env} (a long random string) or bind to 127.0.0.1",
                    )
                token = local_token(data_dir)
            sock = _tcp_socket(settings.host, settings.port)
            host, port = sock.getsockname()[:2]
            app = build_app(engine, _server_settings(settings, token))
            server = _QuietServer(app, sock)
            await server.start()
            listeners.servers.append(server)
            listeners.tcp = (str(host), int(port))
            listeners.token = token
            log.info(
                "HTTP API on %s (token from %s)",
                listeners.url,
                settings.token_env if token_from_env(settings, env) else data_dir / TOKEN_FILE,
            )
        if unix_socket:
            path = data_dir / SOCKET_NAME
            try:
                usock = _unix_socket(path)
            except SymbiError as exc:
                log.warning("no local socket: %s", exc.render())
            else:
                # the socket asks for the data dir's token too: an agent of an engine that is not root
                # runs with the engine's uid, and could otherwise connect; it cannot read the token file
                app = build_app(engine, _server_settings(settings, local_token(data_dir), actor="operator"))
                server = _QuietServer(app, usock)
                await server.start()
                listeners.servers.append(server)
                listeners.socket_path = path
    except BaseException:
        await listeners.close()
        raise
    return listeners


def _server_settings(settings: HttpSettings, token: str | None, *, actor: str | None = None) -> ServerSettings:
    return ServerSettings(
        token=token,
        actor=actor,
        max_body=settings.max_body,
        rate_limit=settings.rate_limit if actor is None else 0.0,  # the local socket is not rate limited
        rate_burst=settings.rate_burst,
        cors_origins=settings.cors_origins,
    )
