"""Screen 8: the review queue — external tools, tool calls and signing keys waiting for a human.

Three lists on the left, newest first: tools waiting for review (any state
with ``f``), calls waiting for approval, and SchemaPin key changes. Each
tool and call carries a risk badge (worst finding and score, coloured).
The pane on the right shows the selected item: for a tool, its provider,
signature and key pin, state and history, the definition as JSON with the
analyzer's findings highlighted where they are, the findings list and, after
a rug pull, the diff against the approved version; for a call, the agent,
the tool, the exact arguments and their SHA-256 and the time left; for a
key change, both fingerprints.

``a`` approves (a tool with a scope chosen in the dialog; a call with the
SHA-256 shown; a key change), ``x`` rejects (a tool needs a reason), ``d``
defers a tool, ``R`` runs the analyzer again. ``space`` marks rows: the same
keys then decide every marked item after one confirmation listing them.
Every decision asks first, passes what the operator was shown (a tool's
definition hash, a call's arguments hash) so it never lands on something
else, and is refused in read-only mode. Engine errors are notifications
with their code and hint. The list follows the engine live.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from rich.style import Style
from rich.text import Text
from textual import work
from textual.containers import Container, Vertical, VerticalScroll
from textual.events import DescendantFocus, Resize
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Static

from console.actions import TOOLS, bindings_for
from console.format import theme_colour
from console.review import is_review_event
from console.screens.base import ConsoleScreen
from console.screens.review_dialogs import Decision, DecisionDialog
from console.screens.tool_detail import (
    badge,
    call_text,
    clock_label,
    expires_text,
    key_change_text,
    max_severity,
    severity_rank,
    short_fingerprint,
    short_hash,
    state_text,
    tool_text,
)
from engine.api import KeyChangeView, PendingCallView, ServerView, ToolRecord
from engine.errors import SymbiError
from engine.events import Event

NARROW = 110
TOOL, CALL, KEY = "tool", "call", "key"
TABLES = {TOOL: "#tools-table", CALL: "#tools-calls", KEY: "#tools-keys"}
MARK = "✓"

Item = tuple[str, str]  # (kind, key): ("tool", "demo/echo"), ("call", "call-3"), ("key", "example.com")


class ToolsScreen(ConsoleScreen):
    """Screen 8: tools, calls and key changes waiting for the operator."""

    SCOPE = TOOLS
    BINDINGS = bindings_for(TOOLS)
    AUTO_FOCUS = "#tools-table"

    DEFAULT_CSS = """
    ToolsScreen #tools-main { layout: horizontal; height: 1fr; }
    ToolsScreen #tools-lists { width: 64; height: 1fr; }
    ToolsScreen #tools-table { height: 2fr; }
    ToolsScreen #tools-calls { height: 1fr; min-height: 5; }
    ToolsScreen #tools-keys { height: auto; max-height: 8; min-height: 4; }
    ToolsScreen #tools-detail { width: 1fr; height: 1fr; }
    ToolsScreen #tools-main.-narrow { layout: vertical; }
    ToolsScreen #tools-main.-narrow #tools-lists { width: 100%; height: 1fr; }
    ToolsScreen #tools-main.-narrow #tools-detail { width: 100%; height: 1fr; }
    ToolsScreen #tools-main.-zoom #tools-lists { display: none; }
    ToolsScreen #tools-main.-zoom #tools-detail { width: 100%; height: 1fr; }
    """

    class Loaded(Message):
        def __init__(
            self,
            available: bool,
            tools: list[ToolRecord],
            calls: list[PendingCallView],
            keys: list[KeyChangeView],
            servers: list[ServerView],
        ) -> None:
            super().__init__()
            self.available = available
            self.tools = tools
            self.calls = calls
            self.keys = keys
            self.servers = servers

    class HistoryLoaded(Message):
        def __init__(self, tool_id: str, def_hash: str, history: list[dict[str, Any]]) -> None:
            super().__init__()
            self.tool_id = tool_id
            self.def_hash = def_hash
            self.history = history

    def __init__(self) -> None:
        super().__init__(id="tools")
        self.show_all = False
        self.loaded = False
        self.available = True  # False: this engine has no tool service
        self.tools: dict[str, ToolRecord] = {}  # in list order
        self.calls: dict[str, PendingCallView] = {}
        self.keys: dict[str, KeyChangeView] = {}
        self.servers: dict[str, ServerView] = {}  # the configured MCP servers, by name
        self.marks: set[Item] = set()
        self.active = TOOL  # the list whose cursor row the detail pane shows
        self.shown: Item | None = None  # what the detail pane shows now
        self.shown_hash: str | None = None  # the definition hash of the tool shown (what an approval binds to)
        self.histories: dict[str, tuple[str, list[dict[str, Any]]]] = {}  # tool id -> (def_hash, history)
        self._filling = False

    def compose_body(self) -> Iterable[Widget]:
        with Container(id="tools-main"):
            with Vertical(id="tools-lists"):
                yield DataTable(id="tools-table", cursor_type="row", classes="panel")
                yield DataTable(id="tools-calls", cursor_type="row", classes="panel")
                yield DataTable(id="tools-keys", cursor_type="row", classes="panel")
            with VerticalScroll(id="tools-detail", classes="panel"):
                yield Static(id="tools-detail-text")

    def on_mount(self) -> None:
        columns = {
            TOOL: ((" ", "mark"), ("Risk", "risk"), ("Tool", "tool"), ("State", "state"), ("Seen", "seen")),
            CALL: ((" ", "mark"), ("Agent", "agent"), ("Tool", "tool"), ("Args sha256", "sha"), ("Expires", "expires")),
            KEY: ((" ", "mark"), ("Domain", "domain"), ("Old key", "old"), ("New key", "new")),
        }
        for kind, cols in columns.items():
            for label, key in cols:
                self.table(kind).add_column(label, key=key)
        self.query_one("#tools-detail").border_title = "Detail"
        self._titles()

    def on_resize(self, event: Resize) -> None:
        self.query_one("#tools-main").set_class(event.size.width < NARROW, "-narrow")

    def table(self, kind: str) -> DataTable[Any]:
        return self.query_one(TABLES[kind], DataTable)

    # -- loading ----------------------------------------------------------------------------

    def refresh_view(self) -> None:
        self.reload()

    def engine_update(self, events: list[Event]) -> None:
        if any(is_review_event(e) for e in events):
            self.reload()

    def tick(self) -> None:
        """Count down the calls' time left (on the console's clock, which tests freeze)."""
        if not self.calls:
            return
        now = self.console.now()
        variables = self.app.theme_variables
        table = self.table(CALL)
        for call_id, call in self.calls.items():
            try:
                table.update_cell(call_id, "expires", expires_text(call, now, variables))
            except Exception:  # noqa: BLE001 - the row went away meanwhile
                continue
        if self.shown is not None and self.shown[0] == CALL:
            self._show_detail()

    def reload(self) -> None:
        self._load()

    @work(group="tools-load", exclusive=True)
    async def _load(self) -> None:
        engine = self.console.engine.tools
        try:
            if not await engine.available():
                self.post_message(self.Loaded(False, [], [], [], []))
                return
            queue = await engine.queue()
            tools = list(await engine.list_tools()) if self.show_all else list(queue.tools)
            servers = await engine.servers()
        except SymbiError as exc:
            self.console.show_error(exc, title="Review queue")
            return
        tools = sorted(tools, key=lambda r: (r.updated_at, r.first_seen), reverse=True)
        calls = sorted(queue.calls, key=lambda c: c.created_at, reverse=True)
        self.post_message(self.Loaded(True, tools, calls, list(queue.keys), servers))

    def on_tools_screen_loaded(self, message: Loaded) -> None:
        self.available = message.available
        self.tools = {r.id: r for r in message.tools}
        self.calls = {c.id: c for c in message.calls}
        self.keys = {k.domain: k for k in message.keys}
        self.servers = {s.name: s for s in message.servers}
        self.marks = {m for m in self.marks if m[1] in self._items(m[0])}
        self._filling = True
        try:
            self._fill_tools()
            self._fill_calls()
            self._fill_keys()
        finally:
            self._filling = False
        first = not self.loaded
        self.loaded = True
        self._titles()
        if not self._items(self.active):
            # the active list ran empty (or this is the first look): go to the next list with something in it
            other = next((k for k in (TOOL, CALL, KEY) if self._items(k)), None)
            if other is not None and (first or self.focused in [self.table(k) for k in TABLES]):
                self.active = other
                self.table(other).focus()
        self._select_from_cursor()

    def _items(self, kind: str) -> dict[str, Any]:
        lists: dict[str, dict[str, Any]] = {TOOL: self.tools, CALL: self.calls, KEY: self.keys}
        return lists[kind]

    def _mark_cell(self, kind: str, key: str) -> Text:
        return Text(
            MARK if (kind, key) in self.marks else " ",
            style=theme_colour(self.app.theme_variables, "accent") + Style(bold=True),
        )

    def _refill(self, kind: str, rows: list[tuple[str, list[Any]]]) -> None:
        table = self.table(kind)
        keep = self._cursor_key(kind)
        row = table.cursor_row
        table.clear()
        for key, cells in rows:
            table.add_row(self._mark_cell(kind, key), *cells, key=key)
        if not rows:
            return
        keys = [key for key, _ in rows]
        target = keys.index(keep) if keep in keys else min(row, len(keys) - 1)
        table.move_cursor(row=max(0, target), animate=False)

    def _fill_tools(self) -> None:
        variables = self.app.theme_variables
        rows = []
        for rec in self.tools.values():
            rows.append(
                (
                    rec.id,
                    [
                        badge(rec.findings, rec.score, variables),
                        Text(rec.id),
                        state_text(rec.state, variables, rec.deferred, short=True),
                        Text(clock_label(rec.updated_at), style=theme_colour(variables, "foreground-muted")),
                    ],
                )
            )
        self._refill(TOOL, rows)

    def _agent_name(self, agent_id: str) -> str:
        info = self.console.model.agents.get(agent_id)
        return info.name if info is not None else agent_id

    def _fill_calls(self) -> None:
        variables = self.app.theme_variables
        now = self.console.now()
        rows = []
        for call in self.calls.values():
            tool = self.tools.get(call.tool_id)
            tool_cell = Text(call.tool_id)
            if tool is not None and max_severity(tool.findings):
                tool_cell = Text.assemble(call.tool_id, " ", badge(tool.findings, tool.score, variables))
            rows.append(
                (
                    call.id,
                    [
                        Text(self._agent_name(call.agent_id)),
                        tool_cell,
                        Text(short_hash(call.arguments_sha256), style=theme_colour(variables, "accent")),
                        expires_text(call, now, variables),
                    ],
                )
            )
        self._refill(CALL, rows)

    def _fill_keys(self) -> None:
        variables = self.app.theme_variables
        rows = [
            (
                domain,
                [
                    Text(domain),
                    Text(
                        short_fingerprint(change.old_fingerprint),
                        style=theme_colour(variables, "foreground-muted"),
                    ),
                    Text(short_fingerprint(change.new_fingerprint), style=theme_colour(variables, "warning")),
                ],
            )
            for domain, change in self.keys.items()
        ]
        self._refill(KEY, rows)

    def _titles(self) -> None:
        tools = self.table(TOOL)
        what = "all tools" if self.show_all else "tools waiting for review"
        tools.border_title = f"{what.capitalize()} · {len(self.tools)}"
        marked = len(self.marks)
        tools.border_subtitle = (
            f"{marked} marked" if marked else ("f: waiting only" if self.show_all else "f: all tools")
        )
        self.table(CALL).border_title = f"Calls waiting for approval · {len(self.calls)}"
        self.table(KEY).border_title = f"Key changes · {len(self.keys)}"
        if self.console.readonly:
            self.query_one("#tools-detail").border_subtitle = "read-only: decisions are off"

    # -- selection and the detail pane ---------------------------------------------------------

    def _cursor_key(self, kind: str) -> str | None:
        table = self.table(kind)
        if not table.row_count:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:  # noqa: BLE001 - no row under the cursor
            return None

    def _kind_of(self, table: DataTable[Any]) -> str | None:
        return next((k for k, sel in TABLES.items() if table.id == sel[1:]), None)

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        if isinstance(event.widget, DataTable):
            kind = self._kind_of(event.widget)
            if kind is not None and kind != self.active:
                self.active = kind
                self._select_from_cursor()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if self._filling or self._kind_of(event.data_table) != self.active:
            return
        self._select_from_cursor()

    def _select_from_cursor(self) -> None:
        key = self._cursor_key(self.active)
        self.shown = (self.active, key) if key is not None else None
        self._show_detail()
        if self.shown is not None and self.shown[0] == TOOL:
            rec = self.tools.get(self.shown[1])
            cached = self.histories.get(self.shown[1])
            if rec is not None and (cached is None or cached[0] != rec.def_hash):
                self._history(rec.id, rec.def_hash)

    @work(group="tools-history", exclusive=True)
    async def _history(self, tool_id: str, def_hash: str) -> None:
        try:
            history = await self.console.engine.tools.history(tool_id)
        except SymbiError as exc:
            self.console.show_error(exc, title=f"History of {tool_id}")
            return
        self.post_message(self.HistoryLoaded(tool_id, def_hash, list(history)))

    def on_tools_screen_history_loaded(self, message: HistoryLoaded) -> None:
        self.histories[message.tool_id] = (message.def_hash, message.history)
        if self.shown == (TOOL, message.tool_id):
            self._show_detail()

    def selected_record(self) -> ToolRecord | None:
        if self.shown is None or self.shown[0] != TOOL:
            return None
        return self.tools.get(self.shown[1])

    def _allow_unsigned(self, server: str) -> bool:
        view = self.servers.get(server)
        return view is not None and view.allow_unsigned

    def _show_detail(self) -> None:
        variables = self.app.theme_variables
        pane = self.query_one("#tools-detail")
        body = self.query_one("#tools-detail-text", Static)
        muted = theme_colour(variables, "foreground-muted")
        self.shown_hash = None
        if not self.available:
            pane.border_title = "Detail"
            body.update(Text("this engine has no tool service", style=muted))
            return
        if self.shown is None:
            pane.border_title = "Detail"
            if not self.loaded:
                body.update(Text("loading…", style=muted))
            elif not (self.tools or self.calls or self.keys):
                body.update(self._servers_text(muted))
            else:
                body.update(Text("select a row", style=muted))
            return
        kind, key = self.shown
        if kind == TOOL and key in self.tools:
            rec = self.tools[key]
            cached = self.histories.get(key)
            history = cached[1] if cached is not None and cached[0] == rec.def_hash else []
            pane.border_title = f"Tool {rec.id}"
            self.shown_hash = rec.def_hash
            body.update(
                tool_text(
                    rec,
                    history=history,
                    key_changes=list(self.keys.values()),
                    allow_unsigned=self._allow_unsigned(rec.server),
                    variables=variables,
                )
            )
        elif kind == CALL and key in self.calls:
            call = self.calls[key]
            pane.border_title = f"Call {key}"
            body.update(
                call_text(call, agent_name=self._agent_name(call.agent_id), now=self.console.now(), variables=variables)
            )
        elif kind == KEY and key in self.keys:
            pane.border_title = f"Key change {key}"
            body.update(key_change_text(self.keys[key], variables))
        else:
            pane.border_title = "Detail"
            body.update(Text("gone: decided or expired meanwhile", style=muted))

    def detail_plain(self) -> str:
        """The detail pane's text (for tests and the curious)."""
        return str(self.query_one("#tools-detail-text", Static).render())

    # -- marks, filter, zoom --------------------------------------------------------------------

    def action_mark(self) -> None:
        key = self._cursor_key(self.active)
        if key is None:
            return
        item = (self.active, key)
        if item in self.marks:
            self.marks.discard(item)
        else:
            self.marks.add(item)
        table = self.table(self.active)
        table.update_cell(key, "mark", self._mark_cell(*item))
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1, animate=False)
        self._titles()

    def action_clear(self) -> None:
        main = self.query_one("#tools-main")
        if main.has_class("-zoom"):
            main.remove_class("-zoom")
            self.table(self.active).focus()
            return
        if self.marks:
            self.marks.clear()
            self._fill_tools()
            self._fill_calls()
            self._fill_keys()
            self._titles()

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all
        self.reload()

    def action_zoom(self) -> None:
        main = self.query_one("#tools-main")
        main.toggle_class("-zoom")
        if main.has_class("-zoom"):
            self.query_one("#tools-detail").focus()
        else:
            self.table(self.active).focus()

    def action_refresh(self) -> None:
        self.reload()

    # -- decisions ------------------------------------------------------------------------------

    def targets(self) -> list[Item]:
        """The marked items (in list order), or else the one shown."""
        if self.marks:
            order = [(k, key) for k in (TOOL, CALL, KEY) for key in self._items(k)]
            return [item for item in order if item in self.marks]
        if self.shown is not None and self.shown[1] in self._items(self.shown[0]):
            return [self.shown]
        return []

    def _begin(self) -> list[Item] | None:
        items = self.targets()
        if not items:
            self.notify("nothing selected: pick a row (space marks several)", title="Review", severity="warning")
            return None
        return items

    def _describe(self, item: Item) -> Text:
        variables = self.app.theme_variables
        kind, key = item
        if kind == TOOL:
            rec = self.tools[key]
            out = Text.assemble("tool ", (rec.id, Style(bold=True)), "  ", badge(rec.findings, rec.score, variables))
            out.append(f"  definition {short_hash(rec.def_hash)}", theme_colour(variables, "foreground-muted"))
            if not rec.verified:
                out.append("  unsigned", theme_colour(variables, "warning"))
            return out
        if kind == CALL:
            call = self.calls[key]
            return Text.assemble(
                f"call {key}: ",
                (self._agent_name(call.agent_id), Style(bold=True)),
                f" → {call.tool_id}  sha256 ",
                (short_hash(call.arguments_sha256), theme_colour(variables, "accent")),
            )
        change = self.keys[key]
        return Text(
            f"key change {key}: {short_fingerprint(change.old_fingerprint)} → {short_fingerprint(change.new_fingerprint)}"
        )

    def _body(self, items: list[Item], lead: str, *, single_detail: bool = False) -> Text:
        variables = self.app.theme_variables
        out = Text(lead + "\n\n")
        if single_detail and len(items) == 1 and items[0][0] in (CALL, KEY):
            kind, key = items[0]
            if kind == CALL:
                call = self.calls[key]
                out.append_text(
                    call_text(
                        call, agent_name=self._agent_name(call.agent_id), now=self.console.now(), variables=variables
                    )
                )
            else:
                out.append_text(key_change_text(self.keys[key], variables))
            return out
        for index, item in enumerate(items[:12]):
            out.append("• ")
            out.append_text(self._describe(item))
            if index < len(items) - 1:
                out.append("\n")
        if len(items) > 12:
            out.append(f"\n… and {len(items) - 12} more")
        risky = [
            self.tools[k]
            for kind, k in items
            if kind == TOOL and severity_rank(max_severity(self.tools[k].findings)) >= 3
        ]
        if risky:
            out.append(
                f"\n\n{len(risky)} tool{'s have' if len(risky) != 1 else ' has'} High or Critical findings: "
                "read them (and the highlighted definition) first.",
                theme_colour(variables, "error") + Style(bold=True),
            )
        return out

    def action_approve(self) -> None:
        items = self._begin()
        if items:
            self._approve(items)

    @work(group="tools-decide", exclusive=True)
    async def _approve(self, items: list[Item]) -> None:
        tools = [k for kind, k in items if kind == TOOL]
        # bind every approval to what the operator was shown: the definition hash and the arguments hash
        shown = {k: self.tools[k].def_hash for k in tools}
        shas = {k: self.calls[k].arguments_sha256 for kind, k in items if kind == CALL}
        what = "these items" if len(items) > 1 else "this"
        danger = any(severity_rank(max_severity(self.tools[k].findings)) >= 3 for k in tools) or any(
            kind == KEY for kind, _ in items
        )
        decision = await self.app.push_screen_wait(
            DecisionDialog(
                f"Approve {len(items)} item{'s' if len(items) != 1 else ''}?" if len(items) > 1 else "Approve?",
                self._body(items, f"Approve {what}? Agents may then use it as shown here.", single_detail=True),
                yes="Approve",
                scopes=bool(tools),
                danger=danger,
            )
        )
        if decision is None:
            return

        engine = self.console.engine.tools

        async def approve(kind: str, key: str) -> str:
            if kind == TOOL:
                await engine.approve(
                    key, "approved in the console", expected_hash=shown[key], scope=decision.scope or "always"
                )
                return f"{key} ({decision.scope})"
            if kind == CALL:
                await engine.approve_call(key, shas[key])
                return f"call {key}"
            await engine.accept_key(key)
            return f"new key of {key}"

        await self._apply(items, approve, "approve", "approved")

    def action_reject(self) -> None:
        items = self._begin()
        if items:
            self._reject(items)

    @work(group="tools-decide", exclusive=True)
    async def _reject(self, items: list[Item]) -> None:
        has_tools = any(kind == TOOL for kind, _ in items)
        decision = await self.app.push_screen_wait(
            DecisionDialog(
                f"Reject {len(items)} items?" if len(items) > 1 else "Reject?",
                self._body(
                    items, "Reject (a call is denied, a new key refused, the old pin kept):", single_detail=True
                ),
                yes="Reject",
                reason="required" if has_tools else "optional",
            )
        )
        if decision is None:
            return

        engine = self.console.engine.tools

        async def reject(kind: str, key: str) -> str:
            if kind == TOOL:
                await engine.reject(key, decision.reason)
                return key
            if kind == CALL:
                await engine.deny_call(key, decision.reason)
                return f"call {key}"
            await engine.reject_key(key)
            return f"new key of {key}"

        await self._apply(items, reject, "reject", "rejected")

    def action_defer(self) -> None:
        items = self._begin()
        if not items:
            return
        tools = [item for item in items if item[0] == TOOL]
        if not tools:
            self.notify("only tools can be deferred: a call waits until it expires", title="Review", severity="warning")
            return
        self._defer(tools, len(items) - len(tools))

    @work(group="tools-decide", exclusive=True)
    async def _defer(self, items: list[Item], skipped: int) -> None:
        lead = "Defer: the tools stay waiting (not usable, not rejected), marked as deferred."
        if skipped:
            lead += f" {skipped} marked call(s) or key change(s) are left as they are."
        decision = await self.app.push_screen_wait(
            DecisionDialog(
                f"Defer {len(items)} tools?" if len(items) > 1 else "Defer?",
                self._body(items, lead),
                yes="Defer",
                reason="optional",
                reason_label="Note",
                danger=False,
            )
        )
        if decision is None:
            return

        async def defer(_kind: str, key: str) -> str:
            await self.console.engine.tools.defer(key, decision.reason)
            return key

        await self._apply(items, defer, "defer", "deferred")

    def action_reanalyze(self) -> None:
        items = self._begin()
        if not items:
            return
        tools = [item for item in items if item[0] == TOOL]
        if not tools:
            self.notify("only tools can be analyzed again", title="Review", severity="warning")
            return
        self._reanalyze(tools)

    @work(group="tools-decide", exclusive=True)
    async def _reanalyze(self, items: list[Item]) -> None:
        decision = await self.app.push_screen_wait(
            DecisionDialog(
                "Analyze again?",
                self._body(
                    items, "Run the analyzer again on the definitions served now (findings and score are replaced):"
                ),
                yes="Analyze",
                danger=False,
            )
        )
        if decision is None:
            return

        async def reanalyze(_kind: str, key: str) -> str:
            await self.console.engine.tools.reanalyze(key)
            return key

        await self._apply(items, reanalyze, "analyze", "analyzed again")

    def _servers_text(self, muted: Style) -> Text:
        """The empty queue: which MCP servers there are, and any that failed to start."""
        servers = self.servers
        if not servers:
            return Text(
                "Nothing waits for review, and no MCP server is configured.\n\n"
                "Add [[mcp.servers]] tables (name, command = [...] or url) to runtime_config.toml "
                "in the data dir; examples/runtime_config.toml shows them.",
                style=muted,
            )
        out = Text("Nothing waits for review. f lists every known tool.\n\nMCP servers:\n", style=muted)
        for name in sorted(servers):
            server = servers[name]
            out.append(f"  {name}  ", style=muted)
            if server.error:
                out.append(f"failed: {server.error}\n", style=theme_colour(self.app.theme_variables, "error"))
            else:
                out.append(f"{server.description}\n", style=muted)
        return out

    async def _apply(
        self, items: list[Item], act: Callable[[str, str], Awaitable[str]], verb: str, done_verb: str
    ) -> None:
        """Run one decision over every item; each failure is shown and the others go on."""
        done: list[str] = []
        for kind, key in items:
            try:
                done.append(await act(kind, key))
            except SymbiError as exc:
                self.console.show_error(exc, title=f"Cannot {verb} {key}")
        self._finish(done_verb, done)

    def _finish(self, verb: str, done: list[str]) -> None:
        if done:
            shown = ", ".join(done[:4]) + (f" and {len(done) - 4} more" if len(done) > 4 else "")
            self.notify(f"{verb} {shown}", title="Review", markup=False)
        self.marks.clear()
        self.reload()
        self.run_worker(self.console.refresh_review(), group="review-count", exclusive=True)


__all__ = ["Decision", "ToolsScreen"]
