"""The agent protocol gate: every request an agent makes passes one door.

:meth:`AgentGate.handle` is the only way from an agent's channel into the
engine. Each method first *plans* its request (checks the parameters and
says what it would touch, as a :class:`Access`, and how it would act); then
the door, in one place, evaluates policy on what is touched, records the
decision durably in the audit trail (allow and deny alike, naming the agent,
the resource and the deciding policy) and only then acts. If the record
cannot be written (``AUDIT_001``) the action does not happen: the
:class:`~engine.agents.ports.Recorder` is the fail-closed path every operator
action uses too.

The gate sees the engine through narrow ports (a recorder, a policy checker,
an agent directory, the agent journal) and the planners of the services it
fronts (secrets, memory); the message bus and the tool service are read at
call time, since they open after the gate is built.

Methods that touch no resource (:data:`UNCHECKED`) pass the same door
without a check. ``tool.call`` is :data:`DELEGATED` to the tool service,
whose policy check (with per-call human approval) and audit are required
arguments. A method that is in neither set and plans no access is refused:
nothing reaches the engine unchecked by accident.

Audit types of the decisions: ``secret.read``, ``memory.put``,
``memory.query`` (as before), ``tool.call`` (the tool service's) and
``bus.authorize`` for the bus (action ``send``, ``publish``, ``subscribe`` or
``receive``; ``bus.send``/``bus.deliver``/``bus.reject`` stay the transport's
records of the messages themselves).

Methods the runtime does not offer (yet) answer ``PROTO_004``; unknown ones
``PROTO_003``; nothing hangs.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.agents import protocol
from engine.agents.ports import AgentDirectory, AgentJournal, PolicyChecker, Recorder
from engine.agents.record import AgentRecord
from engine.clock import Clock
from engine.errors import ErrorCode, SymbiError

if TYPE_CHECKING:
    from engine.comms import MessageBus
    from engine.mcp_tools import ToolService

MAX_RESULT_BYTES = 1_048_576
MAX_LOG_CHARS = 8192

_NOT_YET: dict[str, str] = {}

# methods that touch no resource: no policy check, no record (they still pass the door)
UNCHECKED = frozenset({"hello", "log", "heartbeat", "status", "input", "result"})
# methods whose service enforces policy and audit itself (required, never optional there)
DELEGATED = frozenset({"tool.call"})

BUS_DECISION = "bus.authorize"


@dataclass(frozen=True)
class Access:
    """What one request touches, as policy and the audit trail see it.

    Every path in ``resources`` must be allowed (the first refused one decides);
    the record names them all (joined with commas) unless ``record_resource`` says otherwise.
    ``what`` describes the access for a refusal; ``{resource}`` is replaced by the refused path.
    """

    event: str
    action: str
    resource_type: str
    resources: tuple[str, ...]
    operation: str
    what: str
    details: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    record_resource: str | None = None


@dataclass(frozen=True)
class Step:
    """A planned request: what it touches (None: nothing) and how it acts once allowed and recorded."""

    act: Callable[[], Awaitable[Any]]
    access: Access | None = None


def step(value: Any) -> Step:
    """A step that touches nothing and answers ``value``."""

    async def answer() -> Any:
        return value

    return Step(answer)


Plan = Callable[["AgentGate", AgentRecord, dict[str, Any]], Awaitable[Step]]
# a service's planner for one method: (the agent on the channel, its params) -> the Step
Planner = Callable[[AgentRecord, dict[str, Any]], Step]


class AgentGate:
    def __init__(
        self,
        *,
        clock: Clock,
        agents: AgentDirectory,
        journal: AgentJournal,
        recorder: Recorder,
        policies: PolicyChecker,
        secret_read: Planner,
        memory_put: Planner,
        memory_query: Planner,
        messages: Callable[[], MessageBus | None],
        tools: Callable[[], ToolService | None],
    ) -> None:
        self.clock = clock
        self.agents = agents
        self.journal = journal
        self.recorder = recorder
        self.policies = policies
        self.plan_secret_read = secret_read
        self.plan_memory_put = memory_put
        self.plan_memory_query = memory_query
        self.messages = messages
        self.tools = tools
        self.methods: dict[str, Plan] = {
            "hello": AgentGate.hello,
            "log": AgentGate.log,
            "heartbeat": AgentGate.heartbeat,
            "status": AgentGate.status,
            "input": AgentGate.agent_input,
            "result": AgentGate.result,
            "secret.get": AgentGate.secret_get,
            "bus.send": AgentGate.bus_send,
            "bus.receive": AgentGate.bus_receive,
            "bus.subscribe": AgentGate.bus_subscribe,
            "tool.call": AgentGate.tool_call,
            "memory.put": AgentGate.memory_put,
            "memory.query": AgentGate.memory_query,
        }

    def add(self, method: str, plan: Plan) -> None:
        """Offer another method (capabilities register theirs when they are open); it passes the same door."""
        self.methods[method] = plan

    # -- the door ---------------------------------------------------------------------

    async def handle(self, agent: AgentRecord, method: str, params: dict[str, Any]) -> Any:
        agent.last_activity = self.clock.time()
        plan = self.methods.get(method)
        if plan is None:
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
        planned = await plan(self, agent, params)
        if planned.access is not None:
            await self.enforce(agent, planned.access)
        elif method not in UNCHECKED and method not in DELEGATED:
            raise SymbiError(
                ErrorCode.PROTO_004,
                f"{method} declares no access to check, so it is refused",
                offending=method,
                hint="a method that touches a resource must plan an Access",
            )
        return await planned.act()

    async def enforce(self, agent: AgentRecord, access: Access) -> None:
        """Evaluate policy, record the decision durably (allow and deny), raise ``POLICY_001`` on a denial.

        A failed record raises (``AUDIT_001``) before anything is done: fail closed."""
        checks = [
            (
                path,
                *self.policies.check(agent, access.resource_type, path, access.operation, metadata=access.metadata),
            )
            for path in access.resources
        ]
        refused = next((c for c in checks if not c[1].allowed), None)
        path, decision, request = refused if refused is not None else checks[0]
        resource = access.record_resource if access.record_resource is not None else ",".join(access.resources)
        await self.recorder.record(
            access.event,
            agent,
            access.action,
            actor=f"agent:{agent.id}",
            resource=resource,
            decision="deny" if refused is not None else "allow",
            details={
                **access.details,
                "policy": decision.policy,
                "policy_decision": decision.decision,
                "policy_request": request,
            },
        )
        if refused is not None:
            raise self.policies.denied(decision, access.what.format(resource=path), path)

    # -- methods that touch nothing -----------------------------------------------------

    async def hello(self, agent: AgentRecord, params: dict[str, Any]) -> Step:
        """A hello after the channel's first (which the RPC server checks against the launch token)."""
        return step({"ok": True, "methods": list(protocol.METHODS)})

    async def log(self, agent: AgentRecord, params: dict[str, Any]) -> Step:
        message = params.get("message")
        if not isinstance(message, str):
            raise SymbiError(ErrorCode.PROTO_001, "log needs a string message", offending=type(message).__name__)
        level = str(params.get("level", "info"))[:16]

        async def act() -> dict[str, Any]:
            self.journal.output(agent, f"agent:{level}", message[:MAX_LOG_CHARS])
            return {"ok": True}

        return Step(act)

    async def heartbeat(self, agent: AgentRecord, params: dict[str, Any]) -> Step:
        return step({"ok": True, "state": agent.state.value, "at": agent.last_activity})

    async def status(self, agent: AgentRecord, params: dict[str, Any]) -> Step:
        lim = agent.config.resource_limits
        return step(
            {
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
        )

    async def agent_input(self, agent: AgentRecord, params: dict[str, Any]) -> Step:
        return step(agent.input)

    async def result(self, agent: AgentRecord, params: dict[str, Any]) -> Step:
        if "value" not in params:
            raise SymbiError(ErrorCode.PROTO_001, "result needs a value", hint='send {"value": ...}')
        encoded = json.dumps(params["value"])
        if len(encoded) > MAX_RESULT_BYTES:
            raise SymbiError(ErrorCode.PROTO_002, f"result is over {MAX_RESULT_BYTES} bytes", offending=len(encoded))

        async def act() -> dict[str, Any]:
            agent.result = params["value"]
            self.journal.persist(agent, result=encoded)
            self.journal.log(agent, f"result recorded ({len(encoded)} bytes)")
            return {"ok": True}

        return Step(act)

    # -- secrets and memory (their services plan the access and act) ----------------------

    async def secret_get(self, agent: AgentRecord, params: dict[str, Any]) -> Step:
        return self.plan_secret_read(agent, params)

    async def memory_put(self, agent: AgentRecord, params: dict[str, Any]) -> Step:
        return self.plan_memory_put(agent, params)

    async def memory_query(self, agent: AgentRecord, params: dict[str, Any]) -> Step:
        return self.plan_memory_query(agent, params)

    # -- tools ------------------------------------------------------------------------

    async def tool_call(self, agent: AgentRecord, params: dict[str, Any]) -> Step:
        """An MCP tool call through the tool service (DELEGATED): known, verified, approved, allowed by
        policy, approved per call by a human when policy says RequireApproval; audited with redaction."""
        tools = self.tools()
        if tools is None:
            raise SymbiError(ErrorCode.MCP_001, "no tool service is open in this runtime")
        tool_id = params.get("tool") or params.get("name")
        if not isinstance(tool_id, str) or not tool_id:
            raise SymbiError(ErrorCode.PROTO_001, "tool.call needs a tool id", hint='send {"name": "server/tool"}')
        arguments = params.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise SymbiError(ErrorCode.PROTO_001, "tool arguments must be an object", offending=tool_id)

        async def act() -> dict[str, Any]:
            result = await tools.call(agent, tool_id, arguments)
            return result.to_dict()

        return Step(act)

    # -- messages ---------------------------------------------------------------------

    def _bus(self) -> MessageBus:
        bus = self.messages()
        if bus is None:
            raise SymbiError(ErrorCode.COMM_001, "the message bus is not open")
        return bus

    def _bus_access(self, action: str, resource: str, operation: str, what: str, **details: Any) -> Access:
        return Access(BUS_DECISION, action, "Message", (resource,), operation, what, details=details)

    async def bus_send(self, agent: AgentRecord, params: dict[str, Any]) -> Step:
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
            topic = str(topic)

            async def publish() -> dict[str, Any]:
                msg_id = await bus.publish(agent.id, topic, payload, ttl=ttl, block=True, timeout=5.0)
                return {"id": msg_id, "topic": topic}

            access = self._bus_access(
                "publish", f"topics/{topic}", "Publish", f"publishing to topic {topic!r}", bytes=len(payload)
            )
            return Step(publish, access)
        to = params.get("to")
        if not isinstance(to, str) or not to:
            raise SymbiError(ErrorCode.PROTO_001, "bus.send needs 'to' (an agent name or id) or 'topic'")
        try:
            peer = self.agents.get(to)
        except SymbiError:
            raise SymbiError(
                ErrorCode.COMM_007, "unknown recipient", offending=to, hint="address agents by name"
            ) from None

        async def send() -> dict[str, Any]:
            if not bus.is_registered(peer.id):
                raise SymbiError(
                    ErrorCode.COMM_007,
                    "the recipient has never run, so it has no mailbox yet",
                    offending=to,
                    hint="start the recipient first",
                )
            msg_id = await bus.send(agent.id, peer.id, payload, ttl=ttl, block=True, timeout=5.0)
            return {"id": msg_id, "to": peer.config.name}

        name = peer.config.name
        access = self._bus_access("send", name, "Send", f"sending to {name!r}", bytes=len(payload), recipient=peer.id)
        return Step(send, access)

    async def bus_receive(self, agent: AgentRecord, params: dict[str, Any]) -> Step:
        """The next message in the agent's own mailbox (Message ``<its name>``, Receive)."""
        timeout = params.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0):
            raise SymbiError(ErrorCode.PROTO_001, "timeout must be a number of seconds >= 0", offending=timeout)
        bus = self._bus()
        wait = min(timeout, 300.0) if timeout is not None else 300.0

        async def receive() -> dict[str, Any] | None:
            delivered = await bus.receive(agent.id, timeout=wait)
            if delivered is None:
                return None
            sender = self.agents.find(delivered.sender)
            return {
                "id": delivered.id,
                "sender": sender.config.name if sender else delivered.sender,
                "type": delivered.type.value,
                "topic": delivered.topic,
                "payload_b64": base64.b64encode(delivered.payload).decode(),
                "verified": delivered.verified,
            }

        name = agent.config.name
        return Step(receive, self._bus_access("receive", name, "Receive", "receiving messages", timeout=wait))

    async def bus_subscribe(self, agent: AgentRecord, params: dict[str, Any]) -> Step:
        topic = params.get("topic")
        if not isinstance(topic, str) or not topic:
            raise SymbiError(ErrorCode.PROTO_001, "bus.subscribe needs a topic")
        bus = self._bus()

        async def subscribe() -> dict[str, Any]:
            bus.subscribe(agent.id, topic)
            return {"ok": True, "topic": topic}

        access = self._bus_access("subscribe", f"topics/{topic}", "Receive", f"subscribing to topic {topic!r}")
        return Step(subscribe, access)
