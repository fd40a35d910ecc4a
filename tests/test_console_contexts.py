"""``[[console.contexts]]`` and ``:ctx``: the console switches between engines, as k9s does."""

from __future__ import annotations

import pytest
from console_fixtures import make_fake_app, notified, until

from console.dialogs import ConfirmDialog
from engine.api import AgentState, ConsoleSettings, boot
from engine.api.remote import RemoteEngine
from engine.config import load_config
from engine.errors import ErrorCode, SymbiError
from tests.fake_engine import FakeEngine, agent_info

CONTEXTS = {"staging": "http://127.0.0.1:9001", "prod": "https://symbi.example.com"}


def _fake(**kw):
    return FakeEngine(console=ConsoleSettings(theme="symbi-dark", refresh_interval=3600.0, contexts=CONTEXTS), **kw)


async def _command(pilot, text: str) -> None:
    await pilot.app.run_command(text)
    await pilot.pause()


async def test_ctx_lists_the_contexts_and_refuses_an_unknown_one():
    app = make_fake_app(_fake())
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.engine_ready.is_set())
        await _command(pilot, ":ctx")
        assert notified(app, "staging  http://127.0.0.1:9001") and notified(app, "prod  https://symbi.example.com")
        await _command(pilot, ":ctx nowhere")
        assert notified(app, "CONFIG_001") and notified(app, "contexts: prod, staging")
        assert app.is_running and app.next_context is None


async def test_ctx_name_leaves_this_engine_and_names_the_next():
    fake = _fake()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.engine_ready.is_set())
        await _command(pilot, ":ctx staging")
    assert app.next_context == "staging" and fake.closed_with == "console quit"


async def test_ctx_with_running_agents_asks_first_and_staying_calls_the_switch_off():
    fake = _fake(agents=[agent_info("busy", AgentState.RUNNING)])
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.engine_ready.is_set())
        await _command(pilot, ":ctx prod")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("n")
        await pilot.pause()
        assert app.is_running and app.next_context is None and fake.closed_with is None


def test_contexts_are_read_from_the_config_and_open_a_remote_engine(tmp_path, monkeypatch):
    path = tmp_path / "runtime_config.toml"
    path.write_text(
        '[[console.contexts]]\nname = "staging"\nurl = "http://127.0.0.1:9001"\ntoken_env = "STAGING_TOKEN"\n'
    )
    monkeypatch.setenv("SYMBI_CONFIG", str(path))
    monkeypatch.setenv("STAGING_TOKEN", "t0k3n-staging")
    setup = boot.load_setup(None, str(tmp_path / "data"))
    assert setup.console.contexts == {"staging": "http://127.0.0.1:9001"}
    engine = boot.context_engine(setup, "staging")
    assert isinstance(engine, RemoteEngine) and engine.url == "http://127.0.0.1:9001"
    assert engine.token == "t0k3n-staging"  # from the variable the context names; never in the file
    with pytest.raises(SymbiError) as err:
        boot.context_engine(setup, "prod")
    assert err.value.code is ErrorCode.CONFIG_001 and "staging" in (err.value.hint or "")
    path.write_text('[[console.contexts]]\nname = "a"\nurl = "x"\n')
    with pytest.raises(SymbiError) as err:
        load_config(path)
    assert err.value.code is ErrorCode.CONFIG_001 and "console.contexts[0].url" in err.value.message
