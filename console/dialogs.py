"""Modal dialogs: the yes/no confirmation asked before anything destructive, and the base
of the console's forms.

Modelled on frogmouth's ``YesNoDialog``: a centred box with a title, a
question and two buttons; ``y``/``n`` answer directly, Escape means no, and
the safe answer ("No") has focus first so a stray Enter does no harm.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

T = TypeVar("T")


class ConfirmDialog(ModalScreen[bool]):
    """Ask a yes/no question; dismisses with True for yes."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", show=False),
        Binding("n", "answer(False)", "No", show=False),
        Binding("escape", "answer(False)", "Cancel", show=False),
        Binding("left,right", "app.focus_next", show=False),
    ]

    def __init__(self, title: str, question: str, *, yes: str = "Yes", no: str = "No", danger: bool = True) -> None:
        super().__init__(classes="dialog")
        self._title = title
        self._question = question
        self._yes = yes
        self._no = no
        self._danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label(self._title, id="dialog-title")
            yield Static(self._question, id="dialog-question", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button(f"{self._no} (n)", id="no", variant="primary")
                yield Button(f"{self._yes} (y)", id="yes", variant="error" if self._danger else "success")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class FormScreen(ModalScreen[T]):
    """A modal form: its submit button (id :attr:`SUBMIT_BUTTON`) or Enter in an input submits,
    any other button cancels; cancelling dismisses with None. Subclasses write ``action_submit``."""

    SUBMIT_BUTTON: ClassVar[str] = "save"

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == self.SUBMIT_BUTTON:
            self.action_submit()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_submit(self) -> None:
        raise NotImplementedError
