"""Reusable console widgets: the engine bar, gauges, the prompt bar, state counts, the audit list
and the policy editor."""

from console.widgets.agent_usage import AgentUsage
from console.widgets.audit_list import AuditList
from console.widgets.engine_bar import EngineBar, EngineSummary
from console.widgets.gauge import Gauge, show_totals
from console.widgets.limit_sparkline import LimitSparkline
from console.widgets.policy_editor import PolicyEditor
from console.widgets.prompt_bar import PromptBar
from console.widgets.state_counts import StateCounts

__all__ = [
    "AgentUsage",
    "AuditList",
    "EngineBar",
    "EngineSummary",
    "Gauge",
    "LimitSparkline",
    "PolicyEditor",
    "PromptBar",
    "StateCounts",
    "show_totals",
]
