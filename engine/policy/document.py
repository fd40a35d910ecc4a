"""Compiled policies: :class:`Policy` (matching and explaining) and :class:`PolicyDocument`.

A :class:`Policy` holds its conditions and resource patterns already
compiled; :meth:`Policy.matches` is the hot path (resource type and
operation are settled by the engine's index before it is called).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.policy.conditions import Condition
from engine.policy.endpoints import EndpointPattern
from engine.policy.model import EFFECT_RANK, ENDPOINT_TYPES, RESOURCE_TYPES, Diagnostic
from engine.policy.request import Req

ALL_TYPES = frozenset(RESOURCE_TYPES)


@dataclass(eq=False)
class Policy:
    """One policy of the file, compiled. ``types``/``operations`` None = any."""

    name: str
    effect: str
    priority: int
    order: int
    line: int
    column: int
    description: str = ""
    reason: str | None = None
    enabled: bool = True
    conditions: tuple[Condition, ...] = ()
    resources: tuple[str, ...] = ()
    operations: frozenset[str] | None = None
    types: frozenset[str] | None = None
    path_patterns: tuple[tuple[str, re.Pattern[str]], ...] = ()
    endpoint_patterns: tuple[EndpointPattern, ...] = ()
    checks: tuple[Condition, ...] = field(default=(), repr=False)
    _path_tests: tuple[Callable[[str], object], ...] = field(default=(), repr=False)
    decision_reason: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.reason:
            self.decision_reason = self.reason
        else:
            self.decision_reason = f"{self.effect} by policy '{self.name}' (priority {self.priority})"
            if self.description:
                self.decision_reason += f": {self.description.strip()}"
        self.checks = tuple(sorted((c for c in self.conditions if c.kind != "resource_type"), key=lambda c: c.cost))
        self._path_tests = tuple(rx.fullmatch for _, rx in self.path_patterns)

    @property
    def sort_key(self) -> tuple[int, int, int]:
        """Evaluation order: higher priority, then Deny > RequireApproval > Audit > Allow, then file order."""
        return (-self.priority, EFFECT_RANK[self.effect], self.order)

    @property
    def applies_to(self) -> frozenset[str]:
        return ALL_TYPES if self.types is None else self.types

    # -- matching ---------------------------------------------------------------

    def resource_matches(self, r: Req) -> bool:
        if not self.resources:
            return True
        if r.endpoint is not None:
            ep = r.endpoint
            for pattern in self.endpoint_patterns:
                if pattern.matches(ep):
                    return True
            return False
        path = r.path
        for test in self._path_tests:
            if test(path) is not None:
                return True
        return False

    def matches(self, r: Req) -> bool:
        """Resource and conditions (type and operation are the index's job)."""
        if self.resources and not self.resource_matches(r):
            return False
        for c in self.checks:
            if not c.test(r):
                return False
        return True

    def explain(self, r: Req) -> tuple[str, ...]:
        """What matched, one line each, for a request this policy matched."""
        lines = [c.explain(r) for c in self.conditions if c.kind == "resource_type"]
        if self.operations is not None:
            lines.append(f"operation {r.op} in [{', '.join(sorted(self.operations))}]")
        if self.resources:
            lines.append(self._resource_line(r))
        lines.extend(c.explain(r) for c in self.checks)
        if not lines:
            lines.append(f"no conditions: matches every {r.rtype} {r.op} request")
        return tuple(lines)

    def _resource_line(self, r: Req) -> str:
        if r.endpoint is not None:
            for pattern in self.endpoint_patterns:
                if pattern.matches(r.endpoint):
                    return f"resource_path '{r.endpoint.describe()}' matches '{pattern.text}'"
        for text, rx in self.path_patterns:
            if rx.fullmatch(r.path):
                return f"resource_path '{r.path}' matches '{text}'"
        return "resource_path matches"

    def first_failure(self, r: Req) -> str | None:
        """Why this policy does not match ``r`` (None if it does): for traces."""
        if not self.enabled:
            return "disabled"
        if self.types is not None and r.rtype not in self.types:
            return f"resource_type {r.rtype} not in [{', '.join(sorted(self.types))}]"
        if self.operations is not None and r.op not in self.operations:
            return f"operation {r.op} not in [{', '.join(sorted(self.operations))}]"
        if not self.resource_matches(r):
            shown = r.endpoint.describe() if r.endpoint is not None else r.path
            return f"resource_path '{shown}' matches none of [{', '.join(self.resources)}]"
        for c in self.checks:
            if not c.test(r):
                return f"{c.label}: does not hold"
        return None

    def summary(self) -> dict[str, object]:
        """The policy's source-level fields (for diffs and listings)."""
        return {
            "name": self.name,
            "effect": self.effect,
            "priority": self.priority,
            "enabled": self.enabled,
            "description": self.description,
            "reason": self.reason,
            "conditions": [c.label for c in self.conditions],
            "resources": list(self.resources),
            "operations": None if self.operations is None else sorted(self.operations),
        }


@dataclass(frozen=True, eq=False)
class PolicyDocument:
    """A valid policy file: its policies in file order, and its warnings."""

    version: str
    policies: tuple[Policy, ...]
    source: str = "<text>"
    sha256: str = ""
    text: str = ""
    diagnostics: tuple[Diagnostic, ...] = ()

    def get(self, name: str) -> Policy | None:
        return next((p for p in self.policies if p.name == name), None)

    @property
    def ordered(self) -> list[Policy]:
        """Enabled policies in evaluation order."""
        return sorted((p for p in self.policies if p.enabled), key=lambda p: p.sort_key)

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]


def endpoint_family(types: frozenset[str] | None) -> tuple[bool, bool]:
    """(needs path patterns, needs endpoint patterns) for these resource types."""
    applies = ALL_TYPES if types is None else types
    return bool(applies - ENDPOINT_TYPES), bool(applies & ENDPOINT_TYPES)
