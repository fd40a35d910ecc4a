"""The engine interface's methods as HTTP calls: their parameters, results and schemas.

Every method of every group in :mod:`engine.api.interface` becomes
``POST /api/v1/engine/<group>/<method>`` with a JSON object of its keyword
arguments; the answer is the JSON of its result (:mod:`engine.api.codec`).
The remote client (:mod:`engine.api.remote`) uses the same table, so the two
sides cannot disagree on a name or a type.
"""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass
from typing import Any

from engine.api import interface
from engine.api.codec import decode
from engine.api.interface import GROUPS, kind_of, methods
from engine.api.types import SecretValue
from engine.errors import ErrorCode, SymbiError

PREFIX = "/api/v1/engine"


@dataclass(frozen=True)
class Param:
    name: str
    annotation: Any
    required: bool
    default: Any = None


@dataclass(frozen=True)
class Call:
    """One interface method as the HTTP API serves it."""

    group: str
    name: str
    params: tuple[Param, ...]
    returns: Any
    kind: str  # "reads", "mutating" or "reveals"
    streaming: bool  # an async generator (served as server-sent events, not here)

    @property
    def path(self) -> str:
        return f"{PREFIX}/{self.group}/{self.name}"

    @property
    def dotted(self) -> str:
        return f"{self.group}.{self.name}"

    def decode_args(self, body: Any) -> dict[str, Any]:
        """The keyword arguments in a request body; ``API_001`` naming what does not fit."""
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise SymbiError(
                ErrorCode.API_001,
                f"{self.dotted} takes a JSON object of its arguments",
                offending=type(body).__name__,
                hint=f"send e.g. {{{', '.join(repr(p.name) + ': ...' for p in self.params)}}}",
            )
        known = {p.name: p for p in self.params}
        unknown = sorted(set(body) - set(known))
        if unknown:
            raise SymbiError(
                ErrorCode.API_001,
                f"{self.dotted} has no argument {unknown[0]!r}",
                offending=unknown[0],
                hint=f"its arguments: {', '.join(known) or 'none'}",
            )
        kwargs: dict[str, Any] = {}
        for param in self.params:
            if param.name in body:
                kwargs[param.name] = decode(param.annotation, body[param.name], where=param.name)
            elif param.required:
                raise SymbiError(
                    ErrorCode.API_001,
                    f"{self.dotted} needs the argument {param.name!r}",
                    offending=param.name,
                    hint=f"its arguments: {', '.join(known)}",
                )
        return kwargs

    def decode_result(self, data: Any) -> Any:
        if self.returns is SecretValue:
            if not isinstance(data, dict) or not isinstance(data.get("value"), str):
                raise SymbiError(ErrorCode.API_001, "a revealed secret arrived without its value")
            return SecretValue(data["value"])
        if self.returns is type(None):
            return None
        return decode(self.returns, data, where=f"{self.dotted} result")


def _call(group: str, name: str, fn: Any, protocol: type[Any]) -> Call:
    hints = typing.get_type_hints(fn, vars(interface))
    params = tuple(
        Param(
            p.name,
            hints.get(p.name, Any),
            p.default is inspect.Parameter.empty,
            None if p.default is inspect.Parameter.empty else p.default,
        )
        for p in list(inspect.signature(fn).parameters.values())[1:]  # not self
    )
    returns = hints.get("return", Any)
    origin = typing.get_origin(returns)
    streaming = origin is not None and getattr(origin, "__name__", "") in ("AsyncGenerator", "AsyncIterator")
    return Call(group, name, params, returns, kind_of(protocol, name), streaming)


@functools.cache
def calls() -> dict[str, Call]:
    """Every interface method by ``"group.name"``."""
    table: dict[str, Call] = {}
    for group, protocol in GROUPS.items():
        for name, fn in methods(protocol).items():
            call = _call(group, name, fn, protocol)
            table[call.dotted] = call
    return table
