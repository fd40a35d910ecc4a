"""The seed's endpoints, with the seed's paths and shapes (symbi-runtime's ``http-api`` feature).

``GET /api/v1/health`` (the only anonymous route), ``GET``/``POST /api/v1/agents``,
``GET /api/v1/agents/{id}/status``, ``PUT``/``DELETE /api/v1/agents/{id}``,
``POST /api/v1/agents/{id}/execute``, ``GET /api/v1/agents/{id}/history``,
``POST /api/v1/workflows/execute`` and ``GET /api/v1/metrics``. Where the seed's
request has only ``name`` and ``dsl``, ours also takes the optional fields of an
agent's configuration (execution mode, tier, limits, capabilities, schedule).
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from engine.api.types import AgentConfig, AgentInfo, AgentState, StateChange
from engine.errors import ErrorCode, SymbiError

if TYPE_CHECKING:
    from engine.api.http.app import Engines

RUN_ENDS = {AgentState.COMPLETED, AgentState.FAILED, AgentState.TERMINATED}


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CreateAgentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    dsl: str = Field(description="the agent's program (our agents are Python programs)")
    execution_mode: str | None = None
    security_tier: str | None = None
    resource_limits: dict[str, Any] | None = None
    capabilities: list[str] | None = None
    metadata: dict[str, str] | None = None
    priority: str | int | None = None
    schedule: str | None = None
    restart_policy: str | None = Field(default=None, description="never, on-failure (default) or always")


class UpdateAgentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    dsl: str | None = None


class ExecuteAgentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: Any = None


class WorkflowExecutionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workflow_id: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    agent_id: str | None = None


class AgentStatus(BaseModel):
    agent_id: str
    name: str
    state: str
    last_activity: str | None
    scheduled_at: str | None
    resource_usage: dict[str, Any]
    execution_context: dict[str, Any]
    last_error: str | None = None


class IdStatus(BaseModel):
    id: str
    status: str


class ExecutionStarted(BaseModel):
    execution_id: str
    status: str


class ExecutionRecord(BaseModel):
    execution_id: str
    status: str
    timestamp: str | None


class History(BaseModel):
    history: list[ExecutionRecord]


class Health(BaseModel):
    status: str
    uptime_seconds: int
    timestamp: str
    version: str


def runs(agent_id: str, changes: list[StateChange]) -> list[ExecutionRecord]:
    """An agent's executions from its state history: each Running starts one, the next end state ends it."""
    out: list[ExecutionRecord] = []
    for change in changes:
        if change.state is AgentState.RUNNING:
            out.append(
                ExecutionRecord(execution_id=f"{agent_id}:{len(out) + 1}", status="running", timestamp=iso(change.at))
            )
        elif change.state in RUN_ENDS and out and out[-1].status == "running":
            out[-1] = ExecutionRecord(
                execution_id=out[-1].execution_id, status=change.state.value.lower(), timestamp=iso(change.at)
            )
    return out


def status_of(info: AgentInfo) -> AgentStatus:
    uptime = info.uptime(time.time()) if info.state.is_active else None
    return AgentStatus(
        agent_id=info.id,
        name=info.name,
        state=info.state.value.lower(),
        last_activity=iso(info.last_activity or info.updated_at),
        scheduled_at=iso(info.next_run),
        resource_usage={
            "memory_usage": info.usage.rss_bytes,
            "cpu_usage": info.usage.cpu_percent,
            "active_tasks": 1 if info.state is AgentState.RUNNING else 0,
        },
        execution_context={
            "execution_mode": info.config.execution_mode.value.lower(),
            "process_id": info.pid,
            "uptime": None if uptime is None else time.strftime("%H:%M:%S", time.gmtime(uptime)),
            "health_status": "unhealthy" if info.state is AgentState.FAILED else "healthy",
            "tier": info.tier_used,
        },
        last_error=info.last_error,
    )


def config_from(body: CreateAgentRequest) -> AgentConfig:
    data: dict[str, Any] = {"name": body.name, "dsl_source": body.dsl}
    for key in (
        "execution_mode",
        "security_tier",
        "resource_limits",
        "capabilities",
        "metadata",
        "priority",
        "schedule",
    ):
        value = getattr(body, key)
        if value is not None:
            data[key] = value
    try:
        return AgentConfig.from_dict(data)
    except SymbiError:
        raise
    except (TypeError, ValueError) as exc:
        raise SymbiError(ErrorCode.AGENT_004, f"invalid agent configuration: {exc}", offending=body.name) from None


def add_routes(api: FastAPI, engines: Engines) -> None:
    @api.get("/api/v1/health", response_model=Health, tags=["seed"])
    async def health(request: Request) -> Health:
        engine = engines.engine
        info = await engine.info()
        return Health(
            status="healthy" if engine.is_open else "unhealthy",
            uptime_seconds=int(max(0.0, time.time() - info.started_at)),
            timestamp=iso(time.time()) or "",
            version=info.version,
        )

    @api.get("/api/v1/agents", response_model=list[str], tags=["seed"])
    async def list_agents(request: Request) -> list[str]:
        return [a.id for a in await engines.of(request).agents.list_all()]

    @api.post("/api/v1/agents", response_model=IdStatus, tags=["seed"])
    async def create_agent(request: Request, body: CreateAgentRequest) -> IdStatus:
        info = await engines.of(request).agents.create(config_from(body))
        return IdStatus(id=info.id, status="created")

    @api.get("/api/v1/agents/{agent_id}/status", response_model=AgentStatus, tags=["seed"])
    async def agent_status(request: Request, agent_id: str) -> AgentStatus:
        return status_of(await engines.of(request).agents.get(agent_id))

    @api.put("/api/v1/agents/{agent_id}", response_model=IdStatus, tags=["seed"])
    async def update_agent(request: Request, agent_id: str, body: UpdateAgentRequest) -> IdStatus:
        if body.name is None and body.dsl is None:
            raise SymbiError(ErrorCode.AGENT_004, "give at least one of name and dsl", offending=agent_id)
        engine = engines.of(request)
        current = await engine.agents.get(agent_id)
        changes: dict[str, Any] = {}
        if body.name is not None:
            changes["name"] = body.name
        if body.dsl is not None:
            changes["dsl_source"] = body.dsl
        changed = dataclasses.replace(current.config, **changes)
        info = await engine.agents.update(current.id, changed)
        return IdStatus(id=info.id, status="updated")

    @api.delete("/api/v1/agents/{agent_id}", response_model=IdStatus, tags=["seed"])
    async def delete_agent(request: Request, agent_id: str) -> IdStatus:
        engine = engines.of(request)
        info = await engine.agents.get(agent_id)
        await engine.agents.delete(info.id)
        return IdStatus(id=info.id, status="deleted")

    @api.post("/api/v1/agents/{agent_id}/execute", response_model=ExecutionStarted, tags=["seed"])
    async def execute_agent(
        request: Request, agent_id: str, body: ExecuteAgentRequest | None = None
    ) -> ExecutionStarted:
        engine = engines.of(request)
        info = await engine.agents.get(agent_id)
        before = len(runs(info.id, await engine.agents.history(info.id)))
        await engine.agents.start(info.id, input=body.input if body is not None else None)
        return ExecutionStarted(execution_id=f"{info.id}:{before + 1}", status="execution_started")

    @api.get("/api/v1/agents/{agent_id}/history", response_model=History, tags=["seed"])
    async def agent_history(request: Request, agent_id: str) -> History:
        engine = engines.of(request)
        info = await engine.agents.get(agent_id)
        return History(history=runs(info.id, await engine.agents.history(info.id)))

    @api.post("/api/v1/workflows/execute", tags=["seed"])
    async def execute_workflow(request: Request, body: WorkflowExecutionRequest) -> dict[str, Any]:
        raise SymbiError(
            ErrorCode.WORKFLOW_001,
            f"no workflow named {body.workflow_id!r}",
            offending=body.workflow_id,
            hint="workflows are not built yet in this engine (issue 14, item 3); run agents with "
            "POST /api/v1/agents/{id}/execute",
        )

    @api.get("/api/v1/metrics", tags=["seed"])
    async def metrics(request: Request) -> dict[str, Any]:
        engine = engines.of(request)
        m = await engine.resources.metrics()
        dead = len(await engine.messages.dead_letters(limit=100_000))
        by_state = m.agents_by_state
        return {
            "timestamp": iso(time.time()),
            "scheduler": {
                "total_jobs": m.agents_total,
                "active_jobs": sum(by_state.get(s.value, 0) for s in AgentState if s.is_active),
                "paused_jobs": by_state.get(AgentState.SUSPENDED.value, 0),
                "failed_jobs": by_state.get(AgentState.FAILED.value, 0),
                "dead_letter_count": dead,
            },
            "task_manager": {
                "queued_tasks": m.scheduler_queued,
                "running_tasks": m.scheduler_running,
                "dispatched_tasks": m.scheduler_dispatched,
            },
            "system": {
                "cpu_usage_percent": m.cpu_percent,
                "memory_usage_bytes": m.memory_used_bytes,
                "memory_total_bytes": m.memory_total_bytes,
                "uptime_seconds": int(m.uptime),
            },
            "engine": {
                "agents_by_state": by_state,
                "allocated_memory_mb": m.allocated_memory_mb,
                "total_memory_mb": m.total_memory_mb,
                "allocated_cpu_cores": m.allocated_cpu_cores,
                "total_cpu_cores": m.total_cpu_cores,
                "events_published": m.events_published,
            },
        }
