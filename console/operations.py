"""How each agent lifecycle action maps onto the engine interface, and which ones ask first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.api import AgentInfo, AgentsAPI


@dataclass(frozen=True, slots=True)
class AgentOperation:
    """One lifecycle action: the ``engine.agents`` method, what to say, and whether to confirm."""

    method: str  # the AgentsAPI coroutine taking an agent ref: "start", "stop", ...
    doing: str  # shown while it runs: "stopping"
    done: str  # shown after: "stopped"
    confirm_title: str = ""
    confirm: str = ""  # question; ``{name}`` and ``{grace}`` are filled in; empty = no question

    def question(self, info: AgentInfo, grace: float) -> str:
        return self.confirm.format(name=info.name, grace=f"{grace:g}")

    async def run(self, agents: AgentsAPI, agent_id: str) -> Any:
        calls = {
            "start": agents.start,
            "stop": agents.stop,
            "suspend": agents.suspend,
            "resume": agents.resume,
            "terminate": agents.terminate,
            "delete": agents.delete,
        }
        return await calls[self.method](agent_id)


OPERATIONS: dict[str, AgentOperation] = {
    "agents.start": AgentOperation("start", "starting", "start requested"),
    "agents.stop": AgentOperation(
        "stop",
        "stopping",
        "stopped",
        "Stop agent?",
        "Stop {name}? It gets SIGTERM and up to {grace}s to exit before SIGKILL.",
    ),
    "agents.suspend": AgentOperation("suspend", "suspending", "suspended"),
    "agents.resume": AgentOperation("resume", "resuming", "resumed"),
    "agents.terminate": AgentOperation(
        "terminate",
        "killing",
        "killed",
        "Kill agent?",
        "Kill {name} now with SIGKILL? It gets no chance to clean up.",
    ),
    "agents.delete": AgentOperation(
        "delete",
        "deleting",
        "deleted",
        "Delete agent?",
        "Delete {name} with its state history, workspace and logs? This cannot be undone.",
    ),
}
