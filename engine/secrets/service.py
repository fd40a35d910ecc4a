"""The runtime's secrets: the vault opened lazily, operator actions recorded
in the audit trail (names only), and the agent protocol's ``secret.get``.

An agent reads a secret only if policy allows ``Read`` on ``Secret``
``<name>``; the decision and the name are recorded before the value is read,
and every value read is registered with the audit trail so it is masked
wherever it might appear later. Values never reach a log or an error.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from engine.agents.gate import Access, Step
from engine.agents.ports import Recorder, Redactor
from engine.agents.record import AgentRecord
from engine.config import RuntimeConfig
from engine.errors import ErrorCode, SymbiError
from engine.secrets.aio import AsyncVault
from engine.secrets.config import SecretsConfig
from engine.secrets.names import validate_secret_path
from engine.secrets.values import RotationReport, SecretInfo, SecretValue


class SecretService:
    def __init__(self, config: RuntimeConfig, data_dir: Path, *, recorder: Recorder, redactor: Redactor) -> None:
        self.config = config
        self.data_dir = data_dir
        self.recorder = recorder
        self.redactor = redactor
        self._vault: AsyncVault | None = None
        self._lock = asyncio.Lock()

    async def vault(self) -> AsyncVault:
        """The vault, opened on first use (a missing or wrong key is an error then, not at engine start)."""
        async with self._lock:
            if self._vault is None:
                config = SecretsConfig.from_runtime(self.config)
                self._vault = await AsyncVault.open(self.data_dir, config)
            return self._vault

    def close(self) -> None:
        if self._vault is not None:
            self._vault.close()
            self._vault = None

    # -- operator side (console, API) ---------------------------------------------

    async def list_secrets(self, prefix: str = "") -> list[SecretInfo]:
        return await (await self.vault()).list_secrets(prefix)

    async def names(self, prefix: str = "") -> list[str]:
        return await (await self.vault()).names(prefix)

    async def set(
        self, name: str, value: str, metadata: dict[str, Any] | None = None, *, actor: str = "operator"
    ) -> SecretInfo:
        name = validate_secret_path(name)
        vault = await self.vault()
        self._register(value)
        await self.recorder.record(
            "secret.write",
            None,
            "set",
            actor=actor,
            resource=name,
            details={"metadata_keys": sorted((metadata or {}).keys())},
        )
        return await vault.set(name, value, metadata)

    async def delete(self, name: str, *, actor: str = "operator") -> None:
        name = validate_secret_path(name)
        vault = await self.vault()
        await self.recorder.record("secret.write", None, "delete", actor=actor, resource=name)
        await vault.delete(name)

    async def reveal(self, name: str, *, actor: str = "operator") -> SecretValue:
        """An operator's read (reveal or copy in the console): recorded, by name."""
        name = validate_secret_path(name)
        vault = await self.vault()
        await self.recorder.record("secret.read", None, "reveal", actor=actor, resource=name)
        value = await vault.get(name)
        self._register(value.reveal())
        return value

    async def rotate(self, progress: Any = None, *, actor: str = "operator") -> RotationReport:
        vault = await self.vault()
        await self.recorder.record("secret.write", None, "rotate-key", actor=actor, resource="*")
        return await vault.rotate_key(progress=progress)

    # -- the engine's own use -----------------------------------------------------------

    async def read_for_engine(self, name: str, *, actor: str) -> str:
        """A value the engine itself needs (e.g. the RAG generator's API key): recorded by name
        before the vault is opened, and masked in the trail from then on."""
        await self.recorder.record("secret.read", None, "use", actor=actor, resource=name)
        value = (await (await self.vault()).get(name)).reveal()
        self._register(value)
        return value

    # -- agent side -------------------------------------------------------------------

    def plan_read(self, agent: AgentRecord, params: dict[str, Any]) -> Step:
        """``secret.get``: Read on Secret ``<name>``; the gate's door checks and records it (name
        and decision) before the value is read."""
        raw = params.get("name")
        if not isinstance(raw, str):
            raise SymbiError(ErrorCode.PROTO_001, "secret.get needs a name", hint='send {"name": "shared/db_password"}')
        name = validate_secret_path(raw)

        async def act() -> dict[str, Any]:
            value = await (await self.vault()).get(name)
            text = value.reveal()
            self._register(text)
            return {"name": name, "value": text}

        return Step(act, Access("secret.read", "read", "Secret", (name,), "Read", f"reading secret {name!r}"))

    def _register(self, value: str) -> None:
        self.redactor.register_secret(value)
