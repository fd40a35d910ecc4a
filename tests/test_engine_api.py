"""The engine interface (engine.api): its data travels as JSON, read-only refuses by the marks on
the interface, the event stream resumes, and the local implementation works on a real runtime."""

from __future__ import annotations

import asyncio
import collections.abc
import dataclasses
import enum
import inspect
import json
import types
import typing
from typing import Any

import pytest

from engine.api import Engine, ReadOnlyEngine
from engine.api import types as api_types
from engine.api.codec import decode, encode, event_classes, roundtrip
from engine.api.interface import GROUPS, MUTATING, REVEALS, kind_of, methods
from engine.api.local import LocalEngine
from engine.api.types import (
    AgentState,
    AuditFilter,
    EngineMetrics,
    EventBatch,
    RAGRequest,
)
from engine.errors import ErrorCode, SymbiError
from engine.events import AgentLog, AgentStateChanged, Event, EventBus
from engine.runtime import Runtime
from tests.helpers import agent, fast_config

# -- every type round-trips through JSON -------------------------------------------------------


def sample(tp: Any, depth: int = 0) -> Any:
    """A value of type ``tp`` with every field filled (walks the type hints)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return {"k": [1, "two", None, 2.5]}
    if origin is typing.Union or origin is types.UnionType:
        first = next(a for a in typing.get_args(tp) if a is not type(None))
        return sample(first, depth)
    if origin in (list, collections.abc.Sequence) or tp is list:
        (item,) = typing.get_args(tp) or (Any,)
        return [sample(item, depth + 1)]
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return (sample(args[0], depth + 1),)
        return tuple(sample(a, depth + 1) for a in args)
    if origin in (dict, collections.abc.Mapping):
        k, v = typing.get_args(tp)
        return {sample(k, depth + 1): sample(v, depth + 1)}
    if isinstance(tp, type):
        if issubclass(tp, Event):
            tp = AgentStateChanged if tp is Event else tp
        if dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp, vars(__import__(tp.__module__, fromlist=["*"])))
            fields = {
                f.name: sample(hints[f.name], depth + 1) for f in dataclasses.fields(tp) if not f.name.startswith("_")
            }
            return tp(**fields)
        if issubclass(tp, enum.Enum):
            return list(tp)[-1]
        if tp is bool:
            return True
        if tp is int:
            return 7
        if tp is float:
            return 2.5
        if tp is str:
            return "text"
        if tp is type(None):
            return None
    raise AssertionError(f"no sample for {tp!r}")


DATA_TYPES = sorted(
    (
        getattr(api_types, name)
        for name in api_types.__all__
        if isinstance(getattr(api_types, name), type) and dataclasses.is_dataclass(getattr(api_types, name))
    ),
    key=lambda t: t.__name__,
)


@pytest.mark.parametrize("tp", DATA_TYPES, ids=lambda t: t.__name__)
def test_every_interface_type_round_trips_through_json(tp):
    value = sample(tp)
    back = roundtrip(tp, value)
    assert back == value
    assert type(back) is tp


@pytest.mark.parametrize("name", sorted(set(event_classes()) - {"Event"}), ids=str)
def test_every_event_round_trips_with_its_class(name):
    cls = event_classes()[name]
    value = sample(cls)
    text = json.dumps(encode(value))
    assert json.loads(text)["event_type"] == name
    back = decode(Event, json.loads(text))  # decoded through the base type: the tag picks the class
    assert type(back) is cls and back == value


def test_every_declared_return_type_is_an_interface_type():
    """Nothing in the contract hands out a live object: every return annotation decodes."""
    for group in GROUPS.values():
        for name, fn in methods(group).items():
            hint = typing.get_type_hints(fn, vars(__import__("engine.api.interface", fromlist=["*"])))["return"]
            origin = typing.get_origin(hint)
            if origin is not None and origin.__name__ in ("AsyncIterator", "AsyncGenerator"):
                hint = typing.get_args(hint)[0]
            if hint is type(None) or hint is api_types.SecretValue:
                continue
            assert roundtrip(hint, sample(hint)) == sample(hint), f"{group.__name__}.{name}"


def test_a_value_of_the_wrong_shape_is_refused_with_the_field():
    with pytest.raises(SymbiError) as err:
        decode(api_types.AgentInfo, {"id": "a", "config": {"name": 5}})
    assert err.value.code is ErrorCode.API_001
    assert "config" in err.value.message
    with pytest.raises(SymbiError) as err:
        decode(AgentState, "Sleeping")
    assert err.value.code is ErrorCode.API_001 and "Sleeping" in str(err.value.offending)
    with pytest.raises(SymbiError) as err:
        decode(Event, {"event_type": "NoSuchEvent"})
    assert err.value.code is ErrorCode.API_001
    with pytest.raises(SymbiError):
        encode(object())


# -- read-only comes from the marks -----------------------------------------------------------

EXPECTED_MUTATING = {
    "agents": {"create", "update", "start", "stop", "suspend", "resume", "terminate", "delete"},
    "policies": {"save"},
    "secrets": {"set", "delete", "rotate"},
    "knowledge": {"add", "delete"},
    "tools": {
        "approve",
        "reject",
        "defer",
        "reanalyze",
        "approve_call",
        "deny_call",
        "accept_key",
        "reject_key",
        "discover",
    },
}


def test_every_state_changing_method_is_marked_and_only_those():
    for group_name, group in GROUPS.items():
        marked = {m for m in methods(group) if kind_of(group, m) == MUTATING}
        assert marked == EXPECTED_MUTATING.get(group_name, set()), group_name
    assert [(g, m) for g, grp in GROUPS.items() for m in methods(grp) if kind_of(grp, m) == REVEALS] == [
        ("secrets", "reveal")
    ]


class Recorder:
    """An inner engine that records which methods were reached."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        for group in GROUPS:
            setattr(self, group, _RecGroup(group, self.calls))


class _RecGroup:
    def __init__(self, name: str, calls: list[str]) -> None:
        self._name, self._calls = name, calls

    def __getattr__(self, attr: str) -> Any:
        async def call(*_a: Any, **_k: Any) -> str:
            self._calls.append(f"{self._name}.{attr}")
            return "ok"

        return call


async def test_read_only_refuses_every_mutating_and_revealing_method_before_it_reaches_the_engine():
    inner = Recorder()
    ro = ReadOnlyEngine(inner)  # type: ignore[arg-type]
    for group_name, group in GROUPS.items():
        for name in methods(group):
            fn = getattr(getattr(ro, group_name), name)
            if kind_of(group, name) == "reads":
                if not inspect.iscoroutinefunction(getattr(group, name)):
                    continue  # stream/follow: async iterators, passed through untouched
                assert await fn() == "ok"
                continue
            with pytest.raises(SymbiError) as err:
                await fn("x")
            assert err.value.code is ErrorCode.CONSOLE_001
            assert err.value.offending == f"{group_name}.{name}"
    reached = set(inner.calls)
    assert not any(c.split(".")[1] in EXPECTED_MUTATING.get(c.split(".")[0], ()) for c in reached)
    assert "secrets.reveal" not in reached and "agents.list_all" in reached


# -- the event stream resumes ------------------------------------------------------------------


class _BusOnly:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus


def _engine_over(bus: EventBus) -> LocalEngine:
    return LocalEngine(_BusOnly(bus), mode="test")  # type: ignore[arg-type]


def _log(n: int) -> AgentLog:
    return AgentLog(agent_id="a1", name="a", stream="stdout", line=f"line {n}")


async def _take(stream: Any) -> EventBatch:
    batch: EventBatch = await asyncio.wait_for(anext(stream), 5)
    return batch


async def test_a_client_that_reconnects_gets_what_it_missed_and_nothing_twice():
    bus = EventBus(retain=100)
    engine = _engine_over(bus)
    stream = engine.events.stream(after=0)
    for n in range(1, 4):
        bus.publish(_log(n))
    first = await _take(stream)
    assert [e.line for e in first.events] == ["line 1", "line 2", "line 3"] and first.position == 3
    await stream.aclose()  # the client goes away ...
    for n in range(4, 7):
        bus.publish(_log(n))  # ... and these happen meanwhile
    again = engine.events.stream(after=first.position)
    batch = await _take(again)
    assert [e.line for e in batch.events] == ["line 4", "line 5", "line 6"] and batch.missed == 0
    waiting = asyncio.ensure_future(_take(again))  # nothing new: the stream waits
    await asyncio.sleep(0.05)
    assert not waiting.done()
    bus.publish(_log(7))
    assert [e.line for e in (await waiting).events] == ["line 7"]
    await again.aclose()


async def test_a_client_too_far_behind_is_told_how_many_it_missed():
    bus = EventBus(retain=5)
    engine = _engine_over(bus)
    for n in range(1, 13):
        bus.publish(_log(n))
    batch = await _take(engine.events.stream(after=2))
    assert batch.missed == 5  # 3..7 are gone; 8..12 are kept
    assert [e.line for e in batch.events] == [f"line {n}" for n in range(8, 13)]


async def test_a_position_of_another_run_is_refused_and_the_stream_ends_with_the_engine():
    bus = EventBus()
    engine = _engine_over(bus)
    bus.publish(_log(1))
    with pytest.raises(SymbiError) as err:
        await _take(engine.events.stream(after=99))
    assert err.value.code is ErrorCode.API_002 and err.value.offending == 99
    stream = engine.events.stream(types=("AgentStateChanged",))
    pending = asyncio.ensure_future(_take(stream))
    await asyncio.sleep(0.02)
    bus.publish(_log(2))  # filtered out
    bus.publish(AgentStateChanged(agent_id="a1", name="a", old=None, new=AgentState.RUNNING))
    batch = await pending
    assert [type(e).__name__ for e in batch.events] == ["AgentStateChanged"] and batch.position == 3
    bus.close()
    with pytest.raises(StopAsyncIteration):
        await _take(stream)


# -- the local implementation on a real runtime --------------------------------------------------


async def test_the_local_engine_drives_a_real_runtime_through_the_interface(tmp_path):
    engine: Engine = LocalEngine(Runtime(fast_config(), tmp_path / "data"))
    assert not engine.is_open
    await engine.open()
    try:
        info = await engine.info()
        assert info.data_dir == str(tmp_path / "data") and info.run_id and not info.readonly
        events = engine.events.stream()
        created = await engine.agents.create(agent("hello-api"))
        await engine.agents.start("hello-api")
        seen: list[Event] = []
        async with asyncio.timeout(30):
            while not any(isinstance(e, AgentStateChanged) and e.new is AgentState.COMPLETED for e in seen):
                seen.extend((await anext(events)).events)
        assert any("hello" in line for line in await engine.agents.logs(created.id))
        states = [c.state for c in await engine.agents.history("hello-api")]
        assert states[0] is AgentState.CREATED and states[-1] is AgentState.COMPLETED
        metrics = await engine.resources.metrics()
        assert isinstance(metrics, EngineMetrics) and metrics.agents_total == 1
        assert roundtrip(EngineMetrics, metrics) == metrics

        records = await engine.audit.query(AuditFilter(types=("agent.create",)))
        assert [r.resource for r in records] == ["hello-api"] and records[0].actor == "operator"
        assert await engine.audit.count() >= len(records)
        assert (await engine.audit.verify()).ok
        export = await engine.audit.export(AuditFilter(types=("agent.*",)))
        lines = (tmp_path / "data" / "exports" / export.path.rsplit("/", 1)[1]).read_text().splitlines()
        assert len(lines) == export.events > 0

        document = await engine.policies.get()
        check = await engine.policies.validate(document.text + "\n  - oops: [\n")
        assert check.errors and check.errors[0].code == "POLICY_002"
        decision = await engine.policies.test(
            {"agent_id": "x", "resource_type": "Secret", "resource_path": "a/b", "operation": "Read"}
        )
        assert decision.decision in {"Allow", "Deny", "RequireApproval", "Audit"}

        await engine.secrets.set("shared/api", "s3cret-value", {"description": "test"})
        assert await engine.secrets.names() == ["shared/api"]
        assert (await engine.secrets.reveal("shared/api")).reveal() == "s3cret-value"
        listed = await engine.secrets.list_secrets()
        assert listed[0].path == "shared/api" and "s3cret" not in json.dumps(encode(listed))

        item = await engine.knowledge.add(
            "operator", "the deploy window is Tuesday 10:00", "knowledge", share_with=[api_types.EVERYONE]
        )
        usage = await engine.knowledge.usage("operator")
        assert usage.items == {"knowledge": 1} and usage.bytes > 0
        items = await engine.knowledge.list_items(created.id)
        assert [i.id for i in items] == [item.id]  # shared with every agent
        hits = await engine.knowledge.search(created.id, "when is the deploy window")
        assert hits and hits[0].item.id == item.id
        answer = await engine.knowledge.ask(RAGRequest(query="deploy window?", agent_id=created.id))
        assert answer.sources and "Tuesday" in answer.answer
        await engine.knowledge.delete("operator", item.id)
        assert await engine.knowledge.list_items("operator") == []
        put = await engine.audit.query(AuditFilter(types=("memory.*",)))
        assert [r.action for r in put] == ["put", "delete"] and all(r.actor == "operator" for r in put)

        assert await engine.tools.available()  # the tool service is open, with no server configured
        assert (await engine.tools.queue()).total == 0 and await engine.tools.servers() == []
        with pytest.raises(SymbiError) as err:
            await engine.tools.approve("files/read")
        assert err.value.code is ErrorCode.MCP_002 and err.value.offending == "files/read"
        assert await engine.messages.recent() == [] and await engine.messages.dead_letters() == []
        await events.aclose()
    finally:
        await engine.close("test over")
    assert not engine.is_open


async def test_read_only_over_a_real_engine_reads_and_changes_nothing(tmp_path):
    local = LocalEngine(Runtime(fast_config(), tmp_path / "data"))
    await local.open()
    try:
        await local.agents.create(agent("kept"))
        await local.secrets.set("shared/x", "value-never-shown")
        ro = ReadOnlyEngine(local)
        assert (await ro.info()).readonly
        assert [a.name for a in await ro.agents.list_all()] == ["kept"]
        before = await local.audit.count()
        for call in (
            ro.agents.start("kept"),
            ro.agents.delete("kept"),
            ro.secrets.reveal("shared/x"),
            ro.secrets.delete("shared/x"),
            ro.policies.save("version: '1.0'\npolicies: []\n"),
            ro.knowledge.add("operator", "x"),
        ):
            with pytest.raises(SymbiError) as err:
                await call
            assert err.value.code is ErrorCode.CONSOLE_001
        assert (await local.agents.get("kept")).state is AgentState.CREATED
        assert await local.secrets.names() == ["shared/x"]
        assert await local.audit.count() == before  # nothing reached the engine, nothing was recorded
    finally:
        await local.close()


async def test_an_agent_is_updated_only_while_it_does_not_run_and_the_change_is_durable(tmp_path):
    data = tmp_path / "data"
    engine = LocalEngine(Runtime(fast_config(), data))
    await engine.open()
    try:
        await engine.agents.create(agent("before"))
        await engine.agents.create(agent("taken"))
        new = dataclasses.replace((await engine.agents.get("before")).config, name="after", dsl_source="print('v2')\n")
        updated = await engine.agents.update("before", new)
        assert updated.name == "after" and updated.config.dsl_source == "print('v2')\n"
        with pytest.raises(SymbiError) as err:
            await engine.agents.get("before")
        assert err.value.code is ErrorCode.AGENT_001
        with pytest.raises(SymbiError) as err:
            await engine.agents.update("after", dataclasses.replace(new, name="taken"))
        assert err.value.code is ErrorCode.AGENT_006
        with pytest.raises(SymbiError) as err:
            await engine.agents.update("after", dataclasses.replace(new, name="bad name!"))
        assert err.value.code is ErrorCode.AGENT_004
        record = (await engine.audit.query(AuditFilter(types=("agent.update",))))[-1]
        assert record.actor == "operator" and record.details["changed"] == ["dsl_source", "name"]
        assert "v2" not in json.dumps(record.details)  # the program's hash, never its text
        looping = dataclasses.replace(new, dsl_source="import time\nwhile True:\n    time.sleep(0.2)\n")
        await engine.agents.update("after", looping)
        await engine.agents.start("after")
        with pytest.raises(SymbiError) as err:
            await engine.agents.update("after", new)
        assert err.value.code is ErrorCode.AGENT_002 and "cannot update" in err.value.message
        await engine.agents.terminate("after")
    finally:
        await engine.close()
    again = LocalEngine(Runtime(fast_config(), data))
    await again.open()
    try:
        assert sorted(a.name for a in await again.agents.list_all()) == ["after", "taken"]
        assert "while True" in (await again.agents.get("after")).config.dsl_source
    finally:
        await again.close()
