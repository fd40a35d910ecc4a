"""The review queue as the console sees it: tools waiting for review, tool calls waiting for
approval, and pending SchemaPin key changes.

The engine answers ``engine.tools.queue()`` with a :class:`~engine.api.ReviewQueue`
(plain data). The app keeps the latest one: its ``total`` is the "review N" in
the header on every screen, and :func:`arrivals` compares two of them, so the
app can ring the bell and show a toast for what started waiting since the last
look, whichever screen is visible. An item is identified with what would need
a new look: a tool with its definition hash (a rug pull is a new item), a call
by its id, a key change by its domain and new fingerprint.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.api import ReviewQueue
from engine.events import Event, KeyChangePending, ToolCallDecided, ToolCallPending, ToolReviewChanged

REVIEW_EVENTS = (ToolReviewChanged, ToolCallPending, ToolCallDecided, KeyChangePending)

__all__ = ["REVIEW_EVENTS", "ReviewQueue", "arrivals", "is_review_event", "queue_items"]


def is_review_event(event: Event) -> bool:
    """An engine event after which the queue may look different."""
    return isinstance(event, REVIEW_EVENTS)


def queue_items(queue: ReviewQueue, names: Mapping[str, str] | None = None) -> dict[str, str]:
    """Item identity -> a short description for a toast (``names``: agent id -> name)."""
    names = names or {}
    out: dict[str, str] = {}
    for rec in queue.tools:
        why = "changed, back in review" if rec.reason == "changed" else "waits for review"
        worst = rec.max_severity
        risk = f" ({worst}, risk {rec.score})" if worst else ""
        out[f"tool:{rec.id}@{rec.def_hash}"] = f"tool {rec.id} {why}{risk}"
    for call in queue.calls:
        out[f"call:{call.id}"] = f"{names.get(call.agent_id, call.agent_id)} asks to call {call.tool_id}"
    for change in queue.keys:
        out[f"key:{change.domain}@{change.new_fingerprint}"] = f"the signing key of {change.domain} changed"
    return out


def arrivals(before: ReviewQueue | None, after: ReviewQueue, names: Mapping[str, str] | None = None) -> list[str]:
    """Descriptions of the items waiting in ``after`` that were not waiting in ``before``."""
    seen = queue_items(before) if before is not None else {}
    return [text for key, text in queue_items(after, names).items() if key not in seen]
