"""Reusable console widgets: the engine bar, gauges, the prompt bar and state counts."""

from console.widgets.agent_usage import AgentUsage
from console.widgets.engine_bar import EngineBar, EngineSummary
from console.widgets.gauge import Gauge
from console.widgets.limit_sparkline import LimitSparkline
from console.widgets.prompt_bar import PromptBar
from console.widgets.state_counts import StateCounts

__all__ = ["AgentUsage", "EngineBar", "EngineSummary", "Gauge", "LimitSparkline", "PromptBar", "StateCounts"]
