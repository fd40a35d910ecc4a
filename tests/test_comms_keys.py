"""Agent identities on disk: created once, reused across reopen, private files 0600."""

from __future__ import annotations

import os
import stat

import pytest

from engine.comms import KeyStore, MessageBus, Verifier, derive_pair_key
from engine.errors import ErrorCode, SymbiError


def test_identity_is_created_once_and_persisted(tmp_path):
    store = KeyStore.in_data_dir(tmp_path)
    first = store.identity("agent-1")
    agent_dir = tmp_path / "keys" / "agents" / "agent-1"
    assert sorted(p.name for p in agent_dir.iterdir()) == ["ed25519.key", "ed25519.pub", "x25519.key", "x25519.pub"]
    for name in ("ed25519.key", "x25519.key"):
        assert stat.S_IMODE(os.stat(agent_dir / name).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(agent_dir).st_mode) == 0o700
    assert (agent_dir / "ed25519.pub").read_text().strip() == first.public.signing_raw.hex()

    reopened = KeyStore.in_data_dir(tmp_path).identity("agent-1")
    assert reopened.public.signing_raw == first.public.signing_raw
    assert reopened.public.agreement_raw == first.public.agreement_raw
    assert reopened.public.fingerprint == first.public.fingerprint
    assert "PRIVATE" not in repr(reopened)


async def test_bus_reopen_keeps_identity_and_messages_still_verify(tmp_path):
    bus = MessageBus(KeyStore.in_data_dir(tmp_path))
    before = bus.register("a")
    bus.register("b")
    await bus.send("a", "b", b"hello")
    envelope = (await bus.receive("b", timeout=0)).envelope

    again = MessageBus(KeyStore.in_data_dir(tmp_path))
    assert again.register("a").signing_raw == before.signing_raw
    again.register("b")
    # an envelope signed before the reopen still verifies against the persisted key
    assert Verifier().verify(envelope, again.public_identity("a"))


def test_loose_private_key_permissions_are_refused(tmp_path):
    KeyStore.in_data_dir(tmp_path).identity("agent-1")
    key = tmp_path / "keys" / "agents" / "agent-1" / "ed25519.key"
    key.chmod(0o644)
    with pytest.raises(SymbiError) as err:
        KeyStore.in_data_dir(tmp_path).identity("agent-1")
    assert err.value.code is ErrorCode.SEC_003
    assert str(key) in str(err.value.offending)


def test_corrupt_private_key_is_refused(tmp_path):
    KeyStore.in_data_dir(tmp_path).identity("agent-1")
    key = tmp_path / "keys" / "agents" / "agent-1" / "x25519.key"
    key.write_bytes(b"not a key")
    with pytest.raises(SymbiError) as err:
        KeyStore.in_data_dir(tmp_path).identity("agent-1")
    assert err.value.code is ErrorCode.SEC_002


def test_pair_key_is_the_same_from_both_sides_and_differs_per_pair(tmp_path):
    store = KeyStore.in_data_dir(tmp_path)
    a, b, c = (store.identity(x) for x in ("a", "b", "c"))
    ab = derive_pair_key(a, b.public)
    assert ab == derive_pair_key(b, a.public) == store.pair_key("b", "a") == store.pair_key("a", "b")
    assert len(ab) == 32
    assert ab != derive_pair_key(a, c.public) != derive_pair_key(b, c.public)


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", ".hidden", "x" * 200, "a\nb"])
def test_agent_ids_that_could_escape_the_key_dir_are_refused(tmp_path, bad):
    with pytest.raises(SymbiError) as err:
        KeyStore.in_data_dir(tmp_path).identity(bad)
    assert err.value.code is ErrorCode.COMM_001
    assert not (tmp_path / "keys" / "agents").exists() or not any((tmp_path / "keys").rglob("*.key"))
