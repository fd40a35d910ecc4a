"""How each agent lifecycle action maps onto the runtime, and which ones ask first."""

from __future__ import annotations

from dataclasses import dataclass

from engine.agents.model import AgentInfo


@dataclass(frozen=True, slots=True)
class AgentOperation:
    """One lifecycle action: the runtime method, what to say, and whether to confirm."""

    method: str  # Runtime coroutine taking an agent ref
    doing: str  # shown while it runs: "stopping"
    done: str  # shown after: "stopped"
    confirm_title: str = ""
    confirm: str = ""  # question; ``{name}`` and ``{grace}`` are filled in; empty = no question

    def question(self, info: AgentInfo, grace: float) -> str:
        return self.confirm.format(name=info.name, grace=f"{grace:g}")


OPERATIONS: dict[str, AgentOperation] = {
    "agents.start": AgentOperation("start_agent", "starting", "start requested"),
    "agents.stop": AgentOperation(
        "stop_agent",
        "stopping",
        "stopped",
        "Stop agent?",
        "Stop {name}? It gets SIGTERM and up to {grace}s to exit before SIGKILL.",
    ),
    "agents.suspend": AgentOperation("suspend_agent", "suspending", "suspended"),
    "agents.resume": AgentOperation("resume_agent", "resuming", "resumed"),
    "agents.terminate": AgentOperation(
        "terminate_agent",
        "killing",
        "killed",
        "Kill agent?",
        "Kill {name} now with SIGKILL? It gets no chance to clean up.",
    ),
    "agents.delete": AgentOperation(
        "delete_agent",
        "deleting",
        "deleted",
        "Delete agent?",
        "Delete {name} with its state history, workspace and logs? This cannot be undone.",
    ),
}
