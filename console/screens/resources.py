"""Resources: machine totals, allocated-of-total, and each live agent against its limits."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Label

from console.actions import RESOURCES, bindings_for
from console.model import LIVE_STATES
from console.screens.base import ConsoleScreen
from console.widgets import AgentUsage, Gauge, show_totals
from engine.api import AgentId
from engine.events import AgentDeleted, AgentStateChanged, Event, ResourceSample


class ResourcesScreen(ConsoleScreen):
    """Screen 3: where the CPU and memory go."""

    SCOPE = RESOURCES
    BINDINGS = bindings_for(RESOURCES)

    def __init__(self) -> None:
        super().__init__(id="resources")

    def compose_body(self) -> ComposeResult:
        with Vertical(id="res-machine", classes="panel"):
            with Horizontal(classes="gauge-row"):
                yield Gauge("CPU", label_width=9, text_width=14, id="res-cpu")
                yield Gauge("Memory", label_width=9, text_width=14, id="res-mem")
            with Horizontal(classes="gauge-row"):
                yield Gauge("Alloc CPU", label_width=9, text_width=14, id="res-alloc-cpu")
                yield Gauge("Alloc mem", label_width=9, text_width=14, id="res-alloc-mem")
        with VerticalScroll(id="res-agents", classes="panel"):
            yield Label("No agent is running. Start one on the Agents screen (2).", id="res-empty")

    def on_mount(self) -> None:
        self.query_one("#res-machine").border_title = "Machine · allocated of total"
        self.query_one("#res-agents").border_title = "Running agents · usage of limits (last 60 samples)"

    # -- rendering -------------------------------------------------------------------------

    def refresh_view(self) -> None:
        self._show_machine()
        live = self.console.model.live()
        wanted = {info.id for info in live}
        for card in list(self.query(AgentUsage)):
            if card.agent_id not in wanted:
                card.remove()
        for info in live:
            self._card(info.id)
        self._show_empty(bool(live))

    def _card(self, agent_id: AgentId) -> None:
        """Show (adding if needed) the card of a live agent."""
        model = self.console.model
        info = model.agents.get(agent_id)
        if info is None:
            return
        found = self.query(f"#usage-{agent_id}")
        if found:
            card = found.first(AgentUsage)
            card.show(info, model.usage.get(agent_id))
        else:
            self.query_one("#res-agents").mount(AgentUsage(info, model.usage.get(agent_id)))

    def _show_empty(self, any_live: bool) -> None:
        self.query_one("#res-empty").display = not any_live

    def _show_machine(self) -> None:
        model, metrics = self.console.model, self.console.metrics
        show_totals(self, ("#res-cpu", "#res-mem", "#res-alloc-cpu", "#res-alloc-mem"), model.machine, metrics)

    def engine_update(self, events: list[Event]) -> None:
        model = self.console.model
        changed: set[AgentId] = set()
        membership = False
        for event in events:
            if isinstance(event, ResourceSample):
                changed.add(event.agent_id)
            elif isinstance(event, (AgentStateChanged, AgentDeleted)):
                membership = True
        if membership:
            self.refresh_view()
            return
        for agent_id in changed:
            info = model.agents.get(agent_id)
            if info is not None and info.state in LIVE_STATES:
                self._card(agent_id)
        self._show_machine()
