"""One agent in depth: status, config and limits, live usage, state history, log tail.

The summary shows the security tier asked for and the sandbox that last ran
it (``Native · ran as native+bwrap``), the restart count, the exit code and,
for an agent that failed or was stopped, the exit reason in the error
colour; gauges show CPU, memory and run time against the agent's limits.

Pushed over the agents table with Enter; Escape goes back. Lifecycle keys
work here on this agent; ``k`` shows its memory and knowledge. The log tail is loaded from the
engine when the screen is shown and then fed by ``AgentLog`` events.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.widgets import DataTable, Log, Static

from console.actions import DETAIL, bindings_for
from console.format import clock_time, duration, state_text, theme_colour, timestamp
from console.model import LIVE_STATES
from console.screens.agent_ops import AgentOpsMixin
from console.screens.base import ConsoleScreen
from console.screens.knowledge import show_knowledge
from console.widgets import Gauge
from engine.api import AgentId, AgentInfo, AgentState, StateChange
from engine.errors import SymbiError
from engine.events import AgentDeleted, AgentLog, AgentStateChanged, Event, ResourceSample

LOG_LINES = 1000


class AgentDetailScreen(AgentOpsMixin, ConsoleScreen):
    """Drill-down view of one agent."""

    SCOPE = DETAIL
    BINDINGS = bindings_for(DETAIL)

    def __init__(self, agent_id: AgentId) -> None:
        super().__init__(classes="detail")
        self.agent_id = agent_id
        self._history_rows = 0
        # Lines of the freshly loaded tail that may still arrive as events (dropped once).
        self._tail_guard: set[str] = set()

    def compose_body(self) -> ComposeResult:
        with Vertical(id="detail-summary", classes="panel"):
            yield Static(id="detail-status")
            yield Static(id="detail-config")
            with Horizontal(id="detail-gauges"):
                yield Gauge("CPU", label_width=4, text_width=16, id="detail-cpu")
                yield Gauge("Mem", label_width=4, text_width=16, id="detail-mem")
                yield Gauge("Run", label_width=4, text_width=16, id="detail-run")
        yield DataTable(id="detail-history", cursor_type="none", classes="panel")
        yield Log(id="detail-log", max_lines=LOG_LINES, classes="panel")

    def on_mount(self) -> None:
        history = self.query_one("#detail-history", DataTable)
        history.add_column("Time", key="at")
        history.add_column("State", key="state")
        history.add_column("Reason", key="reason")
        history.border_title = "State history"
        self.query_one("#detail-log", Log).border_title = "Log"

    def on_resize(self, event: Resize) -> None:
        # three gauges side by side need room; stack them on narrow terminals
        self.query_one("#detail-gauges").set_class(event.size.width < 110, "-narrow")

    @property
    def info(self) -> AgentInfo | None:
        return self.console.model.agents.get(self.agent_id)

    def selected_agent(self) -> AgentInfo | None:
        return self.info

    def action_back(self) -> None:
        self.dismiss()

    async def action_knowledge(self) -> None:
        await show_knowledge(self.console, self.agent_id)

    # -- rendering ---------------------------------------------------------------------

    def refresh_view(self) -> None:
        self._show_summary()
        self.run_worker(self._reload(), group="detail-reload", exclusive=True)

    async def _reload(self) -> None:
        """History and log tail straight from the engine."""
        agents = self.console.engine.agents
        try:
            history = await agents.history(self.agent_id)
            lines = await agents.logs(self.agent_id, lines=200)
        except SymbiError:
            return
        table = self.query_one("#detail-history", DataTable)
        table.clear()
        self._history_rows = 0
        for change in history:
            self._add_history(change)
        log = self.query_one("#detail-log", Log)
        log.clear()
        log.write_lines(lines)
        self._tail_guard = set(lines[-50:])

    def _add_history(self, change: StateChange) -> None:
        table = self.query_one("#detail-history", DataTable)
        table.add_row(clock_time(change.at), state_text(change.state, self.app.theme_variables), change.reason or "-")
        self._history_rows += 1
        table.move_cursor(row=table.row_count - 1)

    def _show_summary(self) -> None:
        info = self.info
        summary = self.query_one("#detail-summary")
        if info is None:
            summary.border_title = "agent deleted"
            return
        variables = self.app.theme_variables
        muted = theme_colour(variables, "foreground-muted")
        now = self.console.now()
        summary.border_title = f"Agent {info.name}"
        status = Text.assemble(
            state_text(info.state, variables),
            ("  pid ", muted),
            str(info.pid or "-"),
            ("  up ", muted),
            duration(info.uptime(now)),
            ("  restarts ", muted),
            str(info.restart_count),
            ("  exit code ", muted),
            "-" if info.exit_code is None else str(info.exit_code),
            ("  started ", muted),
            timestamp(info.started_at),
        )
        if info.last_error:
            ended = info.state in (AgentState.FAILED, AgentState.TERMINATED, AgentState.COMPLETED)
            status.append("\nexit reason " if ended else "\nlast error ", style=muted)
            status.append(info.last_error, style=theme_colour(variables, "error"))
        self.query_one("#detail-status", Static).update(status)
        limits = info.limits
        timeout = "none" if limits.execution_timeout is None else duration(limits.execution_timeout)
        idle = "none" if limits.idle_timeout is None else duration(limits.idle_timeout)
        config = Text.assemble(
            ("priority ", muted),
            info.priority.label,
            ("  mode ", muted),
            info.config.execution_mode.value,
            ("  tier ", muted),
            info.tier.value,
            (" · ran as ", muted) if info.tier_used else "",
            info.tier_used or "",
            ("  id ", muted),
            info.id,
            ("\nlimits ", muted),
            f"{limits.memory_mb} MB · {limits.cpu_cores:g} cores · run timeout {timeout} · idle {idle}"
            f" · disk {limits.disk_io_mbps} MB/s · net {limits.network_io_mbps} MB/s",
        )
        if info.next_run is not None:
            config.append("\nnext run ", style=muted)
            config.append(timestamp(info.next_run))
        self.query_one("#detail-config", Static).update(config)
        self._show_usage(info)

    def _show_usage(self, info: AgentInfo) -> None:
        history = self.console.model.usage.get(info.id)
        sample = history.latest if history is not None and info.state in LIVE_STATES else None
        limits = info.limits
        cpu_limit = limits.cpu_cores * 100
        cpu = sample.cpu_percent if sample else 0.0
        mem = sample.rss_bytes / 1_048_576 if sample else 0.0
        self.query_one("#detail-cpu", Gauge).set(cpu, cpu_limit, f"{cpu:.1f}% of {cpu_limit:g}%" if sample else "-")
        self.query_one("#detail-mem", Gauge).set(
            mem, limits.memory_mb, f"{mem:.1f} of {limits.memory_mb} MB" if sample else "-"
        )
        ran = info.uptime(self.console.now()) if info.state.is_active else None
        timeout = limits.execution_timeout
        if ran is None:
            self.query_one("#detail-run", Gauge).set(0.0, 1.0, "-")
        elif timeout is None:
            self.query_one("#detail-run", Gauge).set(0.0, 1.0, f"{duration(ran)}, no limit")
        else:
            self.query_one("#detail-run", Gauge).set(ran, timeout, f"{duration(ran)} of {duration(timeout)}")

    def engine_update(self, events: list[Event]) -> None:
        log = self.query_one("#detail-log", Log)
        summary_changed = False
        for event in events:
            if getattr(event, "agent_id", None) != self.agent_id:
                continue
            if isinstance(event, AgentLog):
                if event.line in self._tail_guard:
                    self._tail_guard.discard(event.line)
                    continue
                self._tail_guard.clear()
                log.write_line(event.line)
            elif isinstance(event, AgentStateChanged):
                self._add_history(StateChange(event.new, self.console.now(), event.reason))
                summary_changed = True
            elif isinstance(event, ResourceSample):
                info = self.info
                if info is not None:
                    self._show_usage(info)
            elif isinstance(event, AgentDeleted):
                self.notify(f"agent {event.name} was deleted", severity="warning")
                self.dismiss()
                return
        if summary_changed:
            self._show_summary()

    def tick(self) -> None:
        info = self.info
        if info is not None and info.state.is_active:
            self._show_summary()
