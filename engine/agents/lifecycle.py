"""The lifecycle transition table.

Every state change goes through :func:`check_transition`; an illegal one is
refused with ``AGENT_002`` (upstream only logs it).
"""

from __future__ import annotations

from engine.agents.model import AgentState as S
from engine.errors import ErrorCode, SymbiError

TRANSITIONS: dict[S, frozenset[S]] = {
    S.CREATED: frozenset({S.INITIALIZING, S.TERMINATED}),
    S.INITIALIZING: frozenset({S.READY, S.WAITING, S.FAILED, S.TERMINATING}),
    S.READY: frozenset({S.RUNNING, S.FAILED, S.TERMINATING}),
    S.RUNNING: frozenset({S.SUSPENDED, S.WAITING, S.COMPLETED, S.FAILED, S.TERMINATING}),
    S.SUSPENDED: frozenset({S.RUNNING, S.FAILED, S.TERMINATING}),
    # Waiting: a Scheduled agent armed for its next run, or a running agent awaiting a human decision
    S.WAITING: frozenset({S.READY, S.RUNNING, S.SUSPENDED, S.FAILED, S.TERMINATING}),
    S.COMPLETED: frozenset({S.INITIALIZING, S.TERMINATED}),
    S.FAILED: frozenset({S.INITIALIZING, S.TERMINATED}),
    S.TERMINATING: frozenset({S.TERMINATED, S.FAILED}),
    S.TERMINATED: frozenset({S.INITIALIZING}),
}

# What each operator action needs the agent to be in.
ACTION_FROM: dict[str, frozenset[S]] = {
    "start": frozenset({S.CREATED, S.COMPLETED, S.FAILED, S.TERMINATED}),
    "stop": frozenset({S.INITIALIZING, S.READY, S.RUNNING, S.SUSPENDED, S.WAITING}),
    "terminate": frozenset({S.INITIALIZING, S.READY, S.RUNNING, S.SUSPENDED, S.WAITING, S.TERMINATING}),
    "suspend": frozenset({S.RUNNING, S.WAITING}),
    "resume": frozenset({S.SUSPENDED}),
    "delete": frozenset({S.CREATED, S.COMPLETED, S.FAILED, S.TERMINATED}),
    "update": frozenset({S.CREATED, S.COMPLETED, S.FAILED, S.TERMINATED}),
}


def can_transition(old: S, new: S) -> bool:
    return new in TRANSITIONS[old]


def check_transition(old: S, new: S, *, agent: str = "") -> None:
    if new not in TRANSITIONS[old]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[old])) or "none"
        raise SymbiError(
            ErrorCode.AGENT_002,
            f"illegal transition {old.value} -> {new.value}",
            offending=agent or None,
            hint=f"from {old.value} the agent can go to: {allowed}",
        )


def check_action(action: str, state: S, *, agent: str = "") -> None:
    allowed = ACTION_FROM[action]
    if state not in allowed:
        names = ", ".join(sorted(s.value for s in allowed))
        raise SymbiError(
            ErrorCode.AGENT_002,
            f"cannot {action} an agent that is {state.value}",
            offending=agent or None,
            hint=f"{action} applies to agents that are {names}",
        )
