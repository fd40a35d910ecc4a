"""The action registry, themes and the console model, without running the app."""

from __future__ import annotations

import pytest

from console.actions import (
    ACTIONS,
    AGENTS,
    APP,
    AUDIT,
    BY_ID,
    COMMANDS,
    DETAIL,
    KNOWLEDGE,
    MAIN_SCREENS,
    POLICY,
    TOOLS,
    VAULT,
    actions_for,
    bindings_for,
    display_key,
    effective_keys,
    resolve_command,
    validate_keymap,
)
from console.app import SymbiConsole
from console.model import ConsoleModel
from console.screens import (
    AgentDetailScreen,
    AgentsScreen,
    AuditScreen,
    DashboardScreen,
    KnowledgeScreen,
    PolicyScreen,
    ResourcesScreen,
    ToolsScreen,
    VaultScreen,
)
from console.theming import load_themes, theme_from_file
from engine.agents.model import AgentState
from engine.errors import SymbiError
from engine.events import AgentCreated, AgentDeleted, AgentStateChanged, ResourceSample

SCOPE_CLASSES = {
    APP: SymbiConsole,
    AGENTS: AgentsScreen,
    DETAIL: AgentDetailScreen,
    "dashboard": DashboardScreen,
    "resources": ResourcesScreen,
    AUDIT: AuditScreen,
    POLICY: PolicyScreen,
    VAULT: VaultScreen,
    TOOLS: ToolsScreen,
    KNOWLEDGE: KnowledgeScreen,
}


def test_ids_are_unique_and_dotted():
    ids = [a.id for a in ACTIONS]
    assert len(ids) == len(set(ids))
    assert all("." in i for i in ids)


@pytest.mark.parametrize("scope", [AGENTS, DETAIL, "dashboard", "resources", AUDIT, POLICY, VAULT, TOOLS, KNOWLEDGE])
def test_no_key_is_bound_twice_on_a_screen(scope):
    keys: dict[str, str] = {}
    for action in actions_for(APP) + actions_for(scope):
        for key in effective_keys(action, {}):
            if action.id == "app.force_quit":
                continue
            assert key not in keys, f"{key} is bound to {keys.get(key)} and {action.id}"
            keys[key] = action.id


def test_every_action_has_a_handler_where_it_is_bound():
    for action in ACTIONS:
        name = action.action.split("(")[0]
        for scope in action.scopes:
            cls = SCOPE_CLASSES[scope]
            assert hasattr(cls, f"action_{name}"), f"{action.id}: {cls.__name__} has no action_{name}"


def test_bindings_carry_ids_and_tooltips_and_readonly_hides_mutations():
    for scope in (APP, AGENTS, DETAIL, AUDIT, POLICY, VAULT, TOOLS, KNOWLEDGE):
        for binding in bindings_for(scope):
            action = BY_ID[binding.id]
            assert binding.tooltip == action.help
        hidden = [b for b in bindings_for(scope, readonly=True) if BY_ID[b.id].readonly_off]
        assert all(not b.show for b in hidden)
    # revealing a secret is off in read-only mode although it changes nothing
    assert BY_ID["vault.reveal"].readonly_off and BY_ID["vault.reveal"].engine_kind == "reveals"
    assert not BY_ID["audit.export"].readonly_off


def test_command_aliases():
    assert resolve_command("ag").id == "app.agents"
    assert resolve_command(":a").id == "app.agents"
    assert resolve_command(" agents ").id == "app.agents"
    assert resolve_command("res").id == resolve_command("resources").id == "app.resources"
    assert resolve_command("dash").id == resolve_command("d").id == resolve_command("dashboard").id
    assert resolve_command("help").id == "app.help"
    assert resolve_command("q").id == resolve_command("quit").id == "app.quit"
    assert resolve_command("audit").id == resolve_command("au").id == "app.audit"
    assert resolve_command("policy").id == resolve_command("pol").id == "app.policy"
    assert resolve_command("vault").id == resolve_command("secrets").id == "app.vault"
    assert resolve_command("verify").id == "audit.verify"
    assert resolve_command("bogus") is None
    assert all(target in BY_ID for target in COMMANDS.values())


def test_number_keys_reach_every_main_screen():
    keys = {BY_ID[f"app.{screen}"].keys: screen for screen in MAIN_SCREENS}
    assert keys == {
        "1": "dashboard",
        "2": "agents",
        "3": "resources",
        "4": "audit",
        "5": "policy",
        "6": "vault",
        "7": "messages",
        "8": "tools",
        "9": "knowledge",
    }
    assert set(MAIN_SCREENS) == set(SymbiConsole.MODES)


def test_keymap_overrides_and_unknown_ids():
    assert effective_keys(BY_ID["agents.start"], {"agents.start": "g, f5"}) == ["g", "f5"]
    assert effective_keys(BY_ID["agents.start"], {}) == ["r"]
    assert validate_keymap({"agents.start": "g", "agents.fly": "f"}) == ["keymap: no action with id 'agents.fly'"]
    assert display_key("question_mark") == "?"
    assert display_key("ctrl+k") == "^k"


def test_the_three_themes_load_from_files(tmp_path):
    themes = {t.name: t for t in load_themes()}
    assert list(themes)[:3] == ["symbi-dark", "symbi-light", "symbi-ansi"]
    assert themes["symbi-dark"].dark and not themes["symbi-light"].dark
    assert themes["symbi-ansi"].ansi
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nprimary = "#fff"\nsparkle = true\n')
    with pytest.raises(SymbiError) as err:
        theme_from_file(bad)
    assert err.value.code.value == "CONFIG_002"


def test_model_folds_events():
    model = ConsoleModel()
    model.apply(AgentCreated(agent_id="a1", name="one"), now=100.0)
    model.apply(AgentStateChanged(agent_id="a1", name="one", old=None, new=AgentState.CREATED), now=100.0)
    model.apply(
        AgentStateChanged(agent_id="a1", name="one", old=AgentState.RUNNING, new=AgentState.FAILED, reason="boom"),
        now=101.0,
    )
    sample = ResourceSample(
        agent_id="a1",
        name="one",
        cpu_percent=50.0,
        rss_bytes=2 * 1_048_576,
        read_bytes=0,
        write_bytes=0,
        num_procs=1,
        memory_limit_mb=64,
        cpu_limit_cores=1.0,
    )
    for _ in range(70):
        model.apply(sample)
    assert len(model.usage["a1"].cpu_percent) == 60
    assert model.usage["a1"].rss_mb[-1] == 2.0
    texts = [line.text for line in model.events]
    assert texts == ["created", "Running → Failed: boom"]
    model.apply(AgentDeleted(agent_id="a1", name="one"))
    assert "a1" not in model.usage
    assert model.event_seq == 3
