"""A sparkline of recent samples scaled against a limit.

Textual's ``Sparkline`` stretches its data over the widget's width and
scales between the data's own minimum and maximum, which makes a steady
12 % look like a flat floor and small noise look like spikes. Here each
column is one sample (newest on the right) and the height is the share of
the agent's limit, coloured like :class:`~console.widgets.gauge.Gauge`.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widget import Widget

BARS = "▁▂▃▄▅▆▇█"


class LimitSparkline(Widget):
    """``▁▁▂▃▃▅`` of the last samples, against ``limit``."""

    DEFAULT_CSS = """
    LimitSparkline { height: 1; width: 1fr; }
    LimitSparkline > .spark--fill { color: $success; }
    LimitSparkline > .spark--warn { color: $warning; }
    LimitSparkline > .spark--high { color: $error; }
    LimitSparkline > .spark--empty { color: $foreground 15%; }
    """
    COMPONENT_CLASSES = {"spark--fill", "spark--warn", "spark--high", "spark--empty"}

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.values: tuple[float, ...] = ()
        self.limit = 1.0

    def set(self, values: Sequence[float], limit: float) -> None:
        values = tuple(values)
        if values != self.values or limit != self.limit:
            self.values = values
            self.limit = limit
            self.refresh()

    def render(self) -> Text:
        width = self.size.width
        shown = self.values[-width:] if width else ()
        out = Text(no_wrap=True, overflow="crop")
        out.append("·" * (width - len(shown)), style=self.get_component_rich_style("spark--empty"))
        for value in shown:
            ratio = max(0.0, min(1.0, value / self.limit)) if self.limit > 0 else 0.0
            level = "spark--fill" if ratio < 0.7 else "spark--warn" if ratio < 0.9 else "spark--high"
            out.append(BARS[min(len(BARS) - 1, int(ratio * len(BARS)))], style=self.get_component_rich_style(level))
        return out
