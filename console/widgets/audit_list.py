"""A virtual list of audit events (Textual's line API, in the manner of toolong's log view).

:class:`AuditList` draws only the rows on screen. Each row comes from an
:class:`console.audit_window.AuditWindow`; a row whose page is not loaded yet
is drawn as a placeholder and its page is fetched by a worker, which posts
:class:`AuditList.PageLoaded` back. So the list costs the same with 100 or
1,000,000 events. The first line is a fixed column header.

Keys (the list's own, like a DataTable's): up/down, page up/down,
home/end (g/G). The cursor is a row index; :class:`AuditList.Highlighted`
is posted when it moves (or when the row under it arrives).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual import events, work
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.audit_window import AuditWindow, PageQuery
from console.format import theme_colour
from engine.api import AuditFilter, AuditRecord
from engine.errors import SymbiError

Fetch = Callable[..., Awaitable[list[AuditRecord]]]

DECISION_COLOURS = {
    "allow": "success",
    "deny": "error",
    "error": "error",
    "pending": "warning",
}


def row_time(ts: float) -> str:
    """Local ``MM-DD HH:MM:SS`` of an event."""
    return time.strftime("%m-%d %H:%M:%S", time.localtime(ts))


def layout(width: int, seq_digits: int) -> list[tuple[str, int]]:
    """Column (name, width) pairs that fit ``width``; the resource column takes the rest."""
    if width < 100:  # narrow: time of day only, shorter agent names
        cols = [("seq", max(3, seq_digits)), ("clock", 8), ("type", 16), ("decision", 8), ("agent", 10)]
    else:
        cols = [("seq", max(3, seq_digits)), ("time", 14), ("type", 18), ("decision", 8), ("agent", 14)]
    if width >= 110:
        cols.append(("action", 16))
    if width >= 140:
        cols.append(("actor", 14))
    used = sum(w for _, w in cols) + len(cols)  # one space after each column
    cols.append(("resource", max(8, width - used - 1)))
    return cols


HEADINGS = {
    "seq": "Seq",
    "time": "Time",
    "clock": "Time",
    "type": "Type",
    "decision": "Decision",
    "agent": "Agent",
    "action": "Action",
    "actor": "Actor",
    "resource": "Resource",
}


class AuditList(ScrollView, can_focus=True):
    """Rows of an :class:`AuditWindow`, fetched page by page."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "audit-list--header",
        "audit-list--cursor",
        "audit-list--muted",
    }

    DEFAULT_CSS = """
    AuditList { background: $surface; overflow-x: hidden; }
    AuditList > .audit-list--header { color: $primary; text-style: bold; }
    AuditList > .audit-list--cursor { background: $block-cursor-blurred-background; }
    AuditList:focus > .audit-list--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    AuditList > .audit-list--muted { color: $foreground-muted; }
    """

    BINDINGS = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, init=False)

    class Highlighted(Message):
        """The cursor moved to ``row`` (``record`` is None while its page loads)."""

        def __init__(self, row: int, record: AuditRecord | None) -> None:
            super().__init__()
            self.row = row
            self.record = record

    class PageLoaded(Message):
        def __init__(self, query: PageQuery, records: list[AuditRecord]) -> None:
            super().__init__()
            self.query = query
            self.records = records

    class LoadFailed(Message):
        """A page could not be read (shown by the screen)."""

        def __init__(self, error: SymbiError) -> None:
            super().__init__()
            self.error = error

    def __init__(
        self,
        fetch: Fetch,
        *,
        agent_name: Callable[[str], str] | None = None,
        resource_text: Callable[[str], str] | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.window = AuditWindow()
        self._fetch = fetch
        self._agent_name = agent_name or (lambda a: a)
        self._resource_text = resource_text or (lambda r: r)
        self._pending: set[tuple[int, int]] = set()  # (generation, page) being fetched
        self._wanted: list[int] = []
        self._fetch_scheduled = False
        self._lines: LRUCache[tuple[Any, ...], Strip] = LRUCache(1024)
        self.fetches = 0  # queries run (for tests and the curious)

    # -- the view ------------------------------------------------------------------

    def show(self, flt: AuditFilter, total: int, upper: int, cursor: int) -> None:
        """Show a new view (the screen counted it) with the cursor on ``cursor``."""
        self.window.reset(flt, total, upper)
        self._pending.clear()
        self._lines.clear()
        self._resize_virtual()
        self.cursor = max(0, min(cursor, total - 1))

    def append(self, records: list[AuditRecord], *, follow: bool) -> int:
        """Live tail: new events at the end; ``follow`` keeps the cursor on the newest."""
        added = self.window.append(records)
        if added:
            self._lines.clear()
            self._resize_virtual()
            if follow:
                self.cursor = self.window.total - 1
            else:
                self.refresh()
        return added

    @property
    def record(self) -> AuditRecord | None:
        """The event under the cursor (None if the view is empty or its page is loading)."""
        return self.window.record(self.cursor)

    def _resize_virtual(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, self.window.total + 1)
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._lines.clear()
        self._resize_virtual()
        self._scroll_to_cursor()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()

    # -- cursor ----------------------------------------------------------------------

    @property
    def _rows_visible(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def watch_cursor(self, old: int, new: int) -> None:
        total = self.window.total
        if total and not 0 <= new < total:
            self.cursor = max(0, min(new, total - 1))
            return
        self._scroll_to_cursor()
        self.refresh()
        self.post_message(self.Highlighted(new, self.window.record(new)))

    def _scroll_to_cursor(self) -> None:
        row, visible = self.cursor, self._rows_visible
        top = round(self.scroll_y)
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True, force=True)
        elif row >= top + visible:
            # force: the scrollbars may not be laid out yet for a view that just grew
            self.scroll_to(y=row - visible + 1, animate=False, immediate=True, force=True)

    def action_move(self, delta: int) -> None:
        if self.window.total:
            self.cursor = max(0, min(self.window.total - 1, self.cursor + delta))

    def action_page(self, direction: int) -> None:
        self.action_move(direction * self._rows_visible)

    def action_first(self) -> None:
        if self.window.total:
            self.cursor = 0

    def action_last(self) -> None:
        if self.window.total:
            self.cursor = self.window.total - 1

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        row = round(self.scroll_y) + offset.y - 1
        if 0 <= row < self.window.total:
            self.cursor = row

    # -- rendering -------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            return self._header(width, base)
        row = round(self.scroll_y) + y - 1
        window = self.window
        if row >= window.total:
            return Strip.blank(width, base)
        record = window.record(row)
        if record is None:
            self._want(row)
            muted = self.get_component_rich_style("audit-list--muted")
            return self._placeholder(width, base + muted)
        selected = row == self.cursor
        key = (record.seq, width, selected, self.has_focus, self.app.theme, window.generation)
        cached = self._lines.get(key)
        if cached is None:
            cached = self._row(record, width, base, selected)
            self._lines[key] = cached
        return cached

    def _header(self, width: int, base: Style) -> Strip:
        style = base + self.get_component_rich_style("audit-list--header")
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        for name, w in layout(width, len(str(self.window.upper))):
            heading = HEADINGS[name]
            text.append((heading.rjust(w) if name == "seq" else heading.ljust(w))[:w] + " ")
        text.truncate(width, pad=True)
        return Strip(text.render(self.app.console), width).apply_style(style)

    def _placeholder(self, width: int, style: Style) -> Strip:
        text = Text("  …", end="")
        text.truncate(width, pad=True)
        return Strip(text.render(self.app.console), width).apply_style(style)

    def _row(self, record: AuditRecord, width: int, base: Style, selected: bool) -> Strip:
        variables: Mapping[str, str] = self.app.theme_variables
        muted = theme_colour(variables, "foreground-muted")
        values = {
            "seq": (str(record.seq), muted),
            "time": (row_time(record.ts), muted),
            "clock": (row_time(record.ts)[6:], muted),
            "type": (record.type, Style()),
            "decision": (record.decision, theme_colour(variables, DECISION_COLOURS.get(record.decision, ""))),
            "agent": (self._agent_name(record.agent) if record.agent else "-", Style()),
            "action": (record.action or "-", Style()),
            "actor": (record.actor, muted),
            "resource": (self._resource_text(record.resource) or "-", Style()),
        }
        text = Text(no_wrap=True, end="")
        for name, w in layout(width, len(str(self.window.upper))):
            value, style = values[name]
            value = value.replace("\n", " ")
            if len(value) > w:
                value = value[: max(0, w - 1)] + "…"
            text.append(value.rjust(w) if name == "seq" else value.ljust(w), style)
            text.append(" ")
        text.truncate(width, pad=True)
        strip = Strip(text.render(self.app.console), width)
        if selected:
            # the cursor's colours win over the columns' own
            cursor = self.get_component_rich_style("audit-list--cursor")
            return Strip([seg._replace(style=(seg.style or Style()) + cursor) for seg in strip], width).apply_style(
                base
            )
        return strip.apply_style(base)

    # -- fetching ------------------------------------------------------------------------

    def _want(self, row: int) -> None:
        page = self.window.page_of(row)
        key = (self.window.generation, page)
        if key in self._pending or page in self._wanted:
            return
        self._wanted.append(page)
        if not self._fetch_scheduled:
            self._fetch_scheduled = True
            self.call_after_refresh(self._start_fetch)

    def _start_fetch(self) -> None:
        self._fetch_scheduled = False
        window = self.window
        # fetch what is visible first, then one page either side (smooth paging)
        top = round(self.scroll_y)
        wanted = list(self._wanted)
        self._wanted.clear()
        extra = window.missing([max(0, top - window.page_size), top + self._rows_visible + window.page_size])
        pages = [p for p in wanted + extra if (window.generation, p) not in self._pending]
        pages = list(dict.fromkeys(pages))
        if not pages:
            return
        for page in pages:
            self._pending.add((window.generation, page))
        self._load(pages)

    @work(group="audit-pages")
    async def _load(self, pages: list[int]) -> None:
        """Worker: fetch pages in order (each plan uses what the previous one cached)."""
        window = self.window
        for page in pages:
            if not self._near_view(page) or page >= window.pages:
                self._pending.discard((window.generation, page))  # scrolled past meanwhile
                continue
            query = window.plan(page)
            try:
                records = await self._fetch(window.flt, **query.kwargs)
            except SymbiError as exc:
                self._pending.discard((query.generation, page))
                self.post_message(self.LoadFailed(exc))
                return
            self.fetches += 1
            self.post_message(self.PageLoaded(query, records))

    def _near_view(self, page: int) -> bool:
        size = self.window.page_size
        top = round(self.scroll_y)
        first, last = page * size, (page + 1) * size - 1
        visible = last >= top - size and first <= top + self._rows_visible + size
        return visible or page == self.window.page_of(self.cursor)

    def on_audit_list_page_loaded(self, message: PageLoaded) -> None:
        message.stop()
        self._pending.discard((message.query.generation, message.query.page))
        if self.window.store(message.query, message.records):
            self.refresh()
            page = self.window.page_of(self.cursor)
            if page == message.query.page:
                self.post_message(self.Highlighted(self.cursor, self.window.record(self.cursor)))
