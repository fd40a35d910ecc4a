"""The ``?`` help screen: every action of the registry with its current keys,
plus the command-mode aliases. Built from :mod:`console.actions`, so it can
never miss a binding."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from console.actions import ACTIONS, APP, aliases_of, display_key, effective_keys


class HelpScreen(ModalScreen[None]):
    """A table of key bindings; Escape, ``q`` or ``?`` closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close", show=False)]

    def __init__(self, keymap: Mapping[str, str], readonly: bool = False) -> None:
        super().__init__(classes="dialog")
        self.keymap = dict(keymap)
        self.readonly = readonly

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Label("Keys and commands", id="help-title")
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)
            yield Static(
                "Command mode: press : then type a command, e.g. :agents (:ag, :a), :res, :dash (:d), :audit (:au), "
                ":policy (:pol), :vault (:secrets), :tools (:review), :knowledge (:memory), :verify, :export, :help, :q. "
                "Esc closes this help.",
                id="help-footer",
                markup=False,
            )

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("Keys", key="keys")
        table.add_column("Where", key="where")
        table.add_column("Action", key="action")
        table.add_column("Id", key="id")
        for action in ACTIONS:
            keys = ", ".join(display_key(k) for k in effective_keys(action, self.keymap))
            where = "all" if APP in action.scopes else ", ".join(action.scopes)
            text = Text(action.help)
            aliases = aliases_of(action.id)
            if aliases:
                text.append("  :" + " :".join(aliases), style="dim")
            if self.readonly and action.readonly_off:
                text.append("  (off: read-only)", style="bold")
            table.add_row(keys, where, text, action.id, key=action.id)
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
