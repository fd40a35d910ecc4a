"""Run a function inside an aiosqlite connection's own thread, with its types kept.

The audit trail and the agent registry do a whole batch of statements in one
hop into the connection's thread (one queue round trip, not one per
statement) through aiosqlite's ``Connection._execute``, which aiosqlite
leaves unannotated. This is the one place that calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import aiosqlite

__all__ = ["in_connection_thread"]

P = ParamSpec("P")
T = TypeVar("T")


def in_connection_thread(
    db: aiosqlite.Connection, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> Coroutine[Any, Any, T]:
    """``fn(*args, **kwargs)`` run in ``db``'s thread (where ``db._conn`` may be used); await it for the result."""
    return db._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]  # aiosqlite: Connection._execute is unannotated
