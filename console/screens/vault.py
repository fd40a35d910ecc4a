"""Screen 6: the secrets vault — a tree of secret names with their metadata.

Secrets are grouped by the segments of their names (``app/api_key`` sits
under ``app/``). The panel beside the tree shows the selected secret's
metadata (created, updated, version, key id, description, tags) and its
value, masked. ``v`` reveals the value after a confirmation and hides it
again after :data:`REVEAL_SECONDS` (or when the cursor moves or the screen
is left); ``c`` copies it to the clipboard with OSC 52 after a
confirmation. Both reads go through ``engine.secrets.reveal`` and so are
recorded in the audit trail, by name. ``a``/``e`` add and edit (masked
input), ``d`` deletes, ``R`` rotates the master key (the panel says
"rotating…" while it runs, the report follows). Read-only mode lists names
only (``engine.secrets.names``); the app refuses the rest before it starts.

A value is only ever held in a :class:`SecretValue` (masked repr) and
rendered into the value line while revealed: it never goes into a
notification, a log line or an error.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual import work
from textual.containers import Container, Vertical
from textual.events import Resize
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import ProgressBar, Static, Tree
from textual.widgets.tree import TreeNode

from console.actions import VAULT, bindings_for
from console.dialogs import ConfirmDialog
from console.format import theme_colour, timestamp
from console.screens.base import ConsoleScreen
from console.screens.secret_form import SecretDraft, SecretForm
from engine.api import RotationReport, SecretInfo, SecretValue
from engine.errors import SymbiError

REVEAL_SECONDS = 10.0
MASK = "••••••••"
NARROW = 100

Entry = SecretInfo | str  # a listed secret (str: a name only, in read-only mode)


def entry_path(entry: Entry) -> str:
    return entry if isinstance(entry, str) else entry.path


class VaultScreen(ConsoleScreen):
    """Screen 6: the secrets in the vault."""

    SCOPE = VAULT
    BINDINGS = bindings_for(VAULT)
    AUTO_FOCUS = "#vault-tree"

    class Listed(Message):
        def __init__(self, entries: list[Entry] | None, error: SymbiError | None = None) -> None:
            super().__init__()
            self.entries = entries
            self.error = error

    class Revealed(Message):
        def __init__(self, name: str, value: SecretValue) -> None:
            super().__init__()
            self.name = name
            self.value = value

    def __init__(self) -> None:
        super().__init__(id="vault")
        self.entries: dict[str, Entry] = {}
        self.key_id = ""
        self.error: SymbiError | None = None
        self.revealed: tuple[str, SecretValue] | None = None
        self.reveal_seconds = REVEAL_SECONDS
        self.rotation_status: list[str] = []  # what the panel said during the last rotation (tests read it)
        self._hide_timer: Timer | None = None
        self._select_after_load: str | None = None
        self._pending_select: str | None = None  # the tree was rebuilt; the cursor goes here next

    def compose_body(self) -> Iterable[Widget]:
        with Container(id="vault-main"):
            tree: Tree[Entry | None] = Tree("secrets", id="vault-tree", classes="panel")
            tree.show_root = False
            tree.guide_depth = 3
            yield tree
            with Vertical(id="vault-detail", classes="panel"):
                yield Static(id="vault-meta")
                yield Static(id="vault-value")
                yield ProgressBar(id="vault-progress", show_eta=False)

    def on_mount(self) -> None:
        self.query_one("#vault-detail").border_title = "Secret"
        self.tree.border_title = "Vault"

    def on_resize(self, event: Resize) -> None:
        self.query_one("#vault-main").set_class(event.size.width < NARROW, "-narrow")

    @property
    def tree(self) -> Tree[Entry | None]:  # type: ignore[override]  # DOMNode.tree is a debug rendering
        return self.query_one("#vault-tree", Tree)

    def on_screen_resume(self) -> None:
        # (ConsoleScreen.on_screen_resume runs too: Textual calls the handler of every class)
        self.reload()

    def on_screen_suspend(self) -> None:
        self.hide()

    # -- listing ----------------------------------------------------------------------------

    def reload(self, select: str | None = None) -> None:
        self._select_after_load = select or self._pending_select or self.selected_path()
        self._list()

    @work(group="vault-list", exclusive=True)
    async def _list(self) -> None:
        secrets = self.console.engine.secrets
        try:
            if self.console.readonly:
                entries: list[Entry] = list(await secrets.names())
            else:
                entries = list(await secrets.list_secrets())
        except SymbiError as exc:
            self.post_message(self.Listed(None, exc))
            return
        self.post_message(self.Listed(entries))

    def on_vault_screen_listed(self, message: Listed) -> None:
        self.error = message.error
        if message.error is not None:
            self.entries = {}
            self.console.show_error(message.error, title="Vault")
        else:
            entries = {entry_path(e): e for e in message.entries or []}
            if entries == self.entries and self.tree.root.children:
                self._select_after_load = None
                self._show_detail()  # nothing changed (e.g. back from a dialog): keep the tree as it is
                return
            self.entries = entries
        self._build_tree()

    def _build_tree(self) -> None:
        tree = self.tree
        variables = self.app.theme_variables
        muted = theme_colour(variables, "foreground-muted")
        tree.clear()
        branches: dict[str, TreeNode[Entry | None]] = {}
        keys: set[str] = set()
        for path in sorted(self.entries):
            entry = self.entries[path]
            parts = path.split("/")
            parent = tree.root
            for depth in range(1, len(parts)):
                prefix = "/".join(parts[:depth])
                if prefix not in branches:
                    branches[prefix] = parent.add(Text(parts[depth - 1] + "/"), data=None, expand=True)
                parent = branches[prefix]
            label = Text(parts[-1])
            if isinstance(entry, SecretInfo):
                if entry.error:
                    label.append("  unreadable", style=theme_colour(variables, "error"))
                else:
                    label.append(f"  v{entry.version} · {timestamp(entry.updated)}", style=muted)
                    if entry.key_id:
                        keys.add(entry.key_id)
            parent.add_leaf(label, data=entry)
        count = len(self.entries)
        tree.border_title = f"Vault · {count} secret{'s' if count != 1 else ''}"
        if self.console.readonly:
            tree.border_subtitle = "read-only: names only"
        elif len(keys) == 1:
            tree.border_subtitle = f"key {next(iter(keys))}"
        elif keys:
            tree.border_subtitle = f"{len(keys)} keys (R rotates)"
        else:
            tree.border_subtitle = "a adds a secret" if not count else ""
        self._pending_select = self._select_after_load
        self._select_after_load = None
        self.call_after_refresh(self._select, self._pending_select)

    def _select(self, path: str | None) -> None:
        self._pending_select = None
        tree = self.tree
        target = None
        if path is not None:
            target = next((n for n in self._leaves() if n.data is not None and entry_path(n.data) == path), None)
        if target is None:
            target = next(iter(self._leaves()), None)
        if target is not None:
            tree.move_cursor(target)
        self._show_detail()

    def _leaves(self) -> list[TreeNode[Entry | None]]:
        out: list[TreeNode[Entry | None]] = []

        def walk(node: TreeNode[Entry | None]) -> None:
            for child in node.children:
                if child.data is not None:
                    out.append(child)
                walk(child)

        walk(self.tree.root)
        return out

    def selected_entry(self) -> Entry | None:
        node = self.tree.cursor_node
        return node.data if node is not None else None

    def selected_path(self) -> str | None:
        entry = self.selected_entry()
        return entry_path(entry) if entry is not None else None

    # -- the detail panel ------------------------------------------------------------------------

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[Entry | None]) -> None:
        event.stop()
        if self._pending_select is not None:
            return  # the tree is being rebuilt; the cursor goes back where it was next
        if self.revealed is not None and self.revealed[0] != self.selected_path():
            self.hide()
        self._show_detail()

    def _show_detail(self) -> None:
        variables = self.app.theme_variables
        muted = theme_colour(variables, "foreground-muted")
        meta = self.query_one("#vault-meta", Static)
        value_line = self.query_one("#vault-value", Static)
        node = self.tree.cursor_node
        entry = node.data if node is not None else None
        if self.error is not None:
            meta.update(Text(f"{self.error.code.value}: {self.error.message}", style=theme_colour(variables, "error")))
            value_line.update(Text(f"Hint: {self.error.hint}" if self.error.hint else "", style=muted))
            return
        if entry is None:
            detail = self.query_one("#vault-detail")
            detail.border_title = self._branch_path(node) + "/" if node is not None and node.children else "Secret"
            if node is not None and node.children:
                count = sum(1 for p in self.entries if p.startswith(self._branch_path(node) + "/"))
                meta.update(Text.assemble((self._branch_path(node) + "/", "bold"), (f"  {count} secrets", muted)))
            elif not self.entries:
                meta.update(Text("The vault is empty. a adds a secret.", style=muted))
            else:
                meta.update("")
            value_line.update("")
            return
        path = entry_path(entry)
        self.query_one("#vault-detail").border_title = path
        if isinstance(entry, str):
            meta.update(Text.assemble((path, "bold"), ("\nread-only: metadata and values are not shown", muted)))
            value_line.update("")
            return
        if entry.error:
            meta.update(Text.assemble((path, "bold"), "\n", (entry.error, theme_colour(variables, "error"))))
            value_line.update("")
            return
        meta.update(
            Text.assemble(
                (path, "bold"),
                ("\ncreated  ", muted),
                timestamp(entry.created),
                ("\nupdated  ", muted),
                timestamp(entry.updated),
                ("\nversion  ", muted),
                str(entry.version),
                ("\nkey id   ", muted),
                entry.key_id or "-",
                ("\ndescr.   ", muted),
                entry.description or "-",
                ("\ntags     ", muted),
                ", ".join(entry.tags) or "-",
            )
        )
        self._show_value()

    def _branch_path(self, node: TreeNode[Entry | None]) -> str:
        parts = []
        while node is not None and node is not self.tree.root:
            parts.append(str(node.label).rstrip("/"))
            node = node.parent  # type: ignore[assignment]
        return "/".join(reversed(parts))

    def _show_value(self) -> None:
        variables = self.app.theme_variables
        muted = theme_colour(variables, "foreground-muted")
        line = self.query_one("#vault-value", Static)
        path = self.selected_path()
        if self.revealed is not None and self.revealed[0] == path:
            line.update(
                Text.assemble(
                    ("value    ", muted),
                    (self.revealed[1].reveal(), theme_colour(variables, "warning")),
                    (f"  (hides in {self.reveal_seconds:g}s · v hides now)", muted),
                )
            )
        else:
            line.update(Text.assemble(("value    ", muted), MASK, ("  (v reveals · c copies)", muted)))

    # -- reveal, copy, hide -------------------------------------------------------------------------

    def _target(self) -> str | None:
        """The selected secret's name, or None (with a notification) when nothing is selected."""
        path = self.selected_path()
        if path is None:
            self.notify("no secret selected", severity="warning")
        return path

    def action_reveal(self) -> None:
        if self.revealed is not None and self.revealed[0] == self.selected_path():
            self.hide()
            return
        path = self._target()
        if path is not None:
            self._reveal(path)

    @work(group="vault-reveal", exclusive=True)
    async def _reveal(self, path: str) -> None:
        question = (
            f"Show the value of {path} on screen for {self.reveal_seconds:g} seconds? "
            "The read is recorded in the audit trail."
        )
        if not await self.app.push_screen_wait(ConfirmDialog("Reveal secret?", question, yes="Reveal")):
            return
        try:
            value = await self.console.engine.secrets.reveal(path)
        except SymbiError as exc:
            self.console.show_error(exc, title=f"Cannot reveal {path}")
            return
        self.post_message(self.Revealed(path, value))

    def on_vault_screen_revealed(self, message: Revealed) -> None:
        if message.name != (self._pending_select or self.selected_path()):
            return  # the cursor moved on meanwhile: do not show it
        self.revealed = (message.name, message.value)
        if self._hide_timer is not None:
            self._hide_timer.stop()
        self._hide_timer = self.set_timer(self.reveal_seconds, self.hide, name="vault-hide")
        self._show_value()

    def hide(self) -> None:
        """Mask a revealed value again (and forget it)."""
        if self._hide_timer is not None:
            self._hide_timer.stop()
            self._hide_timer = None
        if self.revealed is None:
            return
        self.revealed = None
        if self.is_mounted:
            self._show_value()

    def action_copy(self) -> None:
        path = self._target()
        if path is not None:
            self._copy(path)

    @work(group="vault-copy", exclusive=True)
    async def _copy(self, path: str) -> None:
        question = (
            f"Copy the value of {path} to the clipboard (OSC 52)? It stays there until something else is "
            "copied. The read is recorded in the audit trail."
        )
        if not await self.app.push_screen_wait(ConfirmDialog("Copy secret?", question, yes="Copy")):
            return
        try:
            value = await self.console.engine.secrets.reveal(path)
        except SymbiError as exc:
            self.console.show_error(exc, title=f"Cannot copy {path}")
            return
        self.app.copy_to_clipboard(value.reveal())
        self.notify(f"copied the value of {path} to the clipboard", title="Vault", markup=False)

    # -- add, edit, delete, rotate -------------------------------------------------------------------

    def action_add(self) -> None:
        node = self.tree.cursor_node
        prefix = ""
        if node is not None:
            branch = node if node.data is None else node.parent
            if branch is not None and branch is not self.tree.root:
                prefix = self._branch_path(branch) + "/"
        self.app.push_screen(SecretForm(prefix=prefix), self._drafted)

    def action_edit(self) -> None:
        path = self._target()
        if path is None:
            return
        entry = self.entries.get(path)
        if not isinstance(entry, SecretInfo):
            return
        self.app.push_screen(SecretForm(entry), self._drafted)

    def _drafted(self, draft: SecretDraft | None) -> None:
        if draft is not None:
            self._store(draft)

    @work(group="vault-store", description="store a secret")  # no repr of the draft, even masked
    async def _store(self, draft: SecretDraft) -> None:
        existed = draft.name in self.entries
        try:
            await self.console.engine.secrets.set(draft.name, draft.value.reveal(), draft.metadata)
        except SymbiError as exc:
            self.console.show_error(exc, title=f"Cannot save {draft.name}")
            return
        self.notify(f"{'updated' if existed else 'added'} {draft.name}", title="Vault", markup=False)
        self.reload(select=draft.name)

    def action_delete(self) -> None:
        path = self._target()
        if path is not None:
            self._delete(path)

    @work(group="vault-delete", exclusive=True)
    async def _delete(self, path: str) -> None:
        question = f"Delete {path} and its kept previous versions? This cannot be undone."
        if not await self.app.push_screen_wait(ConfirmDialog("Delete secret?", question, yes="Delete")):
            return
        try:
            await self.console.engine.secrets.delete(path)
        except SymbiError as exc:
            self.console.show_error(exc, title=f"Cannot delete {path}")
            return
        self.hide()
        self.notify(f"deleted {path}", title="Vault", markup=False)
        self.reload()

    def action_rotate(self) -> None:
        self._rotate()

    @work(group="vault-rotate", exclusive=True)
    async def _rotate(self) -> None:
        count = len(self.entries)
        question = (
            f"Re-encrypt all {count} secret{'s' if count != 1 else ''} under a new master key? "
            "The old key is kept, retired, so backups stay readable."
        )
        if not await self.app.push_screen_wait(ConfirmDialog("Rotate the master key?", question, yes="Rotate")):
            return
        self.hide()
        self.rotation_status = []
        bar = self.query_one("#vault-progress", ProgressBar)
        bar.update(total=None, progress=0)  # the engine reports when it is done, not how far it is
        bar.add_class("-shown")
        self._rotation_status(f"rotating the master key: re-encrypting {count} secret{'s' if count != 1 else ''}…")
        try:
            report = await self.console.engine.secrets.rotate()
        except SymbiError as exc:
            bar.remove_class("-shown")
            self._show_detail()
            self.console.show_error(exc, title="Key rotation failed")
            return
        bar.remove_class("-shown")
        self._rotation_status(rotation_text(report))
        self.notify(rotation_text(report), title="Vault", markup=False)
        self.reload()

    def _rotation_status(self, text: str) -> None:
        self.rotation_status.append(text)
        self.query_one("#vault-value", Static).update(Text(text))

    def action_refresh(self) -> None:
        self.reload()

    def refresh_view(self) -> None:
        if self.entries or self.error:
            self._show_detail()


def rotation_text(report: RotationReport) -> str:
    """What a finished key rotation did, in one sentence (never a value)."""
    skipped = f"; {len(report.skipped)} unreadable file(s) skipped" if report.skipped else ""
    return (
        f"rotated the master key: {report.new_key_id} (was {report.old_key_id}); "
        f"{report.reencrypted} file(s) re-encrypted, kept versions included{skipped}"
    )
