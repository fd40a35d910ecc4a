"""Hypothesis against ``receive_envelope``: random input and random mutations of
valid envelopes never crash the bus and never get a forged message delivered.

"Forged" means: anything delivered whose signed content (canonical body) or
plaintext differs from an envelope the sender really produced. Every genuine
envelope the tests create is remembered; every delivery is checked against it.
COMM_FUZZ_EXAMPLES=5000 for a long run.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.comms import MessageType, encode_body, from_dict, seal, sign_batch, to_bytes, to_dict
from engine.errors import ErrorCode, SymbiError
from tests.test_comms_support import external, external_batch, make_bus

FUZZ = settings(
    max_examples=int(os.environ.get("COMM_FUZZ_EXAMPLES", "250")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
CODES = {ErrorCode(f"COMM_00{i}") for i in range(1, 9)}


class Harness:
    """One bus (agents a, b, m; b subscribes to "news") driven on a private event loop."""

    def __init__(self, root) -> None:
        self.loop = asyncio.new_event_loop()
        self.bus, self.clock, self.audit = make_bus(root, "a", "b", "m", queue_size=1_000_000)
        self.bus.subscribe("b", "news")
        self.genuine: dict[str, tuple[bytes, bytes]] = {}
        self.delivered = 0

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def valid(self, payload: bytes, kind: int):
        bus = self.bus
        if kind == 0:
            env = external(bus, "a", payload, recipient="b")
        elif kind == 1:
            env = external(bus, "a", payload, topic="news")
        else:
            env = external_batch(bus, "a", "b", [payload, payload + b"!", b"third", b"4"])[kind % 4]
            payload = [payload, payload + b"!", b"third", b"4"][kind % 4]
        self.genuine[env.id] = (encode_body(env), payload)
        return env

    def submit(self, data) -> bool:
        """Submit; True if the bus accepted it. Every delivery so far is checked against the genuine ones."""
        try:
            self.run(self.bus.receive_envelope(data))
            accepted = True
        except SymbiError as exc:
            assert exc.code in CODES, exc
            accepted = False
        self.check_deliveries()
        return accepted

    def check_deliveries(self) -> None:
        while (got := self.run(self.bus.receive("b", timeout=0))) is not None:
            assert got.verified and got.sender == "a"
            assert got.id in self.genuine, "delivered an envelope nobody signed"
            body, payload = self.genuine[got.id]
            assert encode_body(got.envelope) == body, "delivered altered signed content"
            assert got.payload == payload, "delivered an altered payload"
            self.delivered += 1


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    h = Harness(tmp_path_factory.mktemp("fuzz"))
    yield h
    h.loop.close()


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_never_crash_or_deliver(harness, data):
    harness.submit(data)
    harness.submit(b"SYMBI-ENV\x01" + data)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@FUZZ
@given(st.integers(0, 5), st.binary(max_size=64), _json, st.data())
def test_json_field_mutations_never_deliver_a_forgery(harness, kind, payload, value, data):
    env = harness.valid(payload, kind)
    wire = to_dict(env)
    field = data.draw(st.sampled_from(sorted(wire)))
    choice = data.draw(st.sampled_from(["random", "other-valid", "drop"]))
    if choice == "random":
        wire[field] = value
    elif choice == "other-valid":
        other = to_dict(harness.valid(b"other " + payload, data.draw(st.integers(0, 5))))
        wire[field] = other[field]
    else:
        wire.pop(field)
    if harness.submit(wire):
        assert from_dict(wire) == env  # only a change that means the same envelope (e.g. 5 vs 5.0) can pass


@st.composite
def _mutations(draw, raw: bytes):
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite", "splice"]))
    n = len(raw)
    i = draw(st.integers(0, n - 1))
    if kind == "flip":
        out = bytearray(raw)
        out[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(out)
    if kind == "truncate":
        return raw[:i]
    if kind == "insert":
        return raw[:i] + draw(st.binary(min_size=1, max_size=8)) + raw[i:]
    if kind == "delete":
        return raw[:i] + raw[i + draw(st.integers(1, 8)) :]
    if kind == "overwrite":
        chunk = draw(st.binary(min_size=1, max_size=16))
        return raw[:i] + chunk + raw[i + len(chunk) :]
    return raw[:i] + draw(st.binary(max_size=n))[i:]


@FUZZ
@given(st.integers(0, 5), st.binary(max_size=300), st.data())
def test_byte_mutations_of_valid_envelopes_never_deliver_a_forgery(harness, kind, payload, data):
    env = harness.valid(payload, kind)
    raw = to_bytes(env)
    for _ in range(data.draw(st.integers(1, 3))):
        mutated = data.draw(_mutations(raw))
        if mutated != raw:  # the byte form is canonical: any change at all must be refused
            assert not harness.submit(mutated)
    # the untouched original still goes through exactly once
    harness.submit(raw)
    harness.submit(raw)
    assert harness.bus.dead_letters()[-1].code == "COMM_004"


@FUZZ
@given(st.binary(max_size=200), st.booleans(), st.sampled_from(["m-key", "random", "copied", "batch-copied"]))
def test_key_holders_cannot_forge_another_senders_messages(harness, payload, to_topic, how):
    """b holds the a-b pair key and every subscriber holds the topic key, so they can produce
    ciphertext that decrypts; only a's signature stands between them and a message "from a"."""
    bus = harness.bus
    key = bus.topic_key("b", "news") if to_topic else bus.pair_key("a", "b")
    draft = seal(AESGCM(key), os.urandom(12), sender="a", type=MessageType.PUBLISH if to_topic else MessageType.DIRECT,
                 payload=payload, timestamp=bus.clock.time(), ttl=60.0, recipient=None if to_topic else "b",
                 topic="news" if to_topic else None)
    if how == "m-key":
        forged = sign_batch(bus.identity("m").signing_key, [draft])[0]
    elif how == "random":
        forged = draft._replace(signature=os.urandom(64))
    else:
        genuine = harness.valid(b"genuine", 2 if how == "batch-copied" else 0)
        forged = draft._replace(signature=genuine.signature, batch_size=genuine.batch_size,
                                batch_index=genuine.batch_index, proof=genuine.proof)
    with pytest.raises(SymbiError) as err:
        harness.run(bus.receive_envelope(to_bytes(forged)))
    assert err.value.code is ErrorCode.COMM_002
    harness.check_deliveries()


def test_genuine_envelopes_get_through_the_same_harness(harness):
    """The checks above are not vacuous: untouched envelopes of every kind are delivered."""
    before = harness.delivered
    for kind in range(6):
        assert harness.submit(to_bytes(harness.valid(b"genuine", kind)))
    assert harness.delivered - before == 6
