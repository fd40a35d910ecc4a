"""Shared helpers for the console tests (``tests/test_console_*.py``).

The console tests drive the real app on a real :class:`Runtime` opened on a
temporary directory, with real agent processes (small standard-library
programs defined here; the create form also picks from ``examples/agents``).
Two stand-ins exist only to make screenshots stable:

* :class:`engine.clock.FakeClock` freezes time (uptimes, event timestamps).
* :class:`FixedSampler` replaces the psutil process sampler and returns fixed
  numbers. Real sampling is tested in ``tests/test_sampler.py``; here we only
  need CPU and memory figures that do not change between runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from console.app import SymbiConsole
from engine.agents.model import AgentConfig, AgentState, Priority, ResourceLimits
from engine.agents.sampler import ProcessTreeSampler, TreeSample
from engine.api import ConsoleSettings
from engine.api.local import LocalEngine
from engine.clock import FakeClock
from engine.config import RuntimeConfig
from engine.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "agents"
MIB = 1024 * 1024


class FixedSampler(ProcessTreeSampler):
    """A stand-in for ``ProcessTreeSampler`` that returns fixed numbers.

    Every live agent reads 12.5 % CPU and 48 MiB resident; the machine reads
    23 % CPU and 6 of 16 GiB used. Only for snapshot tests, whose output must
    not depend on what the machine happens to be doing. (It subclasses the
    real sampler only to keep its interface; no real measurement happens.)
    """

    CPU_PERCENT = 12.5
    RSS_BYTES = 48 * MIB
    MACHINE = (23.0, 6 * 1024 * MIB, 16 * 1024 * MIB)

    def sample(self, pid: int) -> TreeSample:
        return TreeSample(pid, self.CPU_PERCENT, self.RSS_BYTES, 0, 0, 1, alive=True)

    def sample_many(self, pids: Iterable[int]) -> dict[int, TreeSample]:
        return {pid: self.sample(pid) for pid in pids}

    def forget(self, pid: int) -> None:
        pass

    def machine(self) -> tuple[float, int, int]:  # type: ignore[override]
        return self.MACHINE


def console_config(*, keymap: dict[str, str] | None = None, **sections: dict[str, Any]) -> RuntimeConfig:
    """Defaults with short timeouts and fixed totals (4 cores, 4096 MB).

    ``sections`` maps a section name to field overrides, e.g.
    ``console_config(resource={"monitoring_interval": 3600})``.
    """
    base: dict[str, dict[str, Any]] = {
        "lifecycle": {"termination_timeout": 3.0},
        "resource": {"monitoring_interval": 0.2, "total_memory_mb": 4096, "total_cpu_cores": 4.0},
        "console": {"theme": "symbi-dark", "refresh_interval": 0.5},
    }
    if keymap is not None:
        base["console"]["keymap"] = keymap
    for name, fields in sections.items():
        base.setdefault(name, {}).update(fields)
    cfg = RuntimeConfig.default()
    for name, fields in base.items():
        cfg = dataclasses.replace(cfg, **{name: dataclasses.replace(getattr(cfg, name), **fields)})
    return cfg


# Agent programs owned by these tests (standard library only), so the console
# tests and their screenshots do not change when examples/agents/ evolves.
PROGRAMS: dict[str, str] = {
    "heartbeat": (
        "import signal, sys, time\n"
        "running = True\n"
        "def stop(signum, frame):\n"
        "    global running\n"
        "    running = False\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "beat = 0\n"
        "while running:\n"
        "    beat += 1\n"
        "    print(f'heartbeat {beat}', flush=True)\n"
        "    time.sleep(0.5)\n"
        "print('heartbeat stopping on SIGTERM', flush=True)\n"
        "sys.exit(0)\n"
    ),
    "crasher": "import sys, time\nprint('crasher: working', flush=True)\ntime.sleep(0.2)\nsys.exit(1)\n",
    "hello": "print('hello', flush=True)\n",
}


def program(name: str) -> str:
    return PROGRAMS[name]


def agent_config(
    name: str,
    kind: str = "hello",
    *,
    priority: Priority = Priority.NORMAL,
    memory_mb: int = 256,
    cpu_cores: float = 1.0,
) -> AgentConfig:
    return AgentConfig(
        name=name,
        dsl_source=program(kind),
        priority=priority,
        resource_limits=ResourceLimits(memory_mb=memory_mb, cpu_cores=cpu_cores),
    )


def settings_of(cfg: RuntimeConfig) -> ConsoleSettings:
    """The ``[console]`` section of ``cfg`` as the app takes it."""
    section = cfg.console
    return ConsoleSettings(section.theme, dict(section.keymap), float(section.refresh_interval))


def app_over(runtime: Runtime, *, readonly: bool = False, **kw: Any) -> SymbiConsole:
    """An app over ``runtime`` through the local engine interface, on the runtime's clock."""
    kw.setdefault("data_dir_label", "~/symbi-data")
    return SymbiConsole(
        LocalEngine(runtime), readonly=readonly, settings=settings_of(runtime.config), clock=runtime.clock.time, **kw
    )


def runtime_of(app: SymbiConsole) -> Runtime:
    """The real runtime behind an app made by :func:`make_app` (tests drive the engine directly)."""
    engine: Any = app.engine
    engine = getattr(engine, "inner", engine)  # behind the read-only view
    runtime: Runtime = engine.runtime
    return runtime


def make_app(tmp_path: Path, *, readonly: bool = False, config: RuntimeConfig | None = None, **kw: Any) -> SymbiConsole:
    """An app over a not-yet-open runtime on ``tmp_path`` (the app opens and closes it)."""
    cfg = config or console_config()
    return app_over(Runtime(cfg, tmp_path / "data", **kw), readonly=readonly)


def make_fake_app(
    fake: Any,
    *,
    readonly: bool = False,
    keymap: dict[str, str] | None = None,
    theme: str | None = None,
    **kw: Any,
) -> SymbiConsole:
    """An app over ``fake`` (a :class:`tests.fake_engine.FakeEngine`), on the fake's clock.

    Settings are the fake's ``[console]`` section (``fake.console``) with ``keymap`` and
    ``theme`` replaced when given. ``readonly`` puts the fake behind the real read-only
    wrapper, so a refused call never reaches the fake (``fake.called(...) == []``). ``kw``
    goes to :class:`SymbiConsole` (``data_dir_label`` defaults to ``~/symbi-data``).
    """
    base: ConsoleSettings = fake.console
    settings = ConsoleSettings(
        theme if theme is not None else base.theme,
        dict(keymap if keymap is not None else base.keymap),
        float(base.refresh_interval),
        dict(base.contexts),
    )
    kw.setdefault("data_dir_label", "~/symbi-data")
    return SymbiConsole(fake, readonly=readonly, settings=settings, clock=fake.now, **kw)


def mutating_calls(fake: Any) -> list[str]:
    """The calls ``fake`` saw that change engine state or reveal a secret (by the interface's marks):
    a read-only console must make none."""
    from engine.api.interface import GROUPS, kind_of, methods

    out = []
    for name, _args in fake.calls:
        group, _, method = name.partition(".")
        protocol = GROUPS.get(group)
        if protocol is not None and method in methods(protocol) and kind_of(protocol, method) != "reads":
            out.append(name)
    return out


def notified(app: SymbiConsole, text: str) -> bool:
    """Whether a notification (toast) of ``app`` contains ``text``."""
    return any(text in str(n.message) for n in app._notifications)


async def ready(app: SymbiConsole, timeout: float = 10.0) -> None:
    await asyncio.wait_for(app.engine_ready.wait(), timeout)


async def until(pilot: Any, predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Let the app run until ``predicate`` holds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await pilot.pause()
                if predicate():
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what or predicate}") from None


def model_state(app: SymbiConsole, name: str) -> AgentState | None:
    info = app.model.by_name(name)
    return info.state if info else None


def fake_clock() -> FakeClock:
    return FakeClock(start=1_700_000_000.0)


# -- fixed data for the audit, policy and vault screens --------------------------------------

# A master key for the vault (base64 of 32 bytes), so key ids are the same on every run.
FIXED_MASTER_KEY = "c3ltYmktY29uc29sZS10ZXN0LW1hc3Rlci1rZXktMzI="
SEED_TS = 1_699_990_000.0  # seeded audit events happen before the runtime's FakeClock starts

# A short policy file owned by these tests (the screen tests must not change when the
# engine's default policy does). Line 7 is the effect that tests break and mend.
FIXED_POLICY = """\
version: "1.0"
policies:
  - name: read-shared-secrets
    priority: 100
    conditions:
      - resource_type: Secret
    effect: Allow
    resources: ["shared/**"]
    operations: [Read]

  - name: no-network
    priority: 50
    conditions:
      - resource_type: Network
    effect: Deny
    operations: [Connect]

  - name: tools-need-approval
    priority: 10
    conditions:
      - resource_type: Tool
    effect: RequireApproval
    operations: [Call]
"""

# (type, agent, actor, action, resource, decision, details)
SEEDED_EVENTS: tuple[tuple[str, str | None, str, str, str, str, dict[str, Any]], ...] = (
    ("agent.create", "billing-bot", "operator", "create", "billing-bot", "allow", {"tier": "Native"}),
    ("resource.allocate", "billing-bot", "engine", "allocate", "memory 256 MB", "allow", {"cpu_cores": 1.0}),
    ("agent.state", "billing-bot", "engine", "start", "billing-bot", "n/a", {"state": "Running"}),
    (
        "secret.read",
        "billing-bot",
        "agent:billing-bot",
        "read",
        "shared/db_password",
        "allow",
        {
            "policy": "read-shared-secrets",
            "policy_request": {
                "agent_id": "billing-bot",
                "resource_type": "Secret",
                "resource_path": "shared/db_password",
                "operation": "Read",
            },
        },
    ),
    (
        "secret.read",
        "crawler",
        "agent:crawler",
        "read",
        "app/api_key",
        "deny",
        {
            "policy": None,
            "policy_request": {
                "agent_id": "crawler",
                "resource_type": "Secret",
                "resource_path": "app/api_key",
                "operation": "Read",
            },
        },
    ),
    ("tool.call", "crawler", "agent:crawler", "call", "web.fetch", "pending", {"tool": "web.fetch"}),
    ("tool.review", None, "operator", "approve", "web.fetch", "allow", {"reviewer": "operator"}),
    ("bus.send", "crawler", "agent:crawler", "send", "billing-bot", "allow", {"bytes": 512}),
    ("bus.reject", "crawler", "engine", "reject", "billing-bot", "deny", {"reason": "replayed message id"}),
    ("resource.violation", "crawler", "engine", "kill", "memory 128 MB", "n/a", {"peak_mb": 131}),
    ("agent.state", "crawler", "engine", "fail", "crawler", "error", {"state": "Failed", "exit_code": 137}),
    ("policy.decision", "billing-bot", "engine", "connect", "api.example.com:443", "deny", {"policy": "no-network"}),
)


async def seed_audit_async(data_dir: Path, events: Iterable[tuple[Any, ...]] = SEEDED_EVENTS) -> int:
    """Write ``events`` with a trail of their own before any runtime opens ``data_dir``, one
    a minute from :data:`SEED_TS`. They come first in the chain, so their hashes are the same
    on every run (later engine events carry a pid)."""
    from engine.audit import AuditTrail
    from engine.datadir import ensure_data_dir

    ensure_data_dir(data_dir)  # 0700, as the engine makes it (it refuses a looser one)
    trail = AuditTrail(data_dir, clock=FakeClock(start=SEED_TS))
    await trail.open()
    count = 0
    try:
        for i, (etype, agent, actor, action, resource, decision, details) in enumerate(events):
            await trail.append(
                type=etype,
                agent=agent,
                actor=actor,
                action=action,
                resource=resource,
                decision=decision,
                details=details,
                ts=SEED_TS + 60 * i,
            )
            count += 1
    finally:
        await trail.close()
    return count


def seed_fake_audit(fake: Any, events: Iterable[tuple[Any, ...]] = SEEDED_EVENTS) -> list[Any]:
    """``events`` as audit records of ``fake`` (a FakeEngine), one a minute from :data:`SEED_TS`,
    with the seqs, times and fields :func:`seed_audit_async` gives them on a real trail."""
    out = []
    for i, (etype, agent, actor, action, resource, decision, details) in enumerate(events):
        out.append(
            fake.append_audit(
                etype,
                ts=SEED_TS + 60 * i,
                agent=agent,
                actor=actor,
                action=action,
                resource=resource,
                decision=decision,
                details=details,
            )
        )
    return out


def seed_audit(data_dir: Path, events: Iterable[tuple[Any, ...]] = SEEDED_EVENTS) -> int:
    """:func:`seed_audit_async` from synchronous code (before the app's loop runs)."""
    return asyncio.run(seed_audit_async(data_dir, events))


SEEDED_SECRETS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("app/api_key", "sk-not-a-real-key", {"description": "payment provider key", "tags": ["billing", "prod"]}),
    ("app/db/password", "not-a-real-password", {"description": "app database"}),
    ("shared/db_password", "shared-not-real", {"description": "readable by every agent"}),
    ("team/ci/deploy_token", "token-not-real", {}),
    ("app/api_key", "sk-not-a-real-key-2", {"description": "payment provider key", "tags": ["billing", "prod"]}),
)


def seed_vault(data_dir: Path, secrets: Iterable[tuple[str, str, dict[str, Any]]] = SEEDED_SECRETS) -> None:
    """Write secrets straight into the vault of ``data_dir`` (the master key comes from
    ``SYMBIONT_MASTER_KEY`` when set, else from a key file created in the data dir)."""
    from engine.secrets import SecretsConfig, Vault

    vault = Vault.open(data_dir, SecretsConfig())
    try:
        for name, value, metadata in secrets:
            vault.set(name, value, metadata)
    finally:
        vault.close()


class _FixedTime:
    """Stands in for the ``time`` module inside ``engine.secrets.vault`` (created/updated stamps)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        import time as real

        return getattr(real, name)


def freeze_vault_time(monkeypatch: Any, now: float = SEED_TS) -> None:
    """Fix the vault's created/updated stamps (the vault reads ``time.time()``, not a Clock)."""
    import engine.secrets.vault as vault_module

    monkeypatch.setattr(vault_module, "time", _FixedTime(now))
