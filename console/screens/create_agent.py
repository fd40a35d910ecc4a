"""The create-agent form (a modal): name, program, priority, security tier and resource limits.

The program is one of ``examples/agents/*.py`` or any Python file given by
path. The tier list comes from the sandbox doctor
(``engine.resources.tiers()``): a tier that works here is offered with how
it isolates (``Tier1 — docker``); one that does not is shown greyed out and
cannot be chosen, with the reason (``Tier3 — unavailable: firecracker binary
not found``) and the fix below. Submitting calls ``engine.agents.create``; a
refused configuration is shown inline, next to the field the engine's
``SymbiError`` names, with the error's own message and hint. The form
dismisses with the new :class:`AgentInfo`, or None when cancelled.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, Input, Label, OptionList, Select, Static

from console.dialogs import FormScreen
from console.format import theme_colour
from engine.api import AgentConfig, AgentInfo, Engine, Priority, ResourceLimits, SecurityTier, TierStatus
from engine.errors import ErrorCode, SymbiError

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples" / "agents"
DEFAULT_PROGRAM = "hello.py"

# Which form field an engine error is about, from words in its message.
_FIELD_WORDS: tuple[tuple[str, str], ...] = (
    ("memory_mb", "memory"),
    ("cpu_cores", "cpu"),
    ("execution_timeout", "timeout"),
    ("dsl_source", "program"),
    ("program", "program"),
    ("priority", "priority"),
    ("security_tier", "tier"),
    ("tier", "tier"),
    ("name", "name"),
)


def example_programs(directory: Path = EXAMPLES_DIR) -> list[Path]:
    return sorted(directory.glob("*.py")) if directory.is_dir() else []


def field_for(error: SymbiError) -> str | None:
    """The form field an error is about, or None for a form-wide error."""
    text = error.message.lower()
    for word, field_id in _FIELD_WORDS:
        if word in text:
            return field_id
    return None


@dataclass(frozen=True, slots=True)
class TierChoice:
    """One entry of the tier list: a security tier, whether it works here, and what to say."""

    tier: SecurityTier
    available: bool
    label: str
    note: str = ""  # why not, and how to fix it (unavailable tiers)


def _reason(detail: str) -> str:
    return detail.split(";")[0].strip()


def tier_choices(statuses: list[TierStatus]) -> list[TierChoice]:
    """The create form's tier list from the sandbox doctor's rows (``TierStatus``), in tier order.

    A tier is available when any of its sandboxes works (Native: plain or bubblewrap)."""
    out: list[TierChoice] = []
    for tier in SecurityTier:
        rows = [s for s in statuses if s.tier is tier]
        if not rows:
            continue
        working = [s.name for s in rows if s.available]
        if working:
            out.append(TierChoice(tier, True, f"{tier.value} — {', '.join(working)}"))
            continue
        reason = "; ".join(_reason(s.detail) for s in rows if s.detail) or "not available on this machine"
        fixes = "; ".join(s.fix for s in rows if s.fix)
        label = f"{tier.value} — unavailable: {reason}"
        out.append(TierChoice(tier, False, label, f"{tier.value}: {reason}" + (f". Fix: {fixes}" if fixes else "")))
    return out


def _number(field_id: str, raw: str, kind: type, *, optional: bool = False) -> Any:
    text = raw.strip()
    if not text and optional:
        return None
    names = {"memory": "memory_mb", "cpu": "cpu_cores", "timeout": "execution_timeout"}
    hints = {
        "memory": "a whole number of MB greater than 0, e.g. 256",
        "cpu": "a number of cores greater than 0, e.g. 0.5",
        "timeout": "seconds greater than 0, or empty for no timeout",
    }
    try:
        value = kind(text)
    except ValueError:
        raise SymbiError(
            ErrorCode.AGENT_004, f"invalid resource_limits.{names[field_id]}", offending=raw, hint=hints[field_id]
        ) from None
    return value


class CreateAgentDialog(FormScreen[AgentInfo | None]):
    """A form that creates an agent through the engine."""

    SUBMIT_BUTTON = "create"

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("ctrl+s", "submit", "Create", show=False),
    ]
    FIELDS = ("name", "program", "priority", "memory", "cpu", "timeout", "tier")

    class TiersFound(Message):
        def __init__(self, choices: list[TierChoice]) -> None:
            super().__init__()
            self.choices = choices

    def __init__(self, engine: Engine, examples: list[Path] | None = None) -> None:
        super().__init__(classes="dialog")
        self.engine = engine
        self.examples = example_programs() if examples is None else examples
        self.tiers: list[TierChoice] = []

    def compose(self) -> ComposeResult:
        options = [(p.name, str(p)) for p in self.examples]
        default = next((value for label, value in options if label == DEFAULT_PROGRAM), None)
        defaults = ResourceLimits()
        with VerticalScroll(id="form-box"):
            yield Label("New agent", id="form-title")
            yield from self._row("name", "Name", Input(placeholder="letters, digits, . _ -", id="f-name", compact=True))
            yield from self._row(
                "program",
                "Program",
                Select(
                    options, prompt="(use the file path)", value=default or Select.BLANK, id="f-program", compact=True
                ),
            )
            yield from self._row(
                "path", "or file path", Input(placeholder="path/to/agent.py", id="f-path", compact=True)
            )
            yield from self._row(
                "priority",
                "Priority",
                Select(
                    [(p.label, p.label) for p in Priority],
                    value=Priority.NORMAL.label,
                    allow_blank=False,
                    id="f-priority",
                    compact=True,
                ),
            )
            yield from self._row("memory", "Memory MB", Input(str(defaults.memory_mb), id="f-memory", compact=True))
            yield from self._row("cpu", "CPU cores", Input(f"{defaults.cpu_cores:g}", id="f-cpu", compact=True))
            yield from self._row(
                "timeout",
                "Run timeout s",
                Input(f"{defaults.execution_timeout:g}", placeholder="empty = none", id="f-timeout", compact=True),
            )
            yield from self._row(
                "tier",
                "Security tier",
                Select(
                    [(SecurityTier.NATIVE.value, SecurityTier.NATIVE.value)],
                    value=SecurityTier.NATIVE.value,
                    allow_blank=False,
                    id="f-tier",
                    compact=True,
                ),
            )
            yield Static(id="tier-note", classes="form-note", markup=False)
            yield Static(id="form-error", markup=False)
            with Horizontal(id="form-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Create", id="create", variant="primary")

    def _row(self, field_id: str, label: str, widget: Any) -> ComposeResult:
        with Horizontal(classes="form-row"):
            yield Label(label, classes="form-label")
            yield widget
        yield Label("", id=f"e-{field_id}", classes="field-error", markup=False)

    def on_mount(self) -> None:
        self.query_one("#f-name", Input).focus()
        self._find_tiers()

    # -- tiers ----------------------------------------------------------------------------------

    @work(group="create-agent-tiers", exclusive=True)
    async def _find_tiers(self) -> None:
        try:
            statuses = await self.engine.resources.tiers()
        except SymbiError as exc:
            self.post_message(self.TiersFound([TierChoice(SecurityTier.NATIVE, True, SecurityTier.NATIVE.value)]))
            self.app.notify(exc.render(), title="Sandbox doctor", severity="warning", markup=False)
            return
        self.post_message(self.TiersFound(tier_choices(statuses)))

    async def on_create_agent_dialog_tiers_found(self, message: TiersFound) -> None:
        self.tiers = message.choices
        if not self.tiers:
            return
        old = self.query_one("#f-tier", Select)
        usable = [c.tier.value for c in self.tiers if c.available]
        value = old.value if old.value in usable else (usable[0] if usable else Select.BLANK)
        had_focus = old.has_focus
        # a new Select rather than set_options: the shown label of an unchanged value would go stale
        select = Select(
            [(choice.label, choice.tier.value) for choice in self.tiers],
            value=value,
            allow_blank=not usable,
            id="f-tier",
            compact=True,
        )
        row = old.parent
        assert isinstance(row, Widget)
        await old.remove()
        await row.mount(select)
        overlay = select.query_one(OptionList)
        for index, choice in enumerate(self.tiers):
            if not choice.available:
                overlay.disable_option_at_index(index)
        if had_focus:
            select.focus()
        notes = [c.note for c in self.tiers if not c.available]
        note = self.query_one("#tier-note", Static)
        note.update(Text("\n".join(notes), style=theme_colour(self.app.theme_variables, "foreground-muted")))
        note.set_class(bool(notes), "-shown")

    # -- submit -------------------------------------------------------------------------------

    def action_submit(self) -> None:
        self.run_worker(self._submit(), group="create-agent", exclusive=True)

    async def _submit(self) -> None:
        self._clear_errors()
        try:
            config = await self._config()
            info = await self.engine.agents.create(config)
        except SymbiError as exc:
            self._show_error(exc)
            return
        self.dismiss(info)

    async def _config(self) -> AgentConfig:
        value = {f: self.query_one(f"#f-{f}", Input).value for f in ("name", "path", "memory", "cpu", "timeout")}
        memory = _number("memory", value["memory"], int)
        cpu = _number("cpu", value["cpu"], float)
        timeout = _number("timeout", value["timeout"], float, optional=True)
        program = value["path"].strip() or self.query_one("#f-program", Select).value
        if not isinstance(program, str) or not program:
            raise SymbiError(ErrorCode.AGENT_004, "no agent program chosen", hint="pick an example or give a file path")
        path = Path(program).expanduser()
        try:
            source = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SymbiError(
                ErrorCode.AGENT_004,
                f"cannot read the program file: {getattr(exc, 'strerror', None) or exc}",
                offending=str(path),
                hint="give the path of a readable Python file",
            ) from None
        priority = self.query_one("#f-priority", Select).value
        tier = SecurityTier(self.query_one("#f-tier", Select).value)
        choice = next((c for c in self.tiers if c.tier is tier), None)
        if choice is not None and not choice.available:
            raise SymbiError(
                ErrorCode.AGENT_004,
                f"security tier {tier.value} is not available here",
                offending=tier.value,
                hint=choice.note or "pick a tier that the sandbox doctor found working",
            )
        return AgentConfig(
            name=value["name"].strip(),
            dsl_source=source,
            priority=Priority.parse(priority),
            security_tier=tier,
            resource_limits=ResourceLimits(memory_mb=memory, cpu_cores=cpu, execution_timeout=timeout),
        )

    def _clear_errors(self) -> None:
        for label in self.query(".field-error"):
            label.update("")  # type: ignore[attr-defined]
            label.remove_class("-shown")
        self.query_one("#form-error", Static).update("")

    def _show_error(self, error: SymbiError) -> None:
        """The error next to its field (with the hint below the form), or below the form."""
        field_id = field_for(error)
        bottom = error.render()
        if field_id is not None:
            label = self.query_one(f"#e-{field_id}", Label)
            detail = error.message if error.offending is None else f"{error.message} (input: {error.offending!r})"
            label.update(f"{error.code.value}: {detail}")
            label.add_class("-shown")
            target = self.query(f"#f-{field_id}")
            if target:
                target.first().focus()
            bottom = f"Hint: {error.hint}" if error.hint else ""
        self.query_one("#form-error", Static).update(bottom)
