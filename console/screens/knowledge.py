"""Screen 9: what an agent remembers and knows — browse, search, ask (RAG), add and delete.

The agent selector lists the agents of the app's model by name, plus
"shared with everyone". An agent's view shows what that agent can see: its
own items and those shared with it or with everyone (the *Shared* column
says which). The shared view looks at the store as the pseudo-owner
:data:`SHARED`: every item shared with everyone, by any agent, plus what the
operator added there (always shared with everyone). A kind filter narrows
everything to one of the store's :data:`~engine.knowledge.KINDS`.

* the table lists items (kind, created, size, shared, first line, metadata)
  under a usage line (items per kind and bytes against the store's limits);
* ``/`` searches by meaning (``engine.knowledge.search``), hits with their cosine
  scores, best first (Escape goes back to the listing);
* ``a`` asks: a RAG query (``engine.knowledge.ask``, configured from ``[rag]``) whose answer
  cites its sources as ``[1]``, ``[2]``, with a sources table (blended
  score, its vector and BM25 parts, snippet);
* the pane beside the table shows the highlighted item (or source) in full;
* ``n`` adds an item (:class:`KnowledgeForm`), ``d`` deletes one after a
  confirmation. Both are refused in ``--readonly`` mode; the engine
  records both in the audit trail first (operator, kind, bytes, owner;
  never the content). If the record cannot be written nothing is changed.

Every engine call runs in a worker: the first one opens the engine's store,
which loads the embedding model (a fraction of a second) while the screen
says so. Content may be sensitive: it is shown on this screen only, never
put into a notification, a log line or an error.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from rich.style import Style
from rich.text import Text
from textual import work
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import DataTable, Input, Label, Select, Static
from textual.widgets.data_table import RowDoesNotExist

from console.actions import KNOWLEDGE, bindings_for
from console.dialogs import ConfirmDialog
from console.format import size, theme_colour, timestamp
from console.screens.base import ConsoleScreen
from console.screens.knowledge_form import KnowledgeDraft, KnowledgeForm
from engine.api import (
    EVERYONE,
    KINDS,
    ContextHit,
    ContextItem,
    KnowledgeUsage,
    RAGRequest,
    RAGResponse,
    RAGSource,
)
from engine.errors import SymbiError
from engine.events import AgentCreated, AgentDeleted, Event

if TYPE_CHECKING:
    from console.app import SymbiConsole

T = TypeVar("T")

#: The pseudo-owner of the shared view (agent ids are UUIDs, so it names no agent).
SHARED = "operator"
ALL_KINDS = "all"
ROWS = 200
SEARCH_LIMIT = 20
LOADING = "loading the embedding model…"
SNIPPET = 48
LINE = 28
META = 20
TICK_SECONDS = 5.0  # re-read the listing at most this often while the screen is shown

Shown = ContextItem | RAGSource  # what the detail pane can show


def first_line(text: str, width: int = LINE) -> str:
    """The first non-empty line of ``text``, cut to ``width`` characters."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def metadata_summary(metadata: dict[str, Any] | None, width: int = META) -> str:
    """``key=value, …`` of the metadata, cut to ``width``; ``-`` when there is none."""
    if not metadata:
        return "-"
    parts = []
    for key, value in metadata.items():
        shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        parts.append(f"{key}={shown}")
    text = ", ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


def score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def cited(answer: str) -> set[int]:
    """Source numbers an answer cites as ``[n]``."""
    return {int(n) for n in re.findall(r"\[(\d+)\]", answer)}


class KnowledgeScreen(ConsoleScreen):
    """Screen 9: per-agent memory and knowledge."""

    SCOPE = KNOWLEDGE
    BINDINGS = bindings_for(KNOWLEDGE)
    AUTO_FOCUS = "#kn-items"
    DEFAULT_CSS = """
    KnowledgeScreen #kn-bar { height: 1; padding: 0 1; }
    KnowledgeScreen #kn-bar Label { width: auto; color: $foreground-muted; padding: 0 1 0 0; }
    KnowledgeScreen #kn-agent { width: 32; margin: 0 2 0 0; }
    KnowledgeScreen #kn-kind { width: 18; }
    KnowledgeScreen #kn-status { width: 1fr; color: $warning; text-align: right; text-wrap: nowrap; }
    KnowledgeScreen #kn-usage { height: 1; padding: 0 1; color: $foreground-muted; text-wrap: nowrap;
                                text-overflow: ellipsis; }
    KnowledgeScreen #kn-queries { height: 1; padding: 0 1; }
    KnowledgeScreen #kn-queries Label { width: auto; color: $foreground-muted; padding: 0 1 0 0; }
    KnowledgeScreen #kn-queries Input { width: 1fr; margin: 0 2 0 0; }
    KnowledgeScreen #kn-body { height: 1fr; }
    KnowledgeScreen #kn-items { width: 1fr; height: 1fr; padding: 0; }
    KnowledgeScreen #kn-detail { width: 38%; height: 1fr; }
    KnowledgeScreen #kn-item { height: auto; }
    KnowledgeScreen #kn-rag { display: none; height: auto; max-height: 60%; }
    KnowledgeScreen #kn-rag.-shown { display: block; }
    KnowledgeScreen #kn-answer { height: auto; max-height: 6; }
    KnowledgeScreen #kn-sources { height: auto; max-height: 8; padding: 0; }
    """

    def __init__(self) -> None:
        super().__init__(id="knowledge")
        self.agent_id: str | None = None  # an agent id, or SHARED
        self.kind: str | None = None
        self.items: list[ContextItem] = []
        self.hits: list[ContextHit] | None = None  # None: the table lists items
        self.search_text = ""
        self.answer: RAGResponse | None = None
        self.usage: KnowledgeUsage | None = None
        self.status = ""
        self.statuses: list[str] = []  # every status shown, in order (tests read it)
        self.shown: Shown | None = None
        self.store_ready = False
        self._rows: dict[str, ContextItem] = {}
        self._signature: tuple[Any, ...] = ()
        self._options: list[tuple[str, str]] = []
        self._select_after: str | None = None
        self._last_tick = 0.0

    @property
    def console(self) -> SymbiConsole:
        return self.app  # type: ignore[return-value]

    def compose_body(self) -> Iterable[Widget]:
        with Vertical(id="kn-main"):
            with Horizontal(id="kn-bar"):
                yield Label("Agent")
                yield Select([], prompt="(no agent)", id="kn-agent", compact=True, allow_blank=True)
                yield Label("Kind")
                yield Select(
                    [("all kinds", ALL_KINDS)] + [(k, k) for k in KINDS],
                    value=ALL_KINDS,
                    allow_blank=False,
                    id="kn-kind",
                    compact=True,
                )
                yield Static("", id="kn-status", markup=False)
            yield Static("", id="kn-usage", markup=False)
            with Horizontal(id="kn-queries"):
                yield Label("Search")
                yield Input(placeholder="/ meaning search, enter runs it", id="kn-search", compact=True)
                yield Label("Ask")
                yield Input(placeholder="a question answered from this knowledge", id="kn-ask", compact=True)
            with Horizontal(id="kn-body"):
                yield DataTable(id="kn-items", cursor_type="row", zebra_stripes=True, classes="panel")
                with VerticalScroll(id="kn-detail", classes="panel"):
                    yield Static(id="kn-item")
            with Vertical(id="kn-rag", classes="panel"):
                yield Static(id="kn-answer")
                yield DataTable(id="kn-sources", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#kn-detail").border_title = "Item"
        self.query_one("#kn-rag").border_title = "Answer"
        sources = self.query_one("#kn-sources", DataTable)
        for label in ("#", "Score", "Vector", "BM25", "Kind", "Item", "Snippet"):
            sources.add_column(label, key=label.lower())
        self._columns()
        self._refresh_agents()

    # -- the agent and kind selectors -----------------------------------------------------------

    def _refresh_agents(self) -> None:
        agents = sorted(self.console.model.agents.values(), key=lambda a: a.name)
        options = [(a.name, a.id) for a in agents] + [("shared with everyone", SHARED)]
        if options != self._options:
            self._options = options
            select = self.query_one("#kn-agent", Select)
            with select.prevent(Select.Changed):
                select.set_options(options)
        ids = {value for _, value in options}
        if self.agent_id not in ids:
            self.agent_id = options[0][1]
        select = self.query_one("#kn-agent", Select)
        if select.value != self.agent_id:
            with select.prevent(Select.Changed):
                select.value = self.agent_id

    def select_agent(self, agent_id: str) -> None:
        """Show ``agent_id``'s knowledge (an agent id, or :data:`SHARED`)."""
        if agent_id == self.agent_id:
            return
        self.agent_id = agent_id
        self._forget_queries()
        if self.is_mounted:
            self._refresh_agents()
            self.reload()

    def owner_name(self, owner: str | None) -> str:
        if owner == SHARED:
            return "operator (shared)"
        info = self.console.model.agents.get(owner or "")
        return info.name if info else (owner or "-")[:8]

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id == "kn-agent":
            if event.value is Select.BLANK or event.value == self.agent_id:
                return
            self.select_agent(str(event.value))
        elif event.select.id == "kn-kind":
            kind = None if event.value in (ALL_KINDS, Select.BLANK) else str(event.value)
            if kind == self.kind:
                return
            self.kind = kind
            self.answer = None
            self._show_answer()
            self.reload()

    def action_pick_agent(self) -> None:
        select = self.query_one("#kn-agent", Select)
        select.focus()
        select.expanded = True

    def action_pick_kind(self) -> None:
        select = self.query_one("#kn-kind", Select)
        select.focus()
        select.expanded = True

    # -- the store ---------------------------------------------------------------------------------

    def _set_status(self, text: str) -> None:
        self.status = text
        if text:
            self.statuses.append(text)
        if self.is_mounted:
            self.query_one("#kn-status", Static).update(text)

    async def _call(self, call: Awaitable[T], status: str = "") -> T:
        """Await one engine call with ``status`` shown meanwhile. The first call opens the engine's
        store (it loads the embedding model): the screen says so, and the call is shielded, so a
        worker cancelled meanwhile does not abandon a store half opened. A SymbiError goes to the
        caller."""
        first = not self.store_ready
        shown = LOADING if first else status
        if shown:
            self._set_status(shown)
        try:
            result = await (asyncio.shield(call) if first else call)
        finally:
            if shown:
                self._set_status("")
        self.store_ready = True
        return result

    def _kinds(self) -> list[str] | None:
        return [self.kind] if self.kind else None

    # -- listing ----------------------------------------------------------------------------------

    def refresh_view(self) -> None:
        if not self.is_mounted:
            return
        self._refresh_agents()
        self.reload()

    def engine_update(self, events: list[Event]) -> None:
        if any(isinstance(e, (AgentCreated, AgentDeleted)) for e in events):
            self._refresh_agents()

    def tick(self) -> None:
        now = time.monotonic()
        if self.store_ready and now - self._last_tick >= TICK_SECONDS:
            self._last_tick = now
            self._list()

    def reload(self, select: str | None = None) -> None:
        """Read the listing and the usage again (and the search, if one is shown)."""
        if select is not None:
            self._select_after = select
        self._list()
        if self.hits is not None and self.search_text:
            self._search(self.search_text)

    def action_refresh(self) -> None:
        self.reload()

    @work(group="knowledge-list", exclusive=True)
    async def _list(self) -> None:
        agent = self.agent_id
        if agent is None:
            return
        knowledge = self.console.engine.knowledge
        try:
            items = await self._call(knowledge.list_items(agent, self._kinds(), include_shared=True, limit=ROWS))
            usage = await knowledge.usage(agent)
        except SymbiError as exc:
            self.console.show_error(exc, title="Knowledge")
            return
        if agent != self.agent_id:
            return  # another agent was picked meanwhile
        self.items = items
        self.usage = usage
        self._show_usage()
        if self.hits is None:
            self._fill()

    def _show_usage(self) -> None:
        usage = self.usage or KnowledgeUsage(owner=self.agent_id or "")
        counts = usage.items
        memory = sum(n for k, n in counts.items() if k != "knowledge")
        mem_limit, know_limit = usage.max_memory_items, usage.max_knowledge_items
        who = "the operator's shared items" if self.agent_id == SHARED else self.owner_name(self.agent_id)
        parts = [who]
        parts.append(f"knowledge {counts.get('knowledge', 0)}/{know_limit}")
        detail = ", ".join(f"{k} {counts[k]}" for k in KINDS if k != "knowledge" and counts.get(k))
        parts.append(f"memory {memory}/{mem_limit}" + (f" ({detail})" if detail else ""))
        limit = usage.limit_bytes
        parts.append(f"{size(usage.bytes)} of {size(limit)}" if limit else size(usage.bytes))
        self.query_one("#kn-usage", Static).update(" · ".join(parts))

    # -- the table ----------------------------------------------------------------------------------

    def _columns(self) -> None:
        table = self.query_one("#kn-items", DataTable)
        table.clear(columns=True)
        labels = ["Kind", "Created", "Size", "Shared", "Content", "Metadata"]
        if self.hits is not None:
            labels.insert(0, "Score")
        for label in labels:
            table.add_column(label, key=label.lower())

    def _shared_text(self, item: ContextItem) -> Text:
        muted = theme_colour(self.app.theme_variables, "foreground-muted")
        if item.agent_id != self.agent_id:
            return Text(f"from {self.owner_name(item.agent_id)}", style=muted)
        if EVERYONE in item.shared_with:
            return Text("everyone")
        if item.shared_with:
            return Text(f"{len(item.shared_with)} agent{'s' if len(item.shared_with) != 1 else ''}")
        return Text("-", style=muted)

    def _fill(self) -> None:
        """Put the listing (or the search hits) into the table, keeping the cursor where it was."""
        table = self.query_one("#kn-items", DataTable)
        rows: list[tuple[ContextItem, float | None]] = (
            [(h.item, h.score) for h in self.hits] if self.hits is not None else [(i, None) for i in self.items]
        )
        signature = (
            self.agent_id,
            self.hits is not None,
            tuple((i.id, i.size, tuple(i.shared_with), s) for i, s in rows),
        )
        keep = self._select_after or (self.shown.id if isinstance(self.shown, ContextItem) else None)
        self._select_after = None
        if signature != self._signature:
            self._signature = signature
            if len(table.columns) != (7 if self.hits is not None else 6):
                self._columns()
            else:
                table.clear()
            self._rows = {}
            for item, hit_score in rows:
                cells: list[Any] = [
                    item.kind,
                    time.strftime("%m-%d %H:%M", time.localtime(item.created_at)),
                    size(item.size),
                    self._shared_text(item),
                    first_line(item.content),
                    metadata_summary(item.metadata),
                ]
                if hit_score is not None:
                    cells.insert(0, score(hit_score))
                table.add_row(*cells, key=item.id)
                self._rows[item.id] = item
        count = len(rows)
        if self.hits is not None:
            table.border_title = f"Search · {count} hit{'s' if count != 1 else ''}"
            table.border_subtitle = "best first · esc lists items"
        else:
            table.border_title = f"Items · {count}"
            table.border_subtitle = "" if count else ("n adds one" if not self.console.readonly else "")
        if keep and keep in self._rows:
            try:
                table.move_cursor(row=table.get_row_index(keep))
            except RowDoesNotExist:
                pass
        if isinstance(self.shown, RAGSource) and not keep:
            return  # a source of the answer is on show: a re-read of the listing leaves it there
        self._show(self._cursor_item())

    def _cursor_item(self) -> ContextItem | None:
        table = self.query_one("#kn-items", DataTable)
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:  # noqa: BLE001 - no cursor row (empty table being refilled)
            return None
        return self._rows.get(str(key.value))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        key = str(event.row_key.value)
        if event.data_table.id == "kn-items":
            item = self._rows.get(key)
            if item is not None:
                self._show(item)
        elif event.data_table.id == "kn-sources" and self.answer is not None:
            source = next((s for s in self.answer.sources if f"src-{s.n}" == key), None)
            if source is not None:
                self._show(source)

    # -- the detail pane -----------------------------------------------------------------------------

    def _show(self, shown: Shown | None) -> None:
        self.shown = shown
        variables = self.app.theme_variables
        muted = theme_colour(variables, "foreground-muted")
        pane = self.query_one("#kn-item", Static)
        detail = self.query_one("#kn-detail")
        if shown is None:
            detail.border_title = "Item"
            if self.hits is not None:
                pane.update(Text("Nothing found. Esc lists the items.", style=muted))
            elif self.agent_id is None:
                pane.update(Text("No agent.", style=muted))
            else:
                hint = "" if self.console.readonly else " n adds one."
                pane.update(Text(f"No items.{hint}", style=muted))
            return
        if isinstance(shown, RAGSource):
            detail.border_title = f"Source [{shown.n}]"
            rows = [
                ("owner", self.owner_name(shown.owner)),
                ("id", shown.item_id),
                ("score", score(shown.score)),
                (
                    "parts",
                    f"vector {score(getattr(shown, 'vector_score', None))} · "
                    f"bm25 {score(getattr(shown, 'lexical_score', None))}",
                ),
            ]
        else:
            detail.border_title = f"Item · {shown.kind}"
            shared = (
                "everyone"
                if EVERYONE in shown.shared_with
                else (", ".join(self.owner_name(g) for g in shown.shared_with) or "-")
            )
            rows = [
                ("owner", self.owner_name(shown.agent_id)),
                ("id", shown.id),
                ("created", timestamp(shown.created_at)),
                ("expires", timestamp(shown.expires_at) if shown.expires_at else "never"),
                ("size", size(shown.size)),
                ("shared", shared),
            ]
            hit = next((h for h in self.hits or [] if h.item.id == shown.id), None)
            if hit is not None:
                rows.append(("score", score(hit.score)))
        head = Text.assemble(("kind    ", muted), (shown.kind, "bold"))
        for label, value in rows:
            head.append_text(Text.assemble((f"\n{label:<8}", muted), value))
        metadata = shown.metadata
        meta = json.dumps(metadata, indent=2, sort_keys=True, ensure_ascii=False) if metadata else "-"
        pane.update(Text.assemble(head, ("\n\nmetadata\n", muted), meta, ("\n\ncontent\n", muted), Text(shown.content)))

    # -- search ----------------------------------------------------------------------------------------

    def action_search(self) -> None:
        self.query_one("#kn-search", Input).focus()

    def action_ask(self) -> None:
        self.query_one("#kn-ask", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if event.input.id == "kn-search":
            if not text:
                self._clear_search()
                return
            self._search(text)
        elif event.input.id == "kn-ask" and text:
            self._ask(text)

    @work(group="knowledge-search", exclusive=True, description="search the knowledge")  # no query in logs
    async def _search(self, text: str) -> None:
        agent = self.agent_id
        if agent is None:
            return
        search = self.console.engine.knowledge.search(agent, text, limit=SEARCH_LIMIT, kinds=self._kinds())
        try:
            hits = await self._call(search, "searching…")
        except SymbiError as exc:
            self.console.show_error(exc, title="Search")
            return
        if agent != self.agent_id:
            return
        self.hits = hits
        self.search_text = text
        self._fill()
        table = self.query_one("#kn-items", DataTable)
        if table.row_count:
            table.move_cursor(row=0)
            self._show(self._cursor_item())

    def _clear_search(self) -> None:
        if self.hits is None:
            return
        self.hits = None
        self.search_text = ""
        self.query_one("#kn-search", Input).value = ""
        self._fill()

    # -- ask (RAG) ---------------------------------------------------------------------------------------

    @work(group="knowledge-ask", exclusive=True, description="ask the knowledge")  # no question in logs
    async def _ask(self, text: str) -> None:
        agent = self.agent_id
        if agent is None:
            return
        ask = self.console.engine.knowledge.ask(RAGRequest(query=text, agent_id=agent, kinds=self._kinds()))
        try:
            response = await self._call(ask, "answering…")  # the engine's RAG, configured from [rag]
        except SymbiError as exc:
            self.console.show_error(exc, title="Ask")
            return
        if agent != self.agent_id:
            return
        self.answer = response
        self._show_answer()
        if response.sources:
            self._show(response.sources[0])

    def _show_answer(self) -> None:
        panel = self.query_one("#kn-rag")
        response = self.answer
        panel.set_class(response is not None, "-shown")
        sources = self.query_one("#kn-sources", DataTable)
        sources.clear()
        if response is None:
            return
        variables = self.app.theme_variables
        muted = theme_colour(variables, "foreground-muted")
        cite_style = theme_colour(variables, "accent") + Style(bold=True)
        count = len(response.sources)
        panel.border_title = f"Answer · {response.mode} · {count} source{'s' if count != 1 else ''}"
        panel.border_subtitle = "esc closes"
        answer = Text()
        answer.append("Q ", style=muted)
        answer.append(response.query + "\n")
        answer.append("A ", style=muted)
        for piece in re.split(r"(\[\d+\])", response.answer):
            if re.fullmatch(r"\[\d+\]", piece):
                answer.append(piece, style=cite_style)
            else:
                answer.append(piece)
        self.query_one("#kn-answer", Static).update(answer)
        numbers = cited(response.answer)
        for source in response.sources:
            sources.add_row(
                f"[{source.n}]" + ("*" if source.n in numbers else " "),
                score(source.score),
                score(getattr(source, "vector_score", None)),
                score(getattr(source, "lexical_score", None)),
                source.kind,
                source.item_id[:8],
                first_line(source.content, SNIPPET),
                key=f"src-{source.n}",
            )

    # -- clear -------------------------------------------------------------------------------------------

    def _forget_queries(self) -> None:
        self.hits = None
        self.search_text = ""
        self.answer = None
        self.shown = None
        if self.is_mounted:
            self.query_one("#kn-search", Input).value = ""
            self.query_one("#kn-ask", Input).value = ""
            self._show_answer()

    def action_clear(self) -> None:
        """Escape: close the answer, then the search."""
        if self.answer is not None:
            self.answer = None
            self.query_one("#kn-ask", Input).value = ""
            self._show_answer()
            if isinstance(self.shown, RAGSource):
                self._show(self._cursor_item())
        elif self.hits is not None:
            self._clear_search()
        self.query_one("#kn-items", DataTable).focus()

    # -- add and delete ------------------------------------------------------------------------------------

    def action_add(self) -> None:
        owner = self.agent_id
        if owner is None:
            self.notify("no agent selected", severity="warning")
            return
        label = "the shared items (every agent sees them)" if owner == SHARED else self.owner_name(owner)
        form = KnowledgeForm(
            label, partial(self._put, owner), kind=self.kind or "knowledge", shared_only=owner == SHARED
        )
        self.app.push_screen(form, self._added)

    async def _put(self, owner: str, draft: KnowledgeDraft) -> ContextItem:
        """Called by the form: the engine records, then stores. A SymbiError goes back to the form."""
        add = self.console.engine.knowledge.add(
            owner,
            draft.content,
            draft.kind,
            draft.metadata,
            share_with=[EVERYONE] if draft.share_with_everyone else None,
        )
        return await self._call(add)

    def _added(self, item: ContextItem | None) -> None:
        if item is None:
            return
        self.notify(
            f"added a {item.kind} item ({size(item.size)}) for {self.owner_name(item.agent_id)}",
            title="Knowledge",
            markup=False,
        )
        self.reload(select=item.id)

    def _target(self) -> tuple[str, str, str, int] | None:
        """(owner, item id, kind, bytes) of what the cursor is on."""
        focused = self.focused
        shown: Shown | None
        if focused is not None and focused.id == "kn-sources":
            shown = self.shown if isinstance(self.shown, RAGSource) else None
        else:
            shown = self._cursor_item()
        if isinstance(shown, RAGSource):
            return shown.owner, shown.item_id, shown.kind, len(shown.content.encode("utf-8"))
        if isinstance(shown, ContextItem):
            return shown.agent_id, shown.id, shown.kind, shown.size
        return None

    def action_delete(self) -> None:
        target = self._target()
        if target is None:
            self.notify("no item selected", severity="warning")
            return
        self._delete(*target)

    @work(group="knowledge-delete", exclusive=True)
    async def _delete(self, owner: str, item_id: str, kind: str, nbytes: int) -> None:
        whose = self.owner_name(owner)
        question = (
            f"Delete this {kind} item of {whose} ({size(nbytes)}, id {item_id[:8]})? "
            f"{'Every agent it is shared with loses it too. ' if owner != self.agent_id else ''}"
            "This cannot be undone."
        )
        if not await self.app.push_screen_wait(ConfirmDialog("Delete item?", question, yes="Delete")):
            return
        try:
            await self._call(self.console.engine.knowledge.delete(owner, item_id))  # recorded by the engine first
        except SymbiError as exc:
            self.console.show_error(exc, title="Cannot delete")
            return
        self.notify(f"deleted a {kind} item of {whose}", title="Knowledge", markup=False)
        if self.answer is not None and any(s.item_id == item_id for s in self.answer.sources):
            self.answer = None  # it cited what is gone
            self._show_answer()
        if isinstance(self.shown, RAGSource) and self.shown.item_id == item_id:
            self.shown = None
        self.reload()


async def show_knowledge(app: SymbiConsole, agent_id: str | None = None) -> None:
    """Switch to the knowledge screen, showing ``agent_id``'s items when given."""
    await app.action_goto(KNOWLEDGE)
    screen = app.screen
    if agent_id is not None and isinstance(screen, KnowledgeScreen):
        screen.select_agent(agent_id)
