"""Envelopes on the wire, Merkle batches and the verifier, with real Ed25519 and AES-GCM."""

from __future__ import annotations

import base64
import json
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.comms import (
    Envelope,
    KeyStore,
    MessageType,
    Verifier,
    encode_body,
    from_bytes,
    from_json,
    parse,
    sign_batch,
    sign_one,
    to_bytes,
    to_dict,
    to_json,
)
from engine.comms.merkle import build, leaf_hash, reference_root, root_from_proof
from engine.comms.signing import batch_message


def _draft(i: int = 0, **over) -> Envelope:
    fields = dict(
        id=f"0000000{i % 10}-0000-4000-8000-{i:012d}",
        sender="alice",
        type=MessageType.DIRECT,
        recipient="bob",
        topic=None,
        timestamp=1_700_000_000.5,
        ttl=60.0,
        nonce=os.urandom(12),
        ciphertext=os.urandom(40),
    )
    fields.update(over)
    return Envelope(**fields)


def _noncanonical(b64: str) -> str:
    """Same bytes, but with the unused low bits of the last character set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    body = b64.rstrip("=")
    return body[:-1] + alphabet[alphabet.index(body[-1]) ^ 1] + "=" * (len(b64) - len(body))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    store = KeyStore(tmp_path_factory.mktemp("keys"))
    return store.identity("alice"), store.identity("mallory")


def test_wire_round_trips_bytes_and_json(keys):
    alice, _ = keys
    batch = sign_batch(alice.signing_key, [_draft(i) for i in range(5)])
    response = sign_one(
        alice.signing_key, _draft(9, type=MessageType.RESPONSE, correlation_id="req-1", recipient="bob")
    )
    publish = sign_one(alice.signing_key, _draft(8, type=MessageType.PUBLISH, recipient=None, topic="news/eu"))
    broadcast = sign_one(alice.signing_key, _draft(7, type=MessageType.BROADCAST, recipient=None))
    for env in [*batch, response, publish, broadcast]:
        assert from_bytes(to_bytes(env)) == env
        assert from_json(to_json(env)) == env
        assert parse(to_bytes(env)) == parse(to_json(env)) == parse(to_dict(env)) == env
    wire = to_dict(batch[3])
    assert wire["batch_size"] == 5 and wire["batch_index"] == 3 and len(wire["proof"]) == 3
    assert base64.b64decode(wire["ciphertext"]) == batch[3].ciphertext


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda d: d.update(extra=1), "unknown envelope field"),
        (lambda d: d.pop("signature"), "missing"),
        (lambda d: d.update(nonce=" " + d["nonce"]), "base64"),
        (lambda d: d.update(signature=_noncanonical(d["signature"])), "canonical"),
        (lambda d: d.update(signature=base64.b64encode(bytes(63)).decode()), "signature"),
        (lambda d: d.update(timestamp="soon"), "timestamp"),
        (lambda d: d.update(ttl=True), "ttl"),
        (lambda d: d.update(ttl=-1), "ttl"),
        (lambda d: d.update(type="Telepathy"), "message type"),
        (lambda d: d.update(topic="news"), "topic"),
        (lambda d: d.update(correlation_id="x"), "correlation_id"),
        (lambda d: d.update(sender="../../etc"), "sender"),
        (lambda d: d.update(batch_index=1), "batch_index"),
        (lambda d: d.update(proof=["AAAA"]), "proof"),
    ],
)
def test_json_parser_is_strict(keys, mutate, needle):
    d = to_dict(sign_one(keys[0].signing_key, _draft()))
    mutate(d)
    with pytest.raises(ValueError, match=needle):
        from_json(json.dumps(d))


def test_bytes_parser_rejects_trailing_and_truncated(keys):
    raw = to_bytes(sign_one(keys[0].signing_key, _draft()))
    for bad in (raw + b"\x00", raw[:-1], raw[:20], b"SYMBI-ENV\x02" + raw[10:]):
        with pytest.raises(ValueError):
            parse(bad)


@given(st.integers(min_value=1, max_value=300))
@settings(max_examples=60, deadline=None)
def test_merkle_root_matches_rfc6962_and_every_proof_verifies(n):
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    root, proofs = build(leaves)
    assert root == reference_root(leaves)
    for i in range(n):
        assert root_from_proof(leaves[i], i, n, proofs[i]) == root
        # the proof pins the index and the size
        if n > 1:
            assert root_from_proof(leaves[i], (i + 1) % n, n, proofs[i]) != root
        # (a size change can keep the path's shape, which is why the signed message carries the size)


def test_batch_every_envelope_verifies_alone_and_in_any_order(keys):
    alice, _ = keys
    batch = sign_batch(alice.signing_key, [_draft(i) for i in range(37)])
    assert len({e.signature for e in batch}) == 1
    for order in (range(37), reversed(range(37)), [5, 36, 0, 17]):
        verifier = Verifier()
        assert all(verifier.verify(batch[i], alice.public) for i in order)
    # Ed25519 ran once for the whole batch; the rest were memo hits on the way up
    verifier = Verifier()
    assert all(verifier.verify(e, alice.public) for e in batch)
    assert verifier.signature_checks == 1


def test_batch_tampering_is_caught_with_a_warm_memo(keys):
    alice, mallory = keys
    batch = sign_batch(alice.signing_key, [_draft(i) for i in range(16)])
    verifier = Verifier()
    assert all(verifier.verify(e, alice.public) for e in batch)  # memo now knows the whole tree
    env = batch[6]
    forged = [
        env._replace(ciphertext=env.ciphertext[:-1] + bytes([env.ciphertext[-1] ^ 1])),
        env._replace(recipient="carol"),
        env._replace(ttl=3600.0),
        env._replace(timestamp=env.timestamp + 1),
        env._replace(batch_index=7),
        env._replace(batch_size=17),
        env._replace(proof=env.proof[:-1] + (bytes(32),)),
        env._replace(proof=(batch[7].proof[0],) + env.proof[1:]),
        env._replace(proof=env.proof[:-1]),
        env._replace(signature=bytes(64)),
        env._replace(sender="mallory"),
    ]
    for bad in forged:
        assert not verifier.verify(bad, alice.public), bad
    assert not verifier.verify(env, mallory.public)
    # an envelope Mallory signs herself never passes as Alice's
    own = sign_batch(mallory.signing_key, [_draft(i) for i in range(16)])
    assert not any(verifier.verify(e, alice.public) for e in own)
    assert not Verifier().verify(env._replace(signature=own[6].signature, proof=own[6].proof), alice.public)


def test_signature_covers_the_canonical_body(keys):
    alice, _ = keys
    env = sign_one(alice.signing_key, _draft())
    alice.public.signing_key.verify(env.signature, batch_message(1, leaf_hash(encode_body(env))))
    other = Ed25519PrivateKey.generate()
    assert not Verifier().verify(sign_one(other, _draft()), alice.public)


_tamper = st.sampled_from(["none", "leaf", "index", "size", "proof-entry", "proof-drop", "proof-swap", "signature"])


@given(st.integers(1, 40), st.lists(st.tuples(st.integers(0, 10**6), _tamper), min_size=1, max_size=25))
@settings(max_examples=80, deadline=None)
def test_memoised_verifier_agrees_with_a_fresh_one_on_every_input(keys, n, steps):
    """The memo is an optimisation only: whatever was verified before, the answer is the cold answer."""
    alice, _ = keys
    batch = sign_batch(alice.signing_key, [_draft(i) for i in range(n)])
    warm = Verifier()
    for pick, how in steps:
        env = batch[pick % n]
        if how == "leaf":
            env = env._replace(ttl=env.ttl + 1)
        elif how == "index":
            env = env._replace(batch_index=(env.batch_index + 1 + pick) % n)
        elif how == "size":
            env = env._replace(batch_size=n + 1 + pick % 3)
        elif how == "proof-entry" and env.proof:
            env = env._replace(proof=tuple(batch[(pick + 1) % n].proof[:1]) + env.proof[1:])
        elif how == "proof-drop":
            env = env._replace(proof=env.proof[1:])
        elif how == "proof-swap" and len(env.proof) > 1:
            env = env._replace(proof=env.proof[::-1])
        elif how == "signature":
            env = env._replace(signature=bytes(64))
        assert warm.verify(env, alice.public) == Verifier().verify(env, alice.public), (how, pick % n)
