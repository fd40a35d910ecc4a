"""The agents table: live rows, ``/`` filter, ``s`` sort, lifecycle actions, Enter to drill in.

Rows are keyed by agent id and updated cell by cell from engine events; the
table is rebuilt only when the user changes the filter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.app import ComposeResult
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist

from console.actions import AGENTS, bindings_for
from console.format import duration, state_text
from console.model import LIVE_STATES
from console.screens.agent_ops import AgentOpsMixin
from console.screens.base import ConsoleScreen
from engine.api import AgentId, AgentInfo, AgentState
from engine.events import AgentCreated, AgentDeleted, AgentStateChanged, Event, ResourceSample

COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "Name"),
    ("state", "State"),
    ("priority", "Priority"),
    ("tier", "Tier"),
    ("uptime", "Uptime"),
    ("cpu", "CPU%"),
    ("mem", "Mem MB"),
)
# Sort orders ``s`` cycles through: (label, column, newest/biggest first).
SORTS: tuple[tuple[str, str, bool], ...] = (
    ("created", "", False),
    ("name", "name", False),
    ("state", "state", False),
    ("priority", "priority", True),
    ("tier", "tier", False),
    ("uptime", "uptime", True),
    ("cpu", "cpu", True),
    ("mem", "mem", True),
)
_STATE_ORDER = {s: i for i, s in enumerate(AgentState)}


class AgentsScreen(AgentOpsMixin, ConsoleScreen):
    """Screen 2: every agent the engine manages."""

    SCOPE = AGENTS
    BINDINGS = bindings_for(AGENTS)

    def __init__(self) -> None:
        super().__init__(id="agents")
        self.filter_text = ""
        self.sort_index = 0

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="agents-table", cursor_type="row", classes="panel")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        self._show_titles()

    # -- selection ---------------------------------------------------------------------

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#agents-table", DataTable)

    def selected_agent(self) -> AgentInfo | None:
        table = self.table
        if table.row_count == 0:
            return None
        try:
            row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        except CellDoesNotExist:
            return None
        return self.console.model.agents.get(str(row_key.value))

    def select(self, agent_id: AgentId) -> None:
        try:
            self.table.move_cursor(row=self.table.get_row_index(agent_id))
        except RowDoesNotExist:
            pass

    # -- rows ----------------------------------------------------------------------------

    def _matches(self, info: AgentInfo) -> bool:
        needle = self.filter_text.strip().lower()
        return not needle or needle in info.name.lower() or needle in info.state.value.lower()

    def _cells(self, info: AgentInfo) -> dict[str, Any]:
        history = self.console.model.usage.get(info.id)
        sample = history.latest if history is not None and info.state in LIVE_STATES else None
        now = self.console.now()
        return {
            "name": info.name,
            "state": state_text(info.state, self.app.theme_variables),
            "priority": info.priority.label,
            "tier": info.tier.value,
            "uptime": duration(info.uptime(now)) if info.started_at is not None else "-",
            "cpu": f"{sample.cpu_percent:5.1f}" if sample else "-",
            "mem": f"{sample.rss_bytes / 1_048_576:6.1f}" if sample else "-",
        }

    def _add_row(self, info: AgentInfo) -> None:
        cells = self._cells(info)
        self.table.add_row(*(cells[key] for key, _ in COLUMNS), key=info.id)

    def _update_row(self, info: AgentInfo, columns: Iterable[str]) -> None:
        cells = self._cells(info)
        table = self.table
        for column in columns:
            try:
                table.update_cell(info.id, column, cells[column], update_width=True)
            except (CellDoesNotExist, RowDoesNotExist, KeyError):
                return

    def refresh_view(self) -> None:
        table = self.table
        selected = self.selected_agent()
        table.clear()
        for info in sorted(self.console.model.agents.values(), key=lambda a: a.created_at):
            if self._matches(info):
                self._add_row(info)
        self._sort()
        if selected is not None:
            self.select(selected.id)
        self._show_titles()

    def engine_update(self, events: list[Event]) -> None:
        model = self.console.model
        table = self.table
        resort = False
        for event in events:
            if isinstance(event, AgentDeleted):
                if event.agent_id in table.rows:
                    table.remove_row(event.agent_id)
                continue
            if not isinstance(event, (AgentCreated, AgentStateChanged, ResourceSample)):
                continue
            info = model.agents.get(event.agent_id)
            if info is None:
                continue
            present = event.agent_id in table.rows
            if not self._matches(info):
                if present:  # a state filter no longer matches
                    table.remove_row(info.id)
                continue
            if not present:
                self._add_row(info)
                resort = True
            elif isinstance(event, ResourceSample):
                self._update_row(info, ("cpu", "mem"))
                resort = resort or SORTS[self.sort_index][1] in ("cpu", "mem")
            else:
                self._update_row(info, ("state", "uptime", "cpu", "mem"))
                resort = True
        if resort:
            selected = self.selected_agent()
            self._sort()
            if selected is not None:
                self.select(selected.id)
        self._show_titles()

    def tick(self) -> None:
        for info in self.console.model.agents.values():
            if info.state.is_active and info.id in self.table.rows:
                self._update_row(info, ("uptime",))

    # -- sorting and filtering ---------------------------------------------------------------

    def _sort_key(self, name: str) -> Any:
        info = self.console.model.by_name(name)
        if info is None:
            return (0,)
        column = SORTS[self.sort_index][1]
        history = self.console.model.usage.get(info.id)
        sample = history.latest if history is not None and info.state in LIVE_STATES else None
        if column == "name":
            return (info.name.lower(),)
        if column == "state":
            return (_STATE_ORDER[info.state], info.name)
        if column == "priority":
            return (int(info.priority), info.created_at)
        if column == "tier":
            return (info.tier.value, info.name)
        if column == "uptime":
            return (info.uptime(self.console.now()) or -1.0, info.name)
        if column == "cpu":
            return (sample.cpu_percent if sample else -1.0, info.name)
        if column == "mem":
            return (sample.rss_bytes if sample else -1, info.name)
        return (info.created_at, info.name)

    def _sort(self) -> None:
        _, _, reverse = SORTS[self.sort_index]
        self.table.sort("name", key=self._sort_key, reverse=reverse)

    def _show_titles(self) -> None:
        table = self.table
        total = len(self.console.model.agents)
        shown = table.row_count
        title = f"Agents ({shown} of {total})" if self.filter_text else f"Agents ({total})"
        table.border_title = title
        label, _, reverse = SORTS[self.sort_index]
        subtitle = f"sort: {label} {'▼' if reverse else '▲'}"
        if total == 0:
            subtitle = "no agents yet: n creates one"
        if self.filter_text:
            subtitle = f"filter: {self.filter_text} · {subtitle}"
        table.border_subtitle = subtitle

    def action_cycle_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        selected = self.selected_agent()
        self._sort()
        if selected is not None:
            self.select(selected.id)
        self._show_titles()

    def action_filter(self) -> None:
        self.open_prompt("filter", self.filter_text)

    def prompt_changed(self, mode: str, value: str) -> None:
        if mode == "filter":
            self.filter_text = value
            self.refresh_view()

    def prompt_submitted(self, mode: str, value: str) -> None:
        if mode == "filter":
            self.filter_text = value
            self.refresh_view()

    def on_prompt_bar_closed(self, event: Any) -> None:
        if event.mode == "filter" and event.cancelled:
            self.filter_text = ""
            self.refresh_view()
        # (the base class's handler runs after this one and restores focus)

    # -- drill in ---------------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_agent()

    def action_open_agent(self) -> None:
        info = self.selected_agent()
        if info is None:
            self.notify("No agent selected", severity="warning")
            return
        self.console.open_agent(info.id)
