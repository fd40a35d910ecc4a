"""The agent protocol gate: every request an agent makes passes here.

One place to check, perform and record what an agent asks of the runtime.
Methods the runtime does not offer (yet) answer ``PROTO_004``; unknown ones
``PROTO_003``; nothing hangs.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from engine.agents import protocol
from engine.errors import ErrorCode, SymbiError

if TYPE_CHECKING:
    from engine.runtime import Runtime, _Agent

MAX_RESULT_BYTES = 1_048_576
MAX_LOG_CHARS = 8192

_NOT_YET = {
}

Handler = Callable[["AgentGate", "_Agent", dict[str, Any]], Awaitable[Any]]


class AgentGate:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.methods: dict[str, Handler] = {
            "log": AgentGate.log,
            "heartbeat": AgentGate.heartbeat,
            "status": AgentGate.status,
            "input": AgentGate.input,
            "result": AgentGate.result,
            "secret.get": AgentGate.secret_get,
            "bus.send": AgentGate.bus_send,
            "bus.receive": AgentGate.bus_receive,
            "bus.subscribe": AgentGate.bus_subscribe,
            "tool.call": AgentGate.tool_call,
            "memory.put": AgentGate.memory_put,
            "memory.query": AgentGate.memory_query,
        }

    def add(self, method: str, handler: Handler) -> None:
        """Offer another method (capabilities register theirs when they are open)."""
        self.methods[method] = handler

    async def handle(self, agent: _Agent, method: str, params: dict[str, Any]) -> Any:
        agent.last_activity = self.rt.clock.time()
        handler = self.methods.get(method)
        if handler is None:
            if method in protocol.METHODS:
                raise SymbiError(
                    ErrorCode.PROTO_004,
                    f"{method} is not available in this runtime",
                    offending=method,
                    hint=_NOT_YET.get(method.split(".")[0], "see the README for what is available"),
                )
            raise SymbiError(
                ErrorCode.PROTO_003,
                f"unknown method {method!r}",
                offending=method,
                hint=f"methods: {', '.join(protocol.METHODS)}",
            )
        return await handler(self, agent, params)

    async def log(self, agent: _Agent, params: dict[str, Any]) -> dict[str, Any]:
        message = params.get("message")
        if not isinstance(message, str):
            raise SymbiError(ErrorCode.PROTO_001, "log needs a string message", offending=type(message).__name__)
        level = str(params.get("level", "info"))[:16]
        self.rt._on_output(agent, f"agent:{level}", message[:MAX_LOG_CHARS])
        return {"ok": True}

    async def heartbeat(self, agent: _Agent, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "state": agent.state.value, "at": agent.last_activity}

    async def status(self, agent: _Agent, params: dict[str, Any]) -> dict[str, Any]:
        lim = agent.config.resource_limits
        return {
            "id": agent.id,
            "name": agent.config.name,
            "state": agent.state.value,
            "tier": agent.tier_used,
            "mode": agent.config.execution_mode.value,
            "restart_count": agent.restart_count,
            "limits": {
                "memory_mb": lim.memory_mb,
                "cpu_cores": lim.cpu_cores,
                "execution_timeout": lim.execution_timeout,
            },
            "capabilities": list(agent.config.capabilities),
        }

    async def input(self, agent: _Agent, params: dict[str, Any]) -> Any:
        return agent.input

    # -- memory -------------------------------------------------------------------------

    async def memory_put(self, agent: _Agent, params: dict[str, Any]) -> dict[str, Any]:
        return await self.rt.knowledge.put(agent, params)

    async def memory_query(self, agent: _Agent, params: dict[str, Any]) -> list[dict[str, Any]]:
        return await self.rt.knowledge.query(agent, params)

    # -- tools ------------------------------------------------------------------------

    async def tool_call(self, agent: _Agent, params: dict[str, Any]) -> dict[str, Any]:
        """An MCP tool call through the tool gate: known, verified, approved, allowed by policy,
        approved per call by a human when policy says RequireApproval; audited with redaction."""
        if self.rt.tools is None:
            raise SymbiError(ErrorCode.MCP_001, "no tool service is open in this runtime")
        tool_id = params.get("tool") or params.get("name")
        if not isinstance(tool_id, str) or not tool_id:
            raise SymbiError(ErrorCode.PROTO_001, "tool.call needs a tool id", hint='send {"name": "server/tool"}')
        arguments = params.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise SymbiError(ErrorCode.PROTO_001, "tool arguments must be an object", offending=tool_id)
        result = await self.rt.tools.call(agent, tool_id, arguments)
        return result.to_dict()

    # -- messages ---------------------------------------------------------------------

    def _bus(self) -> Any:
        if self.rt.messages is None:
            raise SymbiError(ErrorCode.COMM_001, "the message bus is not open")
        return self.rt.messages

    async def bus_send(self, agent: _Agent, params: dict[str, Any]) -> dict[str, Any]:
        """Send to another agent (``to``: its name or id) or publish to a ``topic``. Policy decides
        (Message, Send/Publish); the bus signs, encrypts and audits (metadata only)."""
        bus = self._bus()
        try:
            payload = base64.b64decode(params.get("payload_b64", ""), validate=True)
        except (ValueError, TypeError):
            raise SymbiError(ErrorCode.PROTO_001, "payload_b64 must be base64") from None
        ttl = params.get("ttl")
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float))):
            raise SymbiError(ErrorCode.PROTO_001, "ttl must be a number of seconds", offending=ttl)
        topic = params.get("topic")
        if topic is not None:
            decision, request = self.rt.policies.check(agent, "Message", f"topics/{topic}", "Publish")
            if not decision.allowed:
                raise self.rt.policies.denied(decision, f"publishing to topic {topic!r}", str(topic))
            msg_id = await bus.publish(agent.id, str(topic), payload, ttl=ttl, block=True, timeout=5.0)
            return {"id": msg_id, "topic": topic}
        to = params.get("to")
        if not isinstance(to, str) or not to:
            raise SymbiError(ErrorCode.PROTO_001, "bus.send needs 'to' (an agent name or id) or 'topic'")
        try:
            peer = self.rt._get(to)
        except SymbiError:
            raise SymbiError(ErrorCode.COMM_007, "unknown recipient", offending=to, hint="address agents by name") from None
        decision, request = self.rt.policies.check(agent, "Message", peer.config.name, "Send")
        if not decision.allowed:
            raise self.rt.policies.denied(decision, f"sending to {peer.config.name!r}", peer.config.name)
        if peer.id not in self.rt._bus_members:
            raise SymbiError(
                ErrorCode.COMM_007, "the recipient has never run, so it has no mailbox yet", offending=to,
                hint="start the recipient first",
            )
        msg_id = await bus.send(agent.id, peer.id, payload, ttl=ttl, block=True, timeout=5.0)
        return {"id": msg_id, "to": peer.config.name}

    async def bus_receive(self, agent: _Agent, params: dict[str, Any]) -> dict[str, Any] | None:
        timeout = params.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0):
            raise SymbiError(ErrorCode.PROTO_001, "timeout must be a number of seconds >= 0", offending=timeout)
        delivered = await self._bus().receive(agent.id, timeout=min(timeout, 300.0) if timeout is not None else 300.0)
        if delivered is None:
            return None
        sender = self.rt._agents.get(delivered.sender)
        return {
            "id": delivered.id,
            "sender": sender.config.name if sender else delivered.sender,
            "type": delivered.type.value,
            "topic": delivered.topic,
            "payload_b64": base64.b64encode(delivered.payload).decode(),
            "verified": delivered.verified,
        }

    async def bus_subscribe(self, agent: _Agent, params: dict[str, Any]) -> dict[str, Any]:
        topic = params.get("topic")
        if not isinstance(topic, str) or not topic:
            raise SymbiError(ErrorCode.PROTO_001, "bus.subscribe needs a topic")
        decision, _ = self.rt.policies.check(agent, "Message", f"topics/{topic}", "Receive")
        if not decision.allowed:
            raise self.rt.policies.denied(decision, f"subscribing to topic {topic!r}", topic)
        self._bus().subscribe(agent.id, topic)
        return {"ok": True, "topic": topic}

    async def secret_get(self, agent: _Agent, params: dict[str, Any]) -> dict[str, Any]:
        return await self.rt.secrets.read_for_agent(agent, params)

    async def result(self, agent: _Agent, params: dict[str, Any]) -> dict[str, Any]:
        if "value" not in params:
            raise SymbiError(ErrorCode.PROTO_001, "result needs a value", hint='send {"value": ...}')
        encoded = json.dumps(params["value"])
        if len(encoded) > MAX_RESULT_BYTES:
            raise SymbiError(ErrorCode.PROTO_002, f"result is over {MAX_RESULT_BYTES} bytes", offending=len(encoded))
        agent.result = params["value"]
        self.rt._store_update(agent, result=encoded)
        self.rt._engine_log(agent, f"result recorded ({len(encoded)} bytes)")
        return {"ok": True}
