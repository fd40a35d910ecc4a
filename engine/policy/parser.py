"""Reading a policy file: text -> :class:`PolicyDocument` plus diagnostics.

The format is the seed's ``access_policies.yaml``::

    version: "1.0"
    policies:
      - name: default_file_access        # required, unique
        priority: 100                    # integer, default 0; higher is first
        conditions:                      # all must hold; see engine.policy.conditions
          - resource_type: File
          - agent_security_level: standard
        effect: Allow                    # Allow | Deny | RequireApproval | Audit
        resources: ["/tmp/**"]           # globs / endpoint patterns; absent = any
        operations: [Read, Write]        # absent = any
        description: free text           # optional
        reason: shown in the decision    # optional
        enabled: true                    # optional

Every problem is a :class:`Diagnostic` at a 1-based line and column; unknown
keys, bad globs/CIDRs/ports, duplicate names and keys are errors. Nothing in
here raises on bad input except :func:`load_document`, which raises one
``POLICY_002`` carrying all diagnostics.
"""

from __future__ import annotations

import hashlib
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from engine.errors import ErrorCode, SymbiError
from engine.policy.analysis import shadow_warnings
from engine.policy.conditions import Condition, parse_condition
from engine.policy.document import Policy, PolicyDocument, endpoint_family
from engine.policy.endpoints import EndpointPattern, compile_endpoint
from engine.policy.globs import GlobError, compile_glob
from engine.policy.model import EFFECTS, OPERATIONS, Diagnostic, canonical_effect, canonical_operation, suggest
from engine.policy.report import W_DISABLED, W_NEVER, W_RELATIVE, W_VERSION, Report
from engine.policy.yamlpos import YamlFailure, compose, decode, is_str, kind, position, scalar

TOP_KEYS = ("version", "policies")
POLICY_KEYS = (
    "name",
    "description",
    "priority",
    "enabled",
    "conditions",
    "effect",
    "resources",
    "operations",
    "reason",
)
_SHAPE = "expected a mapping with 'version' and 'policies' at the top level"


def _fields(node: MappingNode, known: tuple[str, ...], where: str, report: Report) -> dict[str, tuple[Node, Node]]:
    """Key -> (key node, value node); unknown and duplicate keys are errors."""
    out: dict[str, tuple[Node, Node]] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode) or not isinstance(key_node.value, str):
            report.error(key_node, f"keys in {where} must be names, not {kind(key_node)}")
            continue
        name = key_node.value
        if name in out:
            first = position(out[name][0])[0]
            report.error(key_node, f"duplicate key '{name}' in {where} (first on line {first})")
            continue
        if name not in known:
            report.error(
                key_node, f"unknown key '{name}' in {where}{suggest(name, known)}; known keys: {', '.join(known)}"
            )
            continue
        out[name] = (key_node, value_node)
    return out


def _string_list(node: Node, report: Report, what: str) -> list[tuple[str, Node]] | None:
    items = list(node.value) if isinstance(node, SequenceNode) else [node]
    if isinstance(node, SequenceNode) and not items:
        report.error(node, f"{what} is an empty list, which matches nothing; leave it out to match any")
        return None
    out = []
    for item in items:
        if not _is_text(item):
            report.error(item, f"{what} entries must be strings, not {kind(item)}")
            return None
        out.append((item.value, item))
    return out


def _operations(node: Node, report: Report) -> tuple[bool, frozenset[str] | None]:
    values = _string_list(node, report, "operations")
    if values is None:
        return False, None
    ops: set[str] = set()
    for text, item in values:
        if text.strip() == "*":
            return True, None
        canon = canonical_operation(text)
        if canon is None:
            report.error(item, f"unknown operation '{text}'{suggest(text, OPERATIONS)}; known: {', '.join(OPERATIONS)}")
            return False, None
        ops.add(canon)
    return True, frozenset(ops)


def _compile_resources(
    values: list[tuple[str, Node]], types: frozenset[str] | None, report: Report, policy_name: str
) -> tuple[bool, tuple[tuple[str, Any], ...], tuple[EndpointPattern, ...]]:
    need_path, need_ep = endpoint_family(types)
    paths: list[tuple[str, Any]] = []
    endpoints: list[EndpointPattern] = []
    ok = True
    for text, node in values:
        if not text.strip():
            report.error(node, "empty resource pattern")
            ok = False
            continue
        path_err = ep_err = None
        if need_path:
            try:
                paths.append((text, compile_glob(text, "/")))
            except GlobError as exc:
                path_err = exc
        if need_ep:
            try:
                endpoints.append(compile_endpoint(text))
            except GlobError as exc:
                ep_err = exc
        failed_all = (not need_path or path_err is not None) and (not need_ep or ep_err is not None)
        if failed_all:
            use_path = path_err is not None and (ep_err is None or text.lstrip().startswith("/"))
            err = path_err if use_path else ep_err
            assert err is not None
            what = "glob" if use_path else "endpoint pattern"
            report.error(node, f"bad {what} '{text}': {err}", err.offset)
            ok = False
        elif types == frozenset({"File"}) and not text.startswith(("/", "**")):
            report.warn(
                node,
                W_RELATIVE,
                f"File pattern '{text}' in policy '{policy_name}' is relative; "
                "requests carry absolute paths, so it only matches relative ones",
            )
    return ok, tuple(paths), tuple(endpoints)


def _conditions(node: Node, report: Report) -> list[Condition] | None:
    groups = list(node.value) if isinstance(node, SequenceNode) else [node]
    out: list[Condition] = []
    ok = True
    for group in groups:
        if not isinstance(group, MappingNode) or not group.value:
            found = "an empty mapping" if isinstance(group, MappingNode) else kind(group)
            report.error(group, f"each condition is a mapping like {{resource_type: File}}, not {found}")
            ok = False
            continue
        seen: dict[str, Node] = {}
        for key_node, value_node in group.value:
            if is_str(key_node):
                if key_node.value in seen:
                    report.error(
                        key_node,
                        f"duplicate condition '{key_node.value}' in one entry; "
                        "use separate list entries to require both",
                    )
                    ok = False
                    continue
                seen[key_node.value] = key_node
            cond = parse_condition(key_node, value_node, report)
            if cond is None:
                ok = False
            else:
                out.append(cond)
    return out if ok else None


def parse_policy(node: Node, order: int, report: Report) -> Policy | None:
    """One entry of ``policies``; None (with diagnostics) if it is invalid."""
    if not isinstance(node, MappingNode):
        report.error(node, f"each policy must be a mapping with name, effect, ...; found {kind(node)}")
        return None
    errors_before = len(report.errors)
    f = _fields(node, POLICY_KEYS, "a policy", report)
    line, col = position(node)

    name = None
    if "name" not in f:
        report.error(node, "policy has no 'name'")
    elif not _is_text(f["name"][1]):
        report.error(f["name"][1], f"policy name must be a non-empty string, not {kind(f['name'][1])}")
    else:
        name = f["name"][1].value  # raw text: a policy may well be called 'off' or '2024
    where = f"policy '{name}'" if name else "this policy"

    effect = None
    if "effect" not in f:
        report.error(node, f"{where} has no 'effect' (one of {', '.join(EFFECTS)})")
    else:
        enode = f["effect"][1]
        if not is_str(enode):
            report.error(enode, f"effect must be one of {', '.join(EFFECTS)}, not {kind(enode)}")
        else:
            effect = canonical_effect(enode.value)
            if effect is None:
                report.error(
                    enode,
                    f"unknown effect '{enode.value}'{suggest(enode.value, EFFECTS)}; use one of {', '.join(EFFECTS)}",
                )

    priority = 0
    if "priority" in f:
        pnode = f["priority"][1]
        value = scalar(pnode) if isinstance(pnode, ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, int):
            report.error(pnode, f"priority must be a whole number, not {kind(pnode)}")
        else:
            priority = value

    enabled = True
    if "enabled" in f:
        vnode = f["enabled"][1]
        value = scalar(vnode) if isinstance(vnode, ScalarNode) else None
        if not isinstance(value, bool):
            report.error(vnode, f"enabled must be true or false, not {kind(vnode)}")
        else:
            enabled = value

    texts: dict[str, str | None] = {"description": "", "reason": None}
    for key in texts:
        if key in f:
            tnode = f[key][1]
            if not _is_text(tnode) and not is_str(tnode):
                report.error(tnode, f"{key} must be a string, not {kind(tnode)}")
            else:
                texts[key] = tnode.value

    operations: frozenset[str] | None = None
    if "operations" in f:
        _, operations = _operations(f["operations"][1], report)

    conditions: list[Condition] = []
    if "conditions" in f and not (isinstance(f["conditions"][1], ScalarNode) and scalar(f["conditions"][1]) is None):
        conditions = _conditions(f["conditions"][1], report) or []

    types: frozenset[str] | None = None
    for c in conditions:
        if c.types is not None:
            types = c.types if types is None else types & c.types
    if types is not None and not types and name:
        report.warn(node, W_NEVER, f"policy '{name}' can never match: its resource_type conditions contradict")

    resources: list[tuple[str, Node]] = []
    path_patterns: tuple[tuple[str, Any], ...] = ()
    endpoint_patterns: tuple[EndpointPattern, ...] = ()
    if "resources" in f:
        values = _string_list(f["resources"][1], report, "resources")
        if values is not None:
            resources = values
            _, path_patterns, endpoint_patterns = _compile_resources(values, types, report, name or "?")

    if len(report.errors) > errors_before or name is None or effect is None:
        return None
    if not enabled:
        report.warn(f["enabled"][1], W_DISABLED, f"policy '{name}' is disabled (enabled: false)")
    return Policy(
        name=name,
        effect=effect,
        priority=priority,
        order=order,
        line=line,
        column=col,
        description=texts["description"] or "",
        reason=texts["reason"],
        enabled=enabled,
        conditions=tuple(conditions),
        resources=tuple(t for t, _ in resources),
        operations=operations,
        types=types,
        path_patterns=path_patterns,
        endpoint_patterns=endpoint_patterns,
    )


def _is_text(node: Node) -> bool:
    """A scalar that reads as text (plain ``off`` or ``42`` included; null and empty not)."""
    return isinstance(node, ScalarNode) and scalar(node) is not None and bool(node.value.strip())


def _name_node(item: Node) -> ScalarNode | None:
    if not isinstance(item, MappingNode):
        return None
    for k, v in item.value:
        if is_str(k) and k.value == "name" and _is_text(v):
            return v
    return None


def parse_document(
    text: str | bytes, source: str = "<text>", *, analyze: bool = True
) -> tuple[PolicyDocument | None, list[Diagnostic]]:
    """Parse and compile; never raises for bad input.

    Returns the document (None if there is any error) and every diagnostic,
    errors and warnings, in file order. ``analyze`` adds shadowing warnings
    (quadratic in the number of policies; the engine skips it on reload).
    """
    report = Report()
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(data).hexdigest()
    try:
        body = decode(text) if isinstance(text, bytes) else text
        root = compose(body)
    except YamlFailure as exc:
        report.error((exc.line, exc.column), exc.message)
        return None, report.diagnostics
    if root is None:
        report.error((1, 1), f"the policy file is empty; {_SHAPE}")
        return None, report.diagnostics
    if not isinstance(root, MappingNode):
        report.error(root, f"{_SHAPE}, found {kind(root)}")
        return None, report.diagnostics
    f = _fields(root, TOP_KEYS, "the policy file", report)

    version = "1.0"
    if "version" in f:
        vnode = f["version"][1]
        value = scalar(vnode) if isinstance(vnode, ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
            report.error(vnode, f'version must be a string like "1.0", not {kind(vnode)}')
        else:
            version = vnode.value.strip()
            if version.split(".")[0] != "1":
                report.warn(vnode, W_VERSION, f"unknown policy file version '{version}'; this engine reads version 1")

    policies: list[Policy] = []
    if "policies" not in f:
        report.error(root, "the policy file has no 'policies' list")
    else:
        pnode = f["policies"][1]
        if isinstance(pnode, ScalarNode) and scalar(pnode) is None:
            pass  # "policies:" with nothing under it: no policies, the default decides
        elif not isinstance(pnode, SequenceNode):
            report.error(pnode, f"'policies' must be a list of policies, not {kind(pnode)}")
        else:
            names: dict[str, int] = {}
            for order, item in enumerate(pnode.value):
                name_node = _name_node(item)
                duplicate = name_node is not None and name_node.value in names
                if duplicate:
                    assert name_node is not None
                    first = names[name_node.value]
                    report.error(name_node, f"duplicate policy name '{name_node.value}' (first on line {first})")
                elif name_node is not None:
                    names[name_node.value] = position(name_node)[0]
                policy = parse_policy(item, order, report)
                if policy is not None and not duplicate:
                    policies.append(policy)

    if report.ok and analyze:
        shadow_warnings(policies, report)
    diagnostics = sorted(report.diagnostics, key=lambda d: (d.line, d.column))
    if not report.ok:
        return None, diagnostics
    body_text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return PolicyDocument(version, tuple(policies), source, digest, body_text, tuple(diagnostics)), diagnostics


def validate(text: str | bytes) -> list[Diagnostic]:
    """Every error and warning for ``text`` (for the editor). Never raises."""
    try:
        return parse_document(text)[1]
    except Exception as exc:  # a bug must not take the editor down: report it at 1:1
        return [Diagnostic(1, 1, "error", "POLICY_002", f"internal error while validating: {exc!r}")]


def load_document(text: str | bytes, source: str = "<text>", *, analyze: bool = False) -> PolicyDocument:
    """The document, or ``POLICY_002`` naming the first error's ``source:line:column``.

    ``details`` carries ``line``, ``column``, ``source`` and all
    ``diagnostics`` (as dicts).
    """
    document, diagnostics = parse_document(text, source, analyze=analyze)
    if document is not None:
        return document
    first = next(d for d in diagnostics if d.is_error)
    count = sum(1 for d in diagnostics if d.is_error)
    more = f" (and {count - 1} more error{'s' if count > 2 else ''})" if count > 1 else ""
    raise SymbiError(
        ErrorCode.POLICY_002,
        f"invalid policy file {source}:{first.line}:{first.column}: {first.message}{more}",
        offending=source,
        hint=f"run `symbiont policy check {source}` for every problem",
        details={
            "source": source,
            "line": first.line,
            "column": first.column,
            "diagnostics": [d.to_dict() for d in diagnostics],
        },
    )
