"""Reading the audit trail: filters, paging, tail, follow, export, times, and
hypothesis round-trips of arbitrary event contents through the real file."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import sqlite3
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.audit import AuditFilter, AuditReader, AuditTrail, canonical_json, parse_time, verify
from engine.audit.canonical import RECORD_CANONICAL_SQL, record_canonical
from engine.clock import FakeClock
from engine.errors import ErrorCode, SymbiError
from tests.test_audit_support import fill

T0 = 1_800_000_000.0


async def _trail_with_history(path) -> AuditTrail:
    clock = FakeClock(T0)
    trail = await AuditTrail(path, clock=clock, checkpoint_every=25).open()
    for i in range(60):
        clock.advance(60)  # one event a minute
        await trail.append(
            type=("agent.state", "tool.call", "secret.read")[i % 3],
            agent=f"agent-{i % 4}",
            actor="operator" if i % 10 == 0 else f"agent:agent-{i % 4}",
            action="call" if i % 3 == 1 else "transition",
            resource=f"res/{i}",
            decision="deny" if i % 7 == 0 else "allow",
            details={"i": i, "msg": "needle in a haystack" if i == 33 else "hay"},
        )
    return trail


async def test_filters_and_paging(tmp_path):
    trail = await _trail_with_history(tmp_path)
    try:
        assert await trail.count() == 60
        tools = await trail.query(types="tool.call", limit=100)
        assert len(tools) == 20 and all(r.type == "tool.call" for r in tools)
        assert await trail.count(types=["agent.*"]) == 20
        assert await trail.count(types="tool.call,secret.read") == 40
        denied = await trail.query(decision="deny", agent="agent-0", limit=100)
        assert [r.details["i"] for r in denied] == [0, 28, 56]
        (hit,) = await trail.query(text="needle")
        assert hit.details["i"] == 33
        assert await trail.count(text="50%_") == 0  # LIKE wildcards are literal
        assert await trail.count(actor="operator") == 6
        # time range: events are one minute apart starting at T0 + 60
        window = await trail.query(since=T0 + 10 * 60, until=T0 + 19 * 60, limit=100)
        assert [r.details["i"] for r in window] == list(range(9, 19))
        # paging by offset and by seq (keyset) agree
        page2 = await trail.query(limit=10, offset=10)
        keyset = await trail.query(limit=10, after_seq=10)
        assert [r.seq for r in page2] == [r.seq for r in keyset] == list(range(11, 21))
        newest = await trail.query(limit=3, newest_first=True)
        assert [r.seq for r in newest] == [60, 59, 58]
        assert [r.seq for r in await trail.tail(3)] == [58, 59, 60]
        assert [r.seq for r in await trail.tail(2, types="tool.call")] == [56, 59]
        combined = await trail.query(AuditFilter(types=("tool.call",)), decision="deny", limit=50)
        assert all(r.type == "tool.call" and r.decision == "deny" for r in combined) and combined
    finally:
        await trail.close()


async def test_bad_query_input_names_it(tmp_path):
    trail = await _trail_with_history(tmp_path)
    try:
        for kwargs, offending in (
            ({"since": "yesterday-ish"}, "yesterday-ish"),
            ({"until": "2026-13-45"}, "2026-13-45"),
            ({"types": "bad type!"}, "bad type!"),
            ({"limit": 0}, 0),
            ({"offset": -1}, -1),
            ({"since": "1m", "until": "2h"}, None),
        ):
            with pytest.raises(SymbiError) as exc:
                await trail.query(**kwargs)
            assert exc.value.code is ErrorCode.AUDIT_003
            if offending is not None:
                assert exc.value.offending == offending
    finally:
        await trail.close()


def test_parse_time():
    now = 1_800_000_000.0
    assert parse_time("10m", now=now) == now - 600
    assert parse_time("1h30m ago", now=now) == now - 5400
    assert parse_time("now", now=now) == now
    assert parse_time("2027-01-15T08:00:00Z") == datetime(2027, 1, 15, 8, tzinfo=UTC).timestamp()
    assert parse_time("2027-01-15T08:00:00+00:00") == parse_time("2027-01-15 08:00Z")
    assert parse_time("1800000000") == 1_800_000_000.0
    assert parse_time(12.5) == 12.5
    with pytest.raises(SymbiError) as exc:
        parse_time("last tuesday", name="--since")
    assert exc.value.code is ErrorCode.AUDIT_003 and "--since time" in exc.value.message


async def test_export_jsonl_is_independently_checkable(tmp_path):
    trail = await _trail_with_history(tmp_path / "d")
    try:
        out = tmp_path / "export.jsonl"
        assert await trail.export_jsonl(out) == 60
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        prev = "0" * 64
        for line in lines:  # recompute every hash from the exported fields alone
            body = {k: v for k, v in line.items() if k not in ("hash", "time")}
            assert body["prev_hash"] == prev
            assert hashlib.sha256(canonical_json(body).encode()).hexdigest() == line["hash"]
            prev = line["hash"]
        buf = io.StringIO()
        assert await trail.export_jsonl(buf, decision="deny") == 9
        assert all(json.loads(x)["decision"] == "deny" for x in buf.getvalue().splitlines())
    finally:
        await trail.close()


async def test_follow_yields_new_events_as_they_commit(tmp_path):
    async with AuditTrail(tmp_path) as trail:
        await fill(trail, 3)
        seen: list[int] = []

        async def follower() -> None:
            async for rec in trail.follow(types="tool.call"):
                seen.append(rec.seq)
                if len(seen) == 3:
                    return

        task = asyncio.create_task(follower())
        await asyncio.sleep(0.05)
        for i in range(6):
            await trail.append(type="tool.call" if i % 2 else "agent.state", details={"i": i})
        await asyncio.wait_for(task, 5)
        assert seen == [5, 7, 9]


async def test_follow_from_another_reader_polls(tmp_path):
    async with AuditTrail(tmp_path) as trail:
        await fill(trail, 2)
        async with AuditReader(tmp_path) as reader:
            agen = reader.follow(poll_interval=0.02)
            nxt = asyncio.ensure_future(agen.__anext__())
            await asyncio.sleep(0.05)
            rec = await trail.append(type="engine.stop")
            assert (await asyncio.wait_for(nxt, 5)).hash == rec.hash
            await agen.aclose()


# -- hypothesis: arbitrary contents round-trip and verify ---------------------------

json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
safe_key = st.text(max_size=12).filter(
    lambda k: (
        not any(w in k.lower() for w in ("pass", "secret", "token", "key", "auth", "cookie", "credential", "bearer"))
    )
)


def test_random_contents_round_trip_and_verify(tmp_path):
    """One real trail; every generated event goes through redaction, the chain and the file, and back."""
    loop = asyncio.new_event_loop()
    trail = loop.run_until_complete(AuditTrail(tmp_path, checkpoint_every=7).open())

    @settings(max_examples=80, deadline=None)
    @given(
        details=st.dictionaries(safe_key, json_value, max_size=5),
        action=st.text(),
        resource=st.text(),
        agent=st.none() | st.text(min_size=1, max_size=20).filter(lambda a: a.isprintable()),
    )
    def one(details, action, resource, agent):
        rec = loop.run_until_complete(
            trail.append(type="tool.call", action=action, resource=resource, agent=agent, details=details)
        )
        stored = loop.run_until_complete(trail.reader.get(rec.seq))
        if "=" not in action + resource and not {"bearer", "basic"} & set((action + resource).lower().split()):
            assert (rec.action, rec.resource, rec.agent) == (action, resource, agent)
        assert stored == rec
        assert canonical_json(stored.details) == canonical_json(rec.details)

    try:
        one()
    finally:
        loop.run_until_complete(trail.close())
        loop.close()
    report = verify(tmp_path)
    assert report.ok and report.events_checked >= 80, report.render()
    _sql_canonical_matches_python(tmp_path)


def _sql_canonical_matches_python(path) -> None:
    con = sqlite3.connect(path / "audit.db")
    for row in con.execute(
        f"SELECT seq, ts_us, type, agent, actor, action, resource, decision, details, prev_hash, {RECORD_CANONICAL_SQL} "
        "FROM events"
    ):
        assert row[-1] == record_canonical(*row[:-1]).encode()
    con.close()


@settings(max_examples=40, deadline=None)
@given(
    fields=st.fixed_dictionaries({"action": st.text(), "details": st.dictionaries(st.text(), json_value, max_size=4)})
)
def test_record_canonical_equals_canonical_json_of_the_record(fields):
    details = json.loads(canonical_json(fields["details"]))
    body = {
        "seq": 7,
        "ts_us": 123,
        "type": "x.y",
        "agent": None,
        "actor": "engine",
        "action": fields["action"],
        "resource": "",
        "decision": "n/a",
        "details": details,
        "prev_hash": "0" * 64,
    }
    fast = record_canonical(
        7, 123, "x.y", None, "engine", fields["action"], "", "n/a", canonical_json(details), "0" * 64
    )
    assert fast == canonical_json(body)


async def test_huge_and_strange_values(tmp_path):
    huge = "€" * 300_000 + "\x00\x1f\u2028" + "\ud800"  # includes a lone surrogate: replaced, not fatal
    async with AuditTrail(tmp_path) as trail:
        rec = await trail.append(
            type="tool.call",
            action="\x00ctl\x7f",
            details={"huge": huge, "deep": [[[[{"a": [1.5e300, -0.0, 2**80]}]]]], "ℌ𝔢𝔩𝔩𝔬": {"ü": "ö"}},
        )
        assert rec.details["huge"].endswith("\u2028\ufffd") and len(rec.details["huge"]) == 300_004
        assert (await trail.query(limit=1))[0] == rec
    assert verify(tmp_path).ok
    _sql_canonical_matches_python(tmp_path)
