"""``symbiont audit ...`` end to end: exit codes, messages, filters, export, tail -f."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from engine.audit import AuditTrail
from tests.test_audit_support import EVENTS, fill, log_dir_fixture, run_cli, tampered, template_log_fixture  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


def test_verify_intact_exits_0(log_dir):
    code, out, _ = run_cli("audit", "verify", "--data-dir", str(log_dir))
    assert code == 0, out
    assert out.startswith("OK: audit chain intact") and f"{EVENTS} events" in out


def test_verify_takes_the_global_data_dir_too(log_dir):
    code, out, _ = run_cli("--data-dir", str(log_dir), "audit", "verify", "--json")
    assert code == 0 and json.loads(out)["ok"] is True


def test_verify_tampered_exits_1_naming_seq_and_problem(log_dir):
    with tampered(log_dir) as con:
        con.execute("UPDATE events SET resource = 'elsewhere' WHERE seq = 12")
    code, out, _ = run_cli("audit", "verify", "--data-dir", str(log_dir))
    assert code == 1
    assert out.startswith("FAILED: modified at seq 12:")


def test_verify_with_exported_key(log_dir, tmp_path):
    pem = tmp_path / "runtime.pub.pem"
    code, _, err = run_cli("audit", "key", "--data-dir", str(log_dir), "--out", str(pem))
    assert code == 0 and "sha256:" in err and pem.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    code, out, _ = run_cli("audit", "verify", "--data-dir", str(log_dir), "--public-key", str(pem))
    assert code == 0, out


def test_verify_missing_log_is_a_usage_error(tmp_path):
    code, out, err = run_cli("audit", "verify", "--data-dir", str(tmp_path / "nowhere"))
    assert code == 2 and "AUDIT_003" in err and "nowhere" in err and "Traceback" not in err


def test_query_filters_and_json(log_dir):
    code, out, err = run_cli(
        "audit", "query", "--data-dir", str(log_dir), "--type", "tool.call", "--decision", "deny", "--json"
    )
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows and all(r["type"] == "tool.call" and r["decision"] == "deny" for r in rows)
    code, out, err = run_cli("audit", "query", "--data-dir", str(log_dir), "--limit", "5", "--offset", "5")
    assert code == 0 and len(out.splitlines()) == 5 and "#6 " in out.splitlines()[0]
    assert f"6-10 of {EVENTS}" in err
    code, out, _ = run_cli("audit", "query", "--data-dir", str(log_dir), "--text", "event number 17", "--json")
    assert [json.loads(x)["details"]["i"] for x in out.splitlines()] == [17]
    code, out, _ = run_cli(
        "audit", "query", "--data-dir", str(log_dir), "--since", "1h", "--agent", "agent-1", "--json"
    )
    assert code == 0 and all(json.loads(x)["agent"] == "agent-1" for x in out.splitlines()) and out


def test_query_bad_input_names_it(log_dir):
    code, _, err = run_cli("audit", "query", "--data-dir", str(log_dir), "--since", "the dawn of time")
    assert code == 2 and "AUDIT_003" in err and "the dawn of time" in err
    code, _, err = run_cli("audit", "query", "--data-dir", str(log_dir), "--limit", "0")
    assert code == 2 and "limit" in err


def test_tail_and_export(log_dir, tmp_path):
    code, out, _ = run_cli("audit", "tail", "--data-dir", str(log_dir), "-n", "3")
    assert code == 0 and [line.split()[2] for line in out.splitlines()] == ["#33", "#34", "#35"]
    dest = tmp_path / "out.jsonl"
    code, _, err = run_cli("audit", "export", "--data-dir", str(log_dir), "--out", str(dest), "--type", "agent.*")
    lines = dest.read_text().splitlines()
    assert code == 0 and f"exported {len(lines)} events" in err
    assert lines and all(json.loads(x)["type"] == "agent.state" for x in lines)


def test_tail_follow_in_a_real_process_while_the_engine_writes(tmp_path):
    async def go() -> str:
        async with AuditTrail(tmp_path) as trail:
            await fill(trail, 2)
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c",
                "import sys, engine.cli; engine.cli._PLUGINS = ('engine.audit.cli',); sys.exit(engine.cli.main(sys.argv[1:]))",
                "audit", "tail", "--data-dir", str(tmp_path), "-n", "1", "-f", "--max", "2", "--interval", "0.05",
                cwd=ROOT, stdout=subprocess.PIPE,
            )  # fmt: skip
            first = await asyncio.wait_for(proc.stdout.readline(), 20)
            assert b"#2 " in first
            await trail.append(type="tool.call", action="late-one")
            await trail.append(type="tool.call", action="late-two")
            rest, _ = await asyncio.wait_for(proc.communicate(), 20)
            assert proc.returncode == 0
            return rest.decode()

    rest = asyncio.run(go())
    assert "late-one" in rest and "late-two" in rest
