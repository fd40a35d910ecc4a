"""``symbiont policy check|eval|test|replay`` driven through ``engine.cli.main``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import engine.cli

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "examples" / "policies" / "access_policies.yaml"
SEED_CASES = ROOT / "examples" / "policies" / "access_policies.cases.yaml"


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setattr(engine.cli, "_PLUGINS", ("engine.policy.cli",))
    monkeypatch.setenv("SYMBI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SYMBI_CONFIG", raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = engine.cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_ok_on_the_seed_example(capsys):
    code, out, _ = run(capsys, "policy", "check", str(SEED))
    assert code == 0 and out.strip() == f"ok: {SEED}: 2 policies"


def test_check_lists_errors_and_warnings_with_positions(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: '1.0'\npolicies:\n"
        "  - name: a\n    effect: Allow\n    resources: ['/x/a**']\n"
        "  - name: a\n    effect: Deny\n    colour: red\n"
    )
    code, out, _ = run(capsys, "policy", "check", str(bad))
    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith(f"{bad}:5:22: POLICY_002 bad glob '/x/a**'")
    assert lines[1] == f"{bad}:6:11: POLICY_002 duplicate policy name 'a' (first on line 3)"
    assert lines[2].startswith(f"{bad}:8:5: POLICY_002 unknown key 'colour' in a policy")
    assert lines[-1] == f"{bad}: 3 errors, 0 warnings"

    shadow = tmp_path / "shadow.yaml"
    shadow.write_text("policies:\n  - name: all\n    effect: Deny\n  - name: some\n    effect: Allow\n")
    code, out, _ = run(capsys, "policy", "check", str(shadow))
    assert code == 0
    assert out.splitlines()[0].startswith(f"{shadow}:4:5: POLICY_W001 warning: policy 'some' (Allow) never applies")
    assert out.splitlines()[-1] == f"ok: {shadow}: 2 policies (1 warning)"


def test_check_json_and_missing_file(capsys, tmp_path):
    code, out, _ = run(capsys, "policy", "check", "--json", str(SEED))
    assert code == 0 and json.loads(out) == {"file": str(SEED), "ok": True, "diagnostics": []}
    code, out, err = run(capsys, "policy", "check", str(tmp_path / "none.yaml"))
    assert code == 2 and out == ""
    assert "POLICY_002: policy file not found" in err and "none.yaml" in err


def test_check_empty_and_wrong_type_files(capsys, tmp_path):
    for content, needle in (("", "is empty"), ("- 1\n", "found a list"), (b"\xff\xd8\xff\xe0", "not a text file")):
        path = tmp_path / "f.yaml"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        code, out, _ = run(capsys, "policy", "check", str(path))
        assert code == 1 and out.startswith(f"{path}:1:1: POLICY_002") and needle in out


def test_eval_prints_the_decision_and_explanation(capsys):
    request = {"agent_id": "a1", "resource_type": "Network", "resource_path": "localhost:5432", "operation": "Connect"}
    code, out, _ = run(capsys, "policy", "eval", str(SEED), "--request", json.dumps(request))
    assert code == 0
    result = json.loads(out)
    assert result == {
        "decision": "Deny",
        "policy": "network_restrictions",
        "reason": "Deny by policy 'network_restrictions' (priority 200)",
        "matched_conditions": [
            "resource_type is Network",
            "operation Connect in [Connect]",
            "resource_path 'localhost:5432' matches 'localhost/**'",
        ],
        "priority": 200,
        "default": False,
    }
    assert '"decision": "Deny"' in out


def test_eval_request_from_file_trace_and_default(capsys, tmp_path):
    req = tmp_path / "req.json"
    req.write_text(json.dumps({"resource_type": "File", "resource_path": "/srv/x", "operation": "Read"}))
    code, out, _ = run(capsys, "policy", "eval", str(SEED), "--request", f"@{req}", "--trace")
    result = json.loads(out)
    assert code == 0 and result["decision"] == "Deny" and result["default"] is True
    assert [t["policy"] for t in result["trace"]] == ["network_restrictions", "default_file_access"]
    assert result["trace"][1]["why"] == ["resource_path '/srv/x' matches none of [/tmp/**, /workspace/**]"]
    code, out, _ = run(capsys, "policy", "eval", str(SEED), "--default-effect", "Allow", "--request", f"@{req}")
    assert json.loads(out)["decision"] == "Allow"


def test_eval_default_effect_comes_from_the_runtime_config(capsys, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "runtime_config.toml").write_text('[policy]\ndefault_effect = "Allow"\n')
    request = json.dumps({"resource_type": "File", "resource_path": "/srv/x", "operation": "Read"})
    code, out, _ = run(capsys, "--data-dir", str(data), "policy", "eval", str(SEED), "--request", request)
    assert code == 0 and json.loads(out)["decision"] == "Allow"


def test_eval_bad_input_exits_2_with_a_clear_message(capsys):
    code, _, err = run(capsys, "policy", "eval", str(SEED), "--request", "{not json")
    assert code == 2 and "POLICY_004: the request is not valid JSON" in err and "line 1 column 2" in err
    code, _, err = run(capsys, "policy", "eval", str(SEED), "--request", '{"resource_type": "File"}')
    assert code == 2 and "POLICY_004: invalid policy request: operation is missing" in err


def test_test_command_passes_on_the_seed_cases(capsys):
    code, out, _ = run(capsys, "policy", "test", str(SEED), str(SEED_CASES), "--default-effect", "Deny")
    assert code == 0 and out.strip() == "PASS: 10/10"


def test_the_demo_policy_file_is_clean_and_its_cases_hold(capsys):
    demo = ROOT / "examples" / "policies" / "demo_policies.yaml"
    code, out, _ = run(capsys, "policy", "check", str(demo))
    assert code == 0 and out.strip() == f"ok: {demo}: 12 policies"
    cases = ROOT / "examples" / "policies" / "demo_policies.cases.yaml"
    code, out, _ = run(capsys, "policy", "test", str(demo), str(cases), "--default-effect", "Deny")
    assert code == 0 and out.strip() == "PASS: 15/15"


def test_test_command_shows_a_readable_diff(capsys, tmp_path):
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "- name: tmp is readable\n"
        "  request: {resource_type: File, resource_path: /tmp/a, operation: Read, agent_security_level: standard}\n"
        "  expect: Allow\n"
        "- name: wrong on purpose\n"
        "  request: {resource_type: Network, resource_path: 'localhost:80', operation: Connect}\n"
        "  expect: {decision: Allow, policy: default_file_access}\n"
        "- name: bad request\n"
        "  request: {resource_type: File}\n"
        "  expect: Deny\n"
    )
    code, out, _ = run(capsys, "policy", "test", str(SEED), str(cases), "--default-effect", "Deny")
    assert code == 1
    assert out.splitlines() == [
        f"FAIL {cases}:4: wrong on purpose",
        '  request: {"operation": "Connect", "resource_path": "localhost:80", "resource_type": "Network"}',
        "  - decision: Allow",
        "  + decision: Deny",
        "  - policy: default_file_access",
        "  + policy: network_restrictions",
        "    reason: Deny by policy 'network_restrictions' (priority 200)",
        "    matched: resource_type is Network",
        "    matched: operation Connect in [Connect]",
        "    matched: resource_path 'localhost:80' matches 'localhost/**'",
        f"FAIL {cases}:7: bad request",
        '  request: {"resource_type": "File"}',
        "  error: POLICY_004: invalid policy request: operation is missing (input: 'operation'). "
        "Hint: one of Read, Write, Execute, Delete, Create, Modify, List, Connect, Send, Receive, Publish, "
        "Subscribe, Call, Allocate",
        "----------------------------------------",
        "PASS: 1/3",
        "FAIL: 2/3",
    ]


def test_test_command_rejects_malformed_cases_with_a_position(capsys, tmp_path):
    cases = tmp_path / "cases.yaml"
    cases.write_text("cases:\n  - name: x\n    request: {}\n    expect: Perhaps\n")
    code, _, err = run(capsys, "policy", "test", str(SEED), str(cases))
    assert code == 2 and f"POLICY_004: invalid test cases {cases}:4:13" in err


# --- replay -------------------------------------------------------------------------------------


def make_audit_db(data_dir: Path) -> None:
    """The documented shape: an events table whose details JSON carries policy_request."""
    data_dir.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(data_dir / "audit.db")
    con.execute(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, ts REAL, type TEXT, agent TEXT, action TEXT,"
        " resource TEXT, decision TEXT, details TEXT, hash TEXT)"
    )
    rows = [
        ("a1", "Allow", {"resource_type": "File", "resource_path": "/tmp/a", "operation": "Read",
                         "agent_security_level": "standard"}),
        ("a1", "Allow", {"resource_type": "Network", "resource_path": "localhost:8080", "operation": "Connect"}),
        ("a2", "Deny", {"resource_type": "File", "resource_path": "/etc/passwd", "operation": "Read"}),
        ("a2", "Deny", {"resource_type": "Bogus", "resource_path": "x", "operation": "Read"}),
    ]
    for i, (agent, decision, request) in enumerate(rows, 1):
        details = {"policy_request": request, "policy_decision": {"decision": decision, "policy": None}}
        con.execute(
            "INSERT INTO events VALUES (?, ?, 'policy.decision', ?, 'access', ?, ?, ?, 'h')",
            (i, 1_790_000_000 + i, agent, request["resource_path"], decision, json.dumps(details)),
        )
    con.execute("INSERT INTO events VALUES (9, 1, 'agent.start', 'a1', 'start', '', NULL, '{\"pid\": 1}', 'h')")
    con.commit()
    con.close()


def test_replay_lists_decisions_that_would_change(capsys, tmp_path):
    data = tmp_path / "audit-data"
    make_audit_db(data)
    code, out, _ = run(capsys, "policy", "replay", str(SEED), "--data-dir", str(data), "--default-effect", "Deny")
    lines = out.splitlines()
    assert code == 1
    assert lines[0] == (
        "#2 2026-09-21 14:13:22 a1: Connect Network localhost:8080: Allow -> Deny (network_restrictions)"
    )
    assert lines[1].startswith("#4: cannot replay: POLICY_004")
    assert lines[-1] == "4 recorded decisions: 1 would change, 2 unchanged, 1 not replayable"

    code, out, _ = run(capsys, "--data-dir", str(data), "policy", "replay", str(SEED), "--json")
    report = json.loads(out)
    assert code == 1 and report["total"] == 4 and report["unchanged"] == 2
    assert report["changed"][0]["recorded"]["decision"] == "Allow"
    assert report["changed"][0]["now"]["policy"] == "network_restrictions"


def test_replay_without_changes_and_without_an_audit_db(capsys, tmp_path):
    data = tmp_path / "d"
    make_audit_db(data)
    permissive = tmp_path / "p.yaml"
    permissive.write_text(
        "policies:\n  - name: tmp\n    effect: Allow\n    resources: ['/tmp/**']\n"
        "  - name: local\n    effect: Allow\n    conditions: [{resource_type: Network}]\n"
    )
    code, out, _ = run(capsys, "policy", "replay", str(permissive), "--data-dir", str(data))
    assert code == 0 and out.splitlines()[-1].startswith("4 recorded decisions: 0 would change, 3 unchanged")
    code, out, _ = run(capsys, "policy", "replay", str(SEED), "--data-dir", str(tmp_path / "empty"))
    assert code == 0 and "no audit trail to replay" in out and "nothing recorded yet" in out
