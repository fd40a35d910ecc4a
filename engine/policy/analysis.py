"""Static analysis of a policy set: rules that can never apply.

A policy B is *shadowed* by A when A comes first in evaluation order
(higher priority, or equal priority and a stronger effect), has a different
effect, and provably matches every request B matches: A's resource types and
operations include B's, each of B's resource patterns is covered by one of
A's, and each of A's other conditions is implied by one of B's. The proof is
sound but incomplete (it handles globs, CIDRs, ports, tiers and any-of
lists; not, say, two overlapping time windows), so a missing warning is
possible and a wrong warning is not.
"""

from __future__ import annotations

from engine.policy.document import Policy
from engine.policy.globs import glob_covers
from engine.policy.model import ENDPOINT_TYPES, PATH_TYPES
from engine.policy.report import W_SHADOWED, Report


def _resources_cover(a: Policy, b: Policy) -> bool:
    if not a.resources:
        return True
    if not b.resources:
        return False
    b_types = b.applies_to
    if b_types & PATH_TYPES:
        for text, _ in b.path_patterns:
            if not any(glob_covers(at, text, "/") for at, _ in a.path_patterns):
                return False
    if b_types & ENDPOINT_TYPES:
        for pattern in b.endpoint_patterns:
            if not any(ap.covers(pattern) for ap in a.endpoint_patterns):
                return False
    return True


def covers(a: Policy, b: Policy) -> bool:
    """True if ``a`` matches every request ``b`` matches (provably)."""
    if a.types is not None and (b.types is None or not b.types <= a.types):
        return False
    if a.operations is not None and (b.operations is None or not b.operations <= a.operations):
        return False
    for c in a.checks:
        if not any(d.implies(c) for d in b.checks):
            return False
    return _resources_cover(a, b)


def shadow_warnings(policies: list[Policy], report: Report) -> None:
    """Add a POLICY_W001 warning for each enabled policy that can never apply."""
    ordered = sorted((p for p in policies if p.enabled), key=lambda p: p.sort_key)
    kinds = [frozenset(c.kind for c in p.checks) for p in ordered]
    for j, b in enumerate(ordered):
        if b.types is not None and not b.types:
            continue  # already reported as never matching
        for i in range(j):
            a = ordered[i]
            if a.effect == b.effect or not kinds[i] <= kinds[j]:
                continue
            if covers(a, b):
                why = "higher priority" if a.priority > b.priority else f"equal priority and {a.effect} wins ties"
                report.warn(
                    (b.line, b.column),
                    W_SHADOWED,
                    f"policy '{b.name}' ({b.effect}) never applies: policy '{a.name}' (line {a.line}, "
                    f"{a.effect}, priority {a.priority}) matches every request it matches and comes first ({why})",
                )
                break
