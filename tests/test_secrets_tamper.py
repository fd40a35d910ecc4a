"""Tampering: bit flips in every region, truncation, swapped files, wrong keys, kind confusion.

Every case must give a ``SEC_002`` naming the file, never the value, and
leave every file on disk as it was.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import ErrorCode, SymbiError
from engine.secrets import KeySource, Vault
from engine.secrets.fileformat import HEADER_LEN, MAGIC, TAG_LEN, parse_header
from tests.test_secrets_support import clean_env, fast_config  # noqa: F401  (autouse fixture)

VALUE = "tamper-canary-Zq81"

# offset of one byte inside each region of the format (see engine/secrets/fileformat.py)
REGIONS = {
    "magic": 1,
    "format version": 4,
    "kind": 5,
    "key id": 9,
    "nonce": 20,
    "ciphertext": HEADER_LEN + 3,
    "tag": -5,
}


@pytest.fixture
def vault(tmp_path) -> Vault:
    vault = Vault.open(tmp_path, fast_config())
    vault.set("app/api_key", VALUE)
    return vault


def _expect_sec002(call, file) -> SymbiError:
    with pytest.raises(SymbiError) as err:
        call()
    assert err.value.code == ErrorCode.SEC_002, err.value
    assert str(file) in str(err.value)
    assert VALUE not in str(err.value) and VALUE not in repr(err.value.to_dict())
    return err.value


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_a_bit_flip_in_each_region_is_detected(vault, region):
    file = vault.file_for("app/api_key")
    blob = bytearray(file.read_bytes())
    blob[REGIONS[region]] ^= 0x10
    file.write_bytes(bytes(blob))
    _expect_sec002(lambda: vault.get("app/api_key"), file)
    assert file.read_bytes() == bytes(blob)  # nothing overwritten
    with pytest.raises(SymbiError):
        vault.set("app/api_key", "new")  # refuses to stack a version on an unreadable file
    assert file.read_bytes() == bytes(blob)
    row = vault.list_secrets()[0]
    assert row.path == "app/api_key" and row.error.startswith("SEC_002")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_bit_flip_is_detected(vault, data):
    file = vault.file_for("app/api_key")
    original = file.read_bytes()
    index = data.draw(st.integers(0, len(original) - 1))
    bit = data.draw(st.integers(0, 7))
    blob = bytearray(original)
    blob[index] ^= 1 << bit
    try:
        file.write_bytes(bytes(blob))
        _expect_sec002(lambda: vault.get("app/api_key"), file)
    finally:
        file.write_bytes(original)


@pytest.mark.parametrize("keep", [0, 4, HEADER_LEN, HEADER_LEN + 1, HEADER_LEN + TAG_LEN, -1])
def test_truncation_is_detected(vault, keep):
    file = vault.file_for("app/api_key")
    blob = file.read_bytes()
    cut = blob[:keep] if keep >= 0 else blob[:keep]
    file.write_bytes(cut)
    err = _expect_sec002(lambda: vault.get("app/api_key"), file)
    if 0 < keep < HEADER_LEN + TAG_LEN:
        assert "truncated" in err.message
    assert file.read_bytes() == cut


def test_files_swapped_between_names_fail(vault):
    vault.set("app/other", "other-value")
    a, b = vault.file_for("app/api_key"), vault.file_for("app/other")
    blob_a, blob_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(blob_b)
    b.write_bytes(blob_a)
    _expect_sec002(lambda: vault.get("app/api_key"), a)
    _expect_sec002(lambda: vault.get("app/other"), b)


def test_a_copied_file_fails_under_a_new_name(vault):
    target = vault.file_for("app/api_key").with_name("copy.enc")
    target.write_bytes(vault.file_for("app/api_key").read_bytes())
    target.chmod(0o600)
    _expect_sec002(lambda: vault.get("app/copy"), target)


def test_a_previous_version_moved_to_another_name_fails(vault):
    vault.set("app/api_key", "v2")
    old = vault.file_for("app/api_key").with_name("api_key.enc.1")
    vault.set("app/x", "x1")
    vault.file_for("app/x").write_bytes(old.read_bytes())
    _expect_sec002(lambda: vault.get("app/x"), vault.file_for("app/x"))


def test_a_file_from_another_vault_fails_as_wrong_key(tmp_path, vault):
    other = Vault.open(tmp_path / "other", fast_config(), key_source=KeySource.raw(b"\x07" * 32))
    other.set("app/api_key", "foreign")
    vault.file_for("app/api_key").write_bytes(other.file_for("app/api_key").read_bytes())
    err = _expect_sec002(lambda: vault.get("app/api_key"), vault.file_for("app/api_key"))
    assert "wrong key" in err.message and other.key_id in err.message


def test_standalone_and_secret_files_are_not_interchangeable(vault, tmp_path):
    secret_blob = vault.file_for("app/api_key").read_bytes()
    _expect_sec002(lambda: vault.decrypt_bytes(secret_blob, "looks-standalone.enc"), "looks-standalone.enc")
    standalone = vault.encrypt_bytes(VALUE.encode())
    vault.file_for("app/api_key").write_bytes(standalone)
    _expect_sec002(lambda: vault.get("app/api_key"), vault.file_for("app/api_key"))


def test_standalone_file_tampering(vault):
    blob = bytearray(vault.encrypt_bytes(b"payload"))
    assert vault.decrypt_bytes(bytes(blob), "f.enc") == b"payload"
    for offset in REGIONS.values():
        flipped = bytearray(blob)
        flipped[offset] ^= 1
        _expect_sec002(lambda f=flipped: vault.decrypt_bytes(bytes(f), "f.enc"), "f.enc")


def test_header_layout(vault):
    blob = vault.file_for("app/api_key").read_bytes()
    header = parse_header(blob, "x")
    assert blob[:4] == MAGIC and blob[4] == 1 and blob[5] == 1
    assert header.key_id == vault.key_id == blob[6:14].hex()
    # fresh nonce per write: same value twice gives different files
    vault.set("n1", "same")
    vault.set("n2", "same")
    vault.set("n1", "same")
    nonces = {vault.file_for(n).read_bytes()[14:26] for n in ("n1", "n2")}
    assert len(nonces) == 2
    assert vault.file_for("n1").read_bytes() != vault.file_for("n1").with_name("n1.enc.1").read_bytes()


def test_wrong_key_on_a_single_file_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMBIONT_MASTER_KEY", base64.b64encode(b"\x01" * 32).decode())
    first = Vault.open(tmp_path / "one", fast_config())
    blob = first.encrypt_bytes(b"cfg")
    monkeypatch.setenv("SYMBIONT_MASTER_KEY", base64.b64encode(b"\x02" * 32).decode())
    second = Vault.open(tmp_path / "two", fast_config())
    err = _expect_sec002(lambda: second.decrypt_bytes(blob, "/some/config.json.enc"), "/some/config.json.enc")
    assert first.key_id in err.message
