"""Webhooks for a person who is not at the console: ``[[notify]]`` targets get a JSON POST when a
tool waits for review, an agent's call waits for approval, or a SchemaPin key changed.

The notifier reads the engine's events (it never blocks the engine: a slow or dead receiver only
delays other notifications). Each POST says what waits, how risky it looks, and how to decide:
the HTTP API route and the ``symbiont tools`` command. A receiver that fails is retried once and
logged by its host only (a URL may carry a secret); nothing else happens to the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from engine.config.notify_section import NotifyConfig
from engine.events import Event, EventBus, KeyChangePending, ToolCallPending, ToolReviewChanged

log = logging.getLogger("symbi.notify")
AWAITING = "AwaitingHumanReview"

ToolLookup = Callable[[str], Awaitable[Any]]


def _payload(event: Event, tool: Any, agent_name: str | None, data_dir: str) -> tuple[str, dict[str, Any]] | None:
    """(kind, body) for an event worth a notification, else None."""
    engine = {"host": socket.gethostname(), "pid": os.getpid(), "data_dir": data_dir}
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event.at))
    risk = None
    if tool is not None:
        risk = {"score": getattr(tool, "score", None), "worst": getattr(tool, "max_severity", None)}
    if isinstance(event, ToolReviewChanged):
        if event.state != AWAITING:
            return None
        tid = event.tool_id
        return "tool", {
            "kind": "tool",
            "summary": f"tool {tid} waits for review",
            "tool_id": tid,
            "risk": risk,
            "decide": {
                "api": [
                    f'POST /api/v1/engine/tools/approve {{"tool_id": "{tid}", "scope": "once"}}',
                    f'POST /api/v1/engine/tools/reject {{"tool_id": "{tid}", "reason": "..."}}',
                ],
                "cli": [f"symbiont tools approve {tid}", f"symbiont tools reject {tid} --reason ..."],
            },
            "engine": engine,
            "at": at,
        }
    if isinstance(event, ToolCallPending):
        who = agent_name or event.agent_id
        return "call", {
            "kind": "call",
            "summary": f"{who} asks to call {event.tool_id}",
            "call_id": event.call_id,
            "tool_id": event.tool_id,
            "agent_id": event.agent_id,
            "agent": who,
            "risk": risk,
            "decide": {
                "api": [
                    f'POST /api/v1/engine/tools/approve_call {{"call_id": "{event.call_id}"}}',
                    f'POST /api/v1/engine/tools/deny_call {{"call_id": "{event.call_id}", "reason": "..."}}',
                ],
                "cli": [f"symbiont tools allow-call {event.call_id}", f"symbiont tools deny-call {event.call_id}"],
            },
            "engine": engine,
            "at": at,
        }
    if isinstance(event, KeyChangePending):
        return "key", {
            "kind": "key",
            "summary": f"the signing key of {event.domain} changed",
            "domain": event.domain,
            "old_fingerprint": event.old_fingerprint,
            "new_fingerprint": event.new_fingerprint,
            "decide": {
                "api": [
                    f'POST /api/v1/engine/tools/accept_key {{"domain": "{event.domain}"}}',
                    f'POST /api/v1/engine/tools/reject_key {{"domain": "{event.domain}"}}',
                ],
                "cli": [f"symbiont tools accept-key {event.domain}", f"symbiont tools reject-key {event.domain}"],
            },
            "engine": engine,
            "at": at,
        }
    return None


class Notifier:
    """Posts to the ``[[notify]]`` targets while the engine runs (:meth:`start`, :meth:`close`)."""

    def __init__(
        self,
        targets: list[NotifyConfig],
        bus: EventBus,
        data_dir: str,
        *,
        tool_lookup: Callable[[], ToolLookup | None] = lambda: None,
        agent_name: Callable[[str], str | None] = lambda _id: None,
    ) -> None:
        self.targets = targets
        self.bus = bus
        self.data_dir = data_dir
        self.tool_lookup = tool_lookup
        self.agent_name = agent_name
        self.sent = 0
        self.failed = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.targets and self._task is None:
            self._task = asyncio.create_task(self._run(self.bus.published), name="symbi-notify")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, position: int) -> None:
        kinds = ("ToolReviewChanged", "ToolCallPending", "KeyChangePending")
        async with httpx.AsyncClient() as client:
            async for _position, events, _missed in self.bus.batches(position, kinds, 100):
                for event in events:
                    await self._notify(client, event)

    async def _notify(self, client: httpx.AsyncClient, event: Event) -> None:
        if not isinstance(event, (ToolReviewChanged, ToolCallPending, KeyChangePending)):
            return
        tool = None
        tool_id = getattr(event, "tool_id", None)
        lookup = self.tool_lookup()
        if tool_id and lookup is not None:
            with contextlib.suppress(Exception):  # the risk is a courtesy; the notification goes anyway
                tool = await lookup(tool_id)
        agent = self.agent_name(event.agent_id) if isinstance(event, ToolCallPending) else None
        made = _payload(event, tool, agent, self.data_dir)
        if made is None:
            return
        kind, body = made
        for target in self.targets:
            if kind in target.kinds:
                await self._post(client, target, body)

    async def _post(self, client: httpx.AsyncClient, target: NotifyConfig, body: dict[str, Any]) -> None:
        headers = {}
        if target.token_env and os.environ.get(target.token_env):
            headers["authorization"] = f"Bearer {os.environ[target.token_env]}"
        host = urlsplit(target.url).hostname or "?"
        for attempt in (1, 2):
            try:
                response = await client.post(target.url, json=body, headers=headers, timeout=target.timeout)
                if response.status_code < 400:
                    self.sent += 1
                    return
                why = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                why = type(exc).__name__
            if attempt == 1:
                await asyncio.sleep(0.5)
        self.failed += 1
        log.warning("notify: the webhook on %s did not take the %s notification (%s)", host, body["kind"], why)
