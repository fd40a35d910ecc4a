"""Lifecycle actions shared by the agents table and the agent detail screen.

Each action names its registry id; the app does the rest (read-only refusal,
confirmation for destructive actions, the engine call in a worker, errors
as notifications).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.api import AgentInfo

if TYPE_CHECKING:
    from console.app import SymbiConsole


class AgentOpsMixin:
    """Mixed into screens that have a selected agent."""

    if TYPE_CHECKING:

        @property
        def console(self) -> SymbiConsole: ...  # provided by ConsoleScreen

    def selected_agent(self) -> AgentInfo | None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _op(self, action_id: str) -> None:
        self.console.agent_action(action_id, self.selected_agent())

    def action_create_agent(self) -> None:
        self.console.create_agent_dialog()

    def action_start_agent(self) -> None:
        self._op("agents.start")

    def action_stop_agent(self) -> None:
        self._op("agents.stop")

    def action_suspend_agent(self) -> None:
        self._op("agents.suspend")

    def action_resume_agent(self) -> None:
        self._op("agents.resume")

    def action_terminate_agent(self) -> None:
        self._op("agents.terminate")

    def action_delete_agent(self) -> None:
        self._op("agents.delete")
