"""The console's screens: dashboard, agents, agent detail, resources, and the modal form and help."""

from console.screens.agent_detail import AgentDetailScreen
from console.screens.agents import AgentsScreen
from console.screens.base import ConsoleScreen
from console.screens.create_agent import CreateAgentDialog
from console.screens.dashboard import DashboardScreen
from console.screens.help import HelpScreen
from console.screens.resources import ResourcesScreen

__all__ = [
    "AgentDetailScreen",
    "AgentsScreen",
    "ConsoleScreen",
    "CreateAgentDialog",
    "DashboardScreen",
    "HelpScreen",
    "ResourcesScreen",
]
