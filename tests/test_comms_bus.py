"""The bus in-process: delivery, ordering, pub/sub, broadcast, request/response,
backpressure, expiry, audit and dead letters, all with real keys and real crypto."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest

from engine.comms import AgentCounters, MessageType
from engine.errors import ErrorCode, SymbiError
from tests.test_comms_support import flip, make_bus, queued


async def _settle(clock=None, sleepers: int = 0) -> None:
    """Let tasks run until they park (and, with a FakeClock, until ``sleepers`` sleep)."""
    for _ in range(50):
        await asyncio.sleep(0)
        if clock is not None and clock.pending_sleepers >= sleepers > 0:
            return


async def test_direct_message_is_encrypted_signed_verified_and_delivered(tmp_path):
    bus, _, audit = make_bus(tmp_path, "a", "b")
    msg_id = await bus.send("a", "b", b"hello b")
    got = await bus.receive("b", timeout=0)
    assert got is not None and got.verified
    assert (got.id, got.sender, got.recipient, got.type, got.payload) == (msg_id, "a", "b", MessageType.DIRECT, b"hello b")
    assert b"hello b" not in got.envelope.ciphertext
    assert len(got.envelope.signature) == 64
    assert [r["event"] for r in audit.records] == ["bus.send", "bus.deliver"]
    assert await bus.receive("b", timeout=0) is None


async def test_order_is_kept_per_sender_across_batches(tmp_path):
    bus, _, _ = make_bus(tmp_path, "a", "b", "c", max_batch=16, queue_size=5000)

    async def sender(name: str) -> None:
        for i in range(300):
            await bus.send(name, "c", f"{name}:{i}".encode())
            if i % 37 == 0:
                await asyncio.sleep(0)

    await asyncio.gather(sender("a"), sender("b"))
    seen: dict[str, list[int]] = {"a": [], "b": []}
    while (got := await bus.receive("c", timeout=0)) is not None:
        name, i = got.payload.decode().split(":")
        assert name == got.sender
        seen[name].append(int(i))
    assert seen == {"a": list(range(300)), "b": list(range(300))}
    assert bus.stats().batches_signed < 600 / 4  # batched, not one signature each


async def test_per_message_signing_mode_signs_each_message(tmp_path):
    bus, _, _ = make_bus(tmp_path, "a", "b", batch_signing=False)
    for i in range(5):
        await bus.send("a", "b", bytes([i]))
    got = [await bus.receive("b", timeout=0) for _ in range(5)]
    assert [g.payload for g in got] == [bytes([i]) for i in range(5)]
    assert {g.envelope.batch_size for g in got} == {1}
    assert bus.stats().batches_signed == 5 and bus.stats().signature_checks == 5


async def test_pubsub_reaches_every_subscriber_but_the_publisher(tmp_path):
    bus, _, _ = make_bus(tmp_path, "pub", "s1", "s2", "s3", "outsider")
    for agent in ("pub", "s1", "s2", "s3"):
        bus.subscribe(agent, "alerts/disk")
    bus.unsubscribe("s3", "alerts/disk")
    await bus.publish("pub", "alerts/disk", b"disk full")
    for agent in ("s1", "s2"):
        got = await bus.receive(agent, timeout=0)
        assert (got.payload, got.topic, got.type) == (b"disk full", "alerts/disk", MessageType.PUBLISH)
    for agent in ("pub", "s3", "outsider"):
        assert await bus.receive(agent, timeout=0) is None
    assert bus.topics() == {"alerts/disk": ["pub", "s1", "s2"]}


async def test_broadcast_reaches_every_other_agent(tmp_path):
    bus, _, _ = make_bus(tmp_path, "a", "b", "c", "d")
    await bus.broadcast("a", b"shutting down at noon")
    for agent in ("b", "c", "d"):
        got = await bus.receive(agent, timeout=0)
        assert (got.payload, got.type, got.sender) == (b"shutting down at noon", MessageType.BROADCAST, "a")
    assert await bus.receive("a", timeout=0) is None


async def test_request_response(tmp_path):
    bus, _, audit = make_bus(tmp_path, "client", "server")

    async def server() -> None:
        while True:
            req = await bus.receive("server")
            assert req.type is MessageType.REQUEST
            await bus.respond("server", req, req.payload.upper())

    task = asyncio.create_task(server())
    try:
        assert await bus.request("client", "server", b"ping", timeout=5) == b"PING"
        assert await bus.request("client", "server", b"again", timeout=5) == b"AGAIN"
    finally:
        task.cancel()
    responses = [r for r in audit.events("bus.deliver") if r["type"] == "Response"]
    assert len(responses) == 2 and all(r["recipient"] == "client" for r in responses)
    assert await bus.receive("client", timeout=0) is None  # responses went to the waiting request


async def test_request_times_out_with_comm_009_and_a_dead_letter(tmp_path):
    bus, clock, audit = make_bus(tmp_path, "client", "server")
    task = asyncio.create_task(bus.request("client", "server", b"anyone?", timeout=5))
    await _settle(clock, sleepers=1)
    clock.advance(5)
    with pytest.raises(SymbiError) as err:
        await task
    assert err.value.code is ErrorCode.COMM_009
    [dead] = bus.dead_letters(code="COMM_009")
    assert (dead.sender, dead.recipient, dead.stage) == ("client", "server", "request")
    assert "within 5 s" in dead.reason
    # a late answer is not lost: it lands in the requester's queue
    req = await bus.receive("server", timeout=0)
    await bus.respond("server", req, b"sorry, late")
    late = await bus.receive("client", timeout=0)
    assert (late.type, late.correlation_id, late.payload) == (MessageType.RESPONSE, req.id, b"sorry, late")


async def test_respond_only_to_a_request_addressed_to_you(tmp_path):
    bus, _, _ = make_bus(tmp_path, "a", "b", "c")
    await bus.send("a", "b", b"just a note")
    note = await bus.receive("b", timeout=0)
    with pytest.raises(SymbiError) as err:
        await bus.respond("b", note, b"?")
    assert err.value.code is ErrorCode.COMM_001
    await bus.send("a", "b", b"q", type="Request")
    req = await bus.receive("b", timeout=0)
    with pytest.raises(SymbiError):
        await bus.respond("c", req, b"not mine to answer")


async def test_non_blocking_send_to_a_full_queue_gets_comm_008(tmp_path):
    bus, _, _ = make_bus(tmp_path, "a", "b", queue_size=2)
    await bus.send("a", "b", b"1", block=False)
    await bus.send("a", "b", b"2", block=False)
    with pytest.raises(SymbiError) as err:
        await bus.send("a", "b", b"3", block=False)
    assert err.value.code is ErrorCode.COMM_008
    [dead] = bus.dead_letters("b")
    assert (dead.code, dead.stage, dead.sender, dead.recipient) == ("COMM_008", "send", "a", "b")
    assert "full" in dead.reason
    # nothing was dropped: both queued messages are intact and in order
    assert [(await bus.receive("b", timeout=0)).payload for _ in range(2)] == [b"1", b"2"]


async def test_blocking_sender_resumes_when_the_receiver_drains(tmp_path):
    bus, _, _ = make_bus(tmp_path, "a", "b", queue_size=2)
    sent: list[int] = []

    async def producer() -> None:
        for i in range(6):
            await bus.send("a", "b", bytes([i]))
            sent.append(i)

    task = asyncio.create_task(producer())
    await _settle()
    assert sent == [0, 1] and not task.done()  # parked on the full queue
    got = [(await bus.receive("b")).payload[0] for _ in range(6)]
    await task
    assert got == list(range(6)) and sent == list(range(6))
    assert bus.dead_letters() == []


async def test_blocking_send_with_timeout_gets_comm_008(tmp_path):
    bus, clock, _ = make_bus(tmp_path, "a", "b", queue_size=1)
    await bus.send("a", "b", b"first")
    task = asyncio.create_task(bus.send("a", "b", b"second", timeout=3))
    await _settle(clock, sleepers=1)
    clock.advance(3)
    with pytest.raises(SymbiError) as err:
        await task
    assert err.value.code is ErrorCode.COMM_008 and "after waiting 3 s" in err.value.message
    assert (await bus.receive("b", timeout=0)).payload == b"first"
    await bus.send("a", "b", b"third", block=False)  # the abandoned slot was handed back


async def test_waiting_senders_are_served_in_arrival_order(tmp_path):
    bus, _, _ = make_bus(tmp_path, "a", "b", "c", queue_size=1)
    await bus.send("a", "c", b"fill")
    first = asyncio.create_task(bus.send("a", "c", b"from a"))
    await _settle()
    second = asyncio.create_task(bus.send("b", "c", b"from b"))
    await _settle()
    with pytest.raises(SymbiError):  # a newcomer may not jump the queue
        await bus.send("b", "c", b"jumper", block=False)
    got = [(await bus.receive("c")).payload for _ in range(3)]
    await asyncio.gather(first, second)
    assert got == [b"fill", b"from a", b"from b"]


async def test_oversize_payload_is_refused_before_encrypting(tmp_path):
    bus, _, audit = make_bus(tmp_path, "a", "b", max_message_size=1024)
    with pytest.raises(SymbiError) as err:
        await bus.send("a", "b", b"x" * 1025)
    assert err.value.code is ErrorCode.COMM_006
    [dead] = bus.dead_letters()
    assert (dead.code, dead.size, dead.stage) == ("COMM_006", 1025, "send")
    assert bus.stats().messages_signed == 0
    await bus.send("a", "b", b"x" * 1024)  # exactly at the limit is fine
    assert audit.events("bus.reject")[0]["code"] == "COMM_006"


async def test_unknown_recipient_and_topic_are_refused(tmp_path):
    bus, _, _ = make_bus(tmp_path, "a")
    with pytest.raises(SymbiError) as err:
        await bus.send("a", "ghost", b"boo")
    assert err.value.code is ErrorCode.COMM_007
    with pytest.raises(SymbiError) as err:
        await bus.publish("a", "nobody/listens", b"hello?")
    assert err.value.code is ErrorCode.COMM_007
    with pytest.raises(SymbiError) as err:
        await bus.send("ghost", "a", b"from nowhere")
    assert err.value.code is ErrorCode.COMM_007
    assert [(d.code, d.recipient, d.topic) for d in bus.dead_letters()] == [
        ("COMM_007", "ghost", None),
        ("COMM_007", None, "nobody/listens"),
        ("COMM_007", "a", None),
    ]
    assert all("unknown" in d.reason or "not a registered" in d.reason for d in bus.dead_letters())


async def test_message_that_expires_in_the_queue_is_dead_lettered_not_delivered(tmp_path):
    bus, clock, audit = make_bus(tmp_path, "a", "b")
    await bus.send("a", "b", b"stale soon", ttl=5)
    await bus.send("a", "b", b"fresh", ttl=60)
    bus.flush()
    clock.advance(10)
    got = await bus.receive("b", timeout=0)
    assert got.payload == b"fresh"
    [dead] = bus.dead_letters()
    assert (dead.code, dead.stage, dead.recipient) == ("COMM_005", "delivery", "b")
    assert "expired" in dead.reason
    assert audit.events("bus.reject")[0]["code"] == "COMM_005"


async def test_envelope_tampered_in_the_queue_is_never_delivered(tmp_path):
    bus, _, _ = make_bus(tmp_path, "a", "b")
    await bus.send("a", "b", b"pay 10 EUR")
    await bus.send("a", "b", b"second")
    bus.flush()
    queue = queued(bus, "b")
    env = queue[0]
    queue[0] = env._replace(ciphertext=flip(env.ciphertext, 3))
    got = await bus.receive("b", timeout=0)
    assert got.payload == b"second"
    [dead] = bus.dead_letters()
    assert (dead.code, dead.id, dead.stage) == ("COMM_002", env.id, "delivery")


async def test_audit_and_dead_letters_never_see_the_payload(tmp_path):
    secret = b"TOP-SECRET-" + os.urandom(8).hex().encode()
    bus, clock, audit = make_bus(tmp_path, "a", "b", "c", queue_size=1, max_message_size=256)
    bus.subscribe("c", "t")
    await bus.send("a", "b", secret)
    await bus.publish("a", "t", secret)
    for bad in (
        bus.send("a", "b", secret, block=False),  # queue full
        bus.send("a", "b", secret * 40),  # oversize
        bus.send("a", "nobody", secret),  # unknown
    ):
        with pytest.raises(SymbiError) as err:
            await bad
        assert secret.decode() not in str(err.value) and secret.decode() not in str(err.value.to_dict())
    await bus.receive("b", timeout=0)
    await bus.receive("c", timeout=0)
    await bus.broadcast("a", secret)
    assert (await bus.receive("b", timeout=0)).payload == (await bus.receive("c", timeout=0)).payload == secret
    await bus.send("a", "b", secret, ttl=1)
    bus.flush()
    clock.advance(5)
    await bus.receive("b", timeout=0)  # expired: dead letter at delivery
    seen = repr(audit.records) + repr([d.to_dict() for d in bus.dead_letters()])
    for form in (secret, secret.hex().encode(), base64.b64encode(secret)):
        assert form.decode() not in seen
    assert {r["event"] for r in audit.records} == {"bus.send", "bus.deliver", "bus.reject"}
    for record in audit.records:
        assert set(record) >= {"event", "id", "type", "sender", "recipient", "topic", "size", "decision",
                               "verification", "stage"}
        assert not any(isinstance(v, bytes) for v in record.values())


async def test_audit_failure_fails_closed(tmp_path):
    bus, _, audit = make_bus(tmp_path, "a", "b", queue_size=1)
    audit.fail = True
    with pytest.raises(OSError):
        await bus.send("a", "b", b"not audited, not sent")
    audit.fail = False
    assert bus.pending("b") == 0
    await bus.send("a", "b", b"audited")  # the reserved slot was given back
    audit.fail = True
    with pytest.raises(OSError):
        await bus.receive("b", timeout=0)
    audit.fail = False
    assert (await bus.receive("b", timeout=0)).payload == b"audited"  # still queued, delivered once audited


async def test_unregister_dead_letters_what_was_queued(tmp_path):
    bus, _, _ = make_bus(tmp_path, "a", "b")
    bus.subscribe("b", "t")
    await bus.send("a", "b", b"1")
    await bus.send("a", "b", b"2")
    bus.flush()
    assert await bus.unregister("b") == 2
    assert [d.reason for d in bus.dead_letters("b")] == ["recipient was unregistered with the message undelivered"] * 2
    assert bus.topics() == {}
    with pytest.raises(SymbiError) as err:
        await bus.send("a", "b", b"3")
    assert err.value.code is ErrorCode.COMM_007


async def test_dead_letter_store_is_bounded_and_counts_evictions(tmp_path):
    seen = []
    bus, _, _ = make_bus(tmp_path, "a", dead_letter_size=3, on_dead_letter=seen.append)
    for i in range(5):
        with pytest.raises(SymbiError):
            await bus.send("a", f"ghost{i}", b"x")
    assert [d.recipient for d in bus.dead_letters()] == ["ghost2", "ghost3", "ghost4"]
    assert len(seen) == 5 and bus.stats().dead_letters_evicted == 2 and bus.stats().rejected == 5


async def test_send_rejects_bad_arguments_plainly(tmp_path):
    bus, _, _ = make_bus(tmp_path, "a", "b")
    for call in (
        bus.send("a", "b", "text, not bytes"),
        bus.send("a", "b", b"x", ttl=0),
        bus.send("a", "b", b"x", ttl=10**9),
        bus.send("a", "b", b"x", type="Publish"),
        bus.send("a", "b", b"x", type="Response"),
    ):
        with pytest.raises(SymbiError) as err:
            await call
        assert err.value.code is ErrorCode.COMM_001


async def test_receive_waits_for_a_message_or_times_out(tmp_path):
    bus, clock, _ = make_bus(tmp_path, "a", "b")
    waiting = asyncio.create_task(bus.receive("b"))
    await _settle()
    assert not waiting.done()
    await bus.send("a", "b", b"worth the wait")
    assert (await waiting).payload == b"worth the wait"
    timed = asyncio.create_task(bus.receive("b", timeout=2))
    await _settle(clock, sleepers=1)
    clock.advance(2)
    assert await timed is None


async def test_fan_out_is_all_or_nothing_when_one_queue_is_full(tmp_path):
    bus, _, _ = make_bus(tmp_path, "a", "b", "c", queue_size=1)
    await bus.send("a", "c", b"fills c")
    with pytest.raises(SymbiError) as err:
        await bus.broadcast("a", b"to b and c", block=False)
    assert err.value.code is ErrorCode.COMM_008 and "'c'" in err.value.message
    assert bus.pending("b") == 0  # b did not get half a broadcast
    await bus.send("a", "b", b"b still has its slot", block=False)


async def test_close_fails_waiting_requests_and_dead_letters_the_queues(tmp_path):
    bus, _, _ = make_bus(tmp_path, "a", "b")
    await bus.send("a", "b", b"never read")
    req = asyncio.create_task(bus.request("a", "b", b"?", timeout=60))
    await _settle()
    await bus.close()
    with pytest.raises(SymbiError) as err:
        await req
    assert err.value.code is ErrorCode.RUNTIME_001
    assert [d.reason for d in bus.dead_letters("b")] == ["the bus closed with the message undelivered"] * 2
    with pytest.raises(SymbiError):
        await bus.send("a", "b", b"after close")


async def test_from_config_maps_the_communication_section(tmp_path):
    from engine.comms import KeyStore, MessageBus
    from engine.config import RuntimeConfig

    cfg = RuntimeConfig.default().communication
    bus = MessageBus.from_config(cfg, KeyStore.in_data_dir(tmp_path))
    assert (bus.max_message_size, bus.max_ttl, bus.request_timeout) == (
        cfg.max_message_size, cfg.message_ttl, cfg.delivery_timeout)
    bus.register("a")
    assert bus._dir.members["a"].mailbox.capacity == cfg.max_queue_size


async def test_counters_per_agent(tmp_path):
    bus, _, _ = make_bus(tmp_path, "a", "b")
    bus.subscribe("b", "t")
    await bus.send("a", "b", b"1")
    await bus.publish("a", "t", b"2")
    with pytest.raises(SymbiError):
        await bus.send("a", "ghost", b"3")
    await bus.receive("b", timeout=0)
    assert bus.agent_counters("a") == AgentCounters(sent=2, received=0, rejected=1, queued=0, topics=())
    assert bus.agent_counters("b") == AgentCounters(sent=0, received=1, rejected=0, queued=1, topics=("t",))
    stats = bus.stats()
    assert (stats.sent, stats.delivered, stats.rejected, stats.queued, stats.agents, stats.topics) == (2, 1, 1, 1, 2, 1)
