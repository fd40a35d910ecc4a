"""The dashboard's table of agent counts by lifecycle state."""

from __future__ import annotations

from collections.abc import Mapping

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from console.format import STATE_COLOURS, theme_colour
from engine.api import AgentState


class StateCounts(Static):
    """Two columns of ``State  n``, every state shown (zeros dimmed)."""

    def show(self, counts: Mapping[AgentState, int]) -> None:
        variables = self.app.theme_variables
        states = list(AgentState)
        half = (len(states) + 1) // 2
        grid = Table.grid(expand=True, padding=(0, 1))
        for _ in range(2):
            grid.add_column(ratio=3, no_wrap=True)
            grid.add_column(ratio=1, justify="right", no_wrap=True)
        for row in range(half):
            cells: list[Text] = []
            for state in (states[row], states[row + half] if row + half < len(states) else None):
                if state is None:
                    cells += [Text(""), Text("")]
                    continue
                n = counts.get(state, 0)
                style = (
                    theme_colour(variables, STATE_COLOURS[state]) if n else theme_colour(variables, "foreground-muted")
                )
                cells += [Text(state.value, style=style), Text(str(n), style=style + Style(bold=bool(n)))]
            grid.add_row(*cells)
        self.update(grid)
