"""The engine's figures as one snapshot (``Runtime.metrics()``; the interface's ``EngineMetrics``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RuntimeMetrics:
    """A snapshot of the whole engine for dashboards (``engine.api.EngineMetrics``, ``GET /api/v1/metrics``)."""

    data_dir: str
    mode: str
    uptime: float
    agents_total: int
    agents_by_state: dict[str, int]
    cpu_percent: float
    memory_used_bytes: int
    memory_total_bytes: int
    total_memory_mb: int
    total_cpu_cores: float
    allocated_memory_mb: int
    allocated_cpu_cores: float
    scheduler_queued: int
    scheduler_running: int
    scheduler_dispatched: int
    events_published: int
    events_dropped: int
    rpc_requests: int = 0  # agent-protocol requests answered, over every agent run since the engine opened
    rpc_errors: int = 0  # ... answered with an error (PROTO_*, refused calls)
    rpc_resets: int = 0  # connections an agent reset or closed with replies unread (handled quietly)
    audit_events: int = 0  # events in the audit trail (its head seq)
    policy_decisions: dict[str, int] = field(default_factory=dict)  # decisions by effect since the engine opened
    tool_calls: dict[str, int] = field(default_factory=dict)  # agents' tool calls by outcome: ok, error, denied
    bus_sent: int = 0
    bus_delivered: int = 0
    bus_rejected: int = 0
    bus_dead_letters: int = 0
