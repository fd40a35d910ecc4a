"""The tool service's news (review changes, waiting calls, key changes) as engine events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.events import Event, KeyChangePending, ToolCallDecided, ToolCallPending, ToolReviewChanged

TOOL_NEWS: dict[str, Callable[[dict[str, Any]], Event]] = {
    "tool.review": lambda d: ToolReviewChanged(tool_id=d["tool_id"], state=d["state"], event=d["event"]),
    "call.pending": lambda d: ToolCallPending(call_id=d["call_id"], tool_id=d["tool_id"], agent_id=d["agent_id"]),
    "call.decided": lambda d: ToolCallDecided(call_id=d["call_id"], tool_id=d["tool_id"], outcome=d["outcome"]),
    "key.change": lambda d: KeyChangePending(
        domain=d["domain"], old_fingerprint=d["old_fingerprint"], new_fingerprint=d["new_fingerprint"]
    ),
}
