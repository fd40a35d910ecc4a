"""The add-item form of the knowledge screen (a modal): kind, content, metadata as JSON, share.

The form checks what it can by itself (content not empty, metadata a JSON
object) and shows a problem next to its field. It then hands the draft to
the ``save`` coroutine it was given (the screen's: ``engine.knowledge.add``,
which records, then stores) and stays open
until that succeeds, so a refusal from the store (``CTX_002`` over the
agent's limits, ``CTX_003`` too large) is shown in the form and the typed content is not lost. It dismisses with the
stored :class:`ContextItem`, or None when cancelled.

The content may be sensitive: it is never put into a notification, a log
line or an error message.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Checkbox, Input, Label, Select, Static, TextArea

from console.dialogs import FormScreen
from engine.api import KINDS, ContextItem
from engine.errors import ErrorCode, SymbiError


@dataclass(frozen=True)
class KnowledgeDraft:
    """What the form produced: everything ``engine.knowledge.add`` needs but the owner."""

    kind: str
    content: str = field(repr=False)  # may be sensitive: kept out of reprs
    metadata: dict[str, Any] = field(default_factory=dict)
    share_with_everyone: bool = False

    @property
    def size(self) -> int:
        """Bytes the store will count for this item (content + metadata JSON)."""
        meta = json.dumps(self.metadata, sort_keys=True)
        return len(self.content.encode("utf-8")) + len(meta.encode("utf-8"))


def parse_metadata(text: str) -> dict[str, Any]:
    """The metadata field as a dict: empty means ``{}``; anything but a JSON object is a
    ``CTX_003`` error (the store's code for bad item input) that says where the JSON broke."""
    text = text.strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SymbiError(
            ErrorCode.CTX_003,
            f"metadata is not valid JSON: {exc.msg} at column {exc.colno}",
            offending=text[:60],
            hint='write a JSON object, e.g. {"source": "notes.md", "tags": ["ops"]}',
        ) from None
    if not isinstance(value, dict):
        raise SymbiError(
            ErrorCode.CTX_003,
            f"metadata must be a JSON object, not {type(value).__name__}",
            offending=text[:60],
            hint='wrap it in braces: {"key": value}',
        )
    return value


SaveFn = Callable[[KnowledgeDraft], Awaitable[ContextItem]]


class KnowledgeForm(FormScreen["ContextItem | None"]):
    """Add one item to an agent's context (or to the shared items, ``shared_only``)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("ctrl+s", "submit", "Save", show=False),
    ]

    def __init__(self, owner_label: str, save: SaveFn, *, kind: str = "knowledge", shared_only: bool = False) -> None:
        super().__init__(classes="dialog")
        self.owner_label = owner_label
        self.save = save
        self.kind = kind if kind in KINDS else "knowledge"
        self.shared_only = shared_only
        self.saving = False

    DEFAULT_CSS = """
    KnowledgeForm #f-content { height: 7; width: 1fr; }
    KnowledgeForm .form-row.-tall { height: 7; }
    KnowledgeForm #f-share { width: 1fr; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="form-box"):
            yield Label(f"New item for {self.owner_label}", id="form-title", markup=False)
            yield from self._row(
                "kind",
                "Kind",
                Select([(k, k) for k in KINDS], value=self.kind, allow_blank=False, id="f-kind", compact=True),
            )
            yield from self._row(
                "content",
                "Content",
                TextArea(id="f-content", compact=True, placeholder="the text to remember (embedded for search)"),
                tall=True,
            )
            yield from self._row(
                "metadata",
                "Metadata JSON",
                Input(placeholder='{"source": "notes.md"}', id="f-metadata", compact=True),
            )
            yield from self._row(
                "share",
                "Share",
                Checkbox(
                    "with every agent" if not self.shared_only else "with every agent (shared items always are)",
                    value=self.shared_only,
                    disabled=self.shared_only,
                    id="f-share",
                    compact=True,
                ),
            )
            yield Static(id="form-error", markup=False)
            with Horizontal(id="form-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Save (^s)", id="save", variant="primary")

    def _row(self, field_id: str, label: str, widget: Any, *, tall: bool = False) -> ComposeResult:
        with Horizontal(classes="form-row -tall" if tall else "form-row"):
            yield Label(label, classes="form-label")
            yield widget
        yield Label("", id=f"e-{field_id}", classes="field-error", markup=False)

    def on_mount(self) -> None:
        self.query_one("#f-content", TextArea).focus()

    def action_cancel(self) -> None:
        if not self.saving:
            self.dismiss(None)

    def draft(self) -> KnowledgeDraft | None:
        """The form's values, or None (with the problem shown next to its field)."""
        self._clear_errors()
        content = self.query_one("#f-content", TextArea).text
        if not content.strip():
            self._field_error("content", "content is empty", "type the text the agent should be able to find")
            return None
        try:
            metadata = parse_metadata(self.query_one("#f-metadata", Input).value)
        except SymbiError as exc:
            self._field_error("metadata", f"{exc.code.value}: {exc.message}", exc.hint)
            return None
        kind = self.query_one("#f-kind", Select).value
        share = self.shared_only or self.query_one("#f-share", Checkbox).value
        return KnowledgeDraft(str(kind), content, metadata, bool(share))

    def action_submit(self) -> None:
        if self.saving:
            return
        draft = self.draft()
        if draft is not None:
            self.saving = True
            self.query_one("#save", Button).disabled = True
            self.query_one("#form-error", Static).update("saving (embedding the content)…")
            self.run_worker(self._save(draft), group="knowledge-save", exclusive=True)

    async def _save(self, draft: KnowledgeDraft) -> None:
        try:
            item = await self.save(draft)
        except SymbiError as exc:
            self.saving = False
            self.query_one("#save", Button).disabled = False
            problem = f"{exc.code.value}: {exc.message}" + (f"\nHint: {exc.hint}" if exc.hint else "")
            self.query_one("#form-error", Static).update(problem)
            return
        self.saving = False
        self.dismiss(item)

    def _clear_errors(self) -> None:
        for label in self.query(".field-error"):
            label.update("")  # type: ignore[attr-defined]
            label.remove_class("-shown")
        self.query_one("#form-error", Static).update("")

    def _field_error(self, field_id: str, message: str, hint: str | None) -> None:
        label = self.query_one(f"#e-{field_id}", Label)
        label.update(message)
        label.add_class("-shown")
        self.query_one("#form-error", Static).update(f"Hint: {hint}" if hint else "")
        self.query_one(f"#f-{field_id}").focus()
