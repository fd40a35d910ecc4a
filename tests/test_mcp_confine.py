"""Stdio MCP servers confined with bubblewrap (``[[mcp.servers]] sandbox = true``): a real
server subprocess whose tools try to read files and open a connection. Unconfined (the
control) it reaches both; confined it sees only what it was given, has no network, and its
writable path is the only place it can write. Without bwrap a confined server is refused."""

from __future__ import annotations

import shutil
import socket
import sys
import textwrap
from pathlib import Path

import pytest

from engine.config import McpServerConfig
from engine.errors import SymbiError
from engine.mcp_tools import McpClientPool, ServerConfig
from engine.mcp_tools.confine import confined_argv

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed on this machine")

NOSY = textwrap.dedent('''
    import socket
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("nosy")

    @server.tool()
    def peek(path: str) -> str:
        """Read any file."""
        try:
            with open(path) as f:
                return "read: " + f.read(200)
        except OSError as exc:
            return f"refused: {type(exc).__name__}"

    @server.tool()
    def write(path: str, text: str) -> str:
        """Write any file."""
        try:
            with open(path, "w") as f:
                f.write(text)
            return "wrote"
        except OSError as exc:
            return f"refused: {type(exc).__name__}"

    @server.tool()
    def dial(port: int) -> str:
        """Connect to 127.0.0.1:port."""
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return "connected"
        except OSError as exc:
            return f"refused: {type(exc).__name__}"

    server.run()
''')


def text(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


@pytest.fixture
def setup(tmp_path: Path):
    script = tmp_path / "nosy.py"
    script.write_text(NOSY)
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the sandbox")
    out = tmp_path / "out"
    out.mkdir()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    yield script, secret, out, listener.getsockname()[1]
    listener.close()


async def call(pool: McpClientPool, name: str, tool: str, args: dict) -> str:
    return text(await pool.call_tool(name, tool, args, 20))


async def test_a_confined_server_sees_only_what_it_was_given(setup, tmp_path: Path) -> None:
    script, secret, out, port = setup
    pool = McpClientPool(connection_timeout=30)
    pool.add(ServerConfig("open", command=sys.executable, args=[str(script)]))
    pool.add(ServerConfig("boxed", command=sys.executable, args=[str(script)], sandbox=True, writable_paths=[str(out)]))
    try:
        # the control: unconfined, the server reaches the file, the network and any directory
        assert await call(pool, "open", "peek", {"path": str(secret)}) == "read: outside the sandbox"
        assert await call(pool, "open", "dial", {"port": port}) == "connected"
        assert await call(pool, "open", "write", {"path": str(tmp_path / "x.txt"), "text": "x"}) == "wrote"
        # confined: none of that, but its own script and its writable path work
        assert (await call(pool, "boxed", "peek", {"path": str(secret)})).startswith("refused")
        assert (await call(pool, "boxed", "peek", {"path": str(ROOT / "README.md")})).startswith("refused")
        assert (await call(pool, "boxed", "peek", {"path": str(script)})).startswith("read: ")
        assert (await call(pool, "boxed", "dial", {"port": port})).startswith("refused")
        assert (await call(pool, "boxed", "write", {"path": str(script), "text": "x"})).startswith("refused")
        assert await call(pool, "boxed", "write", {"path": str(out / "result.txt"), "text": "from the box"}) == "wrote"
        assert (out / "result.txt").read_text() == "from the box"
    finally:
        await pool.close()


def test_configuration_and_refusals(tmp_path: Path, monkeypatch) -> None:
    cfg = McpServerConfig(name="files", command=[sys.executable, "server.py"], sandbox=True, paths=[str(tmp_path)])
    server = cfg.to_server_config()
    assert server.sandbox and server.paths == [str(tmp_path)] and server.describe().endswith("(sandboxed)")
    with pytest.raises(SymbiError) as exc:
        ServerConfig("web", url="http://127.0.0.1:1/mcp", sandbox=True)
    assert exc.value.code.value == "CONFIG_001" and "stdio" in exc.value.message
    with pytest.raises(SymbiError) as exc:
        confined_argv(sys.executable, [], writable_paths=[str(tmp_path / "missing")])
    assert exc.value.code.value == "CONFIG_001" and "missing" in exc.value.message
    monkeypatch.setattr(shutil, "which", lambda _name: None)  # a machine without bubblewrap
    with pytest.raises(SymbiError) as exc:
        confined_argv(sys.executable, [])
    assert exc.value.code.value == "SANDBOX_001" and "sandbox = false" in exc.value.hint
