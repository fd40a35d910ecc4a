"""The review queue as the console sees it: tools waiting for review, tool calls waiting for
approval, and pending SchemaPin key changes.

:func:`fetch_queue` reads the three lists from the engine's ``ToolService``
into a :class:`ReviewQueue` (plain data). The app keeps the latest one: its
:attr:`ReviewQueue.total` is the "review N" in the header on every screen,
and :func:`arrivals` compares two of them, so the app can ring the bell and
show a toast for what started waiting since the last look, whichever screen
is visible. An item is identified with what would need a new look: a tool
with its definition hash (a rug pull is a new item), a call by its id, a key
change by its domain and new fingerprint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.events import Event, KeyChangePending, ToolCallDecided, ToolCallPending, ToolReviewChanged

REVIEW_EVENTS = (ToolReviewChanged, ToolCallPending, ToolCallDecided, KeyChangePending)


def is_review_event(event: Event) -> bool:
    """An engine event after which the queue may look different."""
    return isinstance(event, REVIEW_EVENTS)


@dataclass(frozen=True)
class ReviewQueue:
    """One look at what waits for the operator (tools newest first, as the engine lists them)."""

    tools: tuple[Any, ...] = ()  # engine.mcp_tools.ToolRecord in WAITING_STATES
    calls: tuple[dict[str, Any], ...] = ()  # ToolService.pending_calls() rows
    keys: tuple[dict[str, Any], ...] = ()  # ToolService.key_changes() rows

    @property
    def total(self) -> int:
        return len(self.tools) + len(self.calls) + len(self.keys)

    def items(self, names: Mapping[str, str] | None = None) -> dict[str, str]:
        """Item identity -> a short description for a toast (``names``: agent id -> name)."""
        names = names or {}
        out: dict[str, str] = {}
        for rec in self.tools:
            why = "changed, back in review" if rec.reason == "changed" else "waits for review"
            worst = rec.max_severity
            risk = f" ({worst}, risk {rec.score})" if worst else ""
            out[f"tool:{rec.id}@{rec.def_hash}"] = f"tool {rec.id} {why}{risk}"
        for call in self.calls:
            out[f"call:{call['id']}"] = (
                f"{names.get(call['agent_id'], call['agent_id'])} asks to call {call['tool_id']}"
            )
        for change in self.keys:
            out[f"key:{change['domain']}@{change['new_fingerprint']}"] = (
                f"the signing key of {change['domain']} changed"
            )
        return out


async def fetch_queue(tools: Any) -> ReviewQueue:
    """The queue from a ``ToolService`` (an empty queue when the runtime has none)."""
    if tools is None:
        return ReviewQueue()
    waiting = await tools.pending_reviews()
    return ReviewQueue(tuple(waiting), tuple(tools.pending_calls()), tuple(tools.key_changes()))


def arrivals(before: ReviewQueue | None, after: ReviewQueue, names: Mapping[str, str] | None = None) -> list[str]:
    """Descriptions of the items waiting in ``after`` that were not waiting in ``before``."""
    seen = before.items() if before is not None else {}
    return [text for key, text in after.items(names).items() if key not in seen]
