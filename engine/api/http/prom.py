"""``GET /metrics``: the engine's figures in the Prometheus text format (version 0.0.4).

Written by hand (a dozen gauges and counters do not need a client library):
``symbi_agents{state=...}``, machine CPU and memory against the engine's
totals, the scheduler's queue, engine events, agent-protocol requests, audit
events, policy decisions by effect, agents' tool calls by outcome, bus
messages and dead letters: what :class:`~engine.api.types.EngineMetrics` carries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from engine.api.types import AgentState, EngineMetrics

if TYPE_CHECKING:
    from engine.api.http.app import Engines

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(m: EngineMetrics, dead_letters: int) -> str:
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lines.append(f"{name}{labels} {value:g}")

    metric(
        "symbi_agents",
        "gauge",
        "Agents by lifecycle state.",
        [(f'{{state="{_label(s.value)}"}}', float(m.agents_by_state.get(s.value, 0))) for s in AgentState],
    )
    metric("symbi_machine_cpu_percent", "gauge", "Machine CPU in use, percent.", [("", m.cpu_percent)])
    metric("symbi_machine_memory_used_bytes", "gauge", "Machine memory in use.", [("", float(m.memory_used_bytes))])
    metric("symbi_machine_memory_total_bytes", "gauge", "Machine memory.", [("", float(m.memory_total_bytes))])
    metric(
        "symbi_allocated_memory_mb", "gauge", "Memory reserved by running agents.", [("", float(m.allocated_memory_mb))]
    )
    metric("symbi_total_memory_mb", "gauge", "Memory the engine may hand out.", [("", float(m.total_memory_mb))])
    metric("symbi_allocated_cpu_cores", "gauge", "CPU reserved by running agents.", [("", m.allocated_cpu_cores)])
    metric("symbi_total_cpu_cores", "gauge", "CPU the engine may hand out.", [("", m.total_cpu_cores)])
    metric("symbi_scheduler_queued", "gauge", "Agents waiting for a slot.", [("", float(m.scheduler_queued))])
    metric("symbi_scheduler_running", "gauge", "Agents holding a slot.", [("", float(m.scheduler_running))])
    metric("symbi_scheduler_dispatched_total", "counter", "Agents dispatched.", [("", float(m.scheduler_dispatched))])
    metric("symbi_events_published_total", "counter", "Engine events published.", [("", float(m.events_published))])
    metric(
        "symbi_events_dropped_total", "counter", "Engine events a slow reader lost.", [("", float(m.events_dropped))]
    )
    metric(
        "symbi_agent_requests_total",
        "counter",
        "Agent-protocol requests answered, by outcome.",
        [('{outcome="ok"}', float(m.rpc_requests - m.rpc_errors)), ('{outcome="error"}', float(m.rpc_errors))],
    )
    metric("symbi_bus_dead_letters", "gauge", "Messages refused or undeliverable (kept).", [("", float(dead_letters))])
    metric("symbi_audit_events", "gauge", "Events in the audit trail (its head seq).", [("", float(m.audit_events))])
    metric(
        "symbi_policy_decisions_total",
        "counter",
        "Policy decisions by effect since the engine opened.",
        [(f'{{effect="{_label(k)}"}}', float(v)) for k, v in sorted(m.policy_decisions.items())],
    )
    metric(
        "symbi_tool_calls_total",
        "counter",
        "Agents' tool calls by outcome since the engine opened.",
        [(f'{{outcome="{o}"}}', float(m.tool_calls.get(o, 0))) for o in ("ok", "error", "denied")],
    )
    metric(
        "symbi_bus_messages_total",
        "counter",
        "Bus messages by what happened to them.",
        [
            ('{stage="sent"}', float(m.bus_sent)),
            ('{stage="delivered"}', float(m.bus_delivered)),
            ('{stage="rejected"}', float(m.bus_rejected)),
        ],
    )
    metric("symbi_uptime_seconds", "gauge", "Seconds since the engine opened.", [("", m.uptime)])
    return "\n".join(lines) + "\n"


def add_routes(api: FastAPI, engines: Engines) -> None:
    @api.get("/metrics", response_class=PlainTextResponse, tags=["metrics"], summary="Prometheus metrics")
    async def metrics(request: Request) -> PlainTextResponse:
        engine = engines.of(request)
        m = await engine.resources.metrics()
        dead = len(await engine.messages.dead_letters(limit=100_000))
        return PlainTextResponse(render(m, dead), media_type=CONTENT_TYPE)
