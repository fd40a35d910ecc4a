"""``SymbiConsole``: the Textual app around an engine, reached only through its interface.

The app is given an :class:`engine.api.Engine` (the local one over an
embedded runtime, a read-only view of it, or in tests a scripted fake) and
knows nothing else of the engine. On mount it opens the engine (if the caller
has not), notes the event position, loads a snapshot and then streams the
events after that position; a worker posts each batch back to the app as an
:class:`EngineBatch`, which is folded into its :class:`ConsoleModel` and
handed to the visible screens (unless live refresh is paused). Engine calls
are awaited in handlers or workers (the harlequin pattern: ``@work`` plus
messages), never run blocking on the event loop. When the app exits it closes
the engine it opened, which stops the agents cleanly.

Read-only mode is the engine's :class:`~engine.api.ReadOnlyEngine`: every
mutating or revealing call is refused there with ``CONSOLE_001``. The app
asks the same marks before it opens a form for such an action
(:meth:`SymbiConsole.run_action`), so the operator is told before typing.

Screens are Textual modes (``1`` dashboard, ``2`` agents, ``3`` resources,
``4`` audit, ``5`` policy, ``6`` vault, ``7`` messages, ``8`` review queue, ``9`` knowledge); all key bindings come from
:mod:`console.actions`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive

from console.actions import (
    APP,
    BY_ID,
    COMMANDS,
    MAIN_SCREENS,
    ConsoleAction,
    bindings_for,
    resolve_command,
    validate_keymap,
)
from console.dialogs import ConfirmDialog
from console.model import ConsoleModel
from console.operations import OPERATIONS
from console.palette import RegistryCommands
from console.review import ReviewQueue, arrivals, is_review_event
from console.screens import (
    AgentDetailScreen,
    AgentsScreen,
    AuditScreen,
    ConsoleScreen,
    CreateAgentDialog,
    DashboardScreen,
    HelpScreen,
    KnowledgeScreen,
    MessagesScreen,
    PolicyScreen,
    ResourcesScreen,
    ToolsScreen,
    VaultScreen,
)
from console.theming import CSS_PATH, DEFAULT_THEME, load_themes
from console.widgets import EngineSummary
from engine.api import AgentId, AgentInfo, AgentState, ConsoleSettings, Engine, EngineInfo, EngineMetrics, read_only
from engine.api.readonly import ReadOnlyEngine, refusal
from engine.errors import ErrorCode, SymbiError
from engine.events import AgentCreated, AgentDeleted, AgentStateChanged, Event, MachineSample

BATCH_MAX = 500  # events folded into one message at most
REVIEW_SETTLE = 0.3  # seconds after a review event before the queue is looked at again


class EngineBatch(Message):
    """Engine events drained from the subscription in one go."""

    def __init__(self, events: list[Event]) -> None:
        super().__init__()
        self.events = events


def short_path(path: Path | str) -> str:
    """``/home/me/x`` -> ``~/x``."""
    text = str(path)
    home = str(Path.home())
    return "~" + text[len(home) :] if home != "/" and (text == home or text.startswith(home + "/")) else text


class ConnectionChanged(Message):
    """The attached engine went out of reach (``up`` False) or came back."""

    def __init__(self, up: bool, why: str) -> None:
        super().__init__()
        self.up = up
        self.why = why


class SymbiConsole(App[None]):
    """The operations console."""

    TITLE = "symbi-console"
    CSS_PATH = str(CSS_PATH)
    BINDINGS = bindings_for(APP)
    COMMANDS = {RegistryCommands}
    MODES = {
        "dashboard": DashboardScreen,
        "agents": AgentsScreen,
        "resources": ResourcesScreen,
        "audit": AuditScreen,
        "policy": PolicyScreen,
        "vault": VaultScreen,
        "messages": MessagesScreen,
        "tools": ToolsScreen,
        "knowledge": KnowledgeScreen,
    }

    summary: reactive[EngineSummary] = reactive(EngineSummary())
    paused: reactive[bool] = reactive(False)

    def __init__(
        self,
        engine: Engine,
        *,
        readonly: bool = False,
        settings: ConsoleSettings | None = None,
        clock: Callable[[], float] | None = None,
        theme_name: str | None = None,
        data_dir_label: str | None = None,
    ) -> None:
        """``engine`` is opened on mount if it is not open yet (and then closed on exit).
        ``readonly`` puts it behind :class:`~engine.api.ReadOnlyEngine`. ``settings`` (theme,
        keymap, refresh interval) default to the engine's ``[console]`` section; ``theme_name``
        (from ``--theme``) beats both. ``clock`` gives "now" for uptimes and ages (tests freeze
        it). ``data_dir_label`` replaces the data dir in the header (for screenshots). If the
        engine cannot be opened the app exits with return code 2 and the error in
        :attr:`startup_error`."""
        super().__init__()
        self.readonly = readonly or isinstance(engine, ReadOnlyEngine)
        self.engine: Engine = read_only(engine) if readonly and not isinstance(engine, ReadOnlyEngine) else engine
        self.now: Callable[[], float] = clock or time.time
        self.settings = settings
        self.keymap: dict[str, str] = dict(settings.keymap) if settings is not None else {}
        self.refresh_interval = float(settings.refresh_interval) if settings is not None else 1.0
        self.model = ConsoleModel()
        self.review: ReviewQueue | None = None  # what waits for the operator (the header's "review N")
        self._review_timer: Any = None
        self.metrics: EngineMetrics | None = None
        self.info: EngineInfo | None = None
        self.opened_at = self.now()
        self.engine_ready = asyncio.Event()
        self.startup_error: SymbiError | None = None
        self._owns_engine = False
        self._quitting = False
        self._label = data_dir_label
        self._location = self._dir_label = data_dir_label or ""
        self._theme_name = theme_name
        self._warnings: list[str] = []
        self._clashes_seen: set[str] = set()
        self.connected = True
        self.next_context: str | None = None  # set by :ctx NAME: the engine to open after this app exits
        remote = getattr(self.engine, "inner", self.engine)
        if hasattr(remote, "on_connection"):  # an engine in another process: say when it is out of reach
            remote.on_connection = lambda up, why: self.post_message(ConnectionChanged(up, why))
        self.themes = load_themes()
        for item in self.themes:
            self.register_theme(item)
        self._apply_theme(settings.theme if settings is not None else None)

    def _apply_theme(self, configured: str | None) -> None:
        wanted = self._theme_name or configured or DEFAULT_THEME
        if wanted not in self.available_themes:
            self._warnings.append(f"unknown theme {wanted!r}; using {DEFAULT_THEME}")
            wanted = DEFAULT_THEME
        self.theme = wanted

    @property
    def data_dir(self) -> str:
        """The engine's data dir (as the engine names it; :meth:`display_path` shortens it)."""
        return self.info.data_dir if self.info is not None else ""

    @property
    def attached(self) -> bool:
        """The engine runs in another process (quitting leaves it and its agents running)."""
        return self.info is not None and self.info.mode in ("attached", "remote")

    @property
    def termination_timeout(self) -> float:
        return self.info.termination_timeout if self.info is not None else 10.0

    # -- start and stop -----------------------------------------------------------------

    async def on_mount(self) -> None:
        try:
            if not self.engine.is_open:
                await self.engine.open()
                self._owns_engine = True
            self.info = await self.engine.info()
        except SymbiError as exc:
            self.startup_error = exc
            self.exit(return_code=2)
            return
        if self.settings is None:
            self.settings = self.info.console
            self.keymap = dict(self.settings.keymap)
            self.refresh_interval = float(self.settings.refresh_interval)
            self._apply_theme(self.settings.theme)
        self._warnings = validate_keymap(self.keymap) + self._warnings
        self.set_keymap(self.keymap)
        self._location = self._dir_label = self._label or short_path(self.info.data_dir)
        if self.attached:
            self._location += f" · pid {self.info.pid} on {self.info.host}"
        position = await self.engine.events.position()
        await self.load_snapshot()
        self.opened_at = self.info.started_at
        await self.refresh_review()
        self.run_worker(self._pump(position), name="engine-events", group="engine", exclusive=True)
        self.set_interval(self.refresh_interval, self._tick, name="console-refresh")
        await self.switch_mode("dashboard")
        self._update_summary()
        for warning in self._warnings:
            self.notify(warning, title="Config", severity="warning", markup=False)
        self.engine_ready.set()

    async def load_snapshot(self) -> None:
        """Every agent and the engine's metrics, read again (at start, after missed events, after a
        reconnect)."""
        self.model.load(await self.engine.agents.list_all(), self.now(), self.info.mode if self.info else "")
        self.metrics = await self.engine.resources.metrics()

    async def reload_snapshot(self) -> None:
        """:meth:`load_snapshot` from a handler: an engine error is shown, not raised."""
        try:
            await self.load_snapshot()
        except SymbiError as exc:
            if exc.code is not ErrorCode.API_007:
                self.show_error(exc, title="Engine")

    async def on_unmount(self) -> None:
        await self.close_engine()

    async def close_engine(self) -> None:
        """Close the engine if this app opened it (stopping its agents cleanly)."""
        if self._owns_engine and self.engine.is_open:
            await self.engine.close("console quit")

    async def action_quit(self) -> None:
        if self._quitting:
            return
        busy = self.model.busy()
        if busy:
            self.run_worker(self._confirm_quit(busy), group="quit", exclusive=True)
        else:
            await self._quit()

    async def _confirm_quit(self, busy: list[AgentInfo]) -> None:
        names = ", ".join(f"{a.name} ({a.state.value})" for a in busy[:5])
        more = f" and {len(busy) - 5} more" if len(busy) > 5 else ""
        one = len(busy) == 1
        fate = "stopped cleanly" if self._owns_engine and not self.attached else "left running in the engine"
        question = (
            f"{len(busy)} agent{' is' if one else 's are'} active: {names}{more}. "
            f"Quit? {'It' if one else 'They'} will be {fate}."
        )
        if await self.push_screen_wait(ConfirmDialog("Quit symbi-console?", question, yes="Quit", no="Stay")):
            await self._quit()
        else:
            self.next_context = None  # a :ctx switch is called off too

    async def _quit(self) -> None:
        self._quitting = True
        if self._owns_engine and self.engine.is_open:
            active = [a for a in self.model.agents.values() if a.state.is_active and not self.attached]
            if active:
                self.notify(f"stopping {len(active)} agent(s)…", title="Quitting")
            await self.close_engine()
        self.exit()

    # -- engine events ----------------------------------------------------------------------

    async def _pump(self, position: int) -> None:
        """Worker: stream the engine's events after ``position``, post each batch to the app.
        A batch that says events were missed (the console fell behind what the engine keeps)
        makes the app read its snapshot again first."""
        stream = self.engine.events.stream(after=position, max_batch=BATCH_MAX)
        try:
            async for batch in stream:
                if batch.missed:
                    await self.reload_snapshot()
                if batch.events:
                    self.post_message(EngineBatch(batch.events))
        except SymbiError as exc:
            self.show_error(exc, title="Engine events")
        finally:
            await stream.aclose()

    async def on_connection_changed(self, message: ConnectionChanged) -> None:
        if message.up == self.connected:
            return
        self.connected = message.up
        self._update_summary()
        if message.up:
            self.notify("the engine answers again; the view is live", title="Engine", timeout=5)
            await self.reload_snapshot()
            for screen in self._console_screens():
                screen.refresh_view()
        else:
            self.notify(
                f"the engine is out of reach ({message.why}); this is the last view read, and changes are "
                "refused until it is back. Reconnecting…",
                title="Engine",
                severity="error",
                timeout=10,
                markup=False,
            )

    async def on_engine_batch(self, message: EngineBatch) -> None:
        now = self.now()
        stale: set[AgentId] = set()
        metrics_stale = False
        for event in message.events:
            self.model.apply(event, now)
            if isinstance(event, (AgentCreated, AgentStateChanged)):
                stale.add(event.agent_id)
            if isinstance(event, (AgentStateChanged, AgentDeleted, MachineSample)):
                metrics_stale = True
        for agent_id in stale:
            if agent_id not in self.model.agents and not any(
                isinstance(e, AgentCreated) and e.agent_id == agent_id for e in message.events
            ):
                continue  # deleted meanwhile
            try:
                self.model.put(await self.engine.agents.get(agent_id))
            except SymbiError as exc:
                if exc.code is ErrorCode.AGENT_001:
                    self.model.agents.pop(agent_id, None)
        if metrics_stale and self.engine.is_open and self.connected:
            try:
                self.metrics = await self.engine.resources.metrics()
            except SymbiError as exc:
                if exc.code is not ErrorCode.API_007:  # out of reach: the header says so already
                    self.show_error(exc, title="Metrics")
        if any(is_review_event(e) for e in message.events) and self._review_timer is None:
            # a discovery publishes one event per tool: look once the burst has settled, so one
            # toast and one bell cover it (even while paused or on another screen)
            self._review_timer = self.set_timer(REVIEW_SETTLE, self._review_settled, name="review-settle")
        if self.paused:
            return
        self._update_summary()
        for screen in self._console_screens():
            screen.engine_update(message.events)

    def _console_screens(self) -> list[ConsoleScreen]:
        """Console screens of the current mode that can be drawn on (none once shutdown began)."""
        if not self.is_running:  # screens are being taken apart
            return []
        return [s for s in self.screen_stack if isinstance(s, ConsoleScreen) and s.is_mounted]

    def _tick(self) -> None:
        # Timer callbacks run outside the message queue, so they can race the shutdown;
        # _console_screens() returns nothing once it has begun.
        if not self.paused and self.connected:  # out of reach: keep the last view, ask nothing
            for screen in self._console_screens():
                screen.tick()

    def _update_summary(self) -> None:
        counts = self.model.counts()
        self.summary = EngineSummary(
            mode=self.info.mode if self.info is not None else "embedded",
            location=self._location,
            counts=tuple((state, counts[state]) for state in AgentState),
            paused=self.paused,
            readonly=self.readonly,
            review=self.review.total if self.review is not None else 0,
            unconfined=len(self.model.unconfined()),
            disconnected=not self.connected,
        )

    async def _review_settled(self) -> None:
        self._review_timer = None
        await self.refresh_review()

    async def refresh_review(self) -> None:
        """Look at the review queue again: the header's count, and a toast and the terminal bell for
        whatever started waiting since the last look (on any screen). The first look only counts."""
        if not self.engine.is_open or not self.connected:
            return
        try:
            queue = await self.engine.tools.queue()
        except SymbiError as exc:
            self.show_error(exc, title="Review queue")
            return
        first = self.review is None
        new = arrivals(self.review, queue, {a: info.name for a, info in self.model.agents.items()})
        self.review = queue
        self._update_summary()
        if first:
            if queue.total:
                self.notify(
                    f"{queue.total} item(s) wait for review: 8 opens the queue", title="Review", severity="warning"
                )
            return
        if new:
            shown = "\n".join(new[:4]) + (f"\n… and {len(new) - 4} more" if len(new) > 4 else "")
            self.notify(
                f"{shown}\n8 opens the review queue",
                title="Waiting for you",
                severity="warning",
                timeout=10,
                markup=False,
            )
            self.bell()

    def display_path(self, text: str) -> str:
        """``text`` with the engine's data dir written as the header shows it (``~/symbi-data/...``)."""
        root = self.data_dir
        if not root:
            return text
        if text == root:
            return self._dir_label
        if text.startswith(root + "/"):
            return self._dir_label.rstrip("/") + text[len(root) :]
        return text

    def screen_shown(self, screen: ConsoleScreen) -> None:
        """Called by a console screen when it becomes visible."""
        self._update_summary()

    def watch_paused(self, paused: bool) -> None:
        self._update_summary()
        if not paused:
            for screen in self._console_screens():
                screen.refresh_view()

    def watch_theme(self, _theme: str) -> None:
        if self.is_running:  # re-colour cells that carry theme colours
            for screen in self._console_screens():
                screen.refresh_view()

    # -- actions ----------------------------------------------------------------------------

    async def action_goto(self, mode: str) -> None:
        if mode not in MAIN_SCREENS:
            return
        if self.current_mode == mode:
            while len(self.screen_stack) > 1 and isinstance(self.screen, AgentDetailScreen):
                self.pop_screen()
            return
        await self.switch_mode(mode)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.keymap, self.readonly))

    def action_command_mode(self) -> None:
        if isinstance(self.screen, ConsoleScreen):
            self.screen.open_prompt("command")

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self.notify("live refresh paused (p resumes)" if self.paused else "live refresh resumed", title="Refresh")

    def action_cycle_theme(self) -> None:
        names = [t.name for t in self.themes]
        current = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(current + 1) % len(names)]
        self.notify(f"theme: {self.theme}", title="Theme")

    async def run_command(self, text: str) -> None:
        """Run a command-mode line such as ``:ag`` (``:ctx NAME`` switches engines)."""
        if not text.strip():
            return
        word, _, argument = text.strip().lstrip(":").strip().partition(" ")
        if word.lower() in ("ctx", "context"):
            await self.switch_context(argument.strip())
            return
        action = resolve_command(text)
        if action is None:
            known = ", ".join(sorted(COMMANDS))
            self.notify(
                f"unknown command :{text.strip().lstrip(':')}. Known: {known}",
                title="Command",
                severity="error",
                markup=False,
            )
            return
        await self.run_registry_action(action.id)

    async def switch_context(self, name: str) -> None:
        """``:ctx``: list the configured engines; ``:ctx NAME``: leave this one (as quitting would:
        an embedded engine's agents are stopped, asked first) and open NAME's."""
        contexts = dict(self.settings.contexts) if self.settings is not None else {}
        if not name:
            listed = "\n".join(f"{n}  {u}" for n, u in sorted(contexts.items())) or (
                "none: add [[console.contexts]] (name, url, token_env) to runtime_config.toml"
            )
            self.notify(listed, title="Contexts (:ctx NAME switches)", markup=False, timeout=8)
            return
        if name not in contexts:
            self.show_error(
                SymbiError(
                    ErrorCode.CONFIG_001,
                    f"no console context named {name!r}",
                    offending=name,
                    hint=f"contexts: {', '.join(sorted(contexts)) or 'none configured'}",
                ),
                title="Context",
            )
            return
        self.next_context = name  # cleared again if the operator chooses to stay (see _confirm_quit)
        await self.action_quit()

    async def run_registry_action(self, action_id: str) -> None:
        """Run a registry action from the palette or command mode, wherever it lives."""
        action = BY_ID[action_id]
        if APP in action.scopes:
            await self.run_action(action.action)
            return
        screen = self.screen
        if getattr(screen, "SCOPE", None) not in action.scopes:
            home = next((scope for scope in action.scopes if scope in MAIN_SCREENS), None)
            if home is None:
                self.notify(f"{action.title} works on the {action.scopes[0]} screen", severity="warning")
                return
            await self.action_goto(home)
            screen = self.screen
        await self.run_action(action.action, screen)

    # -- agent operations -----------------------------------------------------------------------

    async def run_action(
        self,
        action: str | Any,
        default_namespace: Any = None,
        namespaces: Any = None,
    ) -> bool:
        """Every key, palette entry and command runs through here: in read-only mode an action
        whose engine call the read-only engine would refuse is refused now, with that same
        ``CONSOLE_001`` error, before any form opens (the one check; handlers have none)."""
        if not self.connected and isinstance(action, str):
            target, name, _params = self._parse_action(
                action, self if default_namespace is None else default_namespace, namespaces
            )
            registry = self.registry_action(name, target)
            if registry is not None and registry.readonly_off:
                self.show_error(
                    SymbiError(
                        ErrorCode.API_007,
                        f"'{registry.description}' needs the engine, which is out of reach",
                        offending=registry.id,
                        hint="wait for the header's DISCONNECTED to go (the console reconnects by itself)",
                    ),
                    title="Disconnected",
                )
                return True
        if self.readonly and isinstance(action, str):
            target, name, _params = self._parse_action(
                action, self if default_namespace is None else default_namespace, namespaces
            )
            registry = self.registry_action(name, target)
            if registry is not None and registry.calls is not None and registry.readonly_off:
                group, method = registry.calls.split(".", 1)
                self.show_error(refusal(group, method, registry.engine_kind), title="Read-only")
                return True
        return await super().run_action(action, default_namespace, namespaces)

    def registry_action(self, name: str, target: Any) -> ConsoleAction | None:
        """The registry action that runs ``action_<name>`` on ``target`` (a screen or the app)."""
        scope = APP if target is self else getattr(target, "SCOPE", None)
        for action in BY_ID.values():
            if scope in action.scopes and action.action.split("(", 1)[0] == name:
                return action
        return None

    def show_error(self, error: SymbiError, *, title: str = "") -> None:
        """A SymbiError as a notification: ``code: message`` and the hint, never a traceback."""
        text = f"{error.code.value}: {error.message}"
        if error.offending is not None:
            text += f" (input: {error.offending!r})"
        if error.hint:
            text += f"\nHint: {error.hint}"
        self.notify(text, title=title or "Error", severity="error", timeout=8, markup=False)

    def agent_action(self, action_id: str, info: AgentInfo | None) -> None:
        """Start, stop, suspend, resume, terminate or delete an agent (asking first where needed)."""
        if info is None:
            self.notify("no agent selected", severity="warning")
            return
        self.run_worker(self._agent_action(action_id, info), group="agent-ops")

    async def _agent_action(self, action_id: str, info: AgentInfo) -> None:
        op = OPERATIONS[action_id]
        if op.confirm:
            grace = self.termination_timeout
            if not await self.push_screen_wait(ConfirmDialog(op.confirm_title, op.question(info, grace))):
                return
        try:
            await op.run(self.engine.agents, info.id)
        except SymbiError as exc:
            self.show_error(exc, title=f"Cannot {action_id.split('.')[1]} {info.name}")
            return
        self.notify(f"{info.name}: {op.done}", title="Agents")

    def create_agent_dialog(self) -> None:
        def created(info: AgentInfo | None) -> None:
            if info is None:
                return
            self.model.put(info)
            for screen in self._console_screens():
                screen.refresh_view()
                if isinstance(screen, AgentsScreen):
                    screen.select(info.id)
            self.notify(f"created {info.name} (r starts it)", title="Agents")

        self.push_screen(CreateAgentDialog(self.engine), created)

    def open_agent(self, agent_id: AgentId) -> None:
        self.push_screen(AgentDetailScreen(agent_id))

    # -- keymap ------------------------------------------------------------------------------

    def handle_bindings_clash(self, clashed_bindings: set[Binding], node: Any) -> None:
        for binding in clashed_bindings:
            key = f"{binding.id}:{binding.key}"
            if key not in self._clashes_seen:
                self._clashes_seen.add(key)
                self.notify(
                    f"keymap: {binding.key} now replaces {binding.id or binding.action}",
                    title="Config",
                    severity="warning",
                    markup=False,
                )
