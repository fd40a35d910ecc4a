"""Hostile input answered: nesting bombs at every JSON/YAML/TOML entry point,
and agents that drop their connections with replies unread.

``json.loads``, PyYAML's composer and ``tomllib`` recurse once per level, so
~100k levels of ``[`` (a few hundred KB, under every size limit) used to
raise ``RecursionError`` out of the agent socket's handler and out of the
CLIs. Now each entry point refuses more than ``engine.safeparse.MAX_DEPTH``
levels with its own error code, and the agent socket keeps the connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import select
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

import engine.cli
from engine import safeparse
from engine.agents import protocol
from engine.agents.rpc_server import AgentRpcServer
from engine.audit.query import record_from_row
from engine.policy.cases import load_cases
from engine.policy.engine import PolicyEngine
from engine.policy.parser import load_document
from engine.policy.replay import _record
from tests.helpers import until

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "examples" / "policies" / "access_policies.yaml"
LIMIT = safeparse.MAX_DEPTH
BOMB = 100_000  # levels: 200 KB of brackets, far under the 1 MiB message and file limits


@pytest.fixture(autouse=True)
def _engine_logs_reach_caplog(monkeypatch):
    """engine.logsetup stops the "symbi" logger propagating (an earlier test may have run it): these tests
    read the engine's log through caplog, so they make it propagate again, or their checks would pass on
    an empty log."""
    monkeypatch.setattr(logging.getLogger("symbi"), "propagate", True)


def nested_list(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def nested_obj(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text
        assert "RecursionError" not in text


# -- the parsers: the limit, exactly ------------------------------------------------------------


@pytest.mark.parametrize("depth", [1, 10, 30, LIMIT])
def test_normal_and_limit_depths_parse(depth):
    assert safeparse.loads_json(nested_list(depth)) == json.loads(nested_list(depth))
    assert safeparse.loads_json(nested_obj(depth).encode()) == json.loads(nested_obj(depth))
    assert safeparse.loads_toml(f"a = {nested_list(depth)}\n") == tomllib.loads(f"a = {nested_list(depth)}\n")
    block = "".join("  " * i + f"k{i}:\n" for i in range(depth - 1)) + "  " * (depth - 1) + "leaf: 1\n"
    assert safeparse.load_yaml(block) == yaml.safe_load(block)
    assert safeparse.load_yaml(nested_list(depth)) == yaml.safe_load(nested_list(depth))


def test_one_level_over_is_refused_with_depth_limit_and_position():
    with pytest.raises(safeparse.JsonTooDeep) as info:
        safeparse.loads_json(' {"x": ' + nested_list(LIMIT) + "}")
    exc = info.value
    assert (exc.depth, exc.limit, exc.line, exc.column) == (LIMIT + 1, LIMIT, 1, 8 + LIMIT - 1)
    assert f"is nested {LIMIT + 1} levels deep; the limit is {LIMIT}" in str(exc)
    # the parsers' own error types, so existing handlers of syntax errors catch them too
    assert isinstance(exc, json.JSONDecodeError) and exc.lineno == 1
    with pytest.raises(tomllib.TOMLDecodeError, match=r"\(at line 2, column"):
        safeparse.loads_toml("ok = 1\nb = " + nested_list(LIMIT + 1) + "\n")
    with pytest.raises(yaml.YAMLError, match="levels deep"):
        safeparse.load_yaml("k:\n  - " + nested_list(LIMIT))


def test_brackets_inside_strings_and_comments_are_not_nesting():
    text = json.dumps({"s": "[" * 5000 + "{" * 5000, "t": 'a\\"[[[[' * 100})
    assert safeparse.loads_json(text)["s"].startswith("[[[")
    toml = (
        f'a = "{"[" * 500}"\nb = \'{"{" * 500}\'\n# {"[" * 500}\n'
        f'c = """\n{"[" * 500}\n"""\nd = \'\'\'{"[" * 500}\'\'\'\n'
        f'e = [{", ".join(["[1]"] * 500)}]\nf = 1.5\n{"p.q.r." * 5}x = 1\n'
    )
    assert tomllib.loads(toml) == safeparse.loads_toml(toml)
    assert safeparse.load_yaml(f"a: '{'[' * 500}'\n# {'{' * 500}\n") == {"a": "[" * 500}


def test_bombs_are_refused_by_every_parser():
    for text in (nested_list(BOMB), nested_obj(BOMB), '{"a": "' + "[" * 10 + '", "b": ' + nested_list(BOMB) + "}"):
        with pytest.raises(safeparse.NestingTooDeep, match=r"is nested \d+ levels deep; the limit is 64"):
            safeparse.loads_json(text)
    for text in (f"a = {nested_list(BOMB)}\n", "a = " + "{b=" * BOMB + "1" + "}" * BOMB + "\n"):
        with pytest.raises(safeparse.TomlTooDeep, match=f"is nested {BOMB} levels deep"):
            safeparse.loads_toml(text)
    # 100k dotted parts: one table each, and quadratic bookkeeping in tomllib (it ran out of memory)
    for text in (".".join(["a"] * BOMB) + " = 1\n", "[" + ".".join(['"q"'] * BOMB) + "]\n"):
        with pytest.raises(safeparse.TomlTooDeep, match=f"a dotted key of {BOMB} parts"):
            safeparse.loads_toml(text)
    block = "k:\n" + "".join("  " * i + "- \n" for i in range(1, 3000))
    for text in (nested_list(BOMB), "{a: " * BOMB + "}" * BOMB, block):
        with pytest.raises(safeparse.YamlTooDeep):
            safeparse.load_yaml(text)


def test_stored_json_too_deep_is_skipped_not_raised():
    # a tampered audit row: `audit query` shows it as unreadable, `policy replay` skips it
    row = (1, 0, "t", "a", "engine", "act", "res", "allow", nested_list(BOMB), "0" * 64, "0" * 64)
    assert "_unreadable_details" in record_from_row(row).details
    assert _record({"details": nested_list(BOMB), "seq": 1}) is None


# -- the agent socket ---------------------------------------------------------------------------


@pytest.fixture
async def server(tmp_path):
    async def handler(method, params):
        assert method == "echo"
        return params

    srv = AgentRpcServer(tmp_path / "rpc", "s3cret-token", handler)  # the default 1 MiB message limit
    await srv.start()
    yield srv
    await srv.close()


async def connect(srv):
    reader, writer = await asyncio.open_unix_connection(str(srv.path), limit=1 << 21)
    writer.write(protocol.encode({"jsonrpc": "2.0", "id": 0, "method": "hello", "params": {"token": "s3cret-token"}}))
    assert json.loads(await reader.readline())["result"]["ok"] is True
    return reader, writer


async def call(reader, writer, raw: bytes):
    writer.write(raw)
    await writer.drain()
    return json.loads(await reader.readline())


def echo(id_: int, params_json: str) -> bytes:
    return b'{"jsonrpc":"2.0","id":%d,"method":"echo","params":%s}\n' % (id_, params_json.encode())


async def test_a_nesting_bomb_on_the_agent_socket_is_answered_and_the_connection_kept(server, caplog):
    caplog.set_level(logging.DEBUG)
    reader, writer = await connect(server)
    bomb = echo(1, '{"x":' + nested_list(BOMB) + "}")
    assert 200_000 < len(bomb) < 1_048_576
    got = await call(reader, writer, bomb)
    assert got["id"] is None and got["error"]["code"] == protocol.INVALID_REQUEST
    assert got["error"]["data"]["code"] == "PROTO_001"
    assert f"nested {BOMB + 2} levels deep; the limit is {LIMIT}" in got["error"]["data"]["message"]
    # the same connection answers the next request normally
    ok = await call(reader, writer, echo(2, '{"still": "here"}'))
    assert ok == {"jsonrpc": "2.0", "id": 2, "result": {"still": "here"}}
    # the limit counts the envelope: request object and params are 2 of the 64 levels
    deepest = await call(reader, writer, echo(3, '{"x":' + nested_list(LIMIT - 2) + "}"))
    assert deepest["result"]["x"] == json.loads(nested_list(LIMIT - 2))
    over = await call(reader, writer, echo(4, '{"x":' + nested_list(LIMIT - 1) + "}"))
    assert over["error"]["data"]["code"] == "PROTO_001"
    writer.close()
    await until(lambda: not server._conns)
    assert (server.requests, server.errors, server.resets) == (2, 2, 0)
    no_traceback(caplog.text)
    assert "Unhandled exception" not in caplog.text


def _drop_with_replies_unread(path: str, count: int) -> None:
    """An agent-like client: each connection sends hello and a request, then closes without reading."""
    hello = protocol.encode({"jsonrpc": "2.0", "id": 0, "method": "hello", "params": {"token": "s3cret-token"}})
    request = protocol.encode({"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"pad": "x" * 4096}})
    for _ in range(count):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(path)
            sock.sendall(hello + request)
            # wait (without reading) until the hello reply is in our receive buffer: closing now is a close
            # with data unread, which Linux reports to the engine's end as a reset (ECONNRESET), or as a
            # broken pipe (EPIPE) if the engine is still writing the echo reply
            readable, _, _ = select.select([sock], [], [], 10)
            assert readable


async def test_agents_closing_with_replies_unread_are_counted_quietly(server, caplog):
    caplog.set_level(logging.DEBUG)
    await asyncio.to_thread(_drop_with_replies_unread, str(server.path), 50)
    # every connection was accepted and answered (the client saw its hello reply); wait for the handlers to end
    await until(lambda: not server._conns)
    if sys.platform.startswith("linux"):
        assert server.resets == 50  # unread data at close always resets a Unix socket on Linux
    else:  # pragma: no cover
        assert 1 <= server.resets <= 50
    # still serving
    reader, writer = await connect(server)
    assert (await call(reader, writer, echo(5, "{}")))["result"] == {}
    writer.close()
    await server.close()

    assert all(r.exc_info is None for r in caplog.records)
    no_traceback(caplog.text)
    for needle in ("ConnectionResetError", "BrokenPipeError", "Unhandled exception", "Exception in callback"):
        assert needle not in caplog.text
    lines = [r.getMessage() for r in caplog.records if r.name == "symbi.engine.rpc"]
    assert len(lines) <= 3, lines  # 1st, 10th and a summary at close: not one per reset
    assert "replies unread" in lines[0] and "1 so far" in lines[0]
    assert f"{server.resets} connection resets in all" in lines[-1]


# -- the CLIs, as the user meets them -----------------------------------------------------------


@pytest.fixture
def env(tmp_path, monkeypatch):
    e = {**os.environ, "SYMBI_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
         "PYTHONPATH": str(ROOT)}
    e.pop("SYMBI_CONFIG", None)
    for key in ("SYMBI_DATA_DIR", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(key, e[key])
    monkeypatch.delenv("SYMBI_CONFIG", raising=False)
    return e


def symbiont(env, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *argv], input=stdin, capture_output=True, text=True, env=env,
        cwd=str(ROOT), timeout=120,
    )


def test_policy_eval_with_a_nesting_bomb_on_stdin(env, tmp_path):
    for bomb in (nested_list(BOMB), '{"resource_type": "File", "context": ' + nested_obj(BOMB) + "}"):
        proc = symbiont(env, "policy", "eval", str(SEED), "--request", "-", stdin=bomb)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("symbiont: POLICY_004: the request is nested")
        assert f"the limit is {LIMIT}" in proc.stderr and "(input: 'stdin')" in proc.stderr
        no_traceback(proc.stdout, proc.stderr)
    path = tmp_path / "req.json"
    path.write_text(nested_list(BOMB))
    proc = symbiont(env, "policy", "eval", str(SEED), "--request", f"@{path}")
    assert proc.returncode == 2 and "POLICY_004" in proc.stderr and str(path) in proc.stderr
    no_traceback(proc.stderr)


def test_config_check_with_deep_toml(env, tmp_path):
    cases = {
        "arrays.toml": f"[lifecycle]\nmax_agents = 3\nx = {nested_list(BOMB)}\n",
        "tables.toml": "x = " + "{a = " * BOMB + "1" + "}" * BOMB + "\n",
        "dotted.toml": "[" + ".".join(["a"] * 5000) + "]\nx = 1\n",
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        proc = symbiont(env, "config", "check", str(path))
        assert proc.returncode == 2, (name, proc.stdout, proc.stderr)
        assert proc.stderr.startswith(f"symbiont: CONFIG_002: cannot parse {path}: the TOML ")
        assert f"the limit is {LIMIT} (at line" in proc.stderr
        no_traceback(proc.stdout, proc.stderr)
    normal = tmp_path / "normal.toml"
    normal.write_text(f"[lifecycle]\nmax_agents = 3\n\n[extra]\nx = {nested_list(25)}\ny = {{a = {{b = {{c = 1}}}}}}\n")
    proc = symbiont(env, "config", "check", str(normal))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith(f"ok: {normal}")


def test_policy_check_and_test_with_deep_yaml(env, tmp_path):
    flow = tmp_path / "flow.yaml"
    flow.write_text("policies: " + nested_list(BOMB) + "\n")
    block = tmp_path / "block.yaml"
    block.write_text("policies:\n" + "".join("  " * i + "- \n" for i in range(1, 3000)))
    for path in (flow, block):
        proc = symbiont(env, "policy", "check", str(path))
        assert proc.returncode == 1, proc.stderr
        first = proc.stdout.splitlines()[0]
        assert first.startswith(f"{path}:") and "POLICY_002 the YAML is nested" in first, first
        assert f"the limit is {LIMIT}" in first
        no_traceback(proc.stdout, proc.stderr)
    cases = tmp_path / "cases.yaml"
    cases.write_text("- name: deep\n  request: " + nested_list(BOMB) + "\n  expect: Deny\n")
    proc = symbiont(env, "policy", "test", str(SEED), str(cases))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"symbiont: POLICY_004: invalid test cases {cases}:2:")
    assert "nested" in proc.stderr
    no_traceback(proc.stdout, proc.stderr)


DEEP_KEY = ".".join(["a"] * 20)
DEEP_POLICY = f"""version: '1.0'
policies:
  - name: deep_metadata
    effect: Allow
    conditions:
      - resource_type: File
      - metadata: {{"{DEEP_KEY}": 1}}
    resources: ["/data/**"]
"""


def test_policies_and_requests_with_normal_nesting_still_work(env, tmp_path):
    document = load_document(DEEP_POLICY)
    request = {"resource_type": "File", "resource_path": "/data/x", "operation": "Read",
               "metadata": json.loads(nested_obj(20))}
    assert PolicyEngine(document).evaluate(request).decision == "Allow"
    policy = tmp_path / "deep.yaml"
    policy.write_text(DEEP_POLICY)
    proc = symbiont(env, "policy", "check", str(policy))
    assert proc.returncode == 0 and proc.stdout.strip() == f"ok: {policy}: 1 policy", proc.stdout
    proc = symbiont(env, "policy", "eval", str(policy), "--request", "-", stdin=json.dumps(request))
    assert proc.returncode == 0 and json.loads(proc.stdout)["decision"] == "Allow", proc.stderr
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "- name: twenty levels of metadata\n"
        "  request: {resource_type: File, resource_path: /data/x, operation: Read, metadata: "
        + "{a: " * 20 + "1" + "}" * 20 + "}\n  expect: Allow\n"
        "- name: nineteen do not reach the key\n"
        "  request: {resource_type: File, resource_path: /data/x, operation: Read, metadata: "
        + "{a: " * 19 + "1" + "}" * 19 + "}\n  expect: Deny\n"
    )
    assert len(load_cases(cases.read_bytes())) == 2
    proc = symbiont(env, "policy", "test", str(policy), str(cases))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_tools_and_secrets_clis_refuse_deep_files(env, tmp_path, capsys):
    schema = tmp_path / "schema.json"
    schema.write_text(nested_obj(BOMB))
    key = tmp_path / "key.pem"
    key.write_text("unused")
    proc = symbiont(env, "tools", "sign", str(schema), "--key", str(key))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"symbiont: SCHEMA_001: {schema} is nested {BOMB} levels deep")
    no_traceback(proc.stdout, proc.stderr)

    config = tmp_path / "deep.toml"
    config.write_text(f"[secrets]\nx = {nested_list(BOMB)}\n")
    code = engine.cli.main(["secrets", "list", "--config", str(config)])
    out, err = capsys.readouterr()
    assert code == 2 and err.startswith("symbiont: CONFIG_002: cannot parse") and "nested" in err
    no_traceback(out, err)


RUDE_AGENT = r"""
import json, os, select, socket
from symbi_agent import agent
path, token = os.environ["SYMBI_RPC_SOCKET"], os.environ["SYMBI_RPC_TOKEN"]
hello = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "hello", "params": {"token": token}}) + "\n"
status = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "status", "params": {}}) + "\n"
for _ in range(50):  # ask, wait until the answers are there, then hang up without reading them
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall((hello + status).encode())
    select.select([s], [], [], 5)
    s.close()
s = socket.socket(socket.AF_UNIX)
s.connect(path)
f = s.makefile("rb")
s.sendall(hello.encode())
f.readline()
depth = 100_000
bomb = '{"jsonrpc": "2.0", "id": 3, "method": "log", "params": {"message": ' + "[" * depth + "]" * depth + "}}\n"
s.sendall(bomb.encode())
answer = json.loads(f.readline())
s.sendall(status.encode())
after = json.loads(f.readline())
agent.result({"bomb": answer["error"]["data"]["code"], "after": "result" in after})
"""


async def test_a_rude_agent_leaves_no_traceback_and_is_counted(tmp_path, caplog):
    """Through the whole engine: 50 connections closed with replies unread, then a 100k-level request."""
    import logging

    from helpers import agent, fast_config

    from engine.agents.model import AgentState
    from engine.runtime import Runtime

    caplog.set_level(logging.DEBUG)
    async with Runtime.open(fast_config(), tmp_path / "data") as rt:
        await rt.create_agent(agent("rude", source=RUDE_AGENT))
        await rt.start_agent("rude")
        info = await rt.wait_for_state("rude", AgentState.COMPLETED, AgentState.FAILED, timeout=60)
        assert info.state is AgentState.COMPLETED, (info.last_error, await rt.agent_logs("rude"))
        assert info.result == {"bomb": "PROTO_001", "after": True}
        metrics = await rt.metrics()
        assert metrics.rpc_resets >= 50 and metrics.rpc_errors >= 1
    text = caplog.text
    assert "replies unread" in text  # the one quiet line (so the log really was captured)
    for needle in ("Traceback", "ConnectionResetError", "BrokenPipeError", "Unhandled exception"):
        assert needle not in text
