"""The create-agent form (a modal): name, program, priority and resource limits.

The program is one of ``examples/agents/*.py`` or any Python file given by
path. Submitting calls ``Runtime.create_agent``; a refused configuration is
shown inline, next to the field the engine's ``SymbiError`` names, with the
error's own message and hint. The form dismisses with the new
:class:`AgentInfo`, or None when cancelled.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from engine.agents.model import AgentConfig, Priority, ResourceLimits
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


class CreateAgentDialog(ModalScreen["AgentInfo | None"]):
    """A form that creates an agent through the runtime."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("ctrl+s", "submit", "Create", show=False),
    ]
    FIELDS = ("name", "program", "priority", "memory", "cpu", "timeout")

    def __init__(self, runtime: Any, examples: list[Path] | None = None) -> None:
        super().__init__(classes="dialog")
        self.runtime = runtime
        self.examples = example_programs() if examples is None else examples

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

    # -- submit -------------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "create":
            self.action_submit()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_submit(self) -> None:
        self.run_worker(self._submit(), group="create-agent", exclusive=True)

    async def _submit(self) -> None:
        self._clear_errors()
        try:
            config = await self._config()
            info = await self.runtime.create_agent(config)
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
        return AgentConfig(
            name=value["name"].strip(),
            dsl_source=source,
            priority=Priority.parse(priority),
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
