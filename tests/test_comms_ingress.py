"""Envelopes submitted from outside (``receive_envelope``): every rejection has its
code, reaches the submitter, and leaves a dead letter with the reason."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from engine.comms import MessageType, to_bytes, to_dict, to_json
from engine.errors import ErrorCode, SymbiError
from tests.test_comms_support import external, external_batch, flip, make_bus


async def _refused(bus, data, code: ErrorCode, reason: str) -> None:
    before = len(bus.dead_letters())
    with pytest.raises(SymbiError) as err:
        await bus.receive_envelope(data)
    assert err.value.code is code, err.value
    dead = bus.dead_letters()[-1]
    assert len(bus.dead_letters()) == before + 1
    assert (dead.code, dead.stage) == (code.value, "ingress")
    assert reason in dead.reason, dead.reason


@pytest.fixture
def bus_ab(tmp_path):
    return make_bus(tmp_path, "a", "b", "m")


async def test_valid_external_envelope_is_routed_and_delivered(bus_ab):
    bus, _, audit = bus_ab
    for form in (to_bytes, to_json, to_dict):
        fresh = external(bus, "a", b"from a's own process", recipient="b")
        assert await bus.receive_envelope(form(fresh)) == fresh.id
        got = await bus.receive("b", timeout=0)
        assert (got.payload, got.sender, got.envelope) == (b"from a's own process", "a", fresh)
    assert {r["stage"] for r in audit.events("bus.send")} == {"ingress"}


async def test_batch_signed_external_envelopes_each_verify(bus_ab):
    bus, _, _ = bus_ab
    batch = external_batch(bus, "a", "b", [bytes([i]) * 10 for i in range(20)])
    for env in reversed(batch):  # any order
        await bus.receive_envelope(to_bytes(env))
    got = [(await bus.receive("b", timeout=0)).payload for _ in range(20)]
    assert got == [bytes([i]) * 10 for i in reversed(range(20))]


@pytest.mark.parametrize("where", ["signature", "body", "proof"])
async def test_flipped_byte_is_a_bad_signature(bus_ab, where):
    bus, _, _ = bus_ab
    if where == "proof":
        env = external_batch(bus, "a", "b", [b"x", b"y", b"z"])[1]
        env = env._replace(proof=(flip(env.proof[0], 5),) + env.proof[1:])
    else:
        env = external(bus, "a", b"pay 10 EUR", recipient="b")
        env = env._replace(signature=flip(env.signature, 10)) if where == "signature" else env._replace(ttl=61.0)
    await _refused(bus, to_bytes(env), ErrorCode.COMM_002, "bad signature")
    assert await bus.receive("b", timeout=0) is None


async def test_flipped_ciphertext_is_refused(bus_ab):
    bus, _, _ = bus_ab
    env = external(bus, "a", b"pay 10 EUR", recipient="b")
    # the signature covers the ciphertext, so this is caught before decryption
    await _refused(bus, to_bytes(env._replace(ciphertext=flip(env.ciphertext, 2))), ErrorCode.COMM_002, "signature")


async def test_signed_by_another_key_is_a_bad_signature(bus_ab):
    bus, _, _ = bus_ab
    forged = external(bus, "a", b"it's me, a", recipient="b", signer="m")  # claims a, signed by m
    await _refused(bus, to_json(forged), ErrorCode.COMM_002, "bad signature")


async def test_unknown_sender_cannot_be_verified(bus_ab):
    bus, _, _ = bus_ab
    env = external(bus, "m", b"hi", recipient="b")
    await bus.unregister("m")
    await _refused(bus, to_bytes(env), ErrorCode.COMM_002, "not a registered agent")


async def test_failed_tag_is_comm_003(bus_ab):
    bus, _, _ = bus_ab
    # correctly signed by a, but sealed under a key b does not share with a (a-m's pair key)
    env = external(bus, "a", b"garbled", recipient="b", key=bus.pair_key("a", "m"))
    await _refused(bus, to_bytes(env), ErrorCode.COMM_003, "tag")
    # and a ciphertext damaged before the sender signed it
    good = external(bus, "a", b"x", recipient="b")
    damaged = external(bus, "a", b"x", recipient="b", key=os.urandom(32))
    assert damaged.ciphertext != good.ciphertext
    await _refused(bus, to_bytes(damaged), ErrorCode.COMM_003, "GCM")


async def test_replay_within_ttl_is_comm_004(bus_ab):
    bus, clock, _ = bus_ab
    env = external(bus, "a", b"once", recipient="b", ttl=30)
    await bus.receive_envelope(to_bytes(env))
    clock.advance(10)
    await _refused(bus, to_json(env), ErrorCode.COMM_004, "replayed")
    # an envelope the bus sealed itself and delivered cannot be replayed either
    await bus.send("a", "b", b"in-process")
    await bus.receive("b", timeout=0)
    delivered = await bus.receive("b", timeout=0)
    await _refused(bus, to_bytes(delivered.envelope), ErrorCode.COMM_004, "replayed")
    assert await bus.receive("b", timeout=0) is None


async def test_replay_after_ttl_is_refused_as_expired(bus_ab):
    bus, clock, _ = bus_ab
    env = external(bus, "a", b"once", recipient="b", ttl=30)
    await bus.receive_envelope(to_bytes(env))
    clock.advance(31)
    await _refused(bus, to_bytes(env), ErrorCode.COMM_005, "expired")


async def test_expired_future_and_overlong_ttl_are_comm_005(bus_ab):
    bus, clock, _ = bus_ab
    old = external(bus, "a", b"old", recipient="b", timestamp=clock.time() - 120, ttl=60)
    await _refused(bus, to_bytes(old), ErrorCode.COMM_005, "expired")
    future = external(bus, "a", b"from the future", recipient="b", timestamp=clock.time() + 3600)
    await _refused(bus, to_bytes(future), ErrorCode.COMM_005, "future")
    forever = external(bus, "a", b"forever", recipient="b", ttl=10**7)
    await _refused(bus, to_bytes(forever), ErrorCode.COMM_005, "maximum")


async def test_oversize_is_comm_006_on_receipt(tmp_path):
    bus, _, _ = make_bus(tmp_path, "a", "b", max_message_size=1000)
    big = external(bus, "a", b"x" * 1001, recipient="b")
    await _refused(bus, to_bytes(big), ErrorCode.COMM_006, "max_message_size")
    huge = b"{" + b" " * (bus.max_wire_size + 1)
    await _refused(bus, huge, ErrorCode.COMM_006, "wire limit")
    as_dict = to_dict(big) | {"ciphertext": "A" * (bus.max_wire_size + 4)}
    await _refused(bus, as_dict, ErrorCode.COMM_006, "wire limit")


async def test_unknown_recipient_and_topic_are_comm_007(bus_ab):
    bus, _, _ = bus_ab
    bus.subscribe("b", "known")
    env = external(bus, "a", b"?", recipient="b")
    ghost = env._replace(recipient="ghost")  # (its signature no longer matters: routing is checked first)
    await _refused(bus, to_bytes(ghost), ErrorCode.COMM_007, "unknown recipient")
    topic = external(bus, "a", b"?", topic="known")._replace(topic="unknown")
    await _refused(bus, to_bytes(topic), ErrorCode.COMM_007, "unknown topic")


async def test_malformed_input_is_comm_001(bus_ab):
    bus, _, _ = bus_ab
    await _refused(bus, b"\x00\x01garbage", ErrorCode.COMM_001, "malformed")
    await _refused(bus, json.dumps({"id": "x"}), ErrorCode.COMM_001, "missing")
    await _refused(bus, "[" * 100_000, ErrorCode.COMM_001, "JSON")


async def test_external_publish_broadcast_and_response(bus_ab):
    bus, _, _ = bus_ab
    bus.subscribe("b", "news")
    await bus.receive_envelope(to_bytes(external(bus, "a", b"headline", topic="news")))
    assert (await bus.receive("b", timeout=0)).payload == b"headline"
    await bus.receive_envelope(to_bytes(external(bus, "a", b"all hands")))
    assert (await bus.receive("m", timeout=0)).payload == b"all hands"
    assert (await bus.receive("b", timeout=0)).type is MessageType.BROADCAST

    task = asyncio.create_task(bus.request("b", "a", b"question", timeout=5))
    for _ in range(5):
        await asyncio.sleep(0)
    req = await bus.receive("a", timeout=0)
    reply = external(bus, "a", b"answer", recipient="b", type=MessageType.RESPONSE, correlation_id=req.id)
    await bus.receive_envelope(to_json(reply))
    assert await task == b"answer"


async def test_full_queue_refuses_and_the_same_envelope_can_be_retried(tmp_path):
    bus, _, _ = make_bus(tmp_path, "a", "b", queue_size=1)
    await bus.receive_envelope(to_bytes(external(bus, "a", b"1", recipient="b")))
    second = external(bus, "a", b"2", recipient="b")
    await _refused(bus, to_bytes(second), ErrorCode.COMM_008, "full")
    await bus.receive("b", timeout=0)
    assert await bus.receive_envelope(to_bytes(second)) == second.id  # not a replay: it was never accepted
    assert (await bus.receive("b", timeout=0)).payload == b"2"
