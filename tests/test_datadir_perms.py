"""Keys out of reach: the data dir is 0700, its key files and databases 0600, and the engine
refuses a loose data dir (``RUNTIME_003``) or key file (``SEC_003``) at start, naming it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from engine import datadir
from engine.comms import KeyStore
from engine.errors import ErrorCode, SymbiError
from engine.mcp_tools.operator_key import OperatorKey
from engine.runtime import Runtime
from tests.helpers import fast_config
from tests.test_secrets_support import run_cli_process


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch):
    for name in ("SYMBIONT_MASTER_KEY", "SYMBIONT_MASTER_PASSPHRASE", "SYMBI_DATA_DIR", "SYMBI_CONFIG"):
        monkeypatch.delenv(name, raising=False)


DATABASES = ("audit.db", "agents.db", "mcp_tools.db", "contexts/context.db")


def database_modes(data: Path) -> dict[Path, int]:
    """The modes of the databases and of whichever of their WAL/SHM files exist now."""
    files = [p for rel in DATABASES for p in (data / rel, Path(f"{data / rel}-wal"), Path(f"{data / rel}-shm"))]
    return {p: mode(p) for p in files if p.exists()}


async def populated(data: Path) -> dict[Path, int]:
    """An engine run that leaves every kind of key and database behind; the database files' modes while it ran."""
    async with Runtime.open(fast_config(), data) as rt:
        await rt.secrets.set("app/token", "not-a-real-token")  # keys/master.key
        rt.messages.keys.identity("agent-1")  # keys/agents/agent-1/*.key
        OperatorKey.in_data_dir(data).public_pem()  # operator_key.pem
        # keys/runtime_ed25519.pem: the audit trail makes it at start
        return database_modes(data)


async def test_a_fresh_data_dir_is_0700_with_0600_keys_and_databases(tmp_path):
    data = tmp_path / "deep" / "data"  # missing parents too
    open_files = await populated(data)
    assert mode(data) == 0o700 and mode(data / "keys") == 0o700
    keys = datadir.key_files(data)
    names = {p.name for p in keys}
    assert {"master.key", "runtime_ed25519.pem", "operator_key.pem", "ed25519.key", "x25519.key"} <= names
    assert all(mode(p) == 0o600 for p in keys), {str(p): oct(mode(p)) for p in keys}
    assert not any(p.name.endswith((".pub", ".pub.pem")) for p in keys)  # public halves are not key files
    assert all(data / rel in open_files for rel in DATABASES)
    assert Path(f"{data / 'agents.db'}-wal") in open_files and Path(f"{data / 'audit.db'}-shm") in open_files
    assert set(open_files.values()) == {0o600}, {str(p): oct(m) for p, m in open_files.items()}
    assert mode(data / "engine.lock") == 0o600
    async with Runtime.open(fast_config(), data):  # everything it made passes its own check
        pass


async def test_databases_stay_0600_whatever_the_umask_and_loose_ones_are_tightened(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    old = os.umask(0o000)
    try:
        async with Runtime.open(fast_config(), data):
            pass
    finally:
        os.umask(old)
    assert mode(data / "agents.db") == 0o600 and mode(data / "audit.db") == 0o600
    (data / "agents.db").chmod(0o644)
    Path(f"{data / 'audit.db'}-wal").touch()
    Path(f"{data / 'audit.db'}-wal").chmod(0o664)
    async with Runtime.open(fast_config(), data):
        assert mode(data / "agents.db") == 0o600 and mode(Path(f"{data / 'audit.db'}-wal")) == 0o600


async def test_the_context_store_database_and_key_are_0600(tmp_path):
    from engine.knowledge import ContextSettings, ContextStore

    class TinyEmbedder:
        model_id, dim = "tiny", 4

        def embed(self, texts):
            return [[1.0, 0.0, 0.0, 0.0] for _ in texts]

    data = tmp_path / "data"
    async with Runtime.open(fast_config(), data):
        pass
    assert mode(data / "contexts") == 0o700 and mode(data / "contexts" / "context.db") == 0o600
    cfg = fast_config(context={"enable_vector_db": False})
    store = await ContextStore.open(data, context_cfg=cfg.context, embedder=TinyEmbedder(), settings=ContextSettings())
    try:
        await store.put("a1", "a note", "working")
    finally:
        await store.close()
    files = [p for p in (data / "contexts").iterdir() if p.name.startswith("context.") and p.name != "context.lock"]
    assert {p.name for p in files} >= {"context.db", "context.key"}
    assert all(mode(p) == 0o600 for p in files), {p.name: oct(mode(p)) for p in files}


async def test_a_data_dir_made_0755_is_refused_with_runtime_003(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    with pytest.raises(SymbiError) as err:
        async with Runtime.open(fast_config(), data):
            pass
    assert err.value.code is ErrorCode.RUNTIME_003
    text = err.value.render()
    assert str(data) in text and "0755" in text and f"chmod 700 {data}" in text
    assert list(data.iterdir()) == []  # refused before anything was written into it
    assert mode(data) == 0o755  # and not silently changed
    data.chmod(0o700)
    async with Runtime.open(fast_config(), data):  # the fix from the hint is enough
        pass


@pytest.mark.parametrize(
    ("rel", "what"),
    [
        ("keys/master.key", "vault master key"),
        ("keys/runtime_ed25519.pem", "audit signing key"),
        ("operator_key.pem", "operator signing key"),
        ("keys/agents/agent-1/ed25519.key", "agent identity key"),
    ],
)
async def test_a_loose_key_file_is_refused_with_sec_003_naming_it(tmp_path, rel, what):
    data = tmp_path / "data"
    await populated(data)
    key = data / rel
    key.chmod(0o644)
    with pytest.raises(SymbiError) as err:
        async with Runtime.open(fast_config(), data):
            pass
    assert err.value.code is ErrorCode.SEC_003 and err.value.offending == str(key)
    text = err.value.render()
    assert what in text and "0644" in text and f"chmod 600 {key}" in text
    key.chmod(0o600)
    async with Runtime.open(fast_config(), data):
        pass


async def test_every_loose_key_is_counted_and_a_key_in_a_configured_keys_dir_is_checked(tmp_path):
    data = tmp_path / "data"
    await populated(data)
    (data / "keys" / "master.key").chmod(0o640)
    (data / "keys" / "runtime_ed25519.pem").chmod(0o604)
    with pytest.raises(SymbiError) as err:
        datadir.check_key_files(data)
    assert err.value.code is ErrorCode.SEC_003 and "1 more key file" in err.value.render()
    assert len(err.value.details["loose"]) == 2
    vault_keys = tmp_path / "vault-keys"
    vault_keys.mkdir(mode=0o700)
    (vault_keys / "master.key").write_text("x\n")
    (vault_keys / "master.key").chmod(0o644)
    cfg = fast_config(secrets={"keys_dir": str(vault_keys)})
    assert vault_keys / "master.key" in datadir.key_files(data, cfg)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
async def test_a_key_file_or_data_dir_owned_by_another_uid_is_refused(tmp_path):
    data = tmp_path / "data"
    await populated(data)
    key = data / "keys" / "master.key"
    os.chown(key, 65534, 65534)
    with pytest.raises(SymbiError) as err:
        async with Runtime.open(fast_config(), data):
            pass
    assert err.value.code is ErrorCode.SEC_003 and err.value.offending == str(key)
    assert "uid 65534" in err.value.render() and "chown" in err.value.render()
    os.chown(key, 0, 0)
    os.chown(data, 65534, 65534)
    with pytest.raises(SymbiError) as err:
        async with Runtime.open(fast_config(), data):
            pass
    assert err.value.code is ErrorCode.RUNTIME_003 and "uid 65534" in err.value.render()
    os.chown(data, 0, 0)


def test_symbiont_secrets_on_a_loose_data_dir_answers_with_the_code(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    result = run_cli_process(["--data-dir", str(data), "secrets", "list"])
    assert result.code == 2 and result.out == b""
    assert result.err.startswith("symbiont: RUNTIME_003") and "0755" in result.err and f"chmod 700 {data}" in result.err
    assert "Traceback" not in result.err


def test_symbiont_secrets_creates_a_new_data_dir_0700(tmp_path):
    data = tmp_path / "new" / "data"
    result = run_cli_process(["--data-dir", str(data), "secrets", "set", "a"], stdin=b"v")
    assert result.code == 0, result.err
    assert mode(data) == 0o700 and mode(data / "keys" / "master.key") == 0o600


def test_logging_setup_creates_the_data_dir_0700(tmp_path):
    from engine.logsetup import setup_logging

    data = tmp_path / "logs-first"
    try:
        setup_logging("info", data, to_stderr=False)
    finally:
        setup_logging("info", None, to_stderr=False)
    assert mode(data) == 0o700


async def test_the_console_reports_a_loose_data_dir_instead_of_raising(tmp_path):
    from tests.console_fixtures import make_app

    (tmp_path / "data").mkdir()
    (tmp_path / "data").chmod(0o755)
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
    assert app.return_code == 2
    assert app.startup_error is not None and app.startup_error.code is ErrorCode.RUNTIME_003


def test_keystore_helper_and_vault_never_make_a_loose_data_dir(tmp_path):
    from engine.secrets import SecretsConfig, Vault

    vault = Vault.open(tmp_path / "v-data", SecretsConfig(), key_source=None)
    vault.close()
    assert mode(tmp_path / "v-data") == 0o700
    KeyStore.in_data_dir(tmp_path / "v-data").identity("agent-2")
    datadir.check_key_files(tmp_path / "v-data")
