"""The console's one action registry.

Every user-facing action is declared here once: its id (also the Textual
``Binding.id``, so ``[console] keymap`` in the config can rebind it), its
default keys, what it does, whether it changes engine state or shows a
secret value (both refused in ``--readonly`` mode) and where it applies
(``app`` for everywhere, or a screen scope). Key bindings, the footer, the ``?`` help screen and the
command palette are all built from this table, so they can never disagree.

Command mode (``:``) aliases live here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from textual.binding import Binding, BindingsMap, BindingType

from engine.api.interface import GROUPS, kind_of

# Screen scopes. "app" bindings live on the App and work on every screen.
APP = "app"
DASHBOARD = "dashboard"
AGENTS = "agents"
DETAIL = "detail"
RESOURCES = "resources"
AUDIT = "audit"
POLICY = "policy"
VAULT = "vault"
MESSAGES = "messages"
TOOLS = "tools"
KNOWLEDGE = "knowledge"

# The screens reachable with number keys / command mode, in order.
MAIN_SCREENS: tuple[str, ...] = (DASHBOARD, AGENTS, RESOURCES, AUDIT, POLICY, VAULT, MESSAGES, TOOLS, KNOWLEDGE)

READONLY_CODE = "CONSOLE_001"


@dataclass(frozen=True, slots=True)
class ConsoleAction:
    """One action of the console."""

    id: str
    keys: str  # Textual key names, comma-separated
    action: str  # the Textual action string run in the scope's namespace
    description: str  # short label for the footer
    help: str  # one sentence for the help screen, tooltips and the palette
    scopes: tuple[str, ...] = (APP,)
    calls: str | None = None  # the engine interface method it leads to ("agents.start"), if any
    show: bool = True  # shown in the footer
    key_display: str | None = None
    priority: bool = False
    group: str | None = None  # footer shows consecutive actions of a group as one entry

    @property
    def engine_kind(self) -> str:
        """What the engine call does, from the marks on the engine interface: ``"mutating"``,
        ``"reveals"`` or ``"reads"``."""
        if self.calls is None:
            return "reads"
        group, method = self.calls.split(".", 1)
        return kind_of(GROUPS[group], method)

    @property
    def readonly_off(self) -> bool:
        """Refused (and hidden) in read-only mode: the engine's read-only view refuses its call."""
        return self.engine_kind != "reads"

    @property
    def title(self) -> str:
        """The palette / help title, e.g. "Agents: start"."""
        area = {APP: "Console", AGENTS: "Agents", DETAIL: "Agent detail"}.get(self.scopes[0], self.scopes[0].title())
        return f"{area}: {self.description}"


_AGENT_SCOPES = (AGENTS, DETAIL)

ACTIONS: tuple[ConsoleAction, ...] = (
    # -- everywhere --------------------------------------------------------------
    ConsoleAction("app.quit", "q", "quit", "Quit", "Quit the console (asks first if agents are active)"),
    ConsoleAction(
        "app.force_quit",
        "ctrl+q",
        "quit",
        "Quit",
        "Quit the console (asks first if agents are active)",
        show=False,
        priority=True,
    ),
    ConsoleAction("app.help", "question_mark", "help", "Help", "Show every key binding and command", key_display="?"),
    ConsoleAction(
        "app.command",
        "colon",
        "command_mode",
        "Command",
        "Command mode: type :agents, :res, :dash, :audit, :policy, :vault, :help or :quit",
        key_display=":",
    ),
    ConsoleAction(
        "app.palette",
        "ctrl+p",
        "command_palette",
        "Palette",
        "Open the command palette to search every action",
        show=False,
        priority=True,
    ),
    ConsoleAction("app.dashboard", "1", "goto('dashboard')", "Dashboard", "Show the dashboard", group="Screens"),
    ConsoleAction("app.agents", "2", "goto('agents')", "Agents", "Show the agents table", group="Screens"),
    ConsoleAction(
        "app.resources", "3", "goto('resources')", "Resources", "Show per-agent resource usage", group="Screens"
    ),
    ConsoleAction(
        "app.audit", "4", "goto('audit')", "Audit", "Browse, filter, verify and export the audit trail", group="Screens"
    ),
    ConsoleAction(
        "app.policy",
        "5",
        "goto('policy')",
        "Policy",
        "Edit, test and save the access policy file",
        group="Screens",
    ),
    ConsoleAction("app.vault", "6", "goto('vault')", "Vault", "Manage the secrets vault", group="Screens"),
    ConsoleAction(
        "app.messages",
        "7",
        "goto('messages')",
        "Messages",
        "Bus traffic with verification status, and the dead-letter queue",
        group="Screens",
    ),
    ConsoleAction(
        "app.tools",
        "8",
        "goto('tools')",
        "Review",
        "The review queue: tools, tool calls and signing keys waiting for a human decision",
        group="Screens",
    ),
    ConsoleAction(
        "app.knowledge",
        "9",
        "goto('knowledge')",
        "Knowledge",
        "Per-agent memory and knowledge: browse, search, ask (RAG with sources), add, delete",
        group="Screens",
    ),
    ConsoleAction("app.pause", "p", "toggle_pause", "Pause", "Pause or resume live refresh from engine events"),
    ConsoleAction("app.theme", "ctrl+t", "cycle_theme", "Theme", "Switch to the next theme", show=False),
    # -- agents table and agent detail -------------------------------------------
    ConsoleAction(
        "agents.open",
        "enter",
        "open_agent",
        "Details",
        "Open the selected agent's details",
        scopes=(AGENTS,),
        key_display="⏎",
    ),
    ConsoleAction(
        "agents.filter",
        "slash",
        "filter",
        "Filter",
        "Filter agents by name or state",
        scopes=(AGENTS,),
        key_display="/",
    ),
    ConsoleAction(
        "agents.sort",
        "s",
        "cycle_sort",
        "Sort",
        "Sort by the next column (name, state, priority, ... cycling)",
        scopes=(AGENTS,),
    ),
    ConsoleAction(
        "agents.create",
        "n",
        "create_agent",
        "New",
        "Create an agent from a form",
        scopes=(AGENTS,),
        calls="agents.create",
    ),
    ConsoleAction(
        "agents.start",
        "r",
        "start_agent",
        "Run",
        "Start the selected agent",
        scopes=_AGENT_SCOPES,
        calls="agents.start",
    ),
    ConsoleAction(
        "agents.stop",
        "x",
        "stop_agent",
        "Stop",
        "Stop the selected agent gracefully (asks first)",
        scopes=_AGENT_SCOPES,
        calls="agents.stop",
    ),
    ConsoleAction(
        "agents.suspend",
        "z",
        "suspend_agent",
        "Suspend",
        "Suspend (SIGSTOP) the selected agent",
        scopes=_AGENT_SCOPES,
        calls="agents.suspend",
        show=False,
    ),
    ConsoleAction(
        "agents.resume",
        "u",
        "resume_agent",
        "Resume",
        "Resume a suspended agent",
        scopes=_AGENT_SCOPES,
        calls="agents.resume",
        show=False,
    ),
    ConsoleAction(
        "agents.terminate",
        "ctrl+k",
        "terminate_agent",
        "Kill",
        "Terminate the selected agent at once with SIGKILL (asks first)",
        scopes=_AGENT_SCOPES,
        calls="agents.terminate",
    ),
    ConsoleAction(
        "agents.delete",
        "d",
        "delete_agent",
        "Delete",
        "Delete a stopped agent with its history and logs (asks first)",
        scopes=_AGENT_SCOPES,
        calls="agents.delete",
    ),
    ConsoleAction(
        "detail.back", "escape", "back", "Back", "Go back to the agents table", scopes=(DETAIL,), key_display="esc"
    ),
    ConsoleAction(
        "detail.knowledge",
        "k",
        "knowledge",
        "Memory",
        "Show this agent's memory and knowledge on the knowledge screen",
        scopes=(DETAIL,),
    ),
    # -- audit browser ------------------------------------------------------------
    ConsoleAction(
        "audit.filter",
        "slash",
        "filter",
        "Filter",
        "Filter events by type (agent.*), agent, decision and text; since:10m and until:… work in the text",
        scopes=(AUDIT,),
        key_display="/",
    ),
    ConsoleAction(
        "audit.clear", "escape", "clear_filter", "Clear", "Clear every filter", scopes=(AUDIT,), key_display="esc"
    ),
    ConsoleAction(
        "audit.detail",
        "enter",
        "detail",
        "JSON",
        "Show the selected event's full JSON on the whole screen (esc returns)",
        scopes=(AUDIT,),
        key_display="⏎",
        show=False,
    ),
    ConsoleAction(
        "audit.tail", "f", "toggle_tail", "Tail", "Live tail: follow new events as they are recorded", scopes=(AUDIT,)
    ),
    ConsoleAction(
        "audit.verify",
        "v",
        "verify",
        "Verify",
        "Verify the hash chain and the signed checkpoints of the whole trail",
        scopes=(AUDIT,),
    ),
    ConsoleAction(
        "audit.export", "e", "export", "Export", "Export the filtered events to a JSONL file", scopes=(AUDIT,)
    ),
    ConsoleAction(
        "audit.refresh",
        "r",
        "refresh",
        "Refresh",
        "Reload the view with the newest events",
        scopes=(AUDIT,),
        show=False,
    ),
    # -- policy editor ------------------------------------------------------------
    ConsoleAction(
        "policy.edit", "e", "edit", "Edit", "Put the cursor in the policy editor (esc leaves it)", scopes=(POLICY,)
    ),
    ConsoleAction(
        "policy.save",
        "ctrl+s",
        "save",
        "Save",
        "Save the edited policy and put it in force (shows the diff and the replay summary, asks first)",
        scopes=(POLICY,),
        calls="policies.save",
    ),
    ConsoleAction(
        "policy.problems",
        "f2",
        "panel('problems')",
        "Problems",
        "Show the validation errors and warnings of the edited policy",
        scopes=(POLICY,),
        group="Panels",
    ),
    ConsoleAction(
        "policy.test",
        "f3",
        "panel('test')",
        "Test",
        "Test a request (JSON) against the edited policy: decision, policy, reason, matched conditions",
        scopes=(POLICY,),
        group="Panels",
    ),
    ConsoleAction(
        "policy.diff",
        "f4",
        "panel('diff')",
        "Diff",
        "Diff the edited policy against the policy in force",
        scopes=(POLICY,),
        group="Panels",
    ),
    ConsoleAction(
        "policy.replay",
        "f5",
        "panel('replay')",
        "Replay",
        "Replay the recorded decisions against the edited policy and list those that would change",
        scopes=(POLICY,),
        group="Panels",
    ),
    ConsoleAction(
        "policy.revert",
        "ctrl+o",
        "revert",
        "Revert",
        "Discard the edits and load the policy in force again (asks first)",
        scopes=(POLICY,),
        show=False,
    ),
    # -- vault ----------------------------------------------------------------------
    ConsoleAction(
        "vault.add",
        "a",
        "add",
        "Add",
        "Add a secret (the value is typed masked)",
        scopes=(VAULT,),
        calls="secrets.set",
    ),
    ConsoleAction(
        "vault.edit",
        "e",
        "edit",
        "Edit",
        "Give the selected secret a new value, description and tags",
        scopes=(VAULT,),
        calls="secrets.set",
    ),
    ConsoleAction(
        "vault.reveal",
        "v",
        "reveal",
        "Reveal",
        "Show the selected secret's value for a few seconds (asks first; the read is audited)",
        scopes=(VAULT,),
        calls="secrets.reveal",
    ),
    ConsoleAction(
        "vault.copy",
        "c",
        "copy",
        "Copy",
        "Copy the selected secret's value to the clipboard with OSC 52 (asks first; the read is audited)",
        scopes=(VAULT,),
        calls="secrets.reveal",
    ),
    ConsoleAction(
        "vault.delete",
        "d",
        "delete",
        "Delete",
        "Delete the selected secret and its kept versions (asks first)",
        scopes=(VAULT,),
        calls="secrets.delete",
    ),
    ConsoleAction(
        "vault.rotate",
        "R",
        "rotate",
        "Rotate key",
        "Re-encrypt every secret under a new master key (asks first; shows how many and the result)",
        scopes=(VAULT,),
        calls="secrets.rotate",
    ),
    ConsoleAction("vault.refresh", "r", "refresh", "Refresh", "Read the vault again", scopes=(VAULT,), show=False),
    # -- review queue (tools, calls, key changes) ----------------------------------------
    ConsoleAction(
        "tools.approve",
        "a",
        "approve",
        "Approve",
        "Approve the selected or marked items: a tool with a scope (always, session, once), a call with the "
        "arguments hash shown, a key change (asks first)",
        scopes=(TOOLS,),
        calls="tools.approve",
    ),
    ConsoleAction(
        "tools.reject",
        "x",
        "reject",
        "Reject",
        "Reject the selected or marked tools (a reason is required), deny calls, refuse key changes (asks first)",
        scopes=(TOOLS,),
        calls="tools.reject",
    ),
    ConsoleAction(
        "tools.defer",
        "d",
        "defer",
        "Defer",
        "Defer the selected or marked tools: they stay waiting, not usable and not rejected (asks first)",
        scopes=(TOOLS,),
        calls="tools.defer",
    ),
    ConsoleAction(
        "tools.reanalyze",
        "R",
        "reanalyze",
        "Analyze",
        "Run the analyzer again on the selected or marked tools (asks first)",
        scopes=(TOOLS,),
        calls="tools.reanalyze",
    ),
    ConsoleAction(
        "tools.mark",
        "space",
        "mark",
        "Mark",
        "Mark or unmark the row under the cursor: decisions then apply to every marked item",
        scopes=(TOOLS,),
        key_display="␣",
    ),
    ConsoleAction(
        "tools.all",
        "f",
        "toggle_all",
        "All/waiting",
        "List every known tool (any state), or only those waiting for review",
        scopes=(TOOLS,),
    ),
    ConsoleAction(
        "tools.zoom",
        "enter",
        "zoom",
        "Zoom",
        "Show the detail on the whole width (enter or esc returns)",
        scopes=(TOOLS,),
        key_display="⏎",
        show=False,
    ),
    ConsoleAction(
        "tools.clear",
        "escape",
        "clear",
        "Unmark",
        "Leave the zoomed detail, or clear the marks",
        scopes=(TOOLS,),
        key_display="esc",
        show=False,
    ),
    ConsoleAction(
        "tools.refresh", "r", "refresh", "Refresh", "Read the review queue again", scopes=(TOOLS,), show=False
    ),
    # -- knowledge ---------------------------------------------------------------------
    ConsoleAction(
        "knowledge.search",
        "slash",
        "search",
        "Search",
        "Search the selected agent's items by meaning (hits with their scores, best first)",
        scopes=(KNOWLEDGE,),
        key_display="/",
    ),
    ConsoleAction(
        "knowledge.ask",
        "a",
        "ask",
        "Ask",
        "Ask a question answered from the agent's knowledge (RAG), with numbered sources and scores",
        scopes=(KNOWLEDGE,),
    ),
    ConsoleAction(
        "knowledge.agent",
        "g",
        "pick_agent",
        "Agent",
        "Pick the agent whose memory and knowledge is shown (or the items shared with everyone)",
        scopes=(KNOWLEDGE,),
    ),
    ConsoleAction(
        "knowledge.kind",
        "k",
        "pick_kind",
        "Kind",
        "Show one kind of item only (conversation, working, short_term, long_term, knowledge)",
        scopes=(KNOWLEDGE,),
        show=False,
    ),
    ConsoleAction(
        "knowledge.add",
        "n",
        "add",
        "Add",
        "Add an item to the selected agent's context (kind, content, metadata JSON, share)",
        scopes=(KNOWLEDGE,),
        calls="knowledge.add",
    ),
    ConsoleAction(
        "knowledge.delete",
        "d",
        "delete",
        "Delete",
        "Delete the selected item (asks first; recorded in the audit trail)",
        scopes=(KNOWLEDGE,),
        calls="knowledge.delete",
    ),
    ConsoleAction(
        "knowledge.clear",
        "escape",
        "clear",
        "Clear",
        "Close the answer, then the search results",
        scopes=(KNOWLEDGE,),
        key_display="esc",
    ),
    ConsoleAction(
        "knowledge.refresh", "r", "refresh", "Refresh", "Read the items again", scopes=(KNOWLEDGE,), show=False
    ),
)

BY_ID: dict[str, ConsoleAction] = {a.id: a for a in ACTIONS}

# Command mode: alias -> action id.
COMMANDS: dict[str, str] = {
    "dashboard": "app.dashboard",
    "dash": "app.dashboard",
    "d": "app.dashboard",
    "agents": "app.agents",
    "ag": "app.agents",
    "a": "app.agents",
    "resources": "app.resources",
    "res": "app.resources",
    "r": "app.resources",
    "audit": "app.audit",
    "au": "app.audit",
    "events": "app.audit",
    "policy": "app.policy",
    "policies": "app.policy",
    "pol": "app.policy",
    "vault": "app.vault",
    "secrets": "app.vault",
    "sec": "app.vault",
    "messages": "app.messages",
    "msg": "app.messages",
    "bus": "app.messages",
    "tools": "app.tools",
    "review": "app.tools",
    "rev": "app.tools",
    "knowledge": "app.knowledge",
    "know": "app.knowledge",
    "memory": "app.knowledge",
    "mem": "app.knowledge",
    "verify": "audit.verify",
    "export": "audit.export",
    "help": "app.help",
    "h": "app.help",
    "quit": "app.quit",
    "q": "app.quit",
    "pause": "app.pause",
    "theme": "app.theme",
}


def actions_for(scope: str) -> list[ConsoleAction]:
    """The registry's actions that apply in ``scope``."""
    return [a for a in ACTIONS if scope in a.scopes]


def make_binding(action: ConsoleAction, *, readonly: bool = False) -> Binding:
    """The Textual binding for ``action``. In read-only mode mutating actions stay bound
    (so pressing them explains the refusal) but are hidden from the footer."""
    show = action.show and not (readonly and action.readonly_off)
    return Binding(
        action.keys,
        action.action,
        action.description,
        show=show,
        key_display=action.key_display,
        priority=action.priority,
        tooltip=action.help,
        id=action.id,
        group=Binding.Group(action.group, compact=True) if action.group else None,
    )


def bindings_for(scope: str, *, readonly: bool = False) -> list[BindingType]:
    """Bindings for every registry action in ``scope``."""
    return [make_binding(a, readonly=readonly) for a in actions_for(scope)]


def resolve_command(text: str) -> ConsoleAction | None:
    """The action a command-mode line names (leading ':' optional), or None."""
    word = text.strip().lstrip(":").strip().split(" ", 1)[0].lower()
    action_id = COMMANDS.get(word)
    return BY_ID.get(action_id) if action_id else None


def aliases_of(action_id: str) -> list[str]:
    """Command-mode aliases for an action, longest first."""
    return sorted((alias for alias, target in COMMANDS.items() if target == action_id), key=lambda s: (-len(s), s))


def effective_keys(action: ConsoleAction, keymap: Mapping[str, str]) -> list[str]:
    """The keys an action is bound to after the user's keymap is applied."""
    raw = keymap.get(action.id, action.keys)
    return [k.strip() for k in raw.split(",") if k.strip()]


_KEY_NAMES = {
    "question_mark": "?",
    "colon": ":",
    "slash": "/",
    "enter": "enter",
    "escape": "esc",
}


def display_key(key: str) -> str:
    """A key as people write it: ``question_mark`` -> ``?``, ``ctrl+k`` -> ``^k``."""
    if key in _KEY_NAMES:
        return _KEY_NAMES[key]
    if key.startswith("ctrl+"):
        return "^" + key[5:]
    return key


def validate_keymap(keymap: Mapping[str, str]) -> list[str]:
    """Warnings for keymap entries that name no registry action (they are ignored)."""
    return [f"keymap: no action with id {binding_id!r}" for binding_id in keymap if binding_id not in BY_ID]


def hide_mutating(bindings: BindingsMap) -> BindingsMap:
    """A copy of ``bindings`` with mutating (and secret-revealing) registry actions hidden from the footer."""
    out: list[Binding] = []
    for _key, binding in bindings:
        action = BY_ID.get(binding.id or "")
        if action is not None and action.readonly_off:
            binding = replace(binding, show=False)
        out.append(binding)
    return BindingsMap(out)
