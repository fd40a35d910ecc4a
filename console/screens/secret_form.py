"""The add / edit secret form (a modal): name, masked value, description and tags.

The value is typed into a :class:`SecretInput` (a password ``Input``, shown
as dots, whose messages mask the value in their repr: Textual writes every
message to its debug log when ``TEXTUAL_LOG`` or the devtools are on) and
leaves the form wrapped in :class:`engine.api.SecretValue`, whose
``repr`` is masked too, so a stray log or error of the draft can never
print it. Bad input
(an invalid name, an empty value) is shown next to its field; the form
dismisses with a :class:`SecretDraft`, or None when cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Label, Static

from console.dialogs import FormScreen
from engine.api import SecretInfo, SecretValue, validate_secret_path
from engine.errors import SymbiError

MASKED = "********"


def _masked_repr(message: Any) -> str:
    return f"{type(message).__qualname__}(input={message.input!r}, value={MASKED!r})"


class SecretInput(Input):
    """A password ``Input`` whose Changed / Submitted / Blurred messages never show the value."""

    class Changed(Input.Changed):
        def __repr__(self) -> str:
            return _masked_repr(self)

        def __rich_repr__(self) -> Any:
            yield "input", self.input
            yield "value", MASKED

    class Submitted(Input.Submitted):
        def __repr__(self) -> str:
            return _masked_repr(self)

        def __rich_repr__(self) -> Any:
            yield "input", self.input
            yield "value", MASKED

    class Blurred(Input.Blurred):
        def __repr__(self) -> str:
            return _masked_repr(self)

        def __rich_repr__(self) -> Any:
            yield "input", self.input
            yield "value", MASKED

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(password=True, **kwargs)


@dataclass(frozen=True)
class SecretDraft:
    """What the form produced. ``value`` is masked in every repr."""

    name: str
    value: SecretValue
    metadata: dict[str, Any] = field(default_factory=dict)


class SecretForm(FormScreen["SecretDraft | None"]):
    """Add a secret (``info`` None) or give an existing one a new value and metadata."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("ctrl+s", "submit", "Save", show=False),
    ]

    def __init__(self, info: SecretInfo | None = None, prefix: str = "") -> None:
        super().__init__(classes="dialog")
        self.info = info
        self.prefix = prefix

    @property
    def editing(self) -> bool:
        return self.info is not None

    def compose(self) -> ComposeResult:
        info = self.info
        with VerticalScroll(id="form-box"):
            yield Label(f"Edit secret {info.path}" if info else "New secret", id="form-title", markup=False)
            yield from self._row(
                "name",
                "Name",
                Input(
                    info.path if info else self.prefix,
                    placeholder="app/api_key",
                    id="f-name",
                    compact=True,
                    disabled=info is not None,
                ),
            )
            yield from self._row(
                "value",
                "Value",
                SecretInput(
                    placeholder="new value (required)" if info else "typed masked",
                    id="f-value",
                    compact=True,
                ),
            )
            yield from self._row(
                "description",
                "Description",
                Input(info.description if info else "", id="f-description", compact=True),
            )
            yield from self._row(
                "tags",
                "Tags",
                Input(", ".join(info.tags) if info else "", placeholder="comma separated", id="f-tags", compact=True),
            )
            yield Static(id="form-error", markup=False)
            with Horizontal(id="form-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="primary")

    def _row(self, field_id: str, label: str, widget: Any) -> ComposeResult:
        with Horizontal(classes="form-row"):
            yield Label(label, classes="form-label")
            yield widget
        yield Label("", id=f"e-{field_id}", classes="field-error", markup=False)

    def on_mount(self) -> None:
        self.query_one("#f-value" if self.editing else "#f-name", Input).focus()

    def on_secret_input_submitted(self, event: SecretInput.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_submit(self) -> None:
        for label in self.query(".field-error"):
            label.update("")  # type: ignore[attr-defined]
            label.remove_class("-shown")
        name = self.query_one("#f-name", Input).value.strip()
        try:
            name = validate_secret_path(name)
        except SymbiError as exc:
            self._field_error("name", f"{exc.code.value}: {exc.message}", exc.hint)
            return
        value_input = self.query_one("#f-value", SecretInput)
        if not value_input.value:
            self._field_error("value", "a value is required", "type the secret's value (it stays masked)")
            return
        tags = [t.strip() for t in self.query_one("#f-tags", Input).value.split(",") if t.strip()]
        metadata: dict[str, Any] = {"description": self.query_one("#f-description", Input).value.strip()}
        if tags:
            metadata["tags"] = tags
        draft = SecretDraft(name, SecretValue(value_input.value), metadata)
        value_input.value = ""  # do not keep the value in the widget any longer than needed
        self.dismiss(draft)

    def _field_error(self, field_id: str, message: str, hint: str | None) -> None:
        label = self.query_one(f"#e-{field_id}", Label)
        label.update(message)
        label.add_class("-shown")
        self.query_one("#form-error", Static).update(f"Hint: {hint}" if hint else "")
        self.query_one(f"#f-{field_id}", Input).focus()
