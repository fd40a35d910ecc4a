"""Bad input never crashes the engine: always a SymbiError (with a position, for files) or a decision."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.errors import ErrorCode, SymbiError
from engine.policy import PolicyEngine, load_document, validate
from engine.policy.cases import load_cases
from engine.policy.conditions import CONDITION_KINDS
from engine.policy.globs import GlobError, compile_glob
from engine.policy.model import EFFECTS, ENDPOINT_TYPES, OPERATIONS, RESOURCE_TYPES

SEED = Path(__file__).resolve().parent.parent / "examples" / "policies" / "access_policies.yaml"
# POLICY_FUZZ_EXAMPLES=5000 for a long run; the default keeps the suite fast.
FUZZ = settings(
    max_examples=int(os.environ.get("POLICY_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

json_scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _loads_or_positioned_error(text: str | bytes) -> None:
    try:
        load_document(text, "fuzz.yaml")
    except SymbiError as exc:
        assert exc.code is ErrorCode.POLICY_002
        assert exc.details["line"] >= 1 and exc.details["column"] >= 1
        assert "fuzz.yaml:" in exc.message
    diags = validate(text)
    assert all(d.line >= 1 and d.column >= 1 for d in diags)
    assert not any("internal error" in d.message for d in diags), diags


@FUZZ
@given(st.text(max_size=200))
def test_random_text(text):
    _loads_or_positioned_error(text)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes(data):
    _loads_or_positioned_error(data)


_fragments = st.sampled_from(
    ["version: '1.0'\n", "policies:\n", "  - name: p\n", "  - ", "    effect: Allow\n", "    effect: [Deny]\n",
     "    priority: 10\n", "    priority: x\n", "    resources: ['/tmp/**', '10.0.0.0/8']\n", "    resources: '[\n",
     "    conditions:\n", "      - resource_type: File\n", "      - time_window: {start: '09:00', end: '5'}\n",
     "      - metadata: {a: '>3'}\n", "      - tier: '>=Tier9'\n", "    operations: [Read, Fly]\n", "&a x: *a\n",
     "- \n", "\t", ": :\n", "'", "{", "}", "[", "]", "#", "\n", "!!binary aGk=\n", "? ", "--- \n", "|\n  x\n", "*b\n"]
)


@FUZZ
@given(st.lists(_fragments, max_size=25).map("".join))
def test_policy_shaped_text(text):
    _loads_or_positioned_error(text)


@FUZZ
@given(json_values)
def test_random_structures(value):
    _loads_or_positioned_error(yaml.safe_dump(value))


_cond = st.dictionaries(st.sampled_from(CONDITION_KINDS + ("bogus",)), json_values, min_size=1, max_size=2)
_policy = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(min_size=0, max_size=6) | json_scalars,
        "effect": st.sampled_from(EFFECTS + ("Maybe",)) | json_values,
        "priority": st.integers(-5, 5) | json_values,
        "resources": st.lists(st.sampled_from(["/tmp/**", "*", "10.0.0.0/8", "a[", "host:80", "**/x", ""]), max_size=3)
        | json_values,
        "operations": st.lists(st.sampled_from(OPERATIONS + ("Nope", "*")), max_size=3) | json_values,
        "conditions": st.lists(_cond, max_size=3) | json_values,
        "enabled": st.booleans() | json_values,
        **{k: json_values for k in ("description", "reason", "extra")},
    },
)
_document = st.fixed_dictionaries({"policies": st.lists(_policy, max_size=4)}, optional={"version": json_scalars})


@FUZZ
@given(_document)
def test_random_policy_structures(doc):
    text = yaml.safe_dump(doc, sort_keys=False)
    _loads_or_positioned_error(text)
    try:
        engine = PolicyEngine.from_text(text)
    except SymbiError:
        return
    for rtype in RESOURCE_TYPES:
        request = {"resource_type": rtype, "resource_path": "h:1" if rtype in ENDPOINT_TYPES else "/tmp/x",
                   "operation": "Read"}
        assert engine.evaluate(request).decision in EFFECTS


_request = st.dictionaries(
    st.sampled_from(["agent_id", "agent_name", "resource_type", "resource_path", "operation", "metadata",
                     "capabilities", "tier", "tool_name", "agent_security_level", "extra"]),
    json_values
    | st.sampled_from(list(RESOURCE_TYPES) + list(OPERATIONS) + ["/tmp/a", "localhost:80", "Tier1", "[::1]:x"]),
    max_size=8,
)

_rich = PolicyEngine.from_text(
    "policies:\n"
    "  - name: a\n    effect: Allow\n    resources: ['/tmp/**', '10.0.0.0/8', 'h:1-100']\n"
    "    conditions: [{agent_name: 'x*'}, {capability: 'c*'}, {tier: '>=1'}, {metadata: {k: '>1', j: [a, 2, null]}},"
    " {attributes: {extra: '*'}}, {time_window: {start: '00:00', end: '23:59'}}, {agent_security_level: [hi]}]\n"
    "  - name: b\n    effect: Deny\n    conditions: [{tool_name: 't?'}]\n"
)


@FUZZ
@given(_request | json_values)
def test_random_requests_never_crash_evaluate(request):
    for engine in (_rich, PolicyEngine.from_file(SEED)):
        try:
            decision = engine.evaluate(request)
        except SymbiError as exc:
            assert exc.code is ErrorCode.POLICY_004
            assert exc.details["field"]
        else:
            assert decision.decision in EFFECTS and isinstance(decision.matched_conditions, tuple)


@FUZZ
@given(st.text(max_size=150) | json_values.map(yaml.safe_dump))
def test_random_cases_files(text):
    try:
        load_cases(text, "cases.yaml")
    except SymbiError as exc:
        assert exc.code is ErrorCode.POLICY_004 and exc.details["line"] >= 1


# --- globs agree with a slow reference matcher (and stay linear) -----------------------------------

_seg_pattern = st.one_of(
    st.just("**"),
    st.lists(st.sampled_from(["a", "b", "*", "?", "[ab]", "[!a]"]), min_size=0, max_size=4).map("".join),
)
_path_seg = st.text(alphabet="ab", max_size=4)


def _reference(pattern: str, path: str) -> bool:
    """Segment by segment with fnmatch; '**' is zero or more whole segments."""
    import fnmatch
    from functools import cache

    psegs, ssegs = pattern.split("/"), path.split("/")

    @cache
    def match(i: int, j: int) -> bool:
        if i == len(psegs):
            return j == len(ssegs)
        if psegs[i] == "**":
            return any(match(i + 1, k) for k in range(j, len(ssegs) + 1))
        return j < len(ssegs) and fnmatch.fnmatchcase(ssegs[j], psegs[i]) and match(i + 1, j + 1)

    return match(0, 0)


@FUZZ
@given(st.lists(_seg_pattern, min_size=1, max_size=5).map("/".join), st.lists(_path_seg, min_size=1, max_size=6).map("/".join))
def test_path_globs_match_the_reference(pattern, path):
    try:
        rx = compile_glob(pattern, "/")
    except GlobError:  # '**' inside a segment, '***': rejected by design
        assume(False)
    assert (rx.fullmatch(path) is not None) is _reference(pattern, path), (pattern, path)


@FUZZ
@given(st.lists(st.sampled_from(["a", "b", "*", "?", "[ab]"]), max_size=6).map("".join), st.text(alphabet="ab", max_size=8))
def test_name_globs_match_fnmatch(pattern, name):
    import fnmatch

    try:
        rx = compile_glob(pattern, None)
    except GlobError:
        assume(False)
    assert (rx.fullmatch(name) is not None) is fnmatch.fnmatchcase(name, pattern)
