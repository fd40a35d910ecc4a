"""The dashboard: agents by state, machine and allocation gauges, newest events."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import RichLog, Static

from console.actions import DASHBOARD, bindings_for
from console.format import STATE_COLOURS, clock_time, duration, theme_colour
from console.model import EVENT_LINES, EventLine
from console.screens.base import ConsoleScreen
from console.widgets import Gauge, StateCounts, show_totals
from engine.events import Event


class DashboardScreen(ConsoleScreen):
    """Screen 1: the engine at a glance."""

    SCOPE = DASHBOARD
    BINDINGS = bindings_for(DASHBOARD)

    def __init__(self) -> None:
        super().__init__(id="dashboard")
        self._seen_events = 0

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="dash-top"):
            with Vertical(id="dash-states", classes="panel"):
                yield StateCounts(id="state-counts")
            with Vertical(id="dash-machine", classes="panel"):
                yield Gauge("CPU", label_width=9, text_width=14, id="machine-cpu")
                yield Gauge("Memory", label_width=9, text_width=14, id="machine-mem")
                yield Gauge("Alloc CPU", label_width=9, text_width=14, id="alloc-cpu")
                yield Gauge("Alloc mem", label_width=9, text_width=14, id="alloc-mem")
                yield Static(id="dash-engine", markup=False)
        yield RichLog(id="dash-events", max_lines=EVENT_LINES, wrap=True, min_width=20, markup=False, classes="panel")

    def on_mount(self) -> None:
        self.query_one("#dash-states").border_title = "Agents by state"
        self.query_one("#dash-machine").border_title = "Machine · allocated of total"
        self.query_one("#dash-events").border_title = "Events"

    # -- rendering --------------------------------------------------------------------

    def refresh_view(self) -> None:
        self._show_counts()
        self._show_gauges()
        log = self.query_one("#dash-events", RichLog)
        log.clear()
        self._seen_events = 0
        self._show_new_events()

    def engine_update(self, events: list[Event]) -> None:
        self._show_counts()
        self._show_gauges()
        self._show_new_events()

    def tick(self) -> None:
        self._show_engine_line()

    def _show_counts(self) -> None:
        self.query_one(StateCounts).show(self.console.model.counts())

    def _show_gauges(self) -> None:
        model, metrics = self.console.model, self.console.metrics
        show_totals(self, ("#machine-cpu", "#machine-mem", "#alloc-cpu", "#alloc-mem"), model.machine, metrics)
        self._show_engine_line()

    def _show_engine_line(self) -> None:
        metrics = self.console.metrics
        if metrics is None:
            return
        uptime = self.console.now() - self.console.opened_at
        line = f"up {duration(uptime)} · queued {metrics.scheduler_queued} · running {metrics.scheduler_running}"
        if metrics.events_dropped:
            line += f" · dropped events {metrics.events_dropped}"
        self.query_one("#dash-engine", Static).update(line)

    def _show_new_events(self) -> None:
        model = self.console.model
        new = min(model.event_seq - self._seen_events, len(model.events))
        self._seen_events = model.event_seq
        if new <= 0:
            return
        log = self.query_one("#dash-events", RichLog)
        lines = list(model.events)[-new:]
        for line in lines:
            log.write(self._event_text(line))

    def _event_text(self, line: EventLine) -> Text:
        variables = self.app.theme_variables
        colour = {
            "violation": "error",
            "deleted": "foreground-muted",
            "engine": "accent",
        }.get(line.kind) or (STATE_COLOURS[line.state] if line.state else "foreground")
        return Text.assemble(
            (clock_time(line.at), theme_colour(variables, "foreground-muted")),
            "  ",
            (f"{line.agent:<16}", "bold"),
            " ",
            (line.text, theme_colour(variables, colour)),
        )
