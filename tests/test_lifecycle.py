"""The transition table and the agent model's validation."""

import pytest

from engine.agents.lifecycle import TRANSITIONS, check_action, check_transition
from engine.agents.model import AgentConfig, AgentState, Priority, ResourceLimits
from engine.errors import ErrorCode, SymbiError

S = AgentState


def test_every_state_has_a_row_and_terminal_states_only_restart():
    assert set(TRANSITIONS) == set(AgentState)
    for state in (S.TERMINATED,):
        assert TRANSITIONS[state] == {S.INITIALIZING}


@pytest.mark.parametrize(
    "old,new",
    [(S.CREATED, S.RUNNING), (S.TERMINATED, S.RUNNING), (S.COMPLETED, S.RUNNING), (S.SUSPENDED, S.COMPLETED),
     (S.READY, S.SUSPENDED), (S.FAILED, S.RUNNING)],
)
def test_illegal_transitions_are_refused_with_agent_002(old, new):
    with pytest.raises(SymbiError) as err:
        check_transition(old, new, agent="a1")
    assert err.value.code is ErrorCode.AGENT_002
    assert f"{old.value} -> {new.value}" in err.value.message
    assert err.value.offending == "a1"
    assert "can go to" in err.value.hint


def test_legal_path_through_a_run():
    path = [S.CREATED, S.INITIALIZING, S.READY, S.RUNNING, S.SUSPENDED, S.RUNNING, S.WAITING, S.RUNNING,
            S.TERMINATING, S.TERMINATED, S.INITIALIZING]
    for old, new in zip(path, path[1:], strict=False):
        check_transition(old, new)


def test_actions_name_the_states_they_need():
    with pytest.raises(SymbiError) as err:
        check_action("resume", S.RUNNING, agent="x")
    assert "Suspended" in err.value.hint
    check_action("start", S.FAILED)
    with pytest.raises(SymbiError):
        check_action("delete", S.RUNNING)


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"name": ""}, "invalid agent name"),
        ({"name": "has space"}, "invalid agent name"),
        ({"dsl_source": "   "}, "empty"),
        ({"priority": "urgent"}, "invalid priority"),
        ({"execution_mode": "Forever"}, "invalid execution_mode"),
        ({"security_tier": "Tier9"}, "invalid security_tier"),
        ({"execution_mode": "Scheduled"}, "needs a schedule"),
        ({"resource_limits": ResourceLimits(memory_mb=0)}, "resource_limits.memory_mb"),
        ({"resource_limits": ResourceLimits(cpu_cores=-1)}, "resource_limits.cpu_cores"),
        ({"resource_limits": ResourceLimits(execution_timeout=float("nan"))}, "execution_timeout"),
        ({"metadata": {"k": 1}}, "metadata"),
    ],
)
def test_bad_agent_config_is_agent_004_naming_the_field(kwargs, needle):
    base = {"name": "ok", "dsl_source": "print(1)"}
    base.update(kwargs)
    with pytest.raises(SymbiError) as err:
        AgentConfig(**base).validate()
    assert err.value.code is ErrorCode.AGENT_004
    assert needle in err.value.message


def test_config_round_trips_through_dict():
    cfg = AgentConfig(name="a", dsl_source="print(1)", priority="high", capabilities=["Network"],
                      metadata={"team": "ops"}).validate()
    assert cfg.priority is Priority.HIGH
    again = AgentConfig.from_dict(cfg.to_dict())
    assert again == cfg


def test_unknown_fields_are_refused():
    with pytest.raises(SymbiError) as err:
        AgentConfig.from_dict({"name": "a", "dsl_source": "x", "colour": "red"})
    assert err.value.offending == "colour"
    with pytest.raises(SymbiError):
        ResourceLimits.from_dict({"memory": 5})
