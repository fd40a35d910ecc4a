"""An engine that serves its API while it is open: the console's embedded engine, attachable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.api.http.server import HttpSettings, Listeners, open_listeners
from engine.api.interface import Engine
from engine.api.types import EngineInfo


class ServedEngine:
    """``inner`` (a local engine), plus its listeners from :meth:`open` to :meth:`close`."""

    def __init__(self, inner: Engine, data_dir: Path, settings: HttpSettings) -> None:
        self.inner = inner
        self.data_dir = data_dir
        self.settings = settings
        self.listeners: Listeners | None = None
        for name in ("agents", "resources", "audit", "policies", "secrets", "knowledge", "tools", "messages", "events"):
            setattr(self, name, getattr(inner, name))

    def __getattr__(self, name: str) -> Any:  # as_actor, runtime ... of the inner engine
        return getattr(self.inner, name)

    @property
    def is_open(self) -> bool:
        return self.inner.is_open

    async def open(self) -> None:
        if self.inner.is_open:
            return
        await self.inner.open()
        try:
            self.listeners = await open_listeners(self.inner, self.data_dir, self.settings)
        except BaseException:
            await self.inner.close("could not serve the API")
            raise

    async def close(self, reason: str = "engine shutdown") -> None:
        if self.listeners is not None:
            await self.listeners.close()
            self.listeners = None
        await self.inner.close(reason)

    async def info(self) -> EngineInfo:
        return await self.inner.info()
