"""Screen 4: the audit browser — filter, read, live-tail, verify and export the audit trail.

The event list is an :class:`console.widgets.AuditList` (a virtual list that
fetches pages as they scroll into view), so the screen stays fast over
100,000+ events. Above it, a filter bar (type, agent, decision, text; the
text may hold ``since:10m`` / ``until:…``); below it, the selected event's
full JSON. Everything that reads the database runs in workers that post
messages back: counting a view, fetching pages, following new events
(``f``), verifying the chain (``v``) and exporting the filtered view (``e``).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.timer import Timer
from textual.widgets import Input, Select, Static, TextArea

from console.actions import AUDIT, bindings_for
from console.audit_window import locate
from console.dialogs import ConfirmDialog
from console.format import theme_colour
from console.screens.base import ConsoleScreen
from console.widgets import AuditList
from engine.api import DECISIONS, EVENT_TYPES, AuditFilter, AuditRecord, VerifyReport
from engine.errors import SymbiError

FILTER_DELAY = 0.3  # seconds of quiet typing before a filter applies
TAIL_FLUSH = 0.1  # live tail: new events are shown in batches this often
TYPE_SUGGESTIONS = sorted({*EVENT_TYPES, *(t.split(".")[0] + ".*" for t in EVENT_TYPES)}, key=len)


class FilterInput(Input):
    """A filter field; Escape goes back to the list."""

    BINDINGS = [Binding("escape", "leave", "Back to the list", show=False)]

    def action_leave(self) -> None:
        self.screen.query_one(AuditList).focus()


def split_text(text: str) -> tuple[str, str | None, str | None]:
    """``"deny since:1h until:10m"`` -> ``("deny", "1h", "10m")``."""
    words, since, until = [], None, None
    for word in text.split():
        low = word.lower()
        if low.startswith("since:") and len(word) > 6:
            since = word[6:]
        elif low.startswith("until:") and len(word) > 6:
            until = word[6:]
        else:
            words.append(word)
    return " ".join(words), since, until


def short_id(value: str) -> str:
    """Long ids (uuids) shortened for the list: ``3f2c9a1b…``."""
    return value[:8] + "…" if len(value) > 20 else value


class AuditScreen(ConsoleScreen):
    """Screen 4: the tamper-evident audit trail."""

    SCOPE = AUDIT
    BINDINGS = bindings_for(AUDIT)
    AUTO_FOCUS = "#audit-list"
    ALLOW_IN_MAXIMIZED_VIEW = "EngineBar, Footer"

    class Loaded(Message):
        def __init__(self, flt: AuditFilter, total: int, upper: int, cursor: int, everything: int) -> None:
            super().__init__()
            self.flt = flt
            self.total = total
            self.upper = upper
            self.cursor = cursor
            self.everything = everything

    class TailBatch(Message):
        def __init__(self, records: list[AuditRecord], generation: int) -> None:
            super().__init__()
            self.records = records
            self.generation = generation

    class Verified(Message):
        def __init__(self, report: VerifyReport) -> None:
            super().__init__()
            self.report = report

    class Failed(Message):
        def __init__(self, error: SymbiError, title: str) -> None:
            super().__init__()
            self.error = error
            self.title = title

    def __init__(self) -> None:
        super().__init__(id="audit")
        self.tailing = False
        self.everything = 0  # events in the trail (unfiltered) when the view was loaded
        self.last_report: VerifyReport | None = None
        self.status_text = ""  # the line above the list (verify result, filter errors) and its colour
        self.status_colour = ""
        self._filter_timer: Timer | None = None
        self._loaded_once = False
        self._jump_to: int | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="audit-filters"):
            yield FilterInput(
                placeholder="type: agent.*",
                id="af-type",
                compact=True,
                suggester=SuggestFromList(TYPE_SUGGESTIONS, case_sensitive=False),
            )
            yield FilterInput(placeholder="agent", id="af-agent", compact=True)
            yield Select([(d, d) for d in DECISIONS], prompt="decision", id="af-decision", compact=True)
            yield FilterInput(placeholder="text · since:1h until:10m", id="af-text", compact=True)
        yield Static(id="audit-status", markup=False)
        yield AuditList(
            self._query,
            agent_name=self._agent_name,
            resource_text=self.console.display_path,
            id="audit-list",
            classes="panel",
        )
        yield TextArea(
            "",
            language="json",
            read_only=True,
            show_cursor=False,
            soft_wrap=True,
            id="audit-detail",
            classes="panel",
        )

    def on_mount(self) -> None:
        self.query_one("#audit-detail", TextArea).border_title = "Event"
        self._show_titles()

    # -- engine access (everything through engine.audit) -----------------------------------

    async def _query(
        self,
        flt: AuditFilter,
        *,
        limit: int,
        offset: int = 0,
        after_seq: int | None = None,
        before_seq: int | None = None,
        newest_first: bool = False,
    ) -> list[AuditRecord]:
        return await self.console.engine.audit.query(
            flt, limit=limit, offset=offset, after_seq=after_seq, before_seq=before_seq, newest_first=newest_first
        )

    def _agent_name(self, agent: str) -> str:
        info = self.console.model.agents.get(agent)
        return info.name if info is not None else short_id(agent)

    @property
    def audit_list(self) -> AuditList:
        return self.query_one("#audit-list", AuditList)

    # -- loading a view --------------------------------------------------------------------

    def on_screen_resume(self) -> None:
        # (ConsoleScreen.on_screen_resume runs too: Textual calls the handler of every class)
        self.reload(keep=self._loaded_once)

    def on_screen_suspend(self) -> None:
        self.workers.cancel_group(self, "audit-tail")

    def build_filter(self) -> AuditFilter:
        """The filter bar as an :class:`AuditFilter`; ``AUDIT_003`` for bad input."""
        types = self.query_one("#af-type", Input).value.strip()
        agent = self.query_one("#af-agent", Input).value.strip()
        if agent:
            info = self.console.model.by_name(agent)
            agent = info.id if info is not None else agent
        decision = self.query_one("#af-decision", Select).value
        text, since, until = split_text(self.query_one("#af-text", Input).value)
        return AuditFilter.build(
            types=types or None,
            agent=agent or None,
            decision=decision if isinstance(decision, str) else None,
            text=text or None,
            since=since,
            until=until,
            now=self.console.now(),
        )

    def reload(self, *, keep: bool = True, jump_to: int | None = None) -> None:
        """Count the view again; keep the selected event (or the nearest after it) if ``keep``."""
        try:
            flt = self.build_filter()
        except SymbiError as exc:
            self._status(f"{exc.code.value}: {exc.message}" + (f" ({exc.offending})" if exc.offending else ""), "error")
            return
        if self.last_report is None:
            self._status("")
        record = self.audit_list.record
        target = jump_to if jump_to is not None else (record.seq if keep and record is not None else None)
        self._load_view(flt, target)

    @work(group="audit-view", exclusive=True)
    async def _load_view(self, flt: AuditFilter, target: int | None) -> None:
        audit = self.console.engine.audit
        try:
            total = await audit.count(flt)
            everything = total if flt == AuditFilter() else await audit.count()
            upper = 0
            if total:
                last = await audit.query(flt, limit=1, newest_first=True)
                upper = last[0].seq if last else 0
            cursor = max(0, total - 1)
            if target is not None and total:
                cursor = min(total - 1, await locate(self._query, flt, total, upper, target))
        except SymbiError as exc:
            self.post_message(self.Failed(exc, "Audit"))
            return
        self.post_message(self.Loaded(flt, total, upper, cursor, everything))

    def on_audit_screen_loaded(self, message: Loaded) -> None:
        self._loaded_once = True
        self.everything = message.everything
        self.audit_list.show(message.flt, message.total, message.upper, message.cursor)
        self._show_titles()
        if self.tailing:
            self._start_tail()

    def on_audit_screen_failed(self, message: Failed) -> None:
        self.console.show_error(message.error, title=message.title)
        self._status(f"{message.error.code.value}: {message.error.message}", "error")

    def on_audit_list_load_failed(self, message: AuditList.LoadFailed) -> None:
        self.console.show_error(message.error, title="Audit")

    # -- the filter bar ------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        if not isinstance(event.input, FilterInput):
            return
        event.stop()
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._filter_timer = self.set_timer(FILTER_DELAY, self.reload, name="audit-filter")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if not isinstance(event.input, FilterInput):
            return
        event.stop()
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self.reload()
        self.audit_list.focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id == "af-decision" and self._loaded_once:
            self.reload()

    def action_filter(self) -> None:
        self.query_one("#af-text", Input).focus()

    def action_clear_filter(self) -> None:
        if not self.filtered:
            return
        for field_id in ("#af-type", "#af-agent", "#af-text"):
            field = self.query_one(field_id, Input)
            with field.prevent(Input.Changed):
                field.value = ""
        decision = self.query_one("#af-decision", Select)
        with decision.prevent(Select.Changed):
            decision.clear()
        self.reload()

    @property
    def filtered(self) -> bool:
        return self.audit_list.window.flt != AuditFilter()

    # -- the list and the detail pane -------------------------------------------------------

    def on_audit_list_highlighted(self, message: AuditList.Highlighted) -> None:
        detail = self.query_one("#audit-detail", TextArea)
        record = message.record
        if record is None:
            detail.border_title = "Event"
            detail.load_text("" if self.audit_list.window.total == 0 else "loading…")
            return
        detail.border_title = f"Event #{record.seq}"
        detail.load_text(json.dumps(record.to_dict(), indent=2, ensure_ascii=False))

    def action_detail(self) -> None:
        detail = self.query_one("#audit-detail", TextArea)
        if self.maximized is detail:
            self.minimize()
            self.audit_list.focus()
            return
        self.maximize(detail, container=False)
        detail.focus()

    def action_refresh(self) -> None:
        self.reload()

    def _show_titles(self) -> None:
        window = self.audit_list.window
        if self.filtered:
            title = f"Audit · {window.total:,} of {self.everything:,} events"
        else:
            title = f"Audit · {window.total:,} events"
        self.audit_list.border_title = title
        self.audit_list.border_subtitle = "tail: on (f stops)" if self.tailing else "f: live tail · v: verify"

    def _status(self, text: str, colour: str = "") -> None:
        self.status_text, self.status_colour = text, colour
        status = self.query_one("#audit-status", Static)
        status.update(Text(text, style=theme_colour(self.app.theme_variables, colour)) if colour else text)
        status.set_class(bool(text), "-shown")

    # -- live tail ---------------------------------------------------------------------------

    def action_toggle_tail(self) -> None:
        self.tailing = not self.tailing
        if self.tailing:
            self.audit_list.action_last()
            self._start_tail()
        else:
            self.workers.cancel_group(self, "audit-tail")
        self._show_titles()

    def _start_tail(self) -> None:
        window = self.audit_list.window
        self._tail(window.flt, window.upper, window.generation)

    @work(group="audit-tail", exclusive=True)
    async def _tail(self, flt: AuditFilter, after_seq: int, generation: int) -> None:
        """Worker: follow new events, posting them in batches every ``TAIL_FLUSH`` s. When the
        tail stops (``f``, a new view, leaving the screen) the engine's follow stream is closed."""
        buffer: list[AuditRecord] = []
        stream = self.console.engine.audit.follow(flt, after_seq=after_seq)

        async def pump() -> None:
            async for record in stream:
                buffer.append(record)

        task = asyncio.create_task(pump(), name="audit-follow")
        try:
            while not task.done():
                await asyncio.sleep(TAIL_FLUSH)
                if buffer:
                    batch = buffer[:]
                    buffer.clear()
                    self.post_message(self.TailBatch(batch, generation))
            exc = task.exception()
            if isinstance(exc, SymbiError):
                self.post_message(self.Failed(exc, "Live tail"))
        finally:
            task.cancel()
            await asyncio.wait([task])  # let the pump leave the stream before it is closed
            await stream.aclose()

    def on_audit_screen_tail_batch(self, message: TailBatch) -> None:
        audit_list = self.audit_list
        if not self.tailing or message.generation != audit_list.window.generation:
            return
        if audit_list.append(message.records, follow=True):
            if not self.filtered:
                self.everything = audit_list.window.total
            self._show_titles()

    # -- verify --------------------------------------------------------------------------------

    def action_verify(self) -> None:
        self._status("verifying the audit chain…", "foreground-muted")
        self._verify()

    @work(group="audit-verify", exclusive=True)
    async def _verify(self) -> None:
        try:
            report = await self.console.engine.audit.verify()
        except SymbiError as exc:
            self.post_message(self.Failed(exc, "Verify"))
            return
        self.post_message(self.Verified(report))

    def on_audit_screen_verified(self, message: Verified) -> None:
        report = message.report
        self.last_report = report
        if report.ok:
            text = (
                f"✔ chain intact: {report.events_checked:,} events and {report.checkpoints_checked:,} signed "
                f"checkpoints verified in {report.seconds:.2f}s (head seq {report.last_seq:,})"
            )
            if report.unsigned_tail:
                text += f"; {report.unsigned_tail:,} newest events await the next checkpoint"
            self._status(text, "success")
            self.notify(f"audit chain intact: {report.events_checked:,} events", title="Verify")
            return
        where = f" at seq {report.first_bad_seq:,}" if report.first_bad_seq is not None else ""
        text = f"✘ chain FAILED: {report.problem}{where}: {report.message}"
        self._status(text, "error")
        self.notify(text, title="Verify", severity="error", timeout=10, markup=False)
        if report.first_bad_seq is not None:
            self.reload(jump_to=report.first_bad_seq)

    # -- export --------------------------------------------------------------------------------

    def default_export_path(self) -> Path:
        """``<data dir>/exports/audit-<local time>.jsonl`` (where the engine puts exports)."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.console.now()))
        return Path(self.console.data_dir) / "exports" / f"audit-{stamp}.jsonl"

    def action_export(self) -> None:
        self.open_prompt("export", str(self.default_export_path()))

    def prompt_submitted(self, mode: str, value: str) -> None:
        if mode == "export" and value.strip():
            self._export(Path(value.strip()).expanduser())

    @work(group="audit-export", exclusive=True)
    async def _export(self, path: Path) -> None:
        default_dir = self.default_export_path().parent
        if path.parent == default_dir and not default_dir.exists():
            await asyncio.to_thread(default_dir.mkdir, parents=True, exist_ok=True)
        if path.exists():
            question = f"{path} exists. Replace it with the {self.audit_list.window.total:,} filtered events?"
            if not await self.app.push_screen_wait(ConfirmDialog("Overwrite file?", question, yes="Replace")):
                return
        window = self.audit_list.window
        try:
            done = await self.console.engine.audit.export(window.flt, str(path))
        except SymbiError as exc:
            self.console.show_error(exc, title="Export")
            return
        self.notify(f"exported {done.events:,} events to {done.path}", title="Export", markup=False)
