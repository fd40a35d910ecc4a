"""The knowledge screen (screen 9) on a real runtime, a real context store and the real
MiniLM embedder: listing per agent (and what another agent keeps private stays out), search
by meaning, a RAG answer citing its sources with scores, add through the form (bad metadata
shown inline, nothing stored), delete after a confirmation (both audited, never the
content), read-only refusals, and one snapshot of an answer with its sources.

Regenerate the snapshot after an intended change with
``TEXTUAL_ANIMATIONS=none pytest tests/test_console_knowledge.py --snapshot-update``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import types

import pytest
from console_fixtures import (
    FixedSampler,
    agent_config,
    console_config,
    fake_clock,
    make_app,
    ready,
    runtime_of,
    until,
)
from textual.widgets import DataTable, Input, Label, Static, TextArea

from console.dialogs import ConfirmDialog
from console.screens import AgentDetailScreen, KnowledgeForm, KnowledgeScreen
from console.screens.knowledge import LOADING, SHARED
from engine.errors import SymbiError

DOCS = {
    "tea": "Green tea is brewed at about 80 degrees Celsius. Boiling water makes it bitter. Steep it for two minutes.",
    "deploy": "Production deployments happen every Tuesday. They start only after the integration tests pass.",
    "backup": "Database backups run nightly at 02:00. Each backup is kept for 30 days.",
    "parking": "Visitors park in the underground garage on level minus two.",
    "black-tea": "Black tea wants boiling water, 100 degrees Celsius, and four minutes of steeping.",
}
BETA_PRIVATE = "The beta launch code name is Operation Bluefin, and it is kept private."
BETA_SHARED = "The office kitchen closes at six in the evening on weekdays."
PLANTED = "planted-Knowledge-5521-qx: the vault door combination is 12-34-56"


def notified(app, text: str) -> bool:
    return any(text in str(n.message) for n in app._notifications)


async def seed(app) -> tuple[str, str, dict[str, str]]:
    """Agents alpha and beta; alpha knows DOCS, beta keeps one item private and shares one."""
    rt = runtime_of(app)
    alpha = await rt.create_agent(agent_config("alpha"))
    beta = await rt.create_agent(agent_config("beta"))
    store = await rt.knowledge.store()
    ids = {}
    for key, text in DOCS.items():
        ids[key] = (await store.put(alpha.id, text, "knowledge", {"source": f"{key}.md"})).id
    ids["private"] = (await store.put(beta.id, BETA_PRIVATE, "long_term", {"topic": "launch"})).id
    ids["shared"] = (await store.put(beta.id, BETA_SHARED, "knowledge", {}, share_with=["*"])).id
    return alpha.id, beta.id, ids


async def open_screen(pilot, count: int) -> KnowledgeScreen:
    """Press 9 once both agents are in the model; wait until ``count`` items are listed."""
    app = pilot.app
    await until(pilot, lambda: app.model.by_name("beta") is not None, what="the agents in the model")
    await pilot.press("9")
    screen = app.screen
    assert isinstance(screen, KnowledgeScreen)
    await until(pilot, lambda: len(screen.items) == count, what=f"{count} items listed")
    return screen


def table_keys(screen: KnowledgeScreen, table_id: str = "#kn-items") -> list[str]:
    table = screen.query_one(table_id, DataTable)
    return [str(row.key.value) for row in table.ordered_rows]


def cell(screen: KnowledgeScreen, row_key: str, column: str, table_id: str = "#kn-items") -> str:
    return str(screen.query_one(table_id, DataTable).get_cell(row_key, column))


async def select_row(pilot, screen: KnowledgeScreen, item_id: str) -> None:
    table = screen.query_one("#kn-items", DataTable)
    table.focus()
    table.move_cursor(row=table.get_row_index(item_id))
    await until(pilot, lambda: getattr(screen.shown, "id", None) == item_id, what="the row selected")


async def test_lists_what_each_agent_may_see_and_the_store_loads_in_a_worker(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        # the screen is the first to open the store: it says so while the model loads
        rt = runtime_of(app)
        alpha = await rt.create_agent(agent_config("alpha"))
        await until(pilot, lambda: app.model.by_name("alpha") is not None, what="alpha")
        await pilot.press("9")
        screen = app.screen
        assert isinstance(screen, KnowledgeScreen)
        await until(pilot, lambda: screen.store_ready, what="the store to open")
        assert screen.statuses[0] == LOADING and screen.status == ""
        assert screen.agent_id == alpha.id and screen.items == []
        assert "No items" in str(screen.query_one("#kn-item", Static).render())

        beta = await rt.create_agent(agent_config("beta"))
        store = await rt.knowledge.store()
        ids = {
            key: (await store.put(alpha.id, text, "knowledge", {"source": f"{key}.md"})).id
            for key, text in DOCS.items()
        }
        private = (await store.put(beta.id, BETA_PRIVATE, "long_term", {"topic": "launch"})).id
        shared = (await store.put(beta.id, BETA_SHARED, "knowledge", {}, share_with=["*"])).id
        await pilot.press("r")
        await until(pilot, lambda: len(screen.items) == 6, what="alpha's items")

        # alpha sees its own items and beta's shared one, never beta's private one
        assert set(table_keys(screen)) == {*ids.values(), shared}
        assert private not in table_keys(screen)
        assert cell(screen, shared, "shared") == "from beta"
        assert cell(screen, ids["tea"], "shared") == "-"
        assert cell(screen, ids["tea"], "metadata") == "source=tea.md"
        assert cell(screen, ids["tea"], "content").startswith("Green tea is brewed")
        usage = str(screen.query_one("#kn-usage", Static).render())
        assert "alpha" in usage and "knowledge 5/5000" in usage and "memory 0/10000" in usage
        assert screen.query_one("#kn-items", DataTable).border_title == "Items · 6"

        # the detail pane shows the highlighted item in full
        await select_row(pilot, screen, ids["backup"])
        detail = str(screen.query_one("#kn-item", Static).render())
        assert DOCS["backup"] in detail and '"source": "backup.md"' in detail and ids["backup"] in detail

        # beta sees its private item and its shared one, not alpha's
        screen.select_agent(beta.id)
        await until(pilot, lambda: set(table_keys(screen)) == {private, shared}, what="beta's items")
        assert cell(screen, shared, "shared") == "everyone"
        assert "memory 1/10000 (long_term 1)" in str(screen.query_one("#kn-usage", Static).render())

        # the shared view: what is shared with everyone, by anyone
        screen.select_agent(SHARED)
        await until(pilot, lambda: table_keys(screen) == [shared], what="the shared items")

        # the kind filter
        screen.select_agent(alpha.id)
        await until(pilot, lambda: len(table_keys(screen)) == 6, what="alpha again")
        screen.query_one("#kn-kind").value = "long_term"
        await until(pilot, lambda: table_keys(screen) == [], what="no long_term items")


async def test_search_finds_the_right_item_first_and_respects_privacy(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        _alpha, _beta, ids = await seed(app)
        screen = await open_screen(pilot, 6)
        await pilot.press("slash")
        assert screen.query_one("#kn-search", Input).has_focus
        await pilot.press(*"database", "backspace")  # typed into the search field
        assert screen.query_one("#kn-search", Input).value == "databas"
        screen.query_one("#kn-search", Input).value = "How often is the database backed up?"
        await pilot.press("enter")
        await until(pilot, lambda: screen.hits is not None, what="the search hits")
        keys = table_keys(screen)
        assert keys[0] == ids["backup"]
        assert ids["private"] not in keys  # beta's private item never comes up for alpha
        scores = [float(cell(screen, key, "score")) for key in keys]
        assert scores == sorted(scores, reverse=True) and scores[0] > 0.3
        assert screen.query_one("#kn-items", DataTable).border_title.startswith("Search · ")
        assert getattr(screen.shown, "id", None) == ids["backup"]
        assert "score" in str(screen.query_one("#kn-item", Static).render())

        # a question about beta's private item finds nothing of it
        screen.query_one("#kn-search", Input).value = "What is the code name of the beta launch?"
        await pilot.press("enter")
        await until(pilot, lambda: screen.search_text.startswith("What is the code name"), what="the 2nd search")
        assert ids["private"] not in table_keys(screen)

        # escape goes back to the listing
        await pilot.press("escape")
        await until(pilot, lambda: screen.hits is None, what="the listing")
        assert len(table_keys(screen)) == 6 and screen.query_one("#kn-search", Input).value == ""


async def test_rag_answer_cites_the_right_source_with_its_score(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        _alpha, _beta, ids = await seed(app)
        screen = await open_screen(pilot, 6)
        await pilot.press("a")
        assert screen.query_one("#kn-ask", Input).has_focus
        screen.query_one("#kn-ask", Input).value = "At what temperature should green tea be brewed?"
        await pilot.press("enter")
        await until(pilot, lambda: screen.answer is not None, what="the answer")
        answer = screen.answer
        assert answer.mode == "extractive"
        assert answer.sources[0].item_id == ids["tea"]
        shown = str(screen.query_one("#kn-answer", Static).render())
        assert "80 degrees" in shown and "[1]" in shown
        numbers = {int(n) for n in re.findall(r"\[(\d+)\]", shown)}
        assert numbers and numbers <= {s.n for s in answer.sources}

        # the sources table: number (cited: *), score and its parts, item id, snippet
        assert screen.query_one("#kn-rag").has_class("-shown")
        assert table_keys(screen, "#kn-sources")[0] == "src-1"
        assert cell(screen, "src-1", "#", "#kn-sources") == "[1]*"
        assert float(cell(screen, "src-1", "score", "#kn-sources")) == pytest.approx(answer.sources[0].score, abs=1e-3)
        assert float(cell(screen, "src-1", "vector", "#kn-sources")) > 0.3
        assert 0 <= float(cell(screen, "src-1", "bm25", "#kn-sources")) <= 1
        assert cell(screen, "src-1", "item", "#kn-sources") == ids["tea"][:8]
        assert cell(screen, "src-1", "snippet", "#kn-sources").startswith("Green tea is brewed")
        detail = str(screen.query_one("#kn-item", Static).render())
        assert "Source [1]" == screen.query_one("#kn-detail").border_title and DOCS["tea"] in detail
        # the periodic re-read of the listing leaves the source on show
        screen._last_tick = 0.0
        screen.tick()
        await until(pilot, lambda: not any(w.group == "knowledge-list" for w in screen.workers), what="the re-read")
        assert screen.query_one("#kn-detail").border_title == "Source [1]"

        # a question nothing answers says so; a bad one is an error notification with its code
        screen.query_one("#kn-ask", Input).value = "Who won the football world cup in 1966?"
        screen.query_one("#kn-ask", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: screen.answer.query.startswith("Who won"), what="the 2nd answer")
        assert screen.answer.sources == [] or screen.answer.sources[0].item_id != ids["tea"]
        screen.query_one("#kn-ask", Input).value = "x" * 2500
        await pilot.press("enter")
        await until(pilot, lambda: notified(app, "RAG_003"), what="the refusal")
        assert not notified(app, "Traceback")

        # escape closes the answer
        await pilot.press("escape")
        assert not screen.query_one("#kn-rag").has_class("-shown") and screen.answer is None


async def test_add_through_the_form_and_delete_with_confirmation_are_audited(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        alpha, _beta, ids = await seed(app)
        screen = await open_screen(pilot, 6)
        store = await runtime_of(app).knowledge.store()

        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, KnowledgeForm), what="the form")
        form = app.screen
        assert form.query_one("#f-content", TextArea).has_focus

        # empty content: shown inline
        await pilot.press("ctrl+s")
        assert "content is empty" in str(form.query_one("#e-content", Label).render())

        # bad metadata JSON: shown inline, nothing stored
        await pilot.press(*"planted")
        assert form.query_one("#f-content", TextArea).text == "planted"
        form.query_one("#f-content", TextArea).text = PLANTED
        await pilot.press("tab")
        assert form.query_one("#f-metadata", Input).has_focus
        await pilot.press(*'{"source": ', "enter")
        error = form.query_one("#e-metadata", Label)
        assert error.has_class("-shown") and "CTX_003" in str(error.render())
        assert "not valid JSON" in str(error.render())
        form.query_one("#f-metadata", Input).value = "[1, 2]"
        await pilot.press("enter")
        assert "must be a JSON object" in str(error.render())
        assert app.screen is form
        assert len(await store.list_items(alpha, limit=100)) == 5

        # good metadata, shared with everyone: stored, listed, selected
        form.query_one("#f-metadata", Input).value = '{"source": "ops.md", "tags": ["ops"]}'
        await pilot.press("tab", "space", "ctrl+s")
        await until(pilot, lambda: app.screen is screen, what="the form to close")
        await until(pilot, lambda: len(screen.items) == 7, what="the new item listed")
        added = next(i for i in await store.list_items(alpha, limit=100) if i.content == PLANTED)
        assert added.metadata == {"source": "ops.md", "tags": ["ops"]} and added.shared_with == ["*"]
        assert added.kind == "knowledge"
        await until(pilot, lambda: getattr(screen.shown, "id", None) == added.id, what="the new item selected")
        assert cell(screen, added.id, "shared") == "everyone"
        assert notified(app, "added a knowledge item")

        # delete: asks first; "no" keeps it, "yes" removes it
        await select_row(pilot, screen, ids["parking"])
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen, what="the dialog to close")
        assert (await store.get(alpha, ids["parking"])).id == ids["parking"]
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("y")
        await until(pilot, lambda: ids["parking"] not in table_keys(screen), what="the row to go")
        with pytest.raises(SymbiError) as err:
            await store.get(alpha, ids["parking"])
        assert err.value.code.value == "CTX_004"

        # both changes are in the audit trail, by the operator, without the content
        events = await runtime_of(app).audit.query(types="memory.*", limit=100)
        put = next(e for e in events if e.type == "memory.put")
        assert put.actor == "operator" and put.resource == "knowledge" and put.agent == alpha
        assert put.details["bytes"] == added.size and put.details["agent"] == alpha
        deleted = next(e for e in events if e.type == "memory.delete")
        assert deleted.details["item"] == ids["parking"] and deleted.actor == "operator"
        everything = await runtime_of(app).audit.query(limit=10_000)
        assert not any("planted-Knowledge" in str(e.to_dict()) for e in everything)
        for note in app._notifications:
            assert "planted-Knowledge" not in f"{note.title} {note.message}"
        assert "planted-Knowledge" not in caplog.text


async def test_readonly_browses_but_refuses_add_and_delete(tmp_path):
    app = make_app(tmp_path, readonly=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app)
        alpha, _beta, ids = await seed(app)
        screen = await open_screen(pilot, 6)
        shown = {b.binding.id for b in screen.active_bindings.values() if b.binding.show}
        assert "knowledge.search" in shown and not shown & {"knowledge.add", "knowledge.delete"}
        await pilot.press("n")
        await until(pilot, lambda: notified(app, "CONSOLE_001"), what="the refusal")
        await select_row(pilot, screen, ids["tea"])
        await pilot.press("d")
        await pilot.pause()
        assert app.screen is screen  # no form, no dialog
        assert len(await (await runtime_of(app).knowledge.store()).list_items(alpha, limit=100)) == 5
        assert await runtime_of(app).audit.query(types="memory.*", limit=10) == []
        # reading still works
        await pilot.press("a")
        screen.query_one("#kn-ask", Input).value = "When are backups taken?"
        await pilot.press("enter")
        await until(pilot, lambda: screen.answer is not None, what="the answer")
        assert screen.answer.sources[0].item_id == ids["backup"]


async def test_reached_from_the_agent_detail_and_by_command(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        _alpha, beta, ids = await seed(app)
        await until(pilot, lambda: app.model.by_name("beta") is not None, what="beta")
        await pilot.press("2")
        app.open_agent(beta)
        await until(pilot, lambda: isinstance(app.screen, AgentDetailScreen), what="the detail")
        await pilot.press("k")
        await until(pilot, lambda: isinstance(app.screen, KnowledgeScreen), what="the knowledge screen")
        screen = app.screen
        assert screen.agent_id == beta
        await until(pilot, lambda: set(table_keys(screen)) == {ids["private"], ids["shared"]}, what="beta's items")
        await pilot.press("1")
        await pilot.press("colon", *"memory", "enter")
        await until(pilot, lambda: app.screen is screen, what=":memory")


# -- snapshot -----------------------------------------------------------------------------------


@pytest.fixture
def fixed(monkeypatch):
    """UTC, and item ids from a counter (the store draws them from uuid4)."""
    import engine.knowledge.context as context_module

    counter = iter(range(1, 10_000))
    fake_uuid = types.SimpleNamespace(
        uuid4=lambda: types.SimpleNamespace(hex=hashlib.sha256(f"item-{next(counter)}".encode()).hexdigest()[:32])
    )
    monkeypatch.setattr(context_module, "uuid", fake_uuid)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def rag_scenario(pilot) -> None:
    app = pilot.app
    await app.engine_ready.wait()
    await seed(app)
    screen = await open_screen(pilot, 6)
    await pilot.press("a")
    screen.query_one("#kn-ask", Input).value = "At what temperature should green tea be brewed?"
    await pilot.press("enter")
    await until(pilot, lambda: screen.answer is not None and screen.status == "", what="the answer")
    screen.query_one("#kn-sources", DataTable).focus()
    await pilot.pause()


def test_rag_answer_snapshot(snap_compare, tmp_path, fixed):
    config = console_config(resource={"monitoring_interval": 3600.0}, console={"refresh_interval": 3600.0})
    app = make_app(tmp_path, config=config, clock=fake_clock(), sampler=FixedSampler())
    assert snap_compare(app, terminal_size=(120, 40), run_before=rag_scenario)
