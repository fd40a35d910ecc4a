"""The knowledge screen (screen 9): listing per agent (and what another agent keeps private stays
out), search, a RAG answer citing its sources with scores, add through the form (bad metadata
shown inline, nothing stored), delete after a confirmation, engine errors shown with their
code, read-only refusals, and one snapshot of an answer with its sources.

The screen runs over the scripted engine (:class:`fake_scenarios.ScenarioFake`): its store keeps
items in a list, sees what the real one lets an agent see (its own items and those shared with
it), and searches and answers by shared words, not by meaning. Search by meaning, the RAG
scoring and the auditing of operator changes are the engine's, tested in
``tests/test_knowledge_*.py`` and ``tests/test_gate_denials.py``; the snapshot below still
runs the real store, the real MiniLM embedder and the real RAG through the console.

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
    make_fake_app,
    ready,
    runtime_of,
    until,
)
from fake_engine import START, agent_info
from fake_scenarios import ScenarioFake
from textual.widgets import DataTable, Input, Label, Static, TextArea

from console.dialogs import ConfirmDialog
from console.screens import AgentDetailScreen, KnowledgeForm, KnowledgeScreen
from console.screens.knowledge import LOADING, SHARED
from engine.api import ContextItem
from engine.errors import ErrorCode, SymbiError
from engine.events import AgentCreated

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

ALPHA = agent_info("alpha", agent_id="3f6c1d2e-alpha")
BETA = agent_info("beta", agent_id="9a8b7c6d-beta")


def notified(app, text: str) -> bool:
    return any(text in str(n.message) for n in app._notifications)


def item(item_id: str, owner: str, content: str, kind: str = "knowledge", metadata=None, shared_with=None):
    return ContextItem(
        id=item_id,
        agent_id=owner,
        kind=kind,
        content=content,
        metadata=dict(metadata or {}),
        created_at=START - 3600,
        shared_with=list(shared_with or []),
        size=len(content.encode()),
    )


def alpha_docs() -> list[ContextItem]:
    return [item(f"{key}-0000-item", ALPHA.id, text, metadata={"source": f"{key}.md"}) for key, text in DOCS.items()]


def beta_items() -> list[ContextItem]:
    return [
        item("private-0000-item", BETA.id, BETA_PRIVATE, "long_term", {"topic": "launch"}),
        item("shared-0000-item", BETA.id, BETA_SHARED, shared_with=["*"]),
    ]


IDS = {**{key: f"{key}-0000-item" for key in DOCS}, "private": "private-0000-item", "shared": "shared-0000-item"}


def seeded_fake() -> ScenarioFake:
    """Agents alpha and beta; alpha knows DOCS, beta keeps one item private and shares one."""
    fake = ScenarioFake(agents=[ALPHA, BETA])
    fake.items = alpha_docs() + beta_items()
    return fake


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


def usage_line(screen: KnowledgeScreen) -> str:
    return str(screen.query_one("#kn-usage", Static).render())


async def select_row(pilot, screen: KnowledgeScreen, item_id: str) -> None:
    table = screen.query_one("#kn-items", DataTable)
    table.focus()
    table.move_cursor(row=table.get_row_index(item_id))
    await until(pilot, lambda: getattr(screen.shown, "id", None) == item_id, what="the row selected")


async def test_lists_what_each_agent_may_see_and_the_store_loads_in_a_worker():
    fake = ScenarioFake(agents=[ALPHA])
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await until(pilot, lambda: app.model.by_name("alpha") is not None, what="alpha")
        await pilot.press("9")
        screen = app.screen
        assert isinstance(screen, KnowledgeScreen)
        # the screen's first call opens the engine's store: it says so while the model loads
        await until(pilot, lambda: screen.store_ready, what="the store to open")
        assert screen.statuses[0] == LOADING and screen.status == ""
        assert screen.agent_id == ALPHA.id and screen.items == []
        assert "No items. n adds one." in str(screen.query_one("#kn-item", Static).render())
        assert fake.called("knowledge.list_items")[0] == (ALPHA.id, None)

        # beta appears (the engine announces it), and both agents get items
        fake.roster[BETA.id] = BETA
        fake.emit(AgentCreated(agent_id=BETA.id, name="beta", at=fake.now()))
        fake.items = alpha_docs() + beta_items()
        await until(pilot, lambda: app.model.by_name("beta") is not None, what="beta")
        await pilot.press("r")
        await until(pilot, lambda: len(screen.items) == 6, what="alpha's items")

        # alpha sees its own items and beta's shared one, never beta's private one
        assert set(table_keys(screen)) == {*(IDS[k] for k in DOCS), IDS["shared"]}
        assert IDS["private"] not in table_keys(screen)
        assert cell(screen, IDS["shared"], "shared") == "from beta"
        assert cell(screen, IDS["tea"], "shared") == "-"
        assert cell(screen, IDS["tea"], "metadata") == "source=tea.md"
        assert cell(screen, IDS["tea"], "content").startswith("Green tea is brewed")
        usage = usage_line(screen)
        assert "alpha" in usage and "knowledge 5/5000" in usage and "memory 0/10000" in usage
        assert screen.query_one("#kn-items", DataTable).border_title == "Items · 6"

        # the detail pane shows the highlighted item in full
        await select_row(pilot, screen, IDS["backup"])
        detail = str(screen.query_one("#kn-item", Static).render())
        assert DOCS["backup"] in detail and '"source": "backup.md"' in detail and IDS["backup"] in detail

        # beta sees its private item and its shared one, not alpha's
        screen.select_agent(BETA.id)
        await until(pilot, lambda: set(table_keys(screen)) == {IDS["private"], IDS["shared"]}, what="beta's items")
        assert cell(screen, IDS["shared"], "shared") == "everyone"
        assert "memory 1/10000 (long_term 1)" in usage_line(screen)
        assert fake.called("knowledge.usage")[-1] == (BETA.id,)

        # the shared view: what is shared with everyone, by anyone
        screen.select_agent(SHARED)
        await until(pilot, lambda: table_keys(screen) == [IDS["shared"]], what="the shared items")
        assert fake.called("knowledge.list_items")[-1] == (SHARED, None)
        assert "the operator's shared items" in usage_line(screen)

        # the kind filter is passed to the engine
        screen.select_agent(ALPHA.id)
        await until(pilot, lambda: len(table_keys(screen)) == 6, what="alpha again")
        screen.query_one("#kn-kind").value = "long_term"
        await until(pilot, lambda: table_keys(screen) == [], what="no long_term items")
        assert fake.called("knowledge.list_items")[-1] == (ALPHA.id, ["long_term"])


async def test_search_shows_the_hits_best_first_and_only_what_the_agent_may_see():
    fake = seeded_fake()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        screen = await open_screen(pilot, 6)
        await pilot.press("slash")
        assert screen.query_one("#kn-search", Input).has_focus
        await pilot.press("d", "b", "backspace")  # typed into the search field
        assert screen.query_one("#kn-search", Input).value == "d"
        query = "database backups run nightly in the garage"
        screen.query_one("#kn-search", Input).value = query
        await pilot.press("enter")
        await until(pilot, lambda: screen.hits is not None, what="the search hits")
        assert fake.called("knowledge.search") == [(ALPHA.id, query)]
        keys = table_keys(screen)
        assert keys[0] == IDS["backup"] and IDS["parking"] in keys
        assert IDS["private"] not in keys  # beta's private item never comes up for alpha
        scores = [float(cell(screen, key, "score")) for key in keys]
        assert scores == sorted(scores, reverse=True) and scores[0] > 0.3
        assert scores[0] == pytest.approx(4 / 7, abs=1e-3)  # the engine's score, shown to three places
        table = screen.query_one("#kn-items", DataTable)
        assert table.border_title == f"Search · {len(keys)} hits"
        assert table.border_subtitle == "best first · esc lists items"
        assert getattr(screen.shown, "id", None) == IDS["backup"]
        assert "score" in str(screen.query_one("#kn-item", Static).render())

        # a search that finds nothing says so
        screen.query_one("#kn-search", Input).value = "Operation Bluefin"
        await pilot.press("enter")
        await until(pilot, lambda: screen.search_text == "Operation Bluefin", what="the 2nd search")
        assert table_keys(screen) == [] and IDS["private"] not in table_keys(screen)
        assert "Nothing found. Esc lists the items." in str(screen.query_one("#kn-item", Static).render())

        # a failed search is a notification with its code; the hits shown stay
        fake.fail("knowledge.search", SymbiError(ErrorCode.CTX_005, "the context key is missing", hint="restore it"))
        screen.query_one("#kn-search", Input).value = "backups"
        await pilot.press("enter")
        await until(pilot, lambda: notified(app, "CTX_005: the context key is missing"), what="the error")
        assert notified(app, "Hint: restore it") and screen.search_text == "Operation Bluefin"

        # escape goes back to the listing
        await pilot.press("escape")
        await until(pilot, lambda: screen.hits is None, what="the listing")
        assert len(table_keys(screen)) == 6 and screen.query_one("#kn-search", Input).value == ""


async def test_rag_answer_cites_the_right_source_with_its_score():
    fake = seeded_fake()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        screen = await open_screen(pilot, 6)
        await pilot.press("a")
        assert screen.query_one("#kn-ask", Input).has_focus
        screen.query_one("#kn-ask", Input).value = "green tea brewed temperature"
        await pilot.press("enter")
        await until(pilot, lambda: screen.answer is not None, what="the answer")
        assert fake.called("knowledge.ask") == [("green tea brewed temperature",)]
        answer = screen.answer
        assert answer.agent_id == ALPHA.id and answer.mode == "extractive"
        assert answer.sources[0].item_id == IDS["tea"]
        shown = str(screen.query_one("#kn-answer", Static).render())
        assert "80 degrees" in shown and "[1]" in shown
        numbers = {int(n) for n in re.findall(r"\[(\d+)\]", shown)}
        assert numbers and numbers <= {s.n for s in answer.sources}
        rag = screen.query_one("#kn-rag")
        assert rag.border_title == f"Answer · extractive · {len(answer.sources)} sources"

        # the sources table: number (cited: *), score and its parts, item id, snippet
        assert rag.has_class("-shown")
        assert table_keys(screen, "#kn-sources")[0] == "src-1"
        assert cell(screen, "src-1", "#", "#kn-sources") == "[1]*"
        assert float(cell(screen, "src-1", "score", "#kn-sources")) == pytest.approx(answer.sources[0].score, abs=1e-3)
        assert float(cell(screen, "src-1", "vector", "#kn-sources")) > 0.3
        assert 0 <= float(cell(screen, "src-1", "bm25", "#kn-sources")) <= 1
        assert cell(screen, "src-1", "item", "#kn-sources") == IDS["tea"][:8]
        assert cell(screen, "src-1", "snippet", "#kn-sources").startswith("Green tea is brewed")
        detail = str(screen.query_one("#kn-item", Static).render())
        assert "Source [1]" == screen.query_one("#kn-detail").border_title and DOCS["tea"] in detail
        # the periodic re-read of the listing leaves the source on show
        asked = len(fake.called("knowledge.list_items"))
        screen._last_tick = 0.0
        screen.tick()
        await until(pilot, lambda: not any(w.group == "knowledge-list" for w in screen.workers), what="the re-read")
        assert len(fake.called("knowledge.list_items")) == asked + 1
        assert screen.query_one("#kn-detail").border_title == "Source [1]"

        # a question nothing answers says so; a bad one is an error notification with its code
        screen.query_one("#kn-ask", Input).value = "Who won football 1966"
        screen.query_one("#kn-ask", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: screen.answer.query.startswith("Who won"), what="the 2nd answer")
        assert screen.answer.sources == [] and screen.answer.mode == "none"
        assert "No stored item answers this." in str(screen.query_one("#kn-answer", Static).render())
        assert rag.border_title == "Answer · none · 0 sources"
        fake.fail(
            "knowledge.ask",
            SymbiError(ErrorCode.RAG_003, "query of 2500 characters is over 2000", offending=ALPHA.id),
        )
        screen.query_one("#kn-ask", Input).value = "x" * 2500
        await pilot.press("enter")
        await until(pilot, lambda: notified(app, "RAG_003"), what="the refusal")
        assert notified(app, "RAG_003: query of 2500 characters is over 2000")
        assert not notified(app, "Traceback")
        assert screen.answer.query.startswith("Who won")  # the answer shown stays

        # escape closes the answer
        await pilot.press("escape")
        assert not rag.has_class("-shown") and screen.answer is None


async def test_add_through_the_form_and_delete_with_confirmation(caplog):
    caplog.set_level(logging.DEBUG)
    fake = seeded_fake()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        screen = await open_screen(pilot, 6)

        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, KnowledgeForm), what="the form")
        form = app.screen
        assert form.query_one("#f-content", TextArea).has_focus
        assert "New item for alpha" in str(form.query_one("#form-title", Label).render())

        # empty content: shown inline
        await pilot.press("ctrl+s")
        assert "content is empty" in str(form.query_one("#e-content", Label).render())

        # bad metadata JSON: shown inline, nothing stored
        await pilot.press("p", "l")
        assert form.query_one("#f-content", TextArea).text == "pl"
        form.query_one("#f-content", TextArea).text = PLANTED
        await pilot.press("tab")
        assert form.query_one("#f-metadata", Input).has_focus
        form.query_one("#f-metadata", Input).value = '{"source": '
        await pilot.press("enter")
        error = form.query_one("#e-metadata", Label)
        assert error.has_class("-shown") and "CTX_003" in str(error.render())
        assert "not valid JSON" in str(error.render())
        form.query_one("#f-metadata", Input).value = "[1, 2]"
        await pilot.press("enter")
        assert "must be a JSON object" in str(error.render())
        assert app.screen is form
        assert fake.called("knowledge.add") == [] and len(fake.items) == 7

        # good metadata, shared with everyone: stored, listed, selected
        form.query_one("#f-metadata", Input).value = '{"source": "ops.md", "tags": ["ops"]}'
        await pilot.press("tab", "space", "ctrl+s")
        await until(pilot, lambda: app.screen is screen, what="the form to close")
        await until(pilot, lambda: len(screen.items) == 7, what="the new item listed")
        assert fake.called("knowledge.add") == [(ALPHA.id, "knowledge")]
        added = next(i for i in fake.items if i.content == PLANTED)
        assert added.agent_id == ALPHA.id
        assert added.metadata == {"source": "ops.md", "tags": ["ops"]} and added.shared_with == ["*"]
        assert added.kind == "knowledge"
        await until(pilot, lambda: getattr(screen.shown, "id", None) == added.id, what="the new item selected")
        assert cell(screen, added.id, "shared") == "everyone"
        assert notified(app, f"added a knowledge item ({len(PLANTED)} B) for alpha")

        # delete: asks first; "no" keeps it, "yes" removes it
        await select_row(pilot, screen, IDS["parking"])
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        question = str(app.screen.query_one("#dialog-question", Static).render())
        assert "Delete this knowledge item of alpha" in question and IDS["parking"][:8] in question
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen, what="the dialog to close")
        assert fake.called("knowledge.delete") == [] and IDS["parking"] in table_keys(screen)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("y")
        await until(pilot, lambda: IDS["parking"] not in table_keys(screen), what="the row to go")
        assert fake.called("knowledge.delete") == [(ALPHA.id, IDS["parking"])]
        assert notified(app, "deleted a knowledge item of alpha")

        # the content was never put into a notification or a log line
        for note in app._notifications:
            assert "planted-Knowledge" not in f"{note.title} {note.message}"
        assert "planted-Knowledge" not in caplog.text


async def test_engine_refusals_are_shown_and_nothing_changes():
    fake = seeded_fake()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        screen = await open_screen(pilot, 6)

        # the engine refuses the new item: the form says why and stays open for another try
        fake.fail(
            "knowledge.add",
            SymbiError(ErrorCode.CTX_002, "alpha's context is over 100 MB", hint="delete old items first"),
        )
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, KnowledgeForm), what="the form")
        form = app.screen
        form.query_one("#f-content", TextArea).text = "one more note"
        await pilot.press("ctrl+s")
        problem = form.query_one("#form-error", Static)
        await until(pilot, lambda: "CTX_002" in str(problem.render()), what="the refusal in the form")
        assert "alpha's context is over 100 MB" in str(problem.render())
        assert "Hint: delete old items first" in str(problem.render())
        assert app.screen is form and not form.saving
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, what="the form to close")
        assert len(fake.items) == 7 and len(screen.items) == 6

        # the item went away meanwhile: the delete says so with the code, the row stays listed
        fake.fail("knowledge.delete", SymbiError(ErrorCode.CTX_004, "no such item", offending=IDS["tea"]))
        await select_row(pilot, screen, IDS["tea"])
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "CTX_004: no such item"), what="the error")
        assert not notified(app, "deleted a")
        assert IDS["tea"] in table_keys(screen)


async def test_readonly_browses_but_refuses_add_and_delete():
    fake = seeded_fake()
    app = make_fake_app(fake, readonly=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(app)
        screen = await open_screen(pilot, 6)
        shown = {b.binding.id for b in screen.active_bindings.values() if b.binding.show}
        assert "knowledge.search" in shown and not shown & {"knowledge.add", "knowledge.delete"}
        await pilot.press("n")
        await until(pilot, lambda: notified(app, "CONSOLE_001"), what="the refusal")
        assert notified(app, "knowledge.add changes engine state and this engine connection is read-only")
        await select_row(pilot, screen, IDS["tea"])
        await pilot.press("d")
        await pilot.pause()
        assert app.screen is screen  # no form, no dialog
        assert notified(app, "knowledge.delete changes engine state")
        assert fake.called("knowledge.add") == [] and fake.called("knowledge.delete") == []
        assert len(fake.items) == 7
        # reading still works
        await pilot.press("a")
        screen.query_one("#kn-ask", Input).value = "When are backups taken?"
        await pilot.press("enter")
        await until(pilot, lambda: screen.answer is not None, what="the answer")
        assert screen.answer.sources[0].item_id == IDS["backup"]


async def test_reached_from_the_agent_detail_and_by_command():
    fake = seeded_fake()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app)
        await until(pilot, lambda: app.model.by_name("beta") is not None, what="beta")
        await pilot.press("2")
        app.open_agent(BETA.id)
        await until(pilot, lambda: isinstance(app.screen, AgentDetailScreen), what="the detail")
        await pilot.press("k")
        await until(pilot, lambda: isinstance(app.screen, KnowledgeScreen), what="the knowledge screen")
        screen = app.screen
        assert screen.agent_id == BETA.id
        await until(pilot, lambda: set(table_keys(screen)) == {IDS["private"], IDS["shared"]}, what="beta's items")
        await pilot.press("1")
        await pilot.press("colon", *"memory", "enter")
        await until(pilot, lambda: app.screen is screen, what=":memory")


# -- snapshot (the real engine: store, MiniLM embedder and RAG, end to end) -----------------------


async def seed(app) -> tuple[str, str, dict[str, str]]:
    """Agents alpha and beta in the real runtime; alpha knows DOCS, beta keeps one item private
    and shares one."""
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
