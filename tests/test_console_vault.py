"""The vault screen (screen 6) on a real runtime and a real encrypted vault: add, reveal, copy,
hide, edit, delete and rotate, read-only mode, and a planted value that must never leak
into a notification, a log, the audit trail, a file in clear or the screen once hidden."""

from __future__ import annotations

import logging

import pytest
import textual.constants
from console_fixtures import FIXED_MASTER_KEY, SEEDED_SECRETS, make_app, ready, runtime_of, seed_vault, until
from textual.widgets import Input, Label, Static

from console.dialogs import ConfirmDialog
from console.screens import SecretForm, VaultScreen
from console.screens.vault import MASK

PLANTED = "planted-Secret-7731-zq"


def notified(app, text: str) -> bool:
    return any(text in str(n.message) for n in app._notifications)


@pytest.fixture
def master_key(monkeypatch):
    monkeypatch.setenv("SYMBIONT_MASTER_KEY", FIXED_MASTER_KEY)


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


async def select(pilot, screen: VaultScreen, path: str) -> None:
    node = next(n for n in screen._leaves() if getattr(n.data, "path", n.data) == path)
    screen.tree.move_cursor(node)
    await until(pilot, lambda: screen.selected_path() == path, what=f"{path} selected")


async def test_planted_value_is_shown_only_when_revealed_and_never_leaks(tmp_path, master_key, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)  # every Python log record, any logger
    textual_log = tmp_path / "textual.log"  # and everything the app and its widgets log
    monkeypatch.setattr(textual.constants, "LOG_FILE", str(textual_log))
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_vault(pilot)
        assert "The vault is empty" in str(screen.query_one("#vault-meta", Static).render())

        # add with the form: the value is typed masked
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, SecretForm), what="the form")
        form = app.screen
        await pilot.press(*"app/planted", "tab")
        value_input = form.query_one("#f-value", Input)
        assert value_input.password and value_input.has_focus
        await pilot.press(*PLANTED, "tab", *"planted by a test", "enter")
        await until(pilot, lambda: app.screen is screen, what="the form to close")
        await until(pilot, lambda: screen.selected_path() == "app/planted", what="the new secret")
        assert notified(app, "added app/planted")
        assert MASK in value_line(screen) and PLANTED not in value_line(screen)

        # reveal asks first, shows the value, then hides it by itself
        screen.reveal_seconds = 0.6
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the reveal question")
        await pilot.press("y")
        await until(pilot, lambda: PLANTED in value_line(screen), what="the revealed value")
        await until(pilot, lambda: MASK in value_line(screen), timeout=5, what="the value to hide again")
        assert screen.revealed is None

        # v again while shown hides at once
        screen.reveal_seconds = 30
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the reveal question")
        await pilot.press("y")
        await until(pilot, lambda: PLANTED in value_line(screen), what="the revealed value")
        await pilot.press("v")
        assert MASK in value_line(screen) and screen.revealed is None

        # copy asks first, then puts it on the clipboard (OSC 52)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the copy question")
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "copied the value of app/planted"), what="the copy")
        assert app.clipboard == PLANTED

        await pilot.pause()
        screenshot = app.export_screenshot()
        assert "app/planted" in screenshot and PLANTED not in screenshot

        # the reads were audited by name, and nothing recorded the value
        events = await runtime_of(app).audit.query(limit=1000)
        reads = [e for e in events if e.type == "secret.read" and e.resource == "app/planted"]
        assert [e.action for e in reads] == ["reveal", "reveal", "reveal"]
        assert not any(PLANTED in str(e.to_dict()) for e in events)

        for note in app._notifications:
            assert PLANTED not in f"{note.title} {note.message}"
        assert PLANTED not in caplog.text
    assert textual_log.stat().st_size > 0, "Textual wrote no log: is TEXTUAL_LOG still honoured?"
    assert PLANTED not in textual_log.read_text(encoding="utf-8")
    # and no file of the data dir holds it in clear
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert PLANTED.encode() not in path.read_bytes(), path


async def test_edit_delete_and_rotate(tmp_path, monkeypatch):
    monkeypatch.delenv("SYMBIONT_MASTER_KEY", raising=False)  # a key file in the data dir: rotatable
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    seed_vault(data)
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_vault(pilot)
        assert set(screen.entries) == {name for name, _, _ in SEEDED_SECRETS}
        assert screen.entries["app/api_key"].version == 2
        old_key = screen.entries["app/api_key"].key_id
        assert screen.tree.border_subtitle == f"key {old_key}"

        # edit: a new value (and the metadata kept in the form)
        await select(pilot, screen, "shared/db_password")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, SecretForm), what="the edit form")
        form = app.screen
        assert form.query_one("#f-name", Input).disabled
        assert form.query_one("#f-description", Input).value == "readable by every agent"
        await pilot.press(*"rotated-value", "enter")
        await until(pilot, lambda: screen.entries["shared/db_password"].version == 2, what="version 2")
        assert (await runtime_of(app).secrets.reveal("shared/db_password")).reveal() == "rotated-value"

        # delete asks first
        await select(pilot, screen, "team/ci/deploy_token")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the delete question")
        await pilot.press("y")
        await until(pilot, lambda: "team/ci/deploy_token" not in screen.entries, what="the deletion")
        assert "team/ci/deploy_token" not in await runtime_of(app).secrets.names()

        # rotate the master key: asks, says "rotating…" while it runs, then the report; every secret
        # under the new key
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the rotate question")
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "rotated the master key"), what="the rotation")
        assert screen.rotation_status[0] == "rotating the master key: re-encrypting 3 secrets…"  # one was deleted above
        assert screen.rotation_status[-1].startswith("rotated the master key: ")
        assert "re-encrypted, kept versions included" in screen.rotation_status[-1]
        await until(pilot, lambda: screen.entries["app/api_key"].key_id != old_key, what="the new key")
        new_key = screen.entries["app/api_key"].key_id
        assert {e.key_id for e in screen.entries.values()} == {new_key}
        assert screen.tree.border_subtitle == f"key {new_key}"
        assert (await runtime_of(app).secrets.reveal("app/api_key")).reveal() == "sk-not-a-real-key-2"


async def test_rotation_under_an_env_key_is_refused_with_the_reason(tmp_path, master_key):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    seed_vault(data)
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_vault(pilot)
        key = screen.entries["app/api_key"].key_id
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the rotate question")
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "SEC_006"), what="the refusal")
        assert notified(app, "SYMBIONT_MASTER_KEY")
        assert not screen.query_one("#vault-progress").has_class("-shown")
        assert {e.key_id for e in (await runtime_of(app).secrets.list_secrets())} == {key}


async def test_bad_name_is_shown_in_the_form(tmp_path, master_key):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_vault(pilot)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, SecretForm), what="the form")
        await pilot.press(*"../etc", "tab", *"x", "enter")
        label = app.screen.query_one("#e-name", Label)
        assert "SEC_005" in str(label.render()) and label.has_class("-shown")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, what="the form to close")
        assert await runtime_of(app).secrets.names() == []


async def test_readonly_lists_names_only_and_refuses_the_rest(tmp_path, master_key):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    seed_vault(data)
    app = make_app(tmp_path, readonly=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_vault(pilot)
        assert all(isinstance(entry, str) for entry in screen.entries.values())
        assert screen.tree.border_subtitle == "read-only: names only"
        await until(pilot, lambda: screen.selected_path() == "app/api_key", what="the first name")
        meta = str(screen.query_one("#vault-meta", Static).render())
        assert "metadata and values are not shown" in meta and "created" not in meta
        shown = {b.binding.id for b in screen.active_bindings.values() if b.binding.show}
        assert not shown & {"vault.add", "vault.edit", "vault.reveal", "vault.copy", "vault.delete", "vault.rotate"}

        await pilot.press("v")
        await until(pilot, lambda: notified(app, "CONSOLE_001"), what="the refusal")
        assert notified(app, "secrets.reveal shows a secret value")
        await pilot.press("a", "c", "d", "R")
        await pilot.pause()
        assert app.screen is screen  # no dialog, no form
        reads = await runtime_of(app).audit.query(types="secret.*", limit=100)
        assert reads == []
