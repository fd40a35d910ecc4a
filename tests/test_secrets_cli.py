"""``symbiont secrets``: round trips with the library both ways, encrypt/decrypt, edit, errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from engine.secrets import KeySource, Vault
from engine.secrets.filecrypt import EditOutcome, edit_file
from tests.test_secrets_support import clean_env, fast_config, run_cli, run_cli_process  # noqa: F401

VALUE = "cli-canary-9Fq2x"


@pytest.fixture
def cli(tmp_path, monkeypatch, capfdbinary):
    data = tmp_path / "data"

    def run(*args: str, stdin: bytes | None = None):
        return run_cli(monkeypatch, capfdbinary, ["--data-dir", str(data), "secrets", *args], stdin=stdin)

    run.data = data
    return run


def editor_script(tmp_path: Path, body: str) -> str:
    script = tmp_path / f"editor-{abs(hash(body))}.sh"
    script.write_text("#!/bin/sh\n" + body + "\n")
    return f"sh {script}"


# ---------------------------------------------------------------- set / get / list / rm


def test_set_from_stdin_then_library_reads_it(cli):
    result = cli("set", "app/api_key", "--description", "the API key", "--tag", "prod", stdin=VALUE.encode() + b"\n")
    assert result.code == 0, result.err
    assert VALUE not in result.err and result.out == b""
    vault = Vault.open(cli.data, fast_config())
    assert vault.get("app/api_key").reveal() == VALUE  # one trailing newline from the pipe dropped
    info = vault.info("app/api_key")
    assert (info.description, info.tags, info.version) == ("the API key", ("prod",), 1)


def test_library_writes_cli_reads(cli):
    Vault.open(cli.data, fast_config()).set("db/password", VALUE + "\n")
    result = cli("get", "db/password")
    assert result.code == 0 and result.out == (VALUE + "\n").encode()  # exact bytes, nothing added on a pipe
    listing = cli("list")
    assert b"db/password" in listing.out and VALUE.encode() not in listing.out
    rows = json.loads(cli("list", "--json").out)
    assert rows[0]["path"] == "db/password" and rows[0]["version"] == 1 and VALUE not in json.dumps(rows)


def test_value_file_keeps_bytes_and_value_flag_warns(cli, tmp_path):
    value_file = tmp_path / "v.bin"
    value_file.write_bytes(b"line1\nline2\n")
    assert cli("set", "f", "--value-file", str(value_file)).code == 0
    assert cli("get", "f").out == b"line1\nline2\n"
    flagged = cli("set", "g", "--value", VALUE)
    assert flagged.code == 0 and "shell history" in flagged.err and VALUE not in flagged.err
    assert cli("get", "g").out == VALUE.encode()
    kept = cli("set", "h", "--keep-newline", stdin=b"x\n")
    assert kept.code == 0 and cli("get", "h").out == b"x\n"


def test_set_keeps_metadata_and_updates_it(cli):
    cli("set", "m", "--description", "first", "--tag", "a", stdin=b"1")
    cli("set", "m", stdin=b"2")
    cli("set", "m", "--tag", "b", stdin=b"3")
    info = Vault.open(cli.data, fast_config()).info("m")
    assert (info.version, info.description, info.tags) == (3, "first", ("b",))
    assert cli("get", "m", "--version", "1").out == b"1"


def test_rm_and_errors(cli):
    cli("set", "gone", stdin=b"v")
    assert cli("rm", "gone").code == 0
    missing = cli("get", "gone")
    assert missing.code == 2 and missing.err.startswith("symbiont: SEC_004") and missing.out == b""
    bad = cli("get", "../etc/passwd")
    assert bad.code == 2 and "SEC_005" in bad.err
    empty = cli("set", "e", stdin=b"")
    assert empty.code == 2 and "no value" in empty.err
    assert cli("list").out.strip() == b"no secrets"


def test_wrong_key_from_the_cli_is_sec_002_and_never_shows_the_value(cli, monkeypatch):
    cli("set", "k", stdin=VALUE.encode())
    monkeypatch.setenv("SYMBIONT_MASTER_KEY", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")
    result = cli("get", "k")
    assert result.code == 2 and "SEC_002" in result.err and VALUE not in result.err and result.out == b""


def test_loose_key_file_from_the_cli_is_sec_003(cli):
    cli("set", "k", stdin=b"v")
    key_file = cli.data / "keys" / "master.key"
    key_file.chmod(0o644)
    result = cli("get", "k")
    assert result.code == 2 and "SEC_003" in result.err and str(key_file) in result.err


def test_rotate_key_from_the_cli(cli):
    cli("set", "a", stdin=b"1")
    cli("set", "b", stdin=b"2")
    old = Vault.open(cli.data, fast_config()).key_id
    result = cli("rotate-key")
    assert result.code == 0 and f"{old} ->" in result.out.decode()
    assert Vault.open(cli.data, fast_config()).key_id != old
    assert cli("get", "a").out == b"1" and cli("get", "b").out == b"2"
    purged = cli("rotate-key", "--purge-old")
    assert purged.code == 0 and list((cli.data / "keys" / "retired").glob("*.key")) == []


def test_passphrase_from_the_cli_with_config_file(cli, monkeypatch):
    cli.data.mkdir(mode=0o700, parents=True)  # the CLI refuses a looser data dir (RUNTIME_003)
    (cli.data / "runtime_config.toml").write_text("[secrets]\nargon2_memory_kib = 1024\nargon2_iterations = 1\n")
    monkeypatch.setenv("SYMBIONT_MASTER_PASSPHRASE", "pass one")
    assert cli("set", "p", "--passphrase", stdin=b"v").code == 0
    params = json.loads((cli.data / "keys" / "passphrase.json").read_text())
    assert params["memory_kib"] == 1024
    assert cli("get", "p", "--passphrase").out == b"v"
    monkeypatch.setenv("SYMBIONT_NEW_MASTER_PASSPHRASE", "pass two")
    assert cli("rotate-key", "--passphrase", "--new-passphrase").code == 0
    wrong = cli("get", "p", "--passphrase")
    assert wrong.code == 2 and "SEC_002" in wrong.err and "pass one" not in wrong.err
    monkeypatch.setenv("SYMBIONT_MASTER_PASSPHRASE", "pass two")
    assert cli("get", "p", "--passphrase").out == b"v"
    lib = Vault.open(cli.data, fast_config(), key_source=KeySource.passphrase("pass two"))
    assert lib.get("p").reveal() == "v"


# ---------------------------------------------------------------- encrypt / decrypt


def test_encrypt_decrypt_round_trip_and_library_interop(cli, tmp_path):
    plain = tmp_path / "config.json"
    plain.write_bytes(b'{"token": "abc"}\n')
    enc = tmp_path / "config.json.enc"
    assert cli("encrypt", "--in", str(plain), "--out", str(enc)).code == 0
    assert stat.S_IMODE(enc.stat().st_mode) == 0o600 and b"token" not in enc.read_bytes()
    assert cli("decrypt", "--in", str(enc)).out == plain.read_bytes()
    out = tmp_path / "back.json"
    assert cli("decrypt", "--in", str(enc), "--out", str(out)).code == 0
    assert out.read_bytes() == plain.read_bytes() and stat.S_IMODE(out.stat().st_mode) == 0o600
    again = cli("decrypt", "--in", str(enc), "--out", str(out))
    assert again.code == 2 and "--force" in again.err
    # the library reads what the CLI wrote, and the reverse
    vault = Vault.open(cli.data, fast_config())
    assert vault.decrypt_bytes(enc.read_bytes(), str(enc)) == plain.read_bytes()
    lib_enc = tmp_path / "lib.enc"
    lib_enc.write_bytes(vault.encrypt_bytes(b"from the library"))
    assert cli("decrypt", "--in", str(lib_enc)).out == b"from the library"


def test_decrypt_of_a_tampered_file_writes_nothing(cli, tmp_path):
    plain = tmp_path / "p"
    plain.write_bytes(b"data")
    enc = tmp_path / "p.enc"
    cli("encrypt", "--in", str(plain), "--out", str(enc))
    blob = bytearray(enc.read_bytes())
    blob[-1] ^= 1
    enc.write_bytes(bytes(blob))
    out = tmp_path / "out"
    result = cli("decrypt", "--in", str(enc), "--out", str(out))
    assert result.code == 2 and "SEC_002" in result.err and str(enc) in result.err
    assert not out.exists()
    missing = cli("decrypt", "--in", str(tmp_path / "nope.enc"))
    assert missing.code == 2 and "not found" in missing.err


def test_decrypt_a_vault_secret_file_by_its_path(cli):
    cli("set", "app/token", stdin=b"tok")
    file = cli.data / "secrets" / "app" / "token.enc"
    assert cli("decrypt", "--in", str(file)).out == b"tok"
    moved = cli.data / "token.enc"
    moved.write_bytes(file.read_bytes())
    result = cli("decrypt", "--in", str(moved))
    assert result.code == 2 and "SEC_002" in result.err


# ---------------------------------------------------------------- edit


@pytest.fixture
def enc_file(cli, tmp_path) -> Path:
    plain = tmp_path / "settings.yaml"
    plain.write_bytes(b"a: 1\n")
    enc = tmp_path / "settings.yaml.enc"
    assert cli("encrypt", "--in", str(plain), "--out", str(enc)).code == 0
    plain.unlink()
    return enc


def test_edit_saves_changes_in_a_private_temp_copy(cli, tmp_path, monkeypatch, enc_file):
    record = tmp_path / "record"
    monkeypatch.setenv(
        "EDITOR",
        editor_script(
            tmp_path,
            f'stat -c "%a" "$1" > {record}; stat -c "%a" "$(dirname "$1")" >> {record}; '
            f'echo "$1" >> {record}; printf "a: 2\\n" > "$1"',
        ),
    )
    result = cli("edit", "--file", str(enc_file))
    assert result.code == 0 and "saved" in result.err
    file_mode, dir_mode, temp_path = record.read_text().split()
    assert (file_mode, dir_mode) == ("600", "700")
    assert temp_path.endswith("settings.yaml")
    assert not Path(temp_path).exists() and not Path(temp_path).parent.exists()
    assert cli("decrypt", "--in", str(enc_file)).out == b"a: 2\n"
    assert stat.S_IMODE(enc_file.stat().st_mode) == 0o600


def test_edit_with_a_failing_editor_leaves_the_original(cli, tmp_path, monkeypatch, enc_file):
    before = enc_file.read_bytes()
    record = tmp_path / "record"
    monkeypatch.setenv("EDITOR", editor_script(tmp_path, f'echo "$1" > {record}; printf "junk" > "$1"; exit 1'))
    result = cli("edit", "--file", str(enc_file))
    assert result.code == 1 and "left unchanged" in result.err
    assert enc_file.read_bytes() == before
    assert not Path(record.read_text().strip()).exists()


def test_edit_without_changes_writes_nothing(cli, tmp_path, monkeypatch, enc_file):
    before = enc_file.read_bytes()
    mtime = enc_file.stat().st_mtime_ns
    monkeypatch.setenv("EDITOR", editor_script(tmp_path, "exit 0"))
    result = cli("edit", "--file", str(enc_file))
    assert result.code == 0 and "nothing written" in result.err
    assert enc_file.read_bytes() == before and enc_file.stat().st_mtime_ns == mtime


def test_edit_a_missing_editor_is_an_error_and_keeps_the_file(cli, monkeypatch, enc_file):
    before = enc_file.read_bytes()
    monkeypatch.setenv("EDITOR", "/nonexistent/editor-xyz")
    result = cli("edit", "--file", str(enc_file))
    assert result.code == 2 and "editor" in result.err
    assert enc_file.read_bytes() == before


def test_edit_a_vault_secret_file_makes_a_new_version(cli, tmp_path, monkeypatch):
    cli("set", "app/conf", stdin=b"old")
    monkeypatch.setenv("EDITOR", editor_script(tmp_path, 'printf "new" > "$1"'))
    assert cli("edit", "--file", str(cli.data / "secrets" / "app" / "conf.enc")).code == 0
    vault = Vault.open(cli.data, fast_config())
    assert vault.get("app/conf").reveal() == "new" and vault.info("app/conf").version == 2


def test_edit_file_library_api(tmp_path):
    vault = Vault.open(tmp_path, fast_config())
    enc = tmp_path / "x.enc"
    enc.write_bytes(vault.encrypt_bytes(b"hello"))
    outcome, status = edit_file(vault, enc, editor=["sh", "-c", 'printf "bye" > "$0"'])
    assert (outcome, status) == (EditOutcome.SAVED, 0)
    assert vault.decrypt_bytes(enc.read_bytes(), "x") == b"bye"
    assert edit_file(vault, enc, editor=["sh", "-c", "exit 3"]) == (EditOutcome.EDITOR_FAILED, 3)


# ---------------------------------------------------------------- real processes


def test_cli_processes_and_library_round_trip(tmp_path):
    data = tmp_path / "data"
    base = ["--data-dir", str(data), "secrets"]
    stored = run_cli_process([*base, "set", "svc/token"], stdin=VALUE.encode())
    assert stored.code == 0, stored.err
    assert VALUE not in stored.err
    vault = Vault.open(data, fast_config())
    assert vault.get("svc/token").reveal() == VALUE
    vault.set("svc/other", "from-lib")
    got = run_cli_process([*base, "get", "svc/other"])
    assert got.code == 0 and got.out == b"from-lib"
    listed = run_cli_process([*base, "list"])
    assert listed.code == 0 and b"svc/token" in listed.out and VALUE.encode() not in listed.out
    failed = run_cli_process([*base, "get", "svc/none"])
    assert failed.code == 2 and failed.err.startswith("symbiont: SEC_004") and "Traceback" not in failed.err


def test_cli_process_with_env_key(tmp_path):
    data = tmp_path / "data"
    env = {"SYMBIONT_MASTER_KEY": "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="}
    assert run_cli_process(["--data-dir", str(data), "secrets", "set", "x"], stdin=b"y", env=env).code == 0
    assert not (data / "keys" / "master.key").exists()
    assert os.listdir(data / "secrets")
    bad = run_cli_process(["--data-dir", str(data), "secrets", "get", "x"], env={"SYMBIONT_MASTER_KEY": "nope"})
    assert bad.code == 2 and "SEC_006" in bad.err and "nope" not in bad.err
