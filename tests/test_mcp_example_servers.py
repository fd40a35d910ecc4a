"""The example MCP servers, as real stdio subprocesses through the engine's client pool
(files, poisoned, flaky with --crash-after), plus in-process checks of the files server's
confinement and the flaky server's result size through the tool gate."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.errors import SymbiError
from engine.mcp_tools import McpClientPool, ServerConfig, ToolRegistry, ToolService
from tests.helpers import TOOL_AGENT, tool_policy_check

ROOT = Path(__file__).resolve().parents[1]
SERVERS = ROOT / "examples" / "mcp_servers"
sys.path.insert(0, str(SERVERS))
import files_server  # noqa: E402
import flaky_server  # noqa: E402
import poisoned_server  # noqa: E402

AGENT = TOOL_AGENT
ALLOW_TOOLS = """
version: "1.0"
policies:
  - name: allow-tools
    priority: 100
    conditions:
      - resource_type: Tool
    effect: Allow
    operations: [Call]
"""


def stdio(name: str, script: str, *args: str) -> ServerConfig:
    return ServerConfig(name, command=sys.executable, args=[str(SERVERS / script), *args], cwd=str(ROOT))


def text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "notes.txt").write_text("hello from notes\n")
    (tmp_path / "secret.txt").write_text("outside the root")
    (root / "escape").symlink_to(tmp_path / "secret.txt")
    (root / "escape_dir").symlink_to(tmp_path)
    (root / "inner").symlink_to(root / "docs" / "notes.txt")  # a symlink that stays inside is fine
    return root


async def test_files_server_over_stdio_confines_paths(tree: Path) -> None:
    pool = McpClientPool(connection_timeout=20)
    pool.add(stdio("files", "files_server.py", "--root", str(tree), "--max-bytes", "1000"))
    try:
        tools = {t.name: t for t in await pool.list_tools("files")}
        assert set(tools) == {"list_files", "read_file", "write_file", "file_info"}

        listing = await pool.call_tool("files", "list_files", {"path": "."}, 10)
        assert not listing.is_error
        names = {e["name"]: e["type"] for e in json.loads(text(listing))["entries"]}
        assert names == {"docs": "dir", "escape": "link", "escape_dir": "link", "inner": "link"}

        ok = await pool.call_tool("files", "read_file", {"path": "docs/notes.txt"}, 10)
        assert not ok.is_error and text(ok) == "hello from notes\n"
        assert text(await pool.call_tool("files", "read_file", {"path": "inner"}, 10)) == "hello from notes\n"

        for bad, why in [("../secret.txt", "outside the served root"), ("docs/../../secret.txt", "outside the served root"),
                         ("/etc/passwd", "absolute paths are refused"), ("~/.ssh/id_rsa", "absolute paths are refused"),
                         ("escape", "outside the served root"), ("escape_dir/secret.txt", "outside the served root")]:
            res = await pool.call_tool("files", "read_file", {"path": bad}, 10)
            assert res.is_error, bad
            assert why in text(res) and "outside the root\n" not in text(res), (bad, text(res))

        wrote = await pool.call_tool("files", "write_file", {"path": "docs/new.txt", "content": "written"}, 10)
        assert not wrote.is_error and (tree / "docs" / "new.txt").read_text() == "written"
        refused = await pool.call_tool("files", "write_file", {"path": "../planted.txt", "content": "x"}, 10)
        assert refused.is_error and not (tree.parent / "planted.txt").exists()
        too_big = await pool.call_tool("files", "write_file", {"path": "docs/big.txt", "content": "x" * 1001}, 10)
        assert too_big.is_error and "limit is 1000 bytes" in text(too_big) and not (tree / "docs" / "big.txt").exists()
        info = json.loads(text(await pool.call_tool("files", "file_info", {"path": "docs/new.txt"}, 10)))
        assert info["type"] == "file" and info["size"] == 7 and info["path"] == "docs/new.txt"
    finally:
        await pool.close()


async def test_files_server_limits_in_process(tree: Path) -> None:
    from mcp import Client

    (tree / "docs" / "big.txt").write_text("y" * 2000)
    (tree / "docs" / "bin.dat").write_bytes(b"\xff\xfe\x00\x01")
    async with Client(files_server.build_server(tree, max_bytes=1000)) as c:
        for path, why in [("docs/big.txt", "2000 bytes; the read limit is 1000"), ("docs/bin.dat", "not UTF-8"),
                          ("docs", "is a directory"), ("docs/missing.txt", "no such file"), ("a\x00b", "NUL")]:
            res = await c.call_tool("read_file", {"path": path})
            assert res.is_error and why in text(res), (path, text(res))
        res = await c.call_tool("list_files", {"path": "docs/notes.txt"})
        assert res.is_error and "not a directory" in text(res)
        res = await c.call_tool("write_file", {"path": "nodir/x.txt", "content": "x"})
        assert res.is_error and "parent directory" in text(res)
        res = await c.call_tool("write_file", {"path": ".", "content": "x"})
        assert res.is_error and "directory" in text(res)
        # the write replaced the file whole and left no temporary files behind
        assert not (await c.call_tool("write_file", {"path": "docs/notes.txt", "content": "v2"})).is_error
        assert (tree / "docs" / "notes.txt").read_text() == "v2"
        assert not [p for p in (tree / "docs").iterdir() if p.name.startswith(".files-")]
    with pytest.raises(ValueError, match="does not exist"):
        files_server.build_server(tree / "nope")


async def test_poisoned_server_tools_do_nothing(tmp_path: Path) -> None:
    pool = McpClientPool(connection_timeout=20)
    pool.add(stdio("poisoned", "poisoned_server.py"))
    marker = tmp_path / "pwned"
    try:
        tools = {t.name: t for t in await pool.list_tools("poisoned")}
        assert set(tools) == {"add", "weather", "run", "read-file", "notes"}
        assert "<IMPORTANT>" in tools["add"].description and "\u202e" in tools["weather"].description
        assert any(0xE0000 <= ord(c) <= 0xE007F for c in tools["weather"].description)  # tag characters survive the wire
        res = await pool.call_tool("poisoned", "run", {"command": f"touch {marker}"}, 10)
        assert not res.is_error and text(res) == poisoned_server.REFUSAL
        res = await pool.call_tool("poisoned", "read-file", {"path": "/etc/hostname"}, 10)
        assert text(res) == poisoned_server.REFUSAL
        assert not marker.exists()
    finally:
        await pool.close()


async def test_flaky_server_fails_then_recovers_and_crashes_after_n_calls() -> None:
    pool = McpClientPool(connection_timeout=20)
    pool.add(stdio("flaky", "flaky_server.py", "--crash-after", "3"))
    try:
        first = await pool.call_tool("flaky", "flaky", {"n": 1}, 10)
        assert first.is_error and "failure 1 of 1" in text(first)
        second = await pool.call_tool("flaky", "flaky", {"n": 1}, 10)
        assert not second.is_error and "ok on call 2" in text(second)
        failed = await pool.call_tool("flaky", "fail", {"message": "boom"}, 10)
        assert failed.is_error and "boom" in text(failed)
        with pytest.raises(SymbiError) as exc:  # call 4: the process exits without answering
            await pool.call_tool("flaky", "big", {"bytes": 10}, 10)
        assert exc.value.code.value == "MCP_005" and "restarted on the next call" in (exc.value.hint or "")
        # the pool noticed the closed transport: the next call starts a new process, whose
        # per-process flaky counter starts again
        again = await pool.call_tool("flaky", "flaky", {"n": 1}, 10)
        assert again.is_error and "failure 1 of 1" in text(again)
    finally:
        await pool.close()


async def test_flaky_big_result_is_bounded_by_the_gate_and_bad_input_refused(tmp_path: Path) -> None:
    svc = ToolService(registry=await ToolRegistry(tmp_path / "tools.db").open(), pool=McpClientPool(connection_timeout=10),
                      verifier=None, policy_check=tool_policy_check(ALLOW_TOOLS), audit=lambda **f: None,
                      enforce_verification=False, max_result_bytes=10_000, call_timeout=0.5)
    svc.add_server(ServerConfig("flaky", server=flaky_server.build_server(), allow_unsigned=True))
    try:
        await svc.discover("flaky")
        await svc.approve_tool("flaky/big", "test", scope="session")
        res = await svc.call(AGENT, "flaky/big", {"bytes": 200_000})
        assert res.truncated and res.size > 200_000
        assert 0 < len(res.text().encode()) <= 10_000 and res.text().startswith("0123456789abcdef")
        small = await svc.call(AGENT, "flaky/big", {"bytes": 100})
        assert not small.truncated and len(small.text()) == 100
        bad = await svc.call(AGENT, "flaky/big", {"bytes": -1})
        assert bad.is_error and "between 0 and" in bad.text()
        await svc.approve_tool("flaky/slow", "test", scope="session")
        with pytest.raises(SymbiError) as exc:
            await svc.call(AGENT, "flaky/slow", {"seconds": 30})
        assert exc.value.code.value == "MCP_004"
    finally:
        await svc.close()


def test_servers_refuse_bad_command_lines(tmp_path: Path) -> None:
    import subprocess

    env = {**os.environ, "FILES_ROOT": ""}
    out = subprocess.run([sys.executable, str(SERVERS / "files_server.py")], capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 2 and "--root" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, str(SERVERS / "files_server.py"), "--root", str(tmp_path / "missing")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "does not exist" in out.stderr and "Traceback" not in out.stderr


async def test_tool_user_agent_lists_reads_and_reports_a_refusal(tree: Path, tmp_path: Path) -> None:
    """examples/agents/tool_user.py through the runtime: reviewed tools, per-call approvals, a refused path."""
    import asyncio

    from engine.agents.model import AgentState
    from engine.runtime import Runtime
    from tests.helpers import agent, fast_config

    async with Runtime.open(fast_config(), tmp_path / "data") as rt:
        rt.tools.add_server(ServerConfig("files", server=files_server.build_server(tree), allow_unsigned=True))
        await rt.tools.discover("files")
        for name in ("list_files", "read_file"):
            await rt.tools.approve_tool(f"files/{name}", "reviewed by the test", scope="session")
        await rt.create_agent(agent("reader", "tool_user"))
        await rt.start_agent("reader", input={"dir": "docs", "file": "../../secret.txt"})
        approved: list[str] = []
        async with asyncio.timeout(60):
            while (await rt.get_agent("reader")).state not in (AgentState.COMPLETED, AgentState.FAILED):
                for p in rt.tools.pending_calls():
                    if p["id"] not in approved:
                        approved.append(p["id"])
                        rt.tools.approve_call(p["id"], p["arguments_sha256"])
                await asyncio.sleep(0.05)
        logs = "\n".join(await rt.agent_logs("reader"))
        assert (await rt.get_agent("reader")).state is AgentState.COMPLETED, logs
        assert "docs: 1 entries" in logs and "file notes.txt 17 bytes" in logs
        assert "read_file refused: TOOL_ERROR" in logs and "outside the served root" in logs
        assert "outside the root" not in logs.replace("outside the served root", "")  # the secret was never read
        assert len(approved) == 2


async def test_files_server_signs_its_tools(tree: Path) -> None:
    from mcp import Client

    from engine.mcp_tools import generate_private_key, private_key_pem, public_key_pem, verify_signature
    from engine.mcp_tools.schemapin import load_public_key

    key = generate_private_key()
    async with Client(files_server.build_server(tree, sign_key=private_key_pem(key).encode(), domain="files.example")) as c:
        tools = (await c.list_tools()).tools
    pub = load_public_key(public_key_pem(key))
    for t in tools:
        meta = (t.meta or {})["schemapin"]
        definition = {"name": t.name, "description": t.description, "inputSchema": dict(t.input_schema)}
        assert meta["domain"] == "files.example"
        assert verify_signature(definition, meta["signature"], pub)
        assert not verify_signature({**definition, "description": definition["description"] + " "}, meta["signature"], pub)


async def test_files_server_over_streamable_http(tree: Path) -> None:
    """The other transport: the files server on 127.0.0.1 over streamable HTTP, reached by URL."""
    import asyncio
    import socket
    import subprocess

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(SERVERS / "files_server.py"), "--root", str(tree), "--http", str(port)],
                            cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pool = McpClientPool(connection_timeout=20)
    pool.add(ServerConfig("files", url=f"http://127.0.0.1:{port}/mcp"))
    try:
        for _ in range(200):  # until uvicorn listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                await asyncio.sleep(0.05)
        assert {t.name for t in await pool.list_tools("files")} == {"list_files", "read_file", "write_file", "file_info"}
        read = await pool.call_tool("files", "read_file", {"path": "docs/notes.txt"}, 10)
        assert not read.is_error and "hello from notes" in text(read)
        escape = await pool.call_tool("files", "read_file", {"path": "../secret.txt"}, 10)
        assert escape.is_error and "outside the root" not in text(escape)
    finally:
        await pool.close()
        proc.terminate()
        proc.wait(10)
