"""Messages: what agents sent and received over the secure bus, with the
verification status of each delivery, and the dead-letter queue with the
reason each message was refused.

Read from the audit trail (bus.send / bus.deliver / bus.reject records:
metadata only, never payloads) and the bus's dead-letter store, in a worker;
an agent filter narrows both to one agent, by name.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from textual import work
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from console.screens.base import ConsoleScreen
from engine.errors import SymbiError
from engine.events import Event

BUS_TYPES = "bus.send,bus.deliver,bus.reject"
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

    def compose_body(self) -> Iterable:
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
        model = getattr(self.console, "model", None)
        agents = getattr(model, "agents", {}) if model is not None else {}
        return {agent_id: info.name for agent_id, info in agents.items()}

    @work(exclusive=True, group="messages")
    async def reload(self) -> None:
        rt = self.console.runtime
        wanted = self.query_one("#messages-filter", Input).value.strip()
        names = self._names()
        agent_id: str | None = None
        if wanted:
            agent_id = next((i for i, n in names.items() if n == wanted), None)
            if agent_id is None:
                self._fill([], [], names)
                return
        try:
            records = await rt.audit.query(types=BUS_TYPES, limit=ROWS, newest_first=True) if rt.audit else []
        except SymbiError as exc:
            self.console.show_error(exc, title="Messages")
            return
        if agent_id is not None:
            records = [
                r
                for r in records
                if agent_id in (r.agent, (r.details or {}).get("recipient"), (r.details or {}).get("sender"))
            ]
        dead = rt.messages.dead_letters(agent_id, limit=ROWS) if rt.messages is not None else []
        self._fill(records, list(reversed(dead)), names)

    def _fill(self, records: list[Any], dead: list[Any], names: dict[str, str]) -> None:
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
