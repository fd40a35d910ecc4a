"""The review queue's confirmation dialog: what is decided, on what, and the choices a decision needs.

One modal for every decision of the queue (approve, reject, defer,
reanalyze, for one item or several marked ones): a title, a body that
shows exactly what is decided (the tool and its risk, the call's exact
arguments and their SHA-256, both key fingerprints ...), then

* the approval scope, when tools are approved: ``always`` (signed with the
  operator key), ``session`` (until the engine restarts) or ``once`` (one
  call, then back to review); ``1``/``2``/``3`` pick one;
* a reason or note, when the decision takes one; a *required* reason
  cannot be left empty (the dialog says so and stays open).

``y`` (or the confirm button) decides, ``n`` / Escape cancels; inside the
text field Enter decides and Escape cancels. The safe answer has focus
first, as in :class:`console.dialogs.ConfirmDialog`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from console.dialogs import FormScreen

SCOPES = (
    ("always", "always: signed with the operator key, until the definition changes"),
    ("session", "session: until the engine restarts"),
    ("once", "once: one call, then back to review"),
)


@dataclass(frozen=True)
class Decision:
    """What the operator chose in the dialog."""

    scope: str | None = None
    reason: str = ""


class DecisionDialog(FormScreen["Decision | None"]):
    """Confirm a review decision; dismisses with a :class:`Decision`, or None when cancelled."""

    DEFAULT_CSS = """
    DecisionDialog #dialog-box { width: 90; max-height: 90%; }
    DecisionDialog #decision-body { height: auto; margin-bottom: 1; }
    DecisionDialog #decision-scope { height: auto; width: 100%; margin-bottom: 1; }
    DecisionDialog #decision-reason { margin-bottom: 0; }
    DecisionDialog #decision-error { color: $error; height: auto; display: none; }
    DecisionDialog #decision-error.-shown { display: block; }
    DecisionDialog .decision-label { color: $foreground-muted; height: 1; }
    """

    SUBMIT_BUTTON = "yes"

    BINDINGS = [
        Binding("y", "submit", "Yes", show=False),
        Binding("n,escape", "cancel", "No", show=False),
        Binding("1", "scope(0)", show=False),
        Binding("2", "scope(1)", show=False),
        Binding("3", "scope(2)", show=False),
        Binding("left,right", "app.focus_next", show=False),
    ]

    def __init__(
        self,
        title: str,
        body: Text | str,
        *,
        yes: str = "Yes",
        no: str = "Cancel",
        scopes: bool = False,
        reason: str | None = None,  # None: no field; "required" or "optional"
        reason_label: str = "Reason",
        danger: bool = True,
    ) -> None:
        super().__init__(classes="dialog")
        self._title = title
        self._body = body
        self._yes = yes
        self._no = no
        self.scopes = scopes
        self.reason = reason
        self._reason_label = reason_label
        self._danger = danger

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog-box"):
            yield Label(self._title, id="dialog-title", markup=False)
            yield Static(self._body, id="decision-body", markup=False)
            if self.scopes:
                yield Label("Approval scope (1, 2, 3)", classes="decision-label")
                with RadioSet(id="decision-scope"):
                    for index, (scope, label) in enumerate(SCOPES):
                        yield RadioButton(label, value=index == 0, id=f"scope-{scope}")
            if self.reason is not None:
                need = "required" if self.reason == "required" else "optional"
                yield Label(f"{self._reason_label} ({need})", classes="decision-label")
                yield Input(placeholder=f"{self._reason_label.lower()} ({need}); enter confirms", id="decision-reason")
                yield Label("", id="decision-error", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button(f"{self._no} (n)", id="no", variant="primary")
                yield Button(f"{self._yes} (y)", id="yes", variant="error" if self._danger else "success")

    def on_mount(self) -> None:
        if self.reason is not None:
            self.query_one("#decision-reason", Input).focus()
        elif self.scopes:
            self.query_one("#decision-scope", RadioSet).focus()
        else:
            self.query_one("#no", Button).focus()

    @property
    def scope(self) -> str | None:
        if not self.scopes:
            return None
        pressed = self.query_one("#decision-scope", RadioSet).pressed_button
        return (pressed.id or "scope-always").removeprefix("scope-") if pressed is not None else "always"

    def action_scope(self, index: int) -> None:
        if self.scopes:
            self.query_one(f"#scope-{SCOPES[index][0]}", RadioButton).value = True

    def action_submit(self) -> None:
        text = ""
        if self.reason is not None:
            field = self.query_one("#decision-reason", Input)
            text = field.value.strip()
            if self.reason == "required" and not text:
                error = self.query_one("#decision-error", Label)
                error.update(f"a {self._reason_label.lower()} is required: say why, it is kept in the audit trail")
                error.add_class("-shown")
                field.focus()
                return
        self.dismiss(Decision(scope=self.scope, reason=text))
