"""The command palette (ctrl+p): every action of the registry, searchable.

Actions that change engine state or show secret values are left out in
read-only mode. Choosing
an action of another screen switches there first (the agent actions then
apply to the agent selected in the table).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from console.actions import ACTIONS, ConsoleAction, display_key, effective_keys

if TYPE_CHECKING:
    from console.app import SymbiConsole


class RegistryCommands(Provider):
    """A palette provider over :data:`console.actions.ACTIONS`."""

    @property
    def console(self) -> SymbiConsole:
        return self.app  # type: ignore[return-value]

    def _entries(self) -> Iterator[tuple[str, str, ConsoleAction]]:
        console = self.console
        for action in ACTIONS:
            if action.id == "app.palette" or (console.readonly and action.readonly_off):
                continue
            keys = ", ".join(display_key(k) for k in effective_keys(action, console.keymap))
            yield f"{action.title} ({keys})", action.help, action

    async def discover(self) -> Hits:
        for text, help_text, action in self._entries():
            yield DiscoveryHit(text, partial(self.console.run_registry_action, action.id), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help_text, action in self._entries():
            score = max(matcher.match(text), matcher.match(f"{action.id} {help_text}") * 0.8)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(text),
                    partial(self.console.run_registry_action, action.id),
                    help=help_text,
                )
