"""The header line: where the engine runs and how many agents are in each state.

It always shows the engine's mode (``embedded``), its data dir, the agent
counts by state, how many items wait in the review queue (``review 3``,
only when some do), ``DISCONNECTED`` while an attached engine is out of reach, a standing ``UNCONFINED n`` while agents run with no
confinement at all (``sandbox.native_isolation = "none"``), whether the console is read-only, and whether live
refresh is paused. It renders :class:`EngineSummary`, which the app publishes as a
reactive attribute (attributes down: the bar watches the app).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label

from console.format import STATE_COLOURS, theme_colour
from engine.api import AgentState


@dataclass(frozen=True)
class EngineSummary:
    """What the header shows."""

    mode: str = "embedded"
    location: str = ""
    counts: tuple[tuple[AgentState, int], ...] = ()
    paused: bool = False
    readonly: bool = False
    review: int = 0  # tools, calls and key changes waiting for the operator
    unconfined: int = 0  # agents running with no confinement (native_isolation = none): a standing warning
    disconnected: bool = False  # an attached engine is out of reach (the view is the last one read)


class EngineBar(Horizontal):
    """One line at the top of every console screen."""

    DEFAULT_CSS = """
    EngineBar { height: 1; dock: top; background: $panel; }
    EngineBar > #engine-where { width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; padding: 0 1; }
    EngineBar > #engine-counts { width: auto; text-wrap: nowrap; padding: 0 1 0 0; }
    EngineBar > #engine-flags { width: auto; text-wrap: nowrap; padding: 0 1 0 0; }
    """

    def compose(self) -> ComposeResult:
        yield Label(id="engine-where")
        yield Label(id="engine-counts")
        yield Label(id="engine-flags")

    def on_mount(self) -> None:
        self.watch(self.app, "summary", self._show, init=True)
        self.watch(self.app, "theme", lambda _: self._show(self.app.summary), init=False)  # type: ignore[attr-defined]

    def _show(self, summary: EngineSummary) -> None:
        variables = self.app.theme_variables
        where = Text.assemble(
            ("◆ symbi", theme_colour(variables, "accent") + Style(bold=True)),
            "  ",
            (summary.mode, theme_colour(variables, "primary")),
            " ",
            (summary.location, ""),
        )
        self.query_one("#engine-where", Label).update(where)
        total = sum(n for _, n in summary.counts)
        counts = Text(f"{total} agent{'s' if total != 1 else ''}")
        shown = [(state, n) for state, n in summary.counts if n]
        for state, n in shown:
            counts.append("  ")
            counts.append(f"{state.value} {n}", style=theme_colour(variables, STATE_COLOURS[state]))
        self.query_one("#engine-counts", Label).update(counts)
        flags = Text()
        if summary.unconfined:
            flags.append(
                f" ⚠ UNCONFINED {summary.unconfined} ",
                style=theme_colour(variables, "error") + Style(bold=True, reverse=True),
            )
            flags.append(" ")
        if summary.review:
            flags.append(
                f" review {summary.review} ", style=theme_colour(variables, "warning") + Style(bold=True, reverse=True)
            )
            flags.append(" ")
        if summary.readonly:
            flags.append(" READ-ONLY ", style=theme_colour(variables, "warning") + Style(reverse=True))
            flags.append(" ")
        if summary.disconnected:
            flags.append(" ⚠ DISCONNECTED ", style=theme_colour(variables, "error") + Style(bold=True, reverse=True))
            flags.append(" ")
        if summary.paused:
            flags.append(" PAUSED ", style=theme_colour(variables, "warning") + Style(bold=True, reverse=True))
        else:
            flags.append("● live", style=theme_colour(variables, "success"))
        self.query_one("#engine-flags", Label).update(flags)
