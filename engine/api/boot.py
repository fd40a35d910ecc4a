"""Starting an engine for a client: read the config, set up logging, build the local engine,
or run it headless. What ``symbi-console`` needs before it has an :class:`Engine`.

The engine's internals (config schema, runtime, headless loop) are imported
here, lazily, so a client that imports :mod:`engine.api` does not load them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.api.interface import Engine
from engine.api.readonly import read_only
from engine.api.types import ConsoleSettings

if TYPE_CHECKING:
    from engine.config import RuntimeConfig


@dataclass(frozen=True)
class Setup:
    """A config read and a data dir chosen; ``warnings`` are the loader's (unknown keys ...)."""

    config: RuntimeConfig
    data_dir: Path
    warnings: tuple[str, ...] = ()
    source: str | None = None  # the config file read, if any

    @property
    def console(self) -> ConsoleSettings:
        section = self.config.console
        return ConsoleSettings(
            theme=section.theme,
            keymap=dict(section.keymap),
            refresh_interval=float(section.refresh_interval),
            contexts={c.name: c.url for c in section.contexts},
        )


def load_setup(config_path: str | None = None, data_dir: str | None = None) -> Setup:
    """The data dir (``--data-dir``, ``SYMBI_DATA_DIR``, the per-user dir) and the config read for it
    (``--config``, ``SYMBI_CONFIG``, the data dir's ``runtime_config.toml``); SymbiError if unusable."""
    from engine.config import find_config_file, load_config, resolve_data_dir

    root = resolve_data_dir(data_dir)
    path = find_config_file(config_path, root)
    loaded = load_config(path)
    return Setup(loaded.config, Path(root), tuple(loaded.warnings), str(loaded.source) if loaded.source else None)


def setup_logging(setup: Setup, *, to_stderr: bool) -> None:
    from engine.logsetup import setup_logging as configure

    configure(setup.config.log_level, setup.data_dir, to_stderr=to_stderr)


def local_engine(setup: Setup, *, readonly: bool = False, mode: str = "embedded", serve: bool = True) -> Engine:
    """An engine in this process on ``setup`` (not opened yet; the client opens it). With ``serve``
    it also listens, once open, on the data dir's socket (and on TCP when ``[http_api]`` is enabled),
    so ``symbiont`` and other consoles can attach to it."""
    from engine.api.local import LocalEngine
    from engine.runtime import Runtime

    engine: Engine = LocalEngine(Runtime(setup.config, setup.data_dir), mode=mode)
    if serve:
        from engine.api.http.served import ServedEngine
        from engine.api.http.server import settings_from_config

        engine = ServedEngine(engine, setup.data_dir, settings_from_config(setup.config))
    return read_only(engine) if readonly else engine


def attach(setup: Setup, *, readonly: bool = False) -> Engine | None:
    """A client of the engine already running on ``setup``'s data dir (through its socket), or None
    when no engine answers there."""
    from engine.api.http.server import SOCKET_NAME
    from engine.api.remote import RemoteEngine

    path = setup.data_dir / SOCKET_NAME
    if not _answers(path):
        return None
    engine: Engine = RemoteEngine(socket_path=path)
    return read_only(engine) if readonly else engine


def connect(url: str, *, token: str | None = None, readonly: bool = False) -> Engine:
    """A client of the engine serving the HTTP API at ``url`` (token: ``SYMBI_API_TOKEN``)."""
    import os

    from engine.api.remote import RemoteEngine

    engine: Engine = RemoteEngine(url, token=token or os.environ.get("SYMBI_API_TOKEN") or None)
    return read_only(engine) if readonly else engine


async def run_headless(setup: Setup) -> int:
    """The engine without a UI until SIGINT or SIGTERM, serving its API; the exit status."""
    from engine.headless import run_headless as run

    return await run(setup.config, str(setup.data_dir))


def demo_engine(data_dir: str | Path) -> Engine:
    """A local engine on ``data_dir`` with the demo's configuration (short timeouts)."""
    from engine.api.local import LocalEngine
    from engine.demo import demo_config
    from engine.runtime import Runtime

    return LocalEngine(Runtime(demo_config(), Path(data_dir)), mode="embedded")


async def add_example_servers(engine: Engine, servers: dict[str, str]) -> int:
    """The example MCP servers in-process on a local ``engine`` (see :mod:`engine.demo`)."""
    from engine.api.local import LocalEngine
    from engine.api.readonly import ReadOnlyEngine
    from engine.demo import add_example_servers as add
    from engine.errors import ErrorCode, SymbiError

    inner = engine.inner if isinstance(engine, ReadOnlyEngine) else engine
    if not isinstance(inner, LocalEngine):
        raise SymbiError(ErrorCode.MCP_001, "in-process example servers need an engine in this process")
    return await add(inner.runtime, servers)


def _answers(path: Path) -> bool:
    """Whether something accepts connections on the Unix socket ``path`` (a stale file does not)."""
    import socket

    if not path.exists():
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(2.0)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def context_engine(setup: Setup, name: str, *, readonly: bool = False) -> Engine:
    """A client of the engine of ``[[console.contexts]]`` ``name`` (its token from ``token_env``)."""
    import os

    from engine.errors import ErrorCode, SymbiError

    context = setup.config.console.context(name)
    if context is None:
        known = ", ".join(c.name for c in setup.config.console.contexts) or "none configured"
        raise SymbiError(
            ErrorCode.CONFIG_001,
            f"no console context named {name!r}",
            offending=name,
            hint=f"contexts: {known} (add [[console.contexts]] with name, url and token_env)",
        )
    return connect(context.url, token=os.environ.get(context.token_env) or None, readonly=readonly)
