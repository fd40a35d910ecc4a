"""Validation: positioned errors and warnings, bad files, diff and atomic save."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.errors import ErrorCode, SymbiError
from engine.policy import PolicyEngine, diff, load_document, restore_previous, save_atomic, validate
from engine.policy.files import read_policy_bytes
from engine.policy.parser import parse_document

SEED = Path(__file__).resolve().parent.parent / "examples" / "policies" / "access_policies.yaml"


def found(text: str) -> list[tuple[int, int, str, str]]:
    return [(d.line, d.column, d.code, d.message) for d in validate(text)]


def one(text: str) -> tuple[int, int, str, str]:
    diags = found(text)
    assert len(diags) == 1, diags
    return diags[0]


def test_unknown_key_with_position_and_suggestion():
    text = "version: '1.0'\npolicies:\n  - name: a\n    efect: Allow\n"
    diags = found(text)
    assert (4, 5, "POLICY_002") == diags[1][:3] and "unknown key 'efect'" in diags[1][3]
    assert "did you mean 'effect'" in diags[1][3]
    assert diags[0][:2] == (3, 5) and "has no 'effect'" in diags[0][3]


def test_unknown_top_level_key_and_missing_policies():
    diags = found("version: '1.0'\npolcies: []\n")
    assert [(line, col) for line, col, _, _ in diags] == [(1, 1), (2, 1)]
    assert "no 'policies' list" in diags[0][3]
    assert "unknown key 'polcies'" in diags[1][3] and "did you mean 'policies'" in diags[1][3]


def test_bad_glob_points_inside_the_pattern():
    text = "policies:\n  - name: a\n    effect: Allow\n    resources: ['/ok/**', '/tmp/a**b']\n"
    line, col, code, message = one(text)
    assert (line, col, code) == (4, text.splitlines()[3].index("**b") + 1, "POLICY_002")  # at the '**' of a**b
    assert "'**' must be a whole segment" in message


@pytest.mark.parametrize(
    "pattern, needle",
    [
        ("/x/[abc", "unclosed '['"),
        ("/x/[]", "unclosed '['"),
        ("/x/***", "'***' is not a glob"),
        ("/x/a\\\\", "trailing backslash"),
    ],
)
def test_bad_path_globs(pattern, needle):
    text = f'policies:\n  - name: a\n    effect: Deny\n    conditions: [{{resource_type: File}}]\n    resources: ["{pattern}"]\n'
    assert needle in one(text)[3]


@pytest.mark.parametrize(
    "pattern, needle",
    [
        ("10.0.0.0/33", "bad CIDR"),
        ("[fd00::/129]", "bad IPv6"),
        ("host:70000", "bad port"),
        ("host:9-1", "bad port"),
        ("ho$t:80", "invalid character '$'"),
        (":80", "missing host"),
        ("host:80x", "bad port"),
        ("fd00::1:80/x/y", "write [addr]:port"),
    ],
)
def test_bad_network_patterns(pattern, needle):
    text = f'policies:\n  - name: n\n    effect: Deny\n    conditions: [{{resource_type: Network}}]\n    resources: ["{pattern}"]\n'
    line, col, code, message = one(text)
    assert line == 5 and code == "POLICY_002" and needle in message


def test_duplicate_names_and_duplicate_keys():
    text = (
        "policies:\n"
        "  - name: same\n    effect: Allow\n"
        "  - name: same\n    effect: Deny\n    effect: Allow\n"
    )
    diags = found(text)
    assert (4, 11, "POLICY_002") == diags[0][:3] and "duplicate policy name 'same' (first on line 2)" in diags[0][3]
    assert (6, 5) == diags[1][:2] and "duplicate key 'effect'" in diags[1][3]


@pytest.mark.parametrize(
    "snippet, needle, at",
    [
        ("effect: Allw", "unknown effect 'Allw' (did you mean 'Allow'?)", "Allw"),
        ("effect: Allow\n    priority: high", "priority must be a whole number", "high"),
        ("effect: Allow\n    priority: true", "priority must be a whole number", "true"),
        ("effect: Allow\n    enabled: maybe", "enabled must be true or false", "maybe"),
        ("effect: Allow\n    operations: [Read, Fly]", "unknown operation 'Fly'", "Fly"),
        ("effect: Allow\n    operations: []", "operations is an empty list", "[]"),
        ("effect: Allow\n    conditions: [{resource_type: Fle}]", "unknown resource type 'Fle'", "Fle"),
        ("effect: Allow\n    conditions: [{agent_nme: x}]", "unknown condition 'agent_nme' (did you mean 'agent_name'?)",
         "agent_nme"),
        ("effect: Allow\n    conditions: [resource_type]", "each condition is a mapping", "resource_type"),
        ("effect: Allow\n    conditions: [{tier: Tier7}]", "'Tier7' is not a tier", "Tier7"),
        ("effect: Allow\n    conditions: [{agent_name: 'a[b'}]", "unclosed '['", "[b'"),
        ("effect: Allow\n    conditions: [{metadata: {size: '>big'}}]", "'big' is not a number", "'>big'"),
        ("effect: Allow\n    conditions: [{metadata: []}]", "metadata must be a non-empty mapping", "[]"),
        ("effect: Allow\n    conditions: [{time_window: {start: '9', end: '17:00'}}]", "start must be a time", "'9'"),
        ("effect: Allow\n    conditions: [{time_window: {start: '09:00', end: '17:00', days: Funday}}]",
         "unknown day 'Funday'", "Funday"),
        ("effect: Allow\n    conditions: [{time_window: {start: '09:00', end: '17:00', tz: Nowhere/City}}]",
         "unknown time zone", "Nowhere"),
        ("effect: Allow\n    conditions: [{time_window: {start: '09:00'}}]", "time_window needs 'end'", "{start"),
        ("effect: Allow\n    resources: [{a: 1}]", "resources entries must be strings, not a mapping", "{a"),
        ("effect: Allow\n    resources: ''", "resources entries must be strings", "''"),
    ],
)
def test_field_errors_have_exact_positions(snippet, needle, at):
    text = f"policies:\n  - name: p\n    {snippet}\n"
    line, column, code, message = one(text)
    assert code == "POLICY_002" and needle in message, message
    last = text.splitlines()[-1]
    assert (line, column) == (len(text.splitlines()), last.index(at) + 1), message


def test_shadowed_rule_is_a_warning():
    text = (
        "policies:\n"
        "  - name: no-secrets\n    priority: 100\n    effect: Deny\n"
        "    conditions: [{resource_type: File}]\n    resources: ['/srv/**']\n"
        "  - name: reports\n    priority: 10\n    effect: Allow\n"
        "    conditions: [{resource_type: File}, {agent_name: reporter}]\n    resources: ['/srv/reports/*.csv']\n"
        "    operations: [Read]\n"
        "  - name: fine\n    priority: 10\n    effect: Allow\n    resources: ['/home/**']\n"
    )
    document, diags = parse_document(text)
    assert document is not None
    assert [(d.line, d.column, d.severity, d.code) for d in diags] == [(7, 5, "warning", "POLICY_W001")]
    assert "policy 'reports' (Allow) never applies: policy 'no-secrets' (line 2" in diags[0].message


@pytest.mark.parametrize(
    "a, b, shadowed",
    [
        ("resources: ['10.0.0.0/8']", "resources: ['10.1.0.0/16:443']", True),
        ("resources: ['10.1.0.0/16']", "resources: ['10.0.0.0/8']", False),
        ("resources: ['*.example.com']", "resources: ['api.example.com:443/v1/**']", True),
        ("resources: ['api.example.com:443']", "resources: ['api.example.com']", False),
        ("conditions: [{tier: '>=Tier1'}]", "conditions: [{tier: Tier2}]", True),
        ("conditions: [{agent_security_level: [low, standard]}]", "conditions: [{agent_security_level: low}]", True),
        ("conditions: [{agent_name: 'etl-*'}]", "conditions: [{agent_name: 'etl-7'}]", True),
        ("conditions: [{agent_name: 'etl-7'}]", "conditions: [{agent_name: 'etl-*'}]", False),
    ],
)
def test_shadowing_for_endpoints_and_conditions(a, b, shadowed):
    def block(name: str, priority: int, effect: str, body: str) -> str:
        lines = [f"  - name: {name}", f"    priority: {priority}", f"    effect: {effect}"]
        if body.startswith("resources"):
            lines += ["    conditions: [{resource_type: Network}]", f"    {body}"]
        else:
            lines += [f"    {body}"]
        return "\n".join(lines) + "\n"

    text = "policies:\n" + block("a", 2, "Deny", a) + block("b", 1, "Allow", b)
    document, diags = parse_document(text)
    assert document is not None, diags
    assert any(d.code == "POLICY_W001" for d in diags) is shadowed, (text, diags)


def test_equal_priority_allow_is_shadowed_by_deny_but_different_resources_are_not():
    text = (
        "policies:\n"
        "  - name: d\n    effect: Deny\n    resources: ['/a/**']\n"
        "  - name: a\n    effect: Allow\n    resources: ['/a/b']\n"
        "  - name: c\n    effect: Allow\n    resources: ['/c/**']\n"
    )
    warnings = [d for d in parse_document(text)[1] if d.code == "POLICY_W001"]
    assert [w.line for w in warnings] == [5]
    assert "equal priority and Deny wins ties" in warnings[0].message


def test_other_warnings():
    text = (
        "version: '2.0'\npolicies:\n"
        "  - name: never\n    effect: Allow\n    conditions: [{resource_type: File}, {resource_type: Tool}]\n"
        "  - name: rel\n    effect: Allow\n    conditions: [{resource_type: File}]\n    resources: ['tmp/**']\n"
        "  - name: off\n    effect: Allow\n    enabled: false\n"
    )
    document, diags = parse_document(text)
    assert document is not None
    assert [(d.line, d.code) for d in diags] == [(1, "POLICY_W003"), (3, "POLICY_W002"), (9, "POLICY_W004"),
                                                 (12, "POLICY_W005")]
    assert [p.name for p in document.policies] == ["never", "rel", "off"]


@pytest.mark.parametrize(
    "content, needle, pos",
    [
        ("", "the policy file is empty", (1, 1)),
        ("# only a comment\n\n", "the policy file is empty", (1, 1)),
        ("- a\n- b\n", "found a list", (1, 1)),
        ("just a string\n", "found a string", (1, 1)),
        ("42\n", "found a number", (1, 1)),
        ("policies: 3\n", "'policies' must be a list of policies, not a number", (1, 11)),
        ("policies:\n  - 3\n", "each policy must be a mapping", (2, 5)),
        ("policies: [\n", "YAML syntax error", (2, 1)),
        ("a: 1\n---\nb: 2\n", "expected a single document", (2, 1)),
        ("policies: []\nversion: [1]\n", "version must be a string", (2, 10)),
    ],
)
def test_empty_and_wrong_type_files(content, needle, pos):
    diags = validate(content)
    assert diags and diags[0].is_error and needle in diags[0].message, diags
    assert (diags[0].line, diags[0].column) == pos


def test_binary_file_is_reported_with_a_position(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_bytes(b"version: '1.0'\npolicies:\n  - name: \xff\xfe\n")
    diags = validate(path.read_bytes())
    assert (diags[0].line, diags[0].column) == (3, 11) and "not a text file" in diags[0].message
    diags = validate(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert diags[0].is_error and "not a text file" in diags[0].message
    diags = validate("version: 1\x00\n")
    assert (diags[0].line, diags[0].column) == (1, 11) and "NUL" in diags[0].message


def test_missing_file_and_directory_are_clear(tmp_path):
    with pytest.raises(SymbiError, match="policy file not found") as err:
        read_policy_bytes(tmp_path / "nope.yaml")
    assert err.value.code is ErrorCode.POLICY_002
    with pytest.raises(SymbiError, match="is a directory"):
        read_policy_bytes(tmp_path)
    with pytest.raises(SymbiError, match="not found"):
        PolicyEngine.from_file(tmp_path / "nope.yaml")


def test_load_document_raises_one_error_with_all_diagnostics():
    with pytest.raises(SymbiError) as err:
        load_document("policies:\n  - name: a\n  - name: b\n    effect: Nope\n", "p.yaml")
    e = err.value
    assert e.code is ErrorCode.POLICY_002
    assert e.message.startswith("invalid policy file p.yaml:2:5: policy 'a' has no 'effect'")
    assert "(and 1 more error)" in e.message
    assert (e.details["line"], e.details["column"]) == (2, 5) and len(e.details["diagnostics"]) == 2


def test_names_and_values_keep_their_text():
    doc = load_document("policies:\n  - name: off\n    effect: Allow\n    conditions: [{agent_name: yes}]\n")
    assert doc.policies[0].name == "off"
    assert doc.policies[0].conditions[0].literals == frozenset({"yes"})


# --- diff ---------------------------------------------------------------------------------------


def test_diff_by_policy_and_text():
    old = SEED.read_text()
    new = old.replace("priority: 200", "priority: 300").replace('"localhost/**"', '"localhost/**"\n      - "[::1]/**"')
    new += "  - name: extra\n    effect: Audit\n"
    d = diff(old, new)
    assert d.semantic and d.added == ("extra",) and d.removed == ()
    assert d.changed == (("network_restrictions", ("priority", "resources")),)
    assert "-    priority: 200" in d.unified and "+    priority: 300" in d.unified
    assert d.summary() == ["+ extra", "~ network_restrictions: priority, resources"]
    broken = diff(old, "policies: [")
    assert not broken.semantic and broken.unified
    assert diff(old, old).empty


# --- atomic save -------------------------------------------------------------------------------


def test_save_atomic_validates_keeps_previous_and_keeps_mode(tmp_path):
    path = tmp_path / "access_policies.yaml"
    first = save_atomic(path, SEED.read_text())
    assert first.previous is None and path.read_text() == SEED.read_text()
    os.chmod(path, 0o640)
    edited = SEED.read_text().replace("priority: 100", "priority: 150")
    result = save_atomic(path, edited)
    assert path.read_text() == edited
    assert Path(result.previous).read_text() == SEED.read_text()
    assert result.previous_sha256 == first.sha256
    assert (path.stat().st_mode & 0o777) == 0o640
    with pytest.raises(SymbiError) as err:
        save_atomic(path, "policies:\n  - name: x\n    effect: Maybe\n")
    assert err.value.code is ErrorCode.POLICY_002 and err.value.details["line"] == 3
    assert path.read_text() == edited  # unchanged
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    restore_previous(path)
    assert path.read_text() == SEED.read_text()
