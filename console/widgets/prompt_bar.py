"""The k9s-style prompt above the footer: ``:`` commands and ``/`` filters.

Hidden until opened, so it never takes focus (or keys) by accident. It posts
:class:`PromptBar.Changed` as the text changes, :class:`PromptBar.Submitted`
on Enter and :class:`PromptBar.Closed` when it hides (``cancelled`` on Esc);
each carries the prompt's ``mode`` ("command" or "filter").
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label

from console.actions import COMMANDS

PLACEHOLDERS = {
    "command": "agents (a) · res · dash (d) · audit (au) · policy (pol) · vault · help · quit (q) — esc cancels",
    "filter": "name or state; enter keeps the filter, esc clears it",
    "export": "file to write the filtered events to (JSONL); enter writes, esc cancels",
}
PREFIXES = {"command": ":", "filter": "/", "export": ">"}


class PromptInput(Input):
    """The prompt's text field; Escape closes the prompt."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def action_cancel(self) -> None:
        parent = self.parent
        if isinstance(parent, PromptBar):
            parent.close(cancelled=True)


class PromptBar(Horizontal):
    """``:`` or ``/`` followed by an input, docked at the bottom, shown only while in use."""

    DEFAULT_CSS = """
    PromptBar { display: none; height: 1; background: $panel; }
    PromptBar.-open { display: block; }
    PromptBar > Label { width: 2; padding: 0 0 0 1; color: $accent; text-style: bold; }
    PromptBar > PromptInput { width: 1fr; background: $panel; }
    """

    class Changed(Message):
        def __init__(self, mode: str, value: str) -> None:
            super().__init__()
            self.mode = mode
            self.value = value

    class Submitted(Changed):
        pass

    class Closed(Message):
        def __init__(self, mode: str, cancelled: bool) -> None:
            super().__init__()
            self.mode = mode
            self.cancelled = cancelled

    def __init__(self) -> None:
        super().__init__(id="prompt")
        self.mode = ""

    def compose(self) -> ComposeResult:
        yield Label(":", id="prompt-prefix")
        yield PromptInput(id="prompt-input", select_on_focus=False, compact=True)

    @property
    def input(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def open(self, mode: str, value: str = "", placeholder: str | None = None) -> None:
        """Show the prompt in ``mode`` and focus it."""
        self.mode = mode
        self.query_one("#prompt-prefix", Label).update(PREFIXES.get(mode, ">"))
        field = self.input
        field.placeholder = PLACEHOLDERS.get(mode, "") if placeholder is None else placeholder
        field.suggester = (
            SuggestFromList(sorted(COMMANDS, key=len, reverse=True), case_sensitive=False)
            if mode == "command"
            else None
        )
        with field.prevent(Input.Changed):
            field.value = value
        field.cursor_position = len(value)
        self.add_class("-open")
        field.focus()

    def close(self, cancelled: bool = False) -> None:
        if not self.is_open:
            return
        self.remove_class("-open")
        self.post_message(self.Closed(self.mode, cancelled))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self.is_open:
            self.post_message(self.Changed(self.mode, event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        mode, value = self.mode, event.value
        self.close()
        self.post_message(self.Submitted(mode, value))
