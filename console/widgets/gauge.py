"""A one-line gauge: a label, a bar and a value, coloured by how full it is."""

from __future__ import annotations

from rich.text import Text
from textual.dom import DOMNode
from textual.widget import Widget

from console.format import size_of
from engine.api import EngineMetrics
from engine.events import MachineSample


class Gauge(Widget):
    """``label ██████░░░░ text``. Green below 70%, amber below 90%, red above."""

    DEFAULT_CSS = """
    Gauge { height: 1; width: 1fr; }
    Gauge > .gauge--label { color: $foreground-muted; }
    Gauge > .gauge--fill { color: $success; }
    Gauge > .gauge--warn { color: $warning; }
    Gauge > .gauge--high { color: $error; }
    Gauge > .gauge--empty { color: $foreground 15%; }
    """
    COMPONENT_CLASSES = {"gauge--label", "gauge--fill", "gauge--warn", "gauge--high", "gauge--empty"}

    def __init__(
        self,
        label: str,
        *,
        label_width: int = 8,
        text_width: int = 18,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.label = label
        self.label_width = label_width
        self.text_width = text_width
        self.ratio = 0.0
        self.text = "-"

    def set(self, value: float, total: float, text: str) -> None:
        """Show ``value`` of ``total`` with ``text`` beside the bar."""
        ratio = value / total if total > 0 else 0.0
        ratio = max(0.0, min(1.0, ratio))
        if ratio != self.ratio or text != self.text:
            self.ratio = ratio
            self.text = text
            self.refresh()

    def render(self) -> Text:
        width = self.size.width
        label = self.label[: self.label_width].ljust(self.label_width)
        text = self.text[: self.text_width].rjust(self.text_width)
        bar_width = max(0, width - len(label) - len(text) - 2)
        filled = round(self.ratio * bar_width)
        level = "gauge--fill" if self.ratio < 0.7 else "gauge--warn" if self.ratio < 0.9 else "gauge--high"
        out = Text(no_wrap=True, overflow="crop")
        out.append(label, style=self.get_component_rich_style("gauge--label"))
        out.append(" ")
        out.append("█" * filled, style=self.get_component_rich_style(level))
        out.append("░" * (bar_width - filled), style=self.get_component_rich_style("gauge--empty"))
        out.append(" ")
        out.append(text)
        return out


def show_totals(
    node: DOMNode, ids: tuple[str, str, str, str], machine: MachineSample | None, metrics: EngineMetrics | None
) -> None:
    """Fill the four engine-total gauges under ``node`` (machine CPU, machine memory, allocated
    CPU, allocated memory; ``ids`` in that order) from the newest machine sample, or from the
    engine's metrics until a sample has arrived."""
    cpu_id, mem_id, alloc_cpu_id, alloc_mem_id = ids
    source: MachineSample | EngineMetrics | None = machine if machine is not None else metrics
    cpu = source.cpu_percent if source else 0.0
    used = source.memory_used_bytes if source else 0
    total = source.memory_total_bytes if source else 0
    node.query_one(cpu_id, Gauge).set(cpu, 100.0, f"{cpu:.1f}%")
    node.query_one(mem_id, Gauge).set(used, total, size_of(used, total) if total else "-")
    if metrics is not None:
        node.query_one(alloc_cpu_id, Gauge).set(
            metrics.allocated_cpu_cores,
            metrics.total_cpu_cores,
            f"{metrics.allocated_cpu_cores:g} / {metrics.total_cpu_cores:g} cores",
        )
        node.query_one(alloc_mem_id, Gauge).set(
            metrics.allocated_memory_mb,
            metrics.total_memory_mb,
            f"{metrics.allocated_memory_mb} / {metrics.total_memory_mb} MB",
        )
