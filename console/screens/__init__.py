"""The console's screens: dashboard, agents, agent detail, resources, audit, policy, vault,
and the modal forms and help."""

from console.screens.agent_detail import AgentDetailScreen
from console.screens.agents import AgentsScreen
from console.screens.audit import AuditScreen
from console.screens.base import ConsoleScreen
from console.screens.create_agent import CreateAgentDialog
from console.screens.dashboard import DashboardScreen
from console.screens.help import HelpScreen
from console.screens.knowledge import KnowledgeScreen
from console.screens.knowledge_form import KnowledgeForm
from console.screens.messages import MessagesScreen
from console.screens.policy import PolicyScreen
from console.screens.resources import ResourcesScreen
from console.screens.secret_form import SecretForm
from console.screens.tools import ToolsScreen
from console.screens.vault import VaultScreen

__all__ = [
    "AgentDetailScreen",
    "AgentsScreen",
    "AuditScreen",
    "ConsoleScreen",
    "CreateAgentDialog",
    "DashboardScreen",
    "HelpScreen",
    "KnowledgeForm",
    "KnowledgeScreen",
    "PolicyScreen",
    "ResourcesScreen",
    "SecretForm",
    "ToolsScreen",
    "MessagesScreen",
    "VaultScreen",
]
