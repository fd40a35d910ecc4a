"""One running agent's CPU and memory against its limits, with a sparkline of the last samples each."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label

from console.model import UsageHistory
from console.widgets.gauge import Gauge
from console.widgets.limit_sparkline import LimitSparkline
from engine.api import AgentInfo


class AgentUsage(Vertical):
    """Three lines: the agent's name and state, CPU gauge + sparkline, memory gauge + sparkline."""

    DEFAULT_CSS = """
    AgentUsage { height: 3; }
    AgentUsage > .usage-title { height: 1; text-style: bold; }
    AgentUsage > Horizontal { height: 1; }
    AgentUsage Gauge { width: 1fr; }
    AgentUsage LimitSparkline { margin: 0 0 0 1; }
    """

    def __init__(self, info: AgentInfo, history: UsageHistory | None = None) -> None:
        super().__init__(id=f"usage-{info.id}", classes="agent-usage")
        self.agent_id = info.id
        self._title = Label(classes="usage-title", markup=False)
        self._cpu = Gauge("CPU", label_width=4, text_width=16, classes="usage-cpu")
        self._cpu_spark = LimitSparkline(classes="usage-cpu-spark")
        self._mem = Gauge("Mem", label_width=4, text_width=16, classes="usage-mem")
        self._mem_spark = LimitSparkline(classes="usage-mem-spark")
        self.show(info, history)

    def compose(self) -> ComposeResult:
        yield self._title
        with Horizontal():
            yield self._cpu
            yield self._cpu_spark
        with Horizontal():
            yield self._mem
            yield self._mem_spark

    def show(self, info: AgentInfo, history: UsageHistory | None) -> None:
        """Render ``info`` and its usage ``history`` (safe before the card is mounted)."""
        limits = info.limits
        self._title.update(
            f"{info.name} · {info.state.value} · limits: cpu {limits.cpu_cores:g}, memory {limits.memory_mb} MB"
        )
        sample = history.latest if history is not None else None
        cpu_limit = limits.cpu_cores * 100
        if sample is None:
            self._cpu.set(0, cpu_limit, "-")
            self._mem.set(0, limits.memory_mb, "-")
        else:
            mem = sample.rss_bytes / 1_048_576
            self._cpu.set(sample.cpu_percent, cpu_limit, f"{sample.cpu_percent:.1f}/{cpu_limit:g}%")
            self._mem.set(mem, limits.memory_mb, f"{mem:.1f}/{limits.memory_mb} MB")
        if history is not None:
            self._cpu_spark.set(history.cpu_percent, cpu_limit)
            self._mem_spark.set(history.rss_mb, limits.memory_mb)
