"""A read-only view of an engine: every mutating or revealing method is refused with ``CONSOLE_001``.

The refusal comes from the marks on :mod:`engine.api.interface` alone, so a
method added to the interface is classified once, where it is declared, and
every client of the wrapper (the console's ``--readonly``, an API token that
may only read) gets the same answer.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from engine.api.interface import GROUPS, MUTATING, REVEALS, Engine, kind_of, methods
from engine.api.types import EngineInfo
from engine.errors import ErrorCode, SymbiError

WHAT = {MUTATING: "changes engine state", REVEALS: "shows a secret value"}


def refusal(group: str, name: str, kind: str) -> SymbiError:
    return SymbiError(
        ErrorCode.CONSOLE_001,
        f"{group}.{name} {WHAT[kind]} and this engine connection is read-only",
        offending=f"{group}.{name}",
        hint="reconnect without --readonly (or with a token that may write) to make changes",
    )


class _ReadOnlyGroup:
    """Passes reads through to ``inner``; refuses the rest before they reach it."""

    def __init__(self, name: str, protocol: type[Any], inner: Any) -> None:
        self._name = name
        self._inner = inner
        self._refused = {m: kind_of(protocol, m) for m in methods(protocol) if kind_of(protocol, m) != "reads"}

    def __getattr__(self, attr: str) -> Any:
        kind = self._refused.get(attr)
        if kind is None:
            return getattr(self._inner, attr)
        group = self._name

        async def refuse(*_args: Any, **_kwargs: Any) -> Any:
            raise refusal(group, attr, kind)

        return refuse


class ReadOnlyEngine:
    """``inner`` with every mutating and revealing method refused (``CONSOLE_001``)."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        for name, protocol in GROUPS.items():
            setattr(self, name, _ReadOnlyGroup(name, protocol, getattr(inner, name)))

    @property
    def is_open(self) -> bool:
        return self.inner.is_open

    async def open(self) -> None:
        await self.inner.open()

    async def close(self, reason: str = "engine shutdown") -> None:
        await self.inner.close(reason)

    async def info(self) -> EngineInfo:
        info = await self.inner.info()
        return dataclasses.replace(info, readonly=True)


def read_only(engine: Engine) -> Engine:
    """``engine`` behind the read-only wrapper (typed as the interface)."""
    return cast(Engine, ReadOnlyEngine(engine))
