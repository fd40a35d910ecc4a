"""The vault library: round trips, metadata, versions, names, keys, passphrases, rotation."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import threading

import pytest

from engine.errors import ErrorCode, SymbiError
from engine.secrets import AsyncVault, KeySource, SecretsConfig, SecretValue, Vault, validate_secret_path
from engine.secrets.fileformat import parse_header
from tests.test_secrets_support import clean_env, fast_config  # noqa: F401  (autouse fixture)


def b64key(seed: int = 0) -> str:
    return base64.b64encode(bytes([seed]) * 32).decode()


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def vault(tmp_path) -> Vault:
    return Vault.open(tmp_path, fast_config())


# ---------------------------------------------------------------- round trips


def test_set_get_round_trip_text_and_bytes(vault):
    vault.set("app/api_key", "sk-live-123")
    vault.set("bin/blob", b"\x00\xffraw\n")
    assert vault.get("app/api_key").reveal() == "sk-live-123"
    assert vault.get("bin/blob").reveal_bytes() == b"\x00\xffraw\n"
    with pytest.raises(ValueError, match="not UTF-8"):
        vault.get("bin/blob").reveal()
    assert vault.exists("app/api_key") and not vault.exists("app/other")


def test_layout_follows_the_seed_file_backend(tmp_path):
    vault = Vault.open(tmp_path, fast_config(file_extension="sec", base_path="vault"))
    vault.set("app/api_key", "v")
    file = tmp_path / "vault" / "app" / "api_key.sec"
    assert file.is_file() and vault.file_for("app/api_key") == file
    assert mode(file) == 0o600
    assert mode(tmp_path / "vault" / "app") == 0o700
    assert mode(tmp_path / "keys" / "master.key") == 0o600
    assert mode(tmp_path / "keys") == 0o700
    assert parse_header(file.read_bytes(), str(file)).key_id == vault.key_id


def test_a_second_open_reads_what_the_first_wrote(tmp_path):
    Vault.open(tmp_path, fast_config()).set("a", "one")
    assert Vault.open(tmp_path, fast_config()).get("a").reveal() == "one"


def test_metadata_versions_and_listing(vault):
    first = vault.set("app/db", "pw1", {"description": "database", "tags": ["prod", "db"], "owner": "ops"})
    assert (first.version, first.description, first.tags, first.metadata) == (
        1,
        "database",
        ("prod", "db"),
        {"owner": "ops"},
    )
    second = vault.set("app/db", "pw2")  # metadata None keeps the previous metadata
    assert second.version == 2 and second.created == first.created and second.updated >= first.updated
    assert second.description == "database" and second.tags == ("prod", "db")
    vault.set("app/api", "k", {"description": "api"})
    vault.set("other", "x")
    rows = vault.list_secrets("app/")
    assert [r.path for r in rows] == ["app/api", "app/db"]
    assert all(r.key_id == vault.key_id and r.error is None for r in rows)
    assert "pw" not in json.dumps([r.to_dict() for r in rows])
    assert vault.names() == ["app/api", "app/db", "other"]
    assert vault.info("app/db").version == 2


def test_previous_versions_are_kept_and_pruned(tmp_path):
    vault = Vault.open(tmp_path, fast_config(keep_versions=3))
    for i in range(1, 7):
        vault.set("s", f"v{i}")
    current = vault.file_for("s")
    kept = sorted(p.name for p in current.parent.iterdir() if p.name.startswith("s."))
    assert kept == ["s.enc", "s.enc.1", "s.enc.2", "s.enc.3"]
    assert [i.version for i in vault.history("s")] == [6, 5, 4, 3]
    assert vault.get("s", version=4).reveal() == "v4"
    assert vault.get("s").reveal() == "v6"
    with pytest.raises(SymbiError) as err:
        vault.get("s", version=1)
    assert err.value.code == ErrorCode.SEC_004
    assert all(mode(p) == 0o600 for p in current.parent.iterdir())


def test_keep_versions_zero_keeps_no_history(tmp_path):
    vault = Vault.open(tmp_path, fast_config(keep_versions=0))
    vault.set("s", "1")
    vault.set("s", "2")
    assert [p.name for p in vault.file_for("s").parent.iterdir() if not p.name.startswith(".")] == ["s.enc"]


def test_delete_removes_versions_and_empty_folders(vault):
    vault.set("deep/er/name", "1")
    vault.set("deep/er/name", "2")
    vault.delete("deep/er/name")
    assert not vault.exists("deep/er/name")
    assert not (vault.base / "deep").exists()
    with pytest.raises(SymbiError) as err:
        vault.delete("deep/er/name")
    assert err.value.code == ErrorCode.SEC_004
    with pytest.raises(SymbiError) as err:
        vault.get("missing")
    assert err.value.code == ErrorCode.SEC_004 and "missing" in str(err.value)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "/abs",
        "a/../b",
        "..",
        "a//b",
        "./a",
        "a/.",
        ".hidden",
        "a/.b",
        "a\\b",
        "a\x00b",
        "sp ace",
        "a/",
        "é",
        "x" * 600,
    ],
)
def test_invalid_names_are_sec_005(vault, bad):
    with pytest.raises(SymbiError) as err:
        vault.set(bad, "v")
    assert err.value.code == ErrorCode.SEC_005
    assert list(vault.base.rglob("*.enc")) == []


@pytest.mark.parametrize("good", ["a", "app/api_key", "A-b.c_d@e+f=g/x", "1/2/3", "a.enc.1"])
def test_valid_names(good):
    assert validate_secret_path(good) == good


def test_names_that_look_like_history_files_do_not_collide(vault):
    vault.set("a", "current a")
    vault.set("a", "newer a")
    vault.set("a.enc.1", "a secret called a.enc.1")
    assert vault.get("a.enc.1").reveal() == "a secret called a.enc.1"
    assert vault.get("a").reveal() == "newer a"
    assert vault.names() == ["a", "a.enc.1"]


def test_set_refuses_bad_metadata(vault):
    for bad in ({"description": 5}, {"tags": [1]}, {"x": object()}):
        with pytest.raises(SymbiError) as err:
            vault.set("m", "v", bad)
        assert err.value.code == ErrorCode.SEC_005
    assert not vault.exists("m")


def test_threads_writing_concurrently_lose_nothing(vault):
    def writer(t: int) -> None:
        for i in range(20):
            vault.set(f"t{t}", f"{t}-{i}")
            vault.set("shared", f"{t}-{i}")

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert [vault.get(f"t{t}").reveal() for t in range(4)] == [f"{t}-19" for t in range(4)]
    assert vault.info("shared").version == 80


async def test_async_vault_runs_off_the_event_loop(tmp_path):
    avault = await AsyncVault.open(tmp_path, fast_config())
    await avault.set("a/b", "v", {"description": "d"})
    assert (await avault.get("a/b")).reveal() == "v"
    assert [i.path for i in await avault.list_secrets()] == ["a/b"]
    assert await avault.names() == ["a/b"]
    assert await avault.exists("a/b")
    report = await avault.rotate_key()
    assert avault.key_id == report.new_key_id
    await avault.delete("a/b")
    assert await asyncio.gather(avault.exists("a/b")) == [False]


# ---------------------------------------------------------------- master keys


def test_key_file_is_created_once_and_reused(tmp_path):
    first = Vault.open(tmp_path, fast_config())
    second = Vault.open(tmp_path, fast_config())
    assert first.key_id == second.key_id
    assert first.key_origin.startswith("key file")


def test_env_key_is_used_first_and_validated(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMBIONT_MASTER_KEY", b64key(1))
    vault = Vault.open(tmp_path, fast_config())
    assert vault.key_origin == "SYMBIONT_MASTER_KEY"
    assert not (tmp_path / "keys" / "master.key").exists()
    vault.set("x", "y")
    for bad in ("not base64 at all!", base64.b64encode(b"short").decode()):
        monkeypatch.setenv("SYMBIONT_MASTER_KEY", bad)
        with pytest.raises(SymbiError) as err:
            Vault.open(tmp_path, fast_config())
        assert err.value.code == ErrorCode.SEC_006
        assert bad not in str(err.value) and "SYMBIONT_MASTER_KEY" in str(err.value)


def test_env_key_url_safe_base64_is_accepted(tmp_path, monkeypatch):
    key = bytes(range(200, 232))
    monkeypatch.setenv("SYMBIONT_MASTER_KEY", base64.urlsafe_b64encode(key).decode())
    assert (
        Vault.open(tmp_path, fast_config()).key_id
        == Vault.open(tmp_path, fast_config(), key_source=KeySource.raw(key)).key_id
    )


def test_wrong_env_key_is_refused_at_open_naming_the_source(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMBIONT_MASTER_KEY", b64key(1))
    Vault.open(tmp_path, fast_config()).set("x", "y")
    monkeypatch.setenv("SYMBIONT_MASTER_KEY", b64key(2))
    with pytest.raises(SymbiError) as err:
        Vault.open(tmp_path, fast_config())
    assert err.value.code == ErrorCode.SEC_002 and "wrong key" in str(err.value)
    assert "SYMBIONT_MASTER_KEY" in str(err.value)


def test_without_the_marker_the_key_is_checked_against_the_files(tmp_path, monkeypatch):
    # a vault whose .vault.json is gone: the key id is read from a secret file's header
    monkeypatch.setenv("SYMBIONT_MASTER_KEY", b64key(1))
    first = Vault.open(tmp_path, fast_config())
    first.set("x", "y")
    marker = first.base / ".vault.json"
    marker.unlink()
    monkeypatch.setenv("SYMBIONT_MASTER_KEY", b64key(2))
    with pytest.raises(SymbiError) as err:
        Vault.open(tmp_path, fast_config())
    assert err.value.code == ErrorCode.SEC_002 and "wrong key" in str(err.value)
    monkeypatch.setenv("SYMBIONT_MASTER_KEY", b64key(1))
    assert Vault.open(tmp_path, fast_config()).get("x").reveal() == "y"
    assert marker.exists()


def test_key_file_with_loose_permissions_is_sec_003(tmp_path):
    Vault.open(tmp_path, fast_config()).set("x", "y")
    key_file = tmp_path / "keys" / "master.key"
    before = key_file.read_bytes()
    for loose in (0o644, 0o640, 0o604):
        key_file.chmod(loose)
        with pytest.raises(SymbiError) as err:
            Vault.open(tmp_path, fast_config())
        assert err.value.code == ErrorCode.SEC_003 and str(key_file) in str(err.value)
    assert key_file.read_bytes() == before  # nothing rewritten
    key_file.chmod(0o600)
    assert Vault.open(tmp_path, fast_config()).get("x").reveal() == "y"


def test_key_file_symlink_is_refused(tmp_path):
    Vault.open(tmp_path, fast_config())
    key_file = tmp_path / "keys" / "master.key"
    real = tmp_path / "elsewhere.key"
    key_file.rename(real)
    key_file.symlink_to(real)
    with pytest.raises(SymbiError) as err:
        Vault.open(tmp_path, fast_config())
    assert err.value.code == ErrorCode.SEC_003 and "symbolic link" in str(err.value)


def test_malformed_key_file_is_sec_006_without_content(tmp_path):
    Vault.open(tmp_path, fast_config())
    key_file = tmp_path / "keys" / "master.key"
    key_file.write_text("definitely-not-a-key\n")
    with pytest.raises(SymbiError) as err:
        Vault.open(tmp_path, fast_config())
    assert err.value.code == ErrorCode.SEC_006 and "definitely" not in str(err.value)


def test_lost_key_file_with_secrets_present_is_not_replaced(tmp_path):
    Vault.open(tmp_path, fast_config()).set("x", "y")
    (tmp_path / "keys" / "master.key").unlink()
    with pytest.raises(SymbiError) as err:
        Vault.open(tmp_path, fast_config())
    assert err.value.code == ErrorCode.SEC_006
    assert not (tmp_path / "keys" / "master.key").exists()


def test_secret_file_with_loose_permissions_is_sec_003(vault):
    vault.set("x", "y")
    vault.file_for("x").chmod(0o644)
    with pytest.raises(SymbiError) as err:
        vault.get("x")
    assert err.value.code == ErrorCode.SEC_003 and str(vault.file_for("x")) in str(err.value)
    assert vault.list_secrets()[0].error.startswith("SEC_003")


def test_group_readable_files_when_configured(tmp_path):
    vault = Vault.open(tmp_path, fast_config(permissions=0o640))
    vault.set("x", "y")
    assert mode(vault.file_for("x")) == 0o640
    assert vault.get("x").reveal() == "y"


@pytest.mark.parametrize("perm", [0o644, 0o700, 0o400, 0o606])
def test_config_refuses_unsafe_permissions(perm):
    with pytest.raises(SymbiError) as err:
        SecretsConfig(permissions=perm)
    assert err.value.code == ErrorCode.CONFIG_001


def test_config_from_mapping_reads_octal_text_and_warns():
    warnings: list[str] = []
    cfg = SecretsConfig.from_mapping({"permissions": "0640", "keep_versions": 5, "bogus": 1}, warnings)
    assert cfg.permissions == 0o640 and cfg.keep_versions == 5
    assert warnings == ["unknown key 'secrets.bogus' ignored"]


# ---------------------------------------------------------------- passphrase (Argon2id)


def test_passphrase_vault_round_trip(tmp_path):
    cfg = fast_config()
    vault = Vault.open(tmp_path, cfg, key_source=KeySource.passphrase("correct horse"))
    vault.set("p", "v")
    params = json.loads((tmp_path / "keys" / "passphrase.json").read_text())
    assert params["kdf"] == "argon2id" and len(base64.b64decode(params["salt"])) == 16
    assert mode(tmp_path / "keys" / "passphrase.json") == 0o600
    assert not (tmp_path / "keys" / "master.key").exists()
    again = Vault.open(tmp_path, cfg, key_source=KeySource.passphrase("correct horse"))
    assert again.get("p").reveal() == "v" and again.key_id == vault.key_id


def test_wrong_passphrase_and_missing_passphrase(tmp_path, monkeypatch):
    cfg = fast_config()
    Vault.open(tmp_path, cfg, key_source=KeySource.passphrase("right")).set("p", "v")
    with pytest.raises(SymbiError) as err:
        Vault.open(tmp_path, cfg, key_source=KeySource.passphrase("wrong"))
    assert err.value.code == ErrorCode.SEC_002 and "wrong passphrase" in err.value.message
    with pytest.raises(SymbiError) as err:
        Vault.open(tmp_path, cfg)  # auto: no env key, no key file -> asks for the passphrase
    assert err.value.code == ErrorCode.SEC_006 and "--passphrase" in str(err.value)
    monkeypatch.setenv("SYMBIONT_MASTER_PASSPHRASE", "right")
    assert Vault.open(tmp_path, fast_config(key_source="passphrase")).get("p").reveal() == "v"


def test_passphrase_salt_differs_per_vault(tmp_path):
    a = Vault.open(tmp_path / "a", fast_config(), key_source=KeySource.passphrase("same"))
    b = Vault.open(tmp_path / "b", fast_config(), key_source=KeySource.passphrase("same"))
    assert a.key_id != b.key_id


# ---------------------------------------------------------------- rotation (in-process)


def _fill(vault: Vault, n: int = 5) -> dict[str, str]:
    expected = {}
    for i in range(n):
        vault.set(f"r/{i}", f"old-{i}")
        vault.set(f"r/{i}", f"val-{i}")
        expected[f"r/{i}"] = f"val-{i}"
    return expected


def _all_under(vault: Vault, kid: str) -> bool:
    files = [p for p in vault.base.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return bool(files) and all(parse_header(p.read_bytes(), str(p)).key_id == kid for p in files)


def test_rotate_key_file_source(tmp_path):
    vault = Vault.open(tmp_path, fast_config())
    expected = _fill(vault)
    old = vault.key_id
    report = vault.rotate_key()
    assert report.old_key_id == old and report.new_key_id == vault.key_id != old
    assert report.reencrypted == 10 and report.skipped == ()
    assert _all_under(vault, vault.key_id)
    reopened = Vault.open(tmp_path, fast_config())
    assert reopened.key_id == report.new_key_id
    assert {k: reopened.get(k).reveal() for k in expected} == expected
    assert reopened.get("r/0", version=1).reveal() == "old-0"
    assert (tmp_path / "keys" / "retired" / f"{old}.key").is_file()
    assert not (tmp_path / "keys" / "rotation").exists()


def test_rotate_without_keeping_the_old_key(tmp_path):
    vault = Vault.open(tmp_path, fast_config())
    blob = vault.encrypt_bytes(b"standalone")
    _fill(vault, 2)
    vault.rotate_key(keep_old=False)
    assert list((tmp_path / "keys" / "retired").glob("*.key")) == []
    with pytest.raises(SymbiError) as err:
        Vault.open(tmp_path, fast_config()).decrypt_bytes(blob, "old.enc")
    assert err.value.code == ErrorCode.SEC_002 and "old.enc" in str(err.value)


def test_standalone_files_survive_a_rotation_through_the_retired_keyring(tmp_path):
    vault = Vault.open(tmp_path, fast_config())
    blob = vault.encrypt_bytes(b"config")
    vault.rotate_key()
    vault.rotate_key()
    assert Vault.open(tmp_path, fast_config()).decrypt_bytes(blob, "c.enc") == b"config"
    assert vault.purge_retired_keys() == 2


def test_rotate_env_key_to_a_supplied_key(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMBIONT_MASTER_KEY", b64key(1))
    vault = Vault.open(tmp_path, fast_config())
    expected = _fill(vault, 3)
    with pytest.raises(SymbiError) as err:
        vault.rotate_key()  # the env key cannot be replaced behind the user's back
    assert err.value.code == ErrorCode.SEC_006
    monkeypatch.setenv("NEW_KEY", b64key(2))
    report = vault.rotate_key(KeySource.env("NEW_KEY"))
    with pytest.raises(SymbiError) as err:
        Vault.open(tmp_path, fast_config())  # env still holds the old, now retired, key
    assert err.value.code == ErrorCode.SEC_002 and "retired" in str(err.value)
    monkeypatch.setenv("SYMBIONT_MASTER_KEY", b64key(2))
    reopened = Vault.open(tmp_path, fast_config())
    assert reopened.key_id == report.new_key_id
    assert {k: reopened.get(k).reveal() for k in expected} == expected
    with pytest.raises(SymbiError) as err:
        reopened.rotate_key(KeySource.env("SYMBIONT_MASTER_KEY"))
    assert err.value.code == ErrorCode.SEC_006 and "current" in str(err.value)


def test_rotate_from_key_file_to_passphrase_and_back(tmp_path):
    cfg = fast_config()
    vault = Vault.open(tmp_path, cfg)
    expected = _fill(vault, 2)
    vault.rotate_key(KeySource.passphrase("new pass"))
    assert not (tmp_path / "keys" / "master.key").exists()
    with pytest.raises(SymbiError) as err:
        Vault.open(tmp_path, cfg)
    assert err.value.code == ErrorCode.SEC_006
    by_pass = Vault.open(tmp_path, cfg, key_source=KeySource.passphrase("new pass"))
    assert {k: by_pass.get(k).reveal() for k in expected} == expected
    with pytest.raises(SymbiError):
        by_pass.rotate_key()  # a passphrase vault needs the new passphrase
    by_pass.rotate_key(KeySource.key_file())
    assert not (tmp_path / "keys" / "passphrase.json").exists()
    assert Vault.open(tmp_path, cfg).get("r/1").reveal() == "val-1"


def test_another_process_view_follows_a_rotation(tmp_path):
    writer = Vault.open(tmp_path, fast_config())
    reader = Vault.open(tmp_path, fast_config())
    writer.set("a", "1")
    writer.rotate_key()
    assert reader.get("a").reveal() == "1"  # reader reloads the keyring on an unknown key id
    reader.set("a", "2")  # and writes under the new key, not its stale one
    assert _all_under(writer, writer.key_id)
    assert writer.get("a").reveal() == "2"


def test_rotation_progress_is_reported(tmp_path):
    vault = Vault.open(tmp_path, fast_config())
    _fill(vault, 2)
    phases: list[tuple[str, int, int]] = []
    vault.rotate_key(progress=lambda phase, done, total: phases.append((phase, done, total)))
    assert phases[0] == ("staged", 0, 0)
    assert [p for p in phases if p[0] == "reencrypt"][-1] == ("reencrypt", 4, 4)
    assert [p[0] for p in phases[-2:]] == ["installed", "done"]


def test_secret_value_masking_and_equality():
    value = SecretValue("hunter2")
    assert repr(value) == "SecretValue('******')" and str(value) == "******" and f"{value}" == "******"
    assert f"{value!r:>30}".strip() == "SecretValue('******')"
    assert value == SecretValue(b"hunter2") and value != SecretValue("other")
    with pytest.raises(TypeError):
        hash(value)
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(value)
    with pytest.raises(TypeError):
        vars(value)  # no __dict__ to dump


def test_stray_history_of_a_deleted_namesake_is_not_inherited(vault):
    vault.set("s", "1")
    vault.set("s", "2")
    vault.file_for("s").unlink()  # only its history is left (say, the file was removed by hand)
    assert not vault.exists("s")
    info = vault.set("s", "fresh")
    assert info.version == 1 and [i.version for i in vault.history("s")] == [1]
