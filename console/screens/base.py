"""The frame every console screen shares, and how screens hear about the engine.

A :class:`ConsoleScreen` has the engine bar on top, the prompt bar and the
footer at the bottom, and its key bindings from the action registry (with
mutating actions hidden from the footer in read-only mode). The app calls
:meth:`ConsoleScreen.engine_update` with each batch of engine events (after
folding them into its model), :meth:`ConsoleScreen.refresh_view` when the
screen must be redrawn from the model (on resume, or when live refresh is
un-paused) and :meth:`ConsoleScreen.tick` on the refresh interval.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from console.actions import hide_mutating
from console.widgets import EngineBar, PromptBar
from engine.events import Event

if TYPE_CHECKING:
    from console.app import SymbiConsole


class ConsoleScreen(Screen[None]):
    """Base class of the console's screens (dashboard, agents, agent detail, resources, audit, policy, vault)."""

    SCOPE: ClassVar[str] = ""

    def __init__(self, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        if self.console.readonly:
            # Keep mutating actions bound (pressing them explains the refusal) but out of the footer.
            self._bindings = hide_mutating(self._bindings)

    @property
    def console(self) -> SymbiConsole:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield EngineBar()
        yield from self.compose_body()
        yield PromptBar()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets."""
        return ()

    # -- engine ---------------------------------------------------------------------

    def on_screen_resume(self) -> None:
        self.console.screen_shown(self)
        self.refresh_view()

    def refresh_view(self) -> None:
        """Redraw everything from the app's model."""

    def engine_update(self, events: list[Event]) -> None:
        """Apply one batch of engine events (already folded into the model)."""

    def tick(self) -> None:
        """Periodic refresh of time-dependent values (uptimes)."""

    # -- prompt -------------------------------------------------------------------------

    def open_prompt(self, mode: str, value: str = "", placeholder: str | None = None) -> None:
        self._focus_before_prompt = self.focused
        self.query_one(PromptBar).open(mode, value, placeholder)

    def on_prompt_bar_closed(self, event: PromptBar.Closed) -> None:
        previous = getattr(self, "_focus_before_prompt", None)
        if previous is not None and previous.is_attached and previous.focusable:
            previous.focus()
        else:
            self.focus_next()

    async def on_prompt_bar_submitted(self, event: PromptBar.Submitted) -> None:
        event.stop()
        if event.mode == "command":
            await self.console.run_command(event.value)
        else:
            self.prompt_submitted(event.mode, event.value)

    def on_prompt_bar_changed(self, event: PromptBar.Changed) -> None:
        event.stop()
        self.prompt_changed(event.mode, event.value)

    def prompt_submitted(self, mode: str, value: str) -> None:
        """A non-command prompt was submitted (e.g. a filter)."""

    def prompt_changed(self, mode: str, value: str) -> None:
        """A non-command prompt's text changed."""
