"""The vault screen (screen 6): add, reveal, copy, hide, edit, delete and rotate, read-only mode,
engine errors shown with their code, and a planted value that must never leak into a
notification, a log or the screen once hidden.

The screen runs over the scripted engine (:class:`fake_scenarios.ScenarioFake`), which keeps
secrets in a dict and rotates by changing key ids. One test stays on the real engine and its
encrypted vault, end to end: the planted value must not reach the audit trail or any file of
the data dir in clear either."""

from __future__ import annotations

import logging

import pytest
import textual.constants
from console_fixtures import FIXED_MASTER_KEY, SEEDED_SECRETS, make_app, make_fake_app, ready, runtime_of, until
from fake_scenarios import ScenarioFake
from textual.widgets import Input, Label, Static

from console.dialogs import ConfirmDialog
from console.screens import SecretForm, VaultScreen
from console.screens.vault import MASK
from engine.errors import ErrorCode, SymbiError

PLANTED = "planted-Secret-7731-zq"
MUTATING = ("secrets.set", "secrets.delete", "secrets.rotate")


def notified(app, text: str) -> bool:
    return any(text in str(n.message) for n in app._notifications)


def seeded_fake() -> ScenarioFake:
    """The vault of :data:`SEEDED_SECRETS` (app/api_key written twice: version 2)."""
    fake = ScenarioFake()
    for name, value, metadata in SEEDED_SECRETS:
        fake.put_secret(name, value, metadata)
    return fake


async def open_vault(pilot) -> VaultScreen:
    app = pilot.app
    await ready(app)
    await pilot.press("6")
    screen = app.screen
    assert isinstance(screen, VaultScreen)
    await until(pilot, lambda: screen.tree.border_title.startswith("Vault ·"), what="the vault listing")
    return screen


def value_line(screen: VaultScreen) -> str:
    return str(screen.query_one("#vault-value", Static).render())


def meta_text(screen: VaultScreen) -> str:
    return str(screen.query_one("#vault-meta", Static).render())


async def select(pilot, screen: VaultScreen, path: str) -> None:
    node = next(n for n in screen._leaves() if getattr(n.data, "path", n.data) == path)
    screen.tree.move_cursor(node)
    await until(pilot, lambda: screen.selected_path() == path, what=f"{path} selected")


async def confirm(pilot, what: str) -> ConfirmDialog:
    await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), what=what)
    return pilot.app.screen


async def test_planted_value_is_shown_only_when_revealed_and_never_leaks(caplog, monkeypatch, tmp_path):
    caplog.set_level(logging.DEBUG)  # every Python log record, any logger
    textual_log = tmp_path / "textual.log"  # and everything the app and its widgets log
    monkeypatch.setattr(textual.constants, "LOG_FILE", str(textual_log))
    fake = ScenarioFake()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_vault(pilot)
        assert "The vault is empty" in meta_text(screen)
        assert screen.tree.border_subtitle == "a adds a secret"

        # add with the form: the value is typed masked
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, SecretForm), what="the form")
        form = app.screen
        form.query_one("#f-name", Input).value = "app/planted"
        await pilot.press("tab")
        value_input = form.query_one("#f-value", Input)
        assert value_input.password and value_input.has_focus
        await pilot.press(*PLANTED, "tab")  # the value is typed, key by key
        form.query_one("#f-description", Input).value = "planted by a test"
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is screen, what="the form to close")
        await until(pilot, lambda: screen.selected_path() == "app/planted", what="the new secret")
        assert notified(app, "added app/planted")
        # the engine got the name, the value and the metadata typed (the fake records no value)
        assert fake.called("secrets.set") == [("app/planted", "<value>", {"description": "planted by a test"})]
        assert fake.vault["app/planted"] == PLANTED
        assert "version  1" in meta_text(screen) and "planted by a test" in meta_text(screen)
        assert MASK in value_line(screen) and PLANTED not in value_line(screen)

        # reveal asks first ("no" reads nothing), shows the value, then hides it by itself
        screen.reveal_seconds = 0.6
        await pilot.press("v")
        question = await confirm(pilot, "the reveal question")
        assert "recorded in the audit trail" in str(question.query_one("#dialog-question", Static).render())
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen, what="the question to close")
        assert fake.called("secrets.reveal") == [] and MASK in value_line(screen)
        await pilot.press("v")
        await confirm(pilot, "the reveal question")
        await pilot.press("y")
        await until(pilot, lambda: PLANTED in value_line(screen), what="the revealed value")
        await until(pilot, lambda: MASK in value_line(screen), timeout=5, what="the value to hide again")
        assert screen.revealed is None

        # v again while shown hides at once
        screen.reveal_seconds = 30
        await pilot.press("v")
        await confirm(pilot, "the reveal question")
        await pilot.press("y")
        await until(pilot, lambda: PLANTED in value_line(screen), what="the revealed value")
        await pilot.press("v")
        assert MASK in value_line(screen) and screen.revealed is None

        # copy asks first, then puts it on the clipboard (OSC 52)
        await pilot.press("c")
        await confirm(pilot, "the copy question")
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "copied the value of app/planted"), what="the copy")
        assert app.clipboard == PLANTED

        await pilot.pause()
        screenshot = app.export_screenshot()
        assert "app/planted" in screenshot and PLANTED not in screenshot

        # every read went through the engine's reveal (which the engine audits), by name
        assert fake.called("secrets.reveal") == [("app/planted",)] * 3
        for note in app._notifications:
            assert PLANTED not in f"{note.title} {note.message}"
        assert PLANTED not in caplog.text
    assert textual_log.stat().st_size > 0, "Textual wrote no log: is TEXTUAL_LOG still honoured?"
    assert PLANTED not in textual_log.read_text(encoding="utf-8")


async def test_a_revealed_value_hides_when_the_cursor_moves_and_a_failed_reveal_says_why():
    fake = seeded_fake()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_vault(pilot)
        await select(pilot, screen, "app/db/password")
        screen.reveal_seconds = 30
        await pilot.press("v")
        await confirm(pilot, "the reveal question")
        await pilot.press("y")
        await until(pilot, lambda: "not-a-real-password" in value_line(screen), what="the revealed value")
        await select(pilot, screen, "shared/db_password")
        assert screen.revealed is None and "not-a-real-password" not in value_line(screen)
        assert MASK in value_line(screen)

        # the engine refuses: code, message and hint in a notification, nothing revealed
        fake.fail(
            "secrets.reveal",
            SymbiError(
                ErrorCode.SEC_002, "the secret file is damaged", offending="shared/db_password", hint="restore it"
            ),
        )
        await pilot.press("v")
        await confirm(pilot, "the reveal question")
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "SEC_002: the secret file is damaged"), what="the refusal")
        assert notified(app, "(input: 'shared/db_password')") and notified(app, "Hint: restore it")
        assert screen.revealed is None and MASK in value_line(screen)
        assert "shared-not-real" not in app.export_screenshot()


async def test_edit_delete_and_rotate():
    fake = seeded_fake()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_vault(pilot)
        assert set(screen.entries) == {name for name, _, _ in SEEDED_SECRETS}
        assert screen.entries["app/api_key"].version == 2
        old_key = screen.entries["app/api_key"].key_id
        assert screen.tree.border_subtitle == f"key {old_key}"
        await select(pilot, screen, "app/api_key")
        assert "payment provider key" in meta_text(screen) and "billing, prod" in meta_text(screen)

        # edit: a new value (and the metadata kept in the form)
        await select(pilot, screen, "shared/db_password")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, SecretForm), what="the edit form")
        form = app.screen
        assert form.query_one("#f-name", Input).disabled
        assert form.query_one("#f-description", Input).value == "readable by every agent"
        assert form.query_one("#f-value", Input).has_focus
        form.query_one("#f-value", Input).value = "rotated-value"
        await pilot.press("enter")
        await until(pilot, lambda: screen.entries["shared/db_password"].version == 2, what="version 2")
        assert notified(app, "updated shared/db_password")
        assert fake.called("secrets.set") == [
            ("shared/db_password", "<value>", {"description": "readable by every agent"})
        ]
        assert fake.vault["shared/db_password"] == "rotated-value"

        # delete asks first ("no" keeps it)
        await select(pilot, screen, "team/ci/deploy_token")
        await pilot.press("d")
        await confirm(pilot, "the delete question")
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen, what="the question to close")
        assert fake.called("secrets.delete") == [] and "team/ci/deploy_token" in screen.entries
        await pilot.press("d")
        await confirm(pilot, "the delete question")
        await pilot.press("y")
        await until(pilot, lambda: "team/ci/deploy_token" not in screen.entries, what="the deletion")
        assert fake.called("secrets.delete") == [("team/ci/deploy_token",)]
        assert notified(app, "deleted team/ci/deploy_token")

        # rotate the master key: asks, says "rotating…" while it runs, then the report; every secret
        # under the new key
        await pilot.press("R")
        question = await confirm(pilot, "the rotate question")
        assert "Re-encrypt all 3 secrets" in str(question.query_one("#dialog-question", Static).render())
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "rotated the master key"), what="the rotation")
        assert fake.called("secrets.rotate") == [()]
        assert screen.rotation_status[0] == "rotating the master key: re-encrypting 3 secrets…"  # one was deleted above
        assert screen.rotation_status[-1].startswith("rotated the master key: ")
        assert "re-encrypted, kept versions included" in screen.rotation_status[-1]
        assert f"(was {old_key}); 3 file(s)" in screen.rotation_status[-1]
        await until(pilot, lambda: screen.entries["app/api_key"].key_id != old_key, what="the new key")
        new_key = screen.entries["app/api_key"].key_id
        assert {e.key_id for e in screen.entries.values()} == {new_key}
        assert screen.tree.border_subtitle == f"key {new_key}"
        assert not screen.query_one("#vault-progress").has_class("-shown")


async def test_rotation_refused_by_the_engine_is_shown_with_the_reason():
    fake = seeded_fake()
    fake.fail(
        "secrets.rotate",
        SymbiError(
            ErrorCode.SEC_006,
            "the master key comes from SYMBIONT_MASTER_KEY: give the new key",
            offending="SYMBIONT_MASTER_KEY",
            hint="symbiont secrets rotate-key --new-key-env VAR (a variable holding the new base64 key), "
            "or --to-key-file to switch to a generated key file",
        ),
    )
    app = make_fake_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_vault(pilot)
        key = screen.entries["app/api_key"].key_id
        await pilot.press("R")
        await confirm(pilot, "the rotate question")
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "SEC_006"), what="the refusal")
        assert notified(app, "SYMBIONT_MASTER_KEY") and notified(app, "Hint: symbiont secrets rotate-key")
        assert not screen.query_one("#vault-progress").has_class("-shown")
        assert not notified(app, "rotated the master key")
        assert {e.key_id for e in screen.entries.values()} == {key}


async def test_bad_name_is_shown_in_the_form():
    fake = ScenarioFake()
    app = make_fake_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_vault(pilot)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, SecretForm), what="the form")
        app.screen.query_one("#f-name", Input).value = "../etc"
        await pilot.press("tab", "x", "enter")
        label = app.screen.query_one("#e-name", Label)
        assert "SEC_005" in str(label.render()) and label.has_class("-shown")
        # an empty value is refused in the form too
        app.screen.query_one("#f-name", Input).value = "app/ok"
        app.screen.query_one("#f-value", Input).value = ""
        await pilot.press("ctrl+s")
        value_error = app.screen.query_one("#e-value", Label)
        assert "a value is required" in str(value_error.render()) and value_error.has_class("-shown")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, what="the form to close")
        assert fake.called("secrets.set") == [] and fake.vault == {}


async def test_a_save_the_engine_refuses_is_shown_and_nothing_is_listed():
    fake = ScenarioFake()
    fake.fail("secrets.set", SymbiError(ErrorCode.AUDIT_001, "the audit trail is unavailable", hint="check the disk"))
    app = make_fake_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_vault(pilot)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, SecretForm), what="the form")
        app.screen.query_one("#f-name", Input).value = "app/token"
        await pilot.press("tab")
        app.screen.query_one("#f-value", Input).value = PLANTED
        await pilot.press("enter")
        await until(pilot, lambda: notified(app, "AUDIT_001: the audit trail is unavailable"), what="the refusal")
        assert notified(app, "Hint: check the disk")
        assert app.screen is screen and screen.entries == {}
        for note in app._notifications:
            assert PLANTED not in f"{note.title} {note.message}"


async def test_a_vault_that_cannot_be_listed_says_why():
    fake = ScenarioFake()
    fake.fail(
        "secrets.list_secrets",
        SymbiError(ErrorCode.SEC_006, "no master key", hint="set SYMBIONT_MASTER_KEY or create a key file"),
    )
    app = make_fake_app(fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app)
        await pilot.press("6")
        screen = app.screen
        assert isinstance(screen, VaultScreen)
        await until(pilot, lambda: screen.error is not None, what="the listing error")
        assert "SEC_006: no master key" in meta_text(screen)
        assert "Hint: set SYMBIONT_MASTER_KEY" in value_line(screen)
        assert notified(app, "SEC_006: no master key")


async def test_readonly_lists_names_only_and_refuses_the_rest():
    fake = seeded_fake()
    app = make_fake_app(fake, readonly=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_vault(pilot)
        assert all(isinstance(entry, str) for entry in screen.entries.values())
        assert screen.tree.border_subtitle == "read-only: names only"
        assert fake.called("secrets.names") and fake.called("secrets.list_secrets") == []  # never the metadata
        await until(pilot, lambda: screen.selected_path() == "app/api_key", what="the first name")
        meta = meta_text(screen)
        assert "metadata and values are not shown" in meta and "created" not in meta
        shown = {b.binding.id for b in screen.active_bindings.values() if b.binding.show}
        assert not shown & {"vault.add", "vault.edit", "vault.reveal", "vault.copy", "vault.delete", "vault.rotate"}

        await pilot.press("v")
        await until(pilot, lambda: notified(app, "CONSOLE_001"), what="the refusal")
        assert notified(app, "secrets.reveal shows a secret value")
        await pilot.press("a", "c", "d", "R")
        await pilot.pause()
        assert app.screen is screen  # no dialog, no form
        assert notified(app, "secrets.set changes engine state") and notified(
            app, "secrets.delete changes engine state"
        )
        assert notified(app, "secrets.rotate changes engine state")
        assert fake.called("secrets.reveal") == []
        assert all(fake.called(m) == [] for m in MUTATING)


# -- end to end ---------------------------------------------------------------------------------


@pytest.fixture
def master_key(monkeypatch):
    monkeypatch.setenv("SYMBIONT_MASTER_KEY", FIXED_MASTER_KEY)


async def test_planted_value_never_reaches_the_trail_or_the_disk_end_to_end(tmp_path, master_key, caplog, monkeypatch):
    """Stays on the real engine: the value goes through the real vault (encrypted at rest) and
    every read through the engine's audited reveal; what must hold is that the trail records the
    reads by name only and that no file of the data dir holds the value in clear."""
    caplog.set_level(logging.DEBUG)
    textual_log = tmp_path / "textual.log"
    monkeypatch.setattr(textual.constants, "LOG_FILE", str(textual_log))
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_vault(pilot)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, SecretForm), what="the form")
        form = app.screen
        form.query_one("#f-name", Input).value = "app/planted"
        form.query_one("#f-value", Input).value = PLANTED  # (typing it is tested above)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen.selected_path() == "app/planted", what="the new secret")

        screen.reveal_seconds = 30
        await pilot.press("v")
        await confirm(pilot, "the reveal question")
        await pilot.press("y")
        await until(pilot, lambda: PLANTED in value_line(screen), what="the revealed value")
        await pilot.press("v")
        await pilot.press("c")
        await confirm(pilot, "the copy question")
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "copied the value of app/planted"), what="the copy")
        assert app.clipboard == PLANTED
        assert PLANTED not in app.export_screenshot()

        # the reads were audited by name, and nothing recorded the value
        events = await runtime_of(app).audit.query(limit=1000)
        reads = [e for e in events if e.type == "secret.read" and e.resource == "app/planted"]
        assert [e.action for e in reads] == ["reveal", "reveal"]
        assert not any(PLANTED in str(e.to_dict()) for e in events)
        for note in app._notifications:
            assert PLANTED not in f"{note.title} {note.message}"
        assert PLANTED not in caplog.text
    assert PLANTED not in textual_log.read_text(encoding="utf-8")
    # and no file of the data dir holds it in clear
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert PLANTED.encode() not in path.read_bytes(), path
