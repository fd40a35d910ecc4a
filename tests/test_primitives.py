"""The shared security primitives: atomic private writes, key files, the Merkle inclusion check."""

from __future__ import annotations

import os
import stat
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engine.atomicfile import create_exclusive, fsync_dir, write_private
from engine.comms import KeyStore, Verifier
from engine.comms.envelope import MessageType
from engine.comms.merkle import build, climb, leaf_hash, root_from_proof
from engine.comms.signing import batch_message, envelope_leaf, seal, sign_batch
from engine.errors import ErrorCode, SymbiError
from engine.keyfile import load_or_create, load_private_key, private_pem


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_000():
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# -- atomic writes -------------------------------------------------------------


def test_write_private_replaces_and_is_0600_even_under_umask_000(tmp_path, umask_000):
    target = tmp_path / "sub" / "state.json"
    write_private(target, b"one")
    write_private(target, b"two")
    assert target.read_bytes() == b"two"
    assert _mode(target) == 0o600
    assert _mode(target.parent) == 0o700  # a missing parent is created private
    write_private(target, b"three", mode=0o644)  # a caller may ask for a public mode (policy files, public keys)
    assert _mode(target) == 0o644
    assert os.listdir(target.parent) == ["state.json"]


@pytest.mark.parametrize("step", ["replace", "fsync"])
def test_interrupted_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch, step):
    """A crash before the rename (at it, or while syncing the data) leaves the old file whole and no debris."""
    target = tmp_path / "secret.enc"
    write_private(target, b"old contents")

    def crash(*args):
        raise OSError(5, f"simulated crash at os.{step}")

    monkeypatch.setattr(os, step, crash)
    with pytest.raises(OSError, match="simulated crash"):
        write_private(target, b"new contents that never land")
    monkeypatch.undo()
    assert target.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["secret.enc"]


def test_create_exclusive_only_creates_once(tmp_path, umask_000):
    target = tmp_path / "master.key"
    assert create_exclusive(target, b"first") is True
    assert create_exclusive(target, b"second") is False
    assert target.read_bytes() == b"first"
    assert _mode(target) == 0o600
    assert os.listdir(tmp_path) == ["master.key"]


def test_fsync_dir_best_effort_tolerates_what_required_does_not(tmp_path):
    fsync_dir(tmp_path)
    fsync_dir(tmp_path / "missing", required=False)
    with pytest.raises(FileNotFoundError):
        fsync_dir(tmp_path / "missing")


# -- key files -------------------------------------------------------------------


def test_key_file_is_created_0600_under_umask_000_and_then_reused(tmp_path, umask_000):
    path = tmp_path / "keys" / "runtime_ed25519.pem"
    key, created = load_or_create(path, Ed25519PrivateKey, what="runtime signing key")
    assert created and _mode(path) == 0o600 and _mode(path.parent) == 0o700
    assert path.read_bytes() == private_pem(key)  # PKCS#8 PEM, as before
    again, created = load_or_create(path, Ed25519PrivateKey, what="runtime signing key")
    assert not created and again.public_key().public_bytes_raw() == key.public_key().public_bytes_raw()


def test_loose_key_file_is_refused_with_sec_003_naming_it(tmp_path):
    path = tmp_path / "ed25519.key"
    load_or_create(path, Ed25519PrivateKey, what="agent identity key")
    path.chmod(0o644)
    with pytest.raises(SymbiError) as err:
        load_or_create(path, Ed25519PrivateKey, what="agent identity key")
    assert err.value.code is ErrorCode.SEC_003
    assert err.value.offending == str(path) and str(path) in err.value.render()
    assert "accessible by group or others (mode 0644)" in err.value.message
    assert err.value.hint == f"chmod 600 {path}"


def test_corrupt_or_wrong_algorithm_key_file_is_sec_002(tmp_path):
    path = tmp_path / "x25519.key"
    load_or_create(path, X25519PrivateKey, what="agent agreement key")
    with pytest.raises(SymbiError) as err:
        load_private_key(path, Ed25519PrivateKey, what="agent agreement key")
    assert err.value.code is ErrorCode.SEC_002 and "not an Ed25519 key" in err.value.message
    path.write_bytes(b"not a key")
    with pytest.raises(SymbiError) as err:
        load_private_key(path, X25519PrivateKey, what="agent agreement key")
    assert err.value.code is ErrorCode.SEC_002 and err.value.offending == str(path)
    with pytest.raises(FileNotFoundError):
        load_private_key(tmp_path / "missing.key", X25519PrivateKey, what="agent agreement key")


def test_a_key_created_by_another_process_first_is_used(tmp_path, monkeypatch):
    path = tmp_path / "ed25519.key"
    theirs = Ed25519PrivateKey.generate()
    real_link = os.link

    def racing_link(src, dst):  # the other process links its key in just before us
        path.write_bytes(private_pem(theirs))
        path.chmod(0o600)
        real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    key, created = load_or_create(path, Ed25519PrivateKey, what="agent identity key")
    assert not created
    assert key.public_key().public_bytes_raw() == theirs.public_key().public_bytes_raw()
    assert os.listdir(tmp_path) == ["ed25519.key"]


def test_audit_and_bus_keys_go_through_the_shared_loader(tmp_path):
    from engine.audit.keys import load_or_create_signing_key

    load_or_create_signing_key(tmp_path)
    KeyStore.in_data_dir(tmp_path).identity("agent-1")
    for key in (
        tmp_path / "keys" / "runtime_ed25519.pem",
        tmp_path / "keys" / "agents" / "agent-1" / "ed25519.key",
        tmp_path / "keys" / "agents" / "agent-1" / "x25519.key",
    ):
        assert _mode(key) == 0o600
        key.chmod(0o640)
        with pytest.raises(SymbiError) as err:
            if key.name == "runtime_ed25519.pem":
                load_or_create_signing_key(tmp_path)
            else:
                KeyStore.in_data_dir(tmp_path).identity("agent-1")
        assert err.value.code is ErrorCode.SEC_003 and err.value.offending == str(key)
        key.chmod(0o600)
    assert _mode(tmp_path / "keys" / "runtime_ed25519.pub.pem") == 0o644


# -- the Merkle inclusion check --------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 37, 64, 100])
def test_inclusion_check_accepts_every_valid_proof_and_rejects_tampering(n):
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    root, proofs = build(leaves)
    for i, leaf in enumerate(leaves):
        *_, (_fn, sn, r, k) = climb(leaf, i, n, proofs[i])  # the walk ends at the root, the proof used up
        assert (r, sn, k) == (root, 0, len(proofs[i])) and root_from_proof(leaf, i, n, proofs[i]) == r
        assert root_from_proof(leaf_hash(b"forged"), i, n, proofs[i]) != root
        if proofs[i]:
            bad = list(proofs[i])
            bad[-1] = bytes(32)
            assert root_from_proof(leaves[i], i, n, bad) != root
            assert root_from_proof(leaves[i], i, n, proofs[i][:-1]) != root  # truncated
        assert root_from_proof(leaves[i], i, n, (*proofs[i], bytes(32))) is None  # too long
        assert root_from_proof(leaves[i], n, n, proofs[i]) is None  # index out of range


def test_verifier_and_root_from_proof_agree(tmp_path):
    """The bus verifier walks the same check: what one accepts the other does, tampered or not."""
    alice = KeyStore(tmp_path).identity("alice")
    aead = AESGCM(os.urandom(32))
    drafts = [
        seal(aead, os.urandom(12), sender="alice", type=MessageType.DIRECT, payload=bytes([i]),
             timestamp=time.time(), ttl=60.0, recipient="bob")
        for i in range(11)
    ]  # fmt: skip
    for env in sign_batch(alice.signing_key, drafts):
        root = root_from_proof(envelope_leaf(env), env.batch_index, env.batch_size, env.proof)
        assert root is not None
        alice.public.signing_key.verify(env.signature, batch_message(env.batch_size, root))  # raises if not
        assert Verifier().verify(env, alice.public)
        tampered = env.signed(env.signature, env.batch_size, env.batch_index, (bytes(32), *env.proof[1:]))
        assert root_from_proof(envelope_leaf(tampered), env.batch_index, env.batch_size, tampered.proof) != root
        assert not Verifier().verify(tampered, alice.public)
        moved = env.signed(env.signature, env.batch_size, (env.batch_index + 1) % env.batch_size, env.proof)
        assert not Verifier().verify(moved, alice.public)
