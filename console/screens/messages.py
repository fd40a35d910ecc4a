"""Messages: what agents sent and received over the secure bus, with the
verification status of each delivery, and the dead-letter queue with the
reason each message was refused.

Read through ``engine.messages`` (the bus.send / bus.deliver / bus.reject
records of the audit trail: metadata only, never payloads; and the bus's
dead-letter store), in a worker;
an agent filter narrows both to one agent, by name.
"""

from __future__ import annotations

import time
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from console.screens.base import ConsoleScreen
from engine.api import AuditRecord, DeadLetter
from engine.errors import SymbiError
from engine.events import Event

ROWS = 200


def _hms(ts: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) if ts else "-"


class MessagesScreen(ConsoleScreen):
    SCOPE = "messages"
    DEFAULT_CSS = """
    MessagesScreen #messages-filter { height: 3; }
    MessagesScreen .panel-title { height: 1; padding: 0 1; text-style: bold; }
    MessagesScreen #traffic { height: 2fr; }
    MessagesScreen #dead { height: 1fr; }
    """

    def compose_body(self) -> ComposeResult:
        with Vertical():
            yield Input(placeholder="filter by agent name (empty: all agents)", id="messages-filter")
            yield Static("Traffic (from the audit trail: metadata only)", classes="panel-title")
            yield DataTable(id="traffic", cursor_type="row", zebra_stripes=True)
            yield Static("Dead letters (refused or undeliverable, with the reason)", classes="panel-title")
            yield DataTable(id="dead", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#traffic", DataTable).add_columns(
            "Time", "Event", "From", "To", "Bytes", "Verification", "Decision"
        )
        self.query_one("#dead", DataTable).add_columns("Time", "Code", "From", "To", "Stage", "Reason")

    def refresh_view(self) -> None:
        self.reload()

    def tick(self) -> None:
        self.reload()

    def engine_update(self, events: list[Event]) -> None:
        pass

    def on_input_changed(self, event: Input.Changed) -> None:
        self.reload()

    def _names(self) -> dict[str, str]:
        return {agent_id: info.name for agent_id, info in self.console.model.agents.items()}

    @work(exclusive=True, group="messages")
    async def reload(self) -> None:
        messages = self.console.engine.messages
        wanted = self.query_one("#messages-filter", Input).value.strip()
        names = self._names()
        agent_id: str | None = None
        if wanted:
            agent_id = next((i for i, n in names.items() if n == wanted), None)
            if agent_id is None:
                self._fill([], [], names)
                return
        try:
            records = await messages.recent(limit=ROWS)
            dead = await messages.dead_letters(agent_id, limit=ROWS)
        except SymbiError as exc:
            self.console.show_error(exc, title="Messages")
            return
        if agent_id is not None:
            records = [
                r
                for r in records
                if agent_id in (r.agent, (r.details or {}).get("recipient"), (r.details or {}).get("sender"))
            ]
        self._fill(records, list(reversed(dead)), names)

    def _fill(self, records: list[AuditRecord], dead: list[DeadLetter], names: dict[str, str]) -> None:
        def who(value: Any) -> str:
            if not value:
                return "-"
            return names.get(str(value), str(value)[:12])

        traffic = self.query_one("#traffic", DataTable)
        traffic.clear()
        for r in records:
            d = r.details or {}
            target = (
                who(d.get("recipient")) if d.get("recipient") else (f"topic {d['topic']}" if d.get("topic") else "-")
            )
            traffic.add_row(
                _hms(r.ts),
                r.type.removeprefix("bus."),
                who(d.get("sender") or r.agent),
                target,
                str(d.get("size", "-")),
                str(d.get("verification", "-")),
                r.decision,
            )
        dead_table = self.query_one("#dead", DataTable)
        dead_table.clear()
        for letter in dead:
            target = who(letter.recipient) if letter.recipient else (f"topic {letter.topic}" if letter.topic else "-")
            dead_table.add_row(_hms(letter.at), letter.code, who(letter.sender), target, letter.stage, letter.reason)
