"""The agent model: identifiers, configuration, states and snapshots.

``AgentConfig`` carries the seed's fields and validates itself on creation;
``AgentInfo`` is the immutable snapshot the runtime hands out (the console
never sees the runtime's mutable records).
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass, field, replace
from enum import Enum, IntEnum
from typing import Any

from engine.errors import ErrorCode, SymbiError

AgentId = str

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_SOURCE_BYTES = 1_048_576


def new_agent_id() -> AgentId:
    return str(uuid.uuid4())


class AgentState(str, Enum):
    CREATED = "Created"
    INITIALIZING = "Initializing"
    READY = "Ready"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    WAITING = "Waiting"
    COMPLETED = "Completed"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    TERMINATED = "Terminated"

    @property
    def is_active(self) -> bool:
        """True while the agent holds (or is about to hold) a process."""
        return self in ACTIVE_STATES


ACTIVE_STATES = frozenset(
    {
        AgentState.INITIALIZING,
        AgentState.READY,
        AgentState.RUNNING,
        AgentState.SUSPENDED,
        AgentState.WAITING,
        AgentState.TERMINATING,
    }
)


class Priority(IntEnum):
    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3

    @classmethod
    def parse(cls, value: Any) -> Priority:
        if isinstance(value, Priority):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError:
                pass
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                pass
        raise SymbiError(
            ErrorCode.AGENT_004,
            "invalid priority",
            offending=value,
            hint="use one of Low, Normal, High, Critical",
        )

    @property
    def label(self) -> str:
        return self.name.capitalize()


class ExecutionMode(str, Enum):
    EPHEMERAL = "Ephemeral"
    PERSISTENT = "Persistent"
    SCHEDULED = "Scheduled"


class SecurityTier(str, Enum):
    NATIVE = "Native"
    TIER1 = "Tier1"  # Docker
    TIER2 = "Tier2"  # gVisor
    TIER3 = "Tier3"  # Firecracker


def _parse_enum(enum: type[Enum], value: Any, field_name: str) -> Any:
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        for member in enum:
            if value.strip().lower() in (member.value.lower(), member.name.lower()):
                return member
    allowed = ", ".join(m.value for m in enum)
    raise SymbiError(
        ErrorCode.AGENT_004,
        f"invalid {field_name}",
        offending=value,
        hint=f"use one of {allowed}",
    )


@dataclass(frozen=True, slots=True)
class ResourceLimits:
    """Per-agent limits (the seed's fields). Timeouts are seconds; None = none."""

    memory_mb: int = 256
    cpu_cores: float = 1.0
    disk_io_mbps: int = 100
    network_io_mbps: int = 10
    execution_timeout: float | None = 3600.0
    idle_timeout: float | None = 300.0

    def validate(self) -> None:
        def bad(name: str, value: Any, rule: str) -> SymbiError:
            return SymbiError(
                ErrorCode.AGENT_004,
                f"invalid resource_limits.{name}",
                offending=value,
                hint=rule,
            )

        for name in ("memory_mb", "disk_io_mbps", "network_io_mbps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise bad(name, value, "a whole number greater than 0")
        cpu = self.cpu_cores
        if isinstance(cpu, bool) or not isinstance(cpu, (int, float)) or not math.isfinite(cpu) or cpu <= 0:
            raise bad("cpu_cores", cpu, "a number greater than 0, e.g. 0.5")
        for name in ("execution_timeout", "idle_timeout"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise bad(name, value, "seconds greater than 0, or null for none")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ResourceLimits:
        data = dict(data or {})
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SymbiError(
                ErrorCode.AGENT_004,
                "unknown resource_limits field",
                offending=unknown[0],
                hint=f"known fields: {', '.join(sorted(known))}",
            )
        limits = cls(**data)
        limits.validate()
        return limits


RESTART_POLICIES = ("never", "on-failure", "always")


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """What an agent is. ``dsl_source`` is the agent's Python program."""

    name: str
    dsl_source: str
    execution_mode: ExecutionMode = ExecutionMode.EPHEMERAL
    security_tier: SecurityTier = SecurityTier.NATIVE
    resource_limits: ResourceLimits = field(default_factory=ResourceLimits)
    capabilities: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    priority: Priority = Priority.NORMAL
    schedule: str | None = None
    # as Docker's: "never" (no restart), "on-failure" (restart a failed run, within the restart budget),
    # "always" (also after a clean exit, and resumed when the engine starts if it was running when
    # the engine stopped)
    restart_policy: str = "on-failure"

    def validate(self) -> AgentConfig:
        """Return a normalised copy, or raise AGENT_004 naming the field."""
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise SymbiError(
                ErrorCode.AGENT_004,
                "invalid agent name",
                offending=self.name,
                hint="1-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit",
            )
        if not isinstance(self.dsl_source, str) or not self.dsl_source.strip():
            raise SymbiError(
                ErrorCode.AGENT_004,
                "agent program (dsl_source) is empty",
                offending=self.name,
                hint="give the agent a Python program, e.g. one from examples/agents/",
            )
        if len(self.dsl_source.encode()) > MAX_SOURCE_BYTES:
            raise SymbiError(
                ErrorCode.AGENT_004,
                "agent program (dsl_source) is too large",
                offending=f"{len(self.dsl_source.encode())} bytes",
                hint=f"keep programs under {MAX_SOURCE_BYTES} bytes",
            )
        limits = self.resource_limits
        if isinstance(limits, dict):
            limits = ResourceLimits.from_dict(limits)
        else:
            limits.validate()
        caps = tuple(self.capabilities or ())
        pols = tuple(self.policies or ())
        for cap in caps:
            if not isinstance(cap, str) or not cap:
                raise SymbiError(
                    ErrorCode.AGENT_004, "invalid capability", offending=cap, hint="capabilities are non-empty strings"
                )
        meta = dict(self.metadata or {})
        for key, value in meta.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise SymbiError(
                    ErrorCode.AGENT_004,
                    "invalid metadata entry",
                    offending=key,
                    hint="metadata maps strings to strings",
                )
        mode = _parse_enum(ExecutionMode, self.execution_mode, "execution_mode")
        if mode is ExecutionMode.SCHEDULED and not self.schedule:
            raise SymbiError(
                ErrorCode.AGENT_004,
                "a Scheduled agent needs a schedule (cron expression)",
                offending=self.name,
                hint="set schedule, e.g. '*/5 * * * *'",
            )
        if self.schedule is not None:
            from engine.agents.cron import CronExpr

            CronExpr.parse(self.schedule)
        policy = str(self.restart_policy).strip().lower().replace("_", "-")
        if policy not in RESTART_POLICIES:
            raise SymbiError(
                ErrorCode.AGENT_004,
                "invalid restart_policy",
                offending=self.restart_policy,
                hint=f"one of {', '.join(RESTART_POLICIES)}",
            )
        return replace(
            self,
            restart_policy=policy,
            execution_mode=mode,
            security_tier=_parse_enum(SecurityTier, self.security_tier, "security_tier"),
            resource_limits=limits,
            capabilities=caps,
            policies=pols,
            metadata=meta,
            priority=Priority.parse(self.priority),
        )

    def to_dict(self) -> dict[str, Any]:
        # written out by hand: dataclasses.asdict deep-copies and costs ~80 µs here
        lim = self.resource_limits
        return {
            "name": self.name,
            "dsl_source": self.dsl_source,
            "execution_mode": self.execution_mode.value,
            "security_tier": self.security_tier.value,
            "resource_limits": {
                "memory_mb": lim.memory_mb,
                "cpu_cores": lim.cpu_cores,
                "disk_io_mbps": lim.disk_io_mbps,
                "network_io_mbps": lim.network_io_mbps,
                "execution_timeout": lim.execution_timeout,
                "idle_timeout": lim.idle_timeout,
            },
            "capabilities": list(self.capabilities),
            "policies": list(self.policies),
            "metadata": dict(self.metadata),
            "priority": Priority(self.priority).label,
            "schedule": self.schedule,
            "restart_policy": self.restart_policy,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentConfig:
        data = dict(data)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise SymbiError(
                ErrorCode.AGENT_004,
                "unknown agent config field",
                offending=unknown[0],
                hint=f"known fields: {', '.join(sorted(known))}",
            )
        for required in ("name", "dsl_source"):
            if required not in data:
                raise SymbiError(ErrorCode.AGENT_004, f"agent config is missing {required}", offending=data.get("name"))
        if "resource_limits" in data and not isinstance(data["resource_limits"], ResourceLimits):
            data["resource_limits"] = ResourceLimits.from_dict(data["resource_limits"])
        for key in ("capabilities", "policies"):
            if key in data:
                data[key] = tuple(data[key] or ())
        return cls(**data).validate()


@dataclass(frozen=True, slots=True)
class StateChange:
    """One entry of an agent's state history."""

    state: AgentState
    at: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Usage:
    """The latest measured usage of an agent's process tree."""

    cpu_percent: float = 0.0
    rss_bytes: int = 0
    read_bytes: int = 0
    write_bytes: int = 0
    num_procs: int = 0
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """An immutable snapshot of one agent, as the runtime reports it."""

    id: AgentId
    config: AgentConfig
    state: AgentState
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    pid: int | None = None
    restart_count: int = 0
    exit_code: int | None = None
    last_error: str | None = None
    usage: Usage = field(default_factory=Usage)
    tier_used: str | None = None  # how the last run was isolated, e.g. "native+bwrap"
    next_run: float | None = None  # Scheduled agents: when the next run is due
    input: Any = None
    result: Any = None
    last_activity: float | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def priority(self) -> Priority:
        return self.config.priority

    @property
    def tier(self) -> SecurityTier:
        return self.config.security_tier

    @property
    def limits(self) -> ResourceLimits:
        return self.config.resource_limits

    def uptime(self, now: float) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at and not self.state.is_active else now
        return max(0.0, end - self.started_at)
