"""Policy test cases (``symbiont policy test``, and the editor's test panel).

A cases file is YAML: a list of cases, or ``cases:`` holding one::

    cases:
      - name: standard agents may read /tmp
        request: {agent_id: a1, resource_type: File, resource_path: /tmp/x,
                  operation: Read, agent_security_level: standard}
        expect: Allow                      # or a mapping:
      - name: localhost is off limits
        request: {...}
        expect: {decision: Deny, policy: network_restrictions, reason_contains: "..."}
        at: "2026-11-27T10:00:00Z"         # optional evaluation time (time windows)

``policy: null`` expects the default to decide. A failing case shows a
``-expected`` / ``+actual`` diff of the fields that differ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from engine.errors import ErrorCode, SymbiError
from engine.policy.engine import PolicyEngine
from engine.policy.model import EFFECTS, Decision, canonical_effect
from engine.policy.replay import parse_time
from engine.policy.yamlpos import YamlFailure, compose, decode, is_str, kind, plain, position

_CASE_KEYS = ("name", "request", "expect", "at")
_EXPECT_KEYS = ("decision", "policy", "reason_contains")
_UNSET = object()


@dataclass(frozen=True)
class Case:
    name: str
    request: Any
    decision: str
    line: int
    policy: Any = _UNSET  # _UNSET = not checked; None = expect the default
    reason_contains: str | None = None
    at: float | None = None


@dataclass
class CaseResult:
    case: Case
    passed: bool
    actual: Decision | None = None
    error: SymbiError | None = None
    diff: list[str] = field(default_factory=list)


def _fail(source: str, node: Node | tuple[int, int], message: str) -> SymbiError:
    line, col = node if isinstance(node, tuple) else position(node)
    return SymbiError(
        ErrorCode.POLICY_004,
        f"invalid test cases {source}:{line}:{col}: {message}",
        offending=source,
        details={"line": line, "column": col},
    )


def load_cases(text: str | bytes, source: str = "<cases>") -> list[Case]:
    """Parse a cases file; POLICY_004 naming ``source:line:column`` if it is malformed."""
    try:
        root = compose(decode(text) if isinstance(text, bytes) else text)
    except YamlFailure as exc:
        raise _fail(source, (exc.line, exc.column), exc.message) from None
    if root is None:
        raise _fail(source, (1, 1), "the cases file is empty; expected a list of cases (or cases: [...])")
    if isinstance(root, MappingNode):
        items = {k.value: v for k, v in root.value if is_str(k)}
        if set(items) != {"cases"}:
            raise _fail(source, root, "expected a list of cases, or a mapping with only 'cases'")
        root = items["cases"]
    if not isinstance(root, SequenceNode):
        raise _fail(source, root, f"expected a list of cases, found {kind(root)}")
    cases = []
    for index, node in enumerate(root.value, 1):
        cases.append(_case(node, index, source))
    return cases


def _plain(node: Node, source: str) -> Any:
    try:
        return plain(node)
    except YamlFailure as exc:
        raise _fail(source, (exc.line, exc.column), exc.message) from None


def _case(node: Node, index: int, source: str) -> Case:
    if not isinstance(node, MappingNode):
        raise _fail(source, node, f"each case is a mapping with name, request, expect; found {kind(node)}")
    fields: dict[str, Node] = {}
    for k, v in node.value:
        if not is_str(k) or k.value not in _CASE_KEYS:
            shown = k.value if isinstance(k, ScalarNode) else kind(k)
            raise _fail(source, k, f"unknown key '{shown}' in a case; known: {', '.join(_CASE_KEYS)}")
        fields[k.value] = v
    name = fields["name"].value if "name" in fields and is_str(fields["name"]) else f"case {index}"
    for required in ("request", "expect"):
        if required not in fields:
            raise _fail(source, node, f"case '{name}' has no '{required}'")
    request = _plain(fields["request"], source)
    at = None
    if "at" in fields:
        at = parse_time(_plain(fields["at"], source))
        if at is None:
            raise _fail(source, fields["at"], "at must be epoch seconds or an ISO 8601 time")
    expect = fields["expect"]
    policy: Any = _UNSET
    reason = None
    if isinstance(expect, MappingNode):
        ex: dict[str, Node] = {}
        for k, v in expect.value:
            if not is_str(k) or k.value not in _EXPECT_KEYS:
                shown = k.value if isinstance(k, ScalarNode) else kind(k)
                raise _fail(source, k, f"unknown key '{shown}' in expect; known: {', '.join(_EXPECT_KEYS)}")
            ex[k.value] = v
        if "decision" not in ex:
            raise _fail(source, expect, f"case '{name}': expect needs a decision")
        decision_node = ex["decision"]
        if "policy" in ex:
            value = _plain(ex["policy"], source)
            if value is not None and not isinstance(value, str):
                raise _fail(source, ex["policy"], "expect.policy must be a policy name or null")
            policy = value
        if "reason_contains" in ex:
            if not is_str(ex["reason_contains"]):
                raise _fail(source, ex["reason_contains"], "expect.reason_contains must be a string")
            reason = ex["reason_contains"].value
    else:
        decision_node = expect
    decision = canonical_effect(decision_node.value) if is_str(decision_node) else None
    if decision is None:
        raise _fail(source, decision_node, f"expected decision must be one of {', '.join(EFFECTS)}")
    return Case(name, request, decision, position(node)[0], policy, reason, at)


def _show(value: Any) -> str:
    return "null" if value is None else str(value)


def run_case(engine: PolicyEngine, case: Case) -> CaseResult:
    try:
        actual = engine.evaluate(case.request, at=case.at)
    except SymbiError as exc:
        return CaseResult(case, False, None, exc, [f"  error: {exc.render()}"])
    diff: list[str] = []
    if actual.decision != case.decision:
        diff += [f"  - decision: {case.decision}", f"  + decision: {actual.decision}"]
    if case.policy is not _UNSET and actual.policy != case.policy:
        diff += [f"  - policy: {_show(case.policy)}", f"  + policy: {_show(actual.policy)}"]
    if case.reason_contains is not None and case.reason_contains not in actual.reason:
        diff += [f"  - reason containing: {case.reason_contains}", f"  + reason: {actual.reason}"]
    if diff:
        if case.policy is _UNSET:
            diff.append(f"    policy: {_show(actual.policy)}")
        diff.append(f"    reason: {actual.reason}")
        diff.extend(f"    matched: {line}" for line in actual.matched_conditions)
    return CaseResult(case, not diff, actual, None, diff)


def run_cases(engine: PolicyEngine, cases: list[Case]) -> list[CaseResult]:
    return [run_case(engine, case) for case in cases]


def format_results(results: list[CaseResult], source: str, verbose: bool = False) -> str:
    """opa-test style: failures with their diff, then PASS/FAIL counts."""
    lines: list[str] = []
    for res in results:
        if res.passed:
            if verbose:
                lines.append(f"PASS {res.case.name}")
            continue
        lines.append(f"FAIL {source}:{res.case.line}: {res.case.name}")
        lines.append(f"  request: {json.dumps(res.case.request, sort_keys=True, default=str)}")
        lines.extend(res.diff)
    passed = sum(r.passed for r in results)
    failed = len(results) - passed
    if lines:
        lines.append("-" * 40)
    lines.append(f"PASS: {passed}/{len(results)}")
    if failed:
        lines.append(f"FAIL: {failed}/{len(results)}")
    return "\n".join(lines)
