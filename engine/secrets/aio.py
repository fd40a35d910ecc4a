"""Asyncio face of the vault: the same operations, run in a worker thread.

The console and the agent protocol's ``secret.get`` run on an event loop; file
IO and ``fsync`` must not block it. Each method here is ``await``-able and
delegates to :class:`engine.secrets.vault.Vault` through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

from engine.secrets.config import SecretsConfig
from engine.secrets.keys import KeySource
from engine.secrets.values import RotationReport, SecretInfo, SecretValue
from engine.secrets.vault import Progress, Vault


class AsyncVault:
    """Wraps a :class:`Vault`; ``AsyncVault.open(...)`` mirrors ``Vault.open``."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    @classmethod
    async def open(
        cls,
        data_dir: str | os.PathLike[str],
        config: SecretsConfig | Mapping[str, Any] | None = None,
        *,
        key_source: KeySource | None = None,
    ) -> AsyncVault:
        return cls(await asyncio.to_thread(Vault.open, data_dir, config, key_source=key_source))

    @property
    def key_id(self) -> str:
        return self.vault.key_id

    async def exists(self, path: str) -> bool:
        return await asyncio.to_thread(self.vault.exists, path)

    async def set(
        self, path: str, value: str | bytes | SecretValue, metadata: Mapping[str, Any] | None = None
    ) -> SecretInfo:
        return await asyncio.to_thread(self.vault.set, path, value, metadata)

    async def get(self, path: str, *, version: int | None = None) -> SecretValue:
        return await asyncio.to_thread(self.vault.get, path, version=version)

    async def info(self, path: str) -> SecretInfo:
        return await asyncio.to_thread(self.vault.info, path)

    async def history(self, path: str) -> list[SecretInfo]:
        return await asyncio.to_thread(self.vault.history, path)

    async def list_secrets(self, prefix: str = "") -> list[SecretInfo]:
        return await asyncio.to_thread(self.vault.list_secrets, prefix)

    async def names(self, prefix: str = "") -> list[str]:
        return await asyncio.to_thread(self.vault.names, prefix)

    async def delete(self, path: str) -> None:
        await asyncio.to_thread(self.vault.delete, path)

    async def rotate_key(
        self, new_key_source: KeySource | None = None, *, keep_old: bool = True, progress: Progress | None = None
    ) -> RotationReport:
        """``progress`` is called from the worker thread: post a message, don't touch widgets."""
        return await asyncio.to_thread(self.vault.rotate_key, new_key_source, keep_old=keep_old, progress=progress)

    def close(self) -> None:
        self.vault.close()
