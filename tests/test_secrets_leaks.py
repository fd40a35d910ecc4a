"""A planted secret value (and the master key) never reach a log, an exception, a repr or stderr."""

from __future__ import annotations

import base64
import logging
import traceback

import pytest

from engine.errors import SymbiError
from engine.secrets import KeySource, Vault
from engine.secrets.keys import MasterKey
from tests.test_secrets_support import clean_env, fast_config, run_cli  # noqa: F401  (autouse fixture)

PLANTED = "PLANTED-c0ffee-4b1d-VALUE"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logs():
    handler = Collect()
    loggers = [logging.getLogger(), logging.getLogger("symbi"), logging.getLogger("symbi.secrets")]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield handler
    for lg, level in saved:
        lg.removeHandler(handler)
        lg.setLevel(level)


def rendered(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc))
    if isinstance(exc, SymbiError):
        text += repr(exc.to_dict()) + exc.render()
    return text + repr(exc) + str(exc)


def test_planted_value_never_leaks_from_the_library(tmp_path, logs, caplog):
    caplog.set_level(logging.DEBUG)
    vault = Vault.open(tmp_path, fast_config())
    key_text = (tmp_path / "keys" / "master.key").read_text().strip()
    seen: list[str] = []

    info = vault.set("leak/one", PLANTED, {"description": "planted"})
    value = vault.get("leak/one")
    seen += [repr(info), str(info), repr(value), str(value), f"{value}", f"{value!r}", repr(vault)]
    seen += [repr(r) for r in vault.list_secrets()] + [repr(r) for r in vault.history("leak/one")]
    seen.append(repr(MasterKey(base64.b64decode(key_text), "file", "test")))
    vault.set("leak/one", PLANTED + "-2")
    report = vault.rotate_key()
    seen.append(repr(report))
    blob = vault.encrypt_bytes(PLANTED.encode())

    errors: list[BaseException] = []
    file = vault.file_for("leak/one")
    tampered = bytearray(file.read_bytes())
    tampered[-3] ^= 0xFF
    file.write_bytes(bytes(tampered))
    for call in (
        lambda: vault.get("leak/one"),
        lambda: vault.set("leak/one", PLANTED),
        lambda: vault.decrypt_bytes(blob[:-1], "cut.enc"),
        lambda: vault.get("bad/../name"),
        lambda: Vault.open(tmp_path, fast_config(), key_source=KeySource.raw(b"\x09" * 32)),
        lambda: vault.set("leak/two", PLANTED, {"tags": [7]}),
    ):
        with pytest.raises(SymbiError) as err:
            call()
        errors.append(err.value)
    seen += [rendered(e) for e in errors]
    seen += [row.error or "" for row in vault.list_secrets()]
    seen += logs.lines + [caplog.text]

    assert logs.lines, "the vault logs its operations (names only)"
    for text in seen:
        assert PLANTED not in text
        assert key_text not in text


def test_reveal_errors_do_not_quote_the_bytes(tmp_path):
    vault = Vault.open(tmp_path, fast_config())
    vault.set("bin", b"\xffPLANTED")
    with pytest.raises(ValueError) as err:
        vault.get("bin").reveal()
    assert "PLANTED" not in rendered(err.value) and "\\xff" not in rendered(err.value)


def test_planted_value_never_reaches_cli_stderr_or_list(tmp_path, monkeypatch, capfdbinary, logs):
    base = ["--data-dir", str(tmp_path / "d"), "secrets"]
    outputs = []
    for args, stdin in (
        (["set", "p/x", "--description", "d"], PLANTED.encode()),
        (["list"], None),
        (["list", "--json"], None),
        (["rotate-key"], None),
        (["set", "p/x", "--value", PLANTED], None),
        (["get", "p/missing"], None),
        (["rm", "p/x"], None),
    ):
        result = run_cli(monkeypatch, capfdbinary, [*base, *args], stdin=stdin)
        outputs.append((args, result))
    for args, result in outputs:
        assert PLANTED not in result.err, args
        assert PLANTED.encode() not in result.out, args
    got = run_cli(monkeypatch, capfdbinary, [*base, "set", "p/y"], stdin=PLANTED.encode())
    assert got.code == 0
    shown = run_cli(monkeypatch, capfdbinary, [*base, "get", "p/y"])
    assert shown.out == PLANTED.encode() and PLANTED not in shown.err  # stdout only, on request
    assert all(PLANTED not in line for line in logs.lines)
