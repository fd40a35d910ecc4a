"""[mcp] review settings and [[mcp.servers]] tables: parsed, validated (CONFIG_001 naming the key),
written back by dump_toml, and started by the runtime (a broken server never stops the engine)."""

from __future__ import annotations

import asyncio
import sys
import tomllib
from pathlib import Path

import pytest

from engine.audit import AuditReader
from engine.config import RuntimeConfig, dump_toml, load_config
from engine.errors import SymbiError
from engine.events import ToolReviewChanged
from engine.runtime import Runtime
from tests.helpers import ROOT, fast_config

DEMO = str(ROOT / "examples" / "mcp_servers" / "demo_server.py")


def parse(text: str) -> RuntimeConfig:
    return RuntimeConfig.from_dict(tomllib.loads(text))


def test_defaults_never_automate() -> None:
    mcp = RuntimeConfig.default().mcp
    assert (mcp.auto_approve_at, mcp.auto_reject_at, mcp.review_timeout, mcp.servers) == (-1, 101, 0.0, [])


def test_servers_parse_and_round_trip(tmp_path: Path) -> None:
    cfg = parse(f'''
[mcp]
auto_approve_at = 10
auto_reject_at = 80
review_timeout = "2h"
[[mcp.servers]]
name = "demo"
command = ["{sys.executable}", "{DEMO}", "--flag"]
cwd = "/tmp"
domain = "demo.local"
[mcp.servers.env]
DEMO_TOKEN = "t"
[mcp.servers.signatures]
echo = "c2ln"
[[mcp.servers]]
name = "web"
url = "https://tools.example/mcp"
allow_unsigned = true
''')
    assert cfg.mcp.review_timeout == 7200 and cfg.mcp.auto_reject_at == 80
    demo, web = cfg.mcp.servers
    sc = demo.to_server_config()
    assert (sc.command, sc.args, sc.env, sc.cwd, sc.domain, sc.signatures) == (
        sys.executable, [DEMO, "--flag"], {"DEMO_TOKEN": "t"}, "/tmp", "demo.local", {"echo": "c2ln"})
    w = web.to_server_config()
    assert w.url == "https://tools.example/mcp" and w.command is None and w.allow_unsigned
    path = tmp_path / "runtime_config.toml"
    path.write_text(dump_toml(cfg))
    assert load_config(path, env={}).config == cfg


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ('[[mcp.servers]]\ncommand = ["x"]', "mcp.servers[0].name", "missing"),
        ('[[mcp.servers]]\nname = "a"', "mcp.servers[0]", "exactly one of command or url"),
        ('[[mcp.servers]]\nname = "a"\ncommand = ["x"]\nurl = "https://a.example"', "mcp.servers[0]", "both"),
        ('[[mcp.servers]]\nname = "a"\ncommand = ["x"]\n[[mcp.servers]]\nname = "a"\nurl = "https://b.example"',
         "mcp.servers[1].name", "duplicate"),
        ('[[mcp.servers]]\nname = "a/b"\ncommand = ["x"]', "mcp.servers[0].name", "not allowed"),
        ('[[mcp.servers]]\nname = "a"\ncommand = []', "mcp.servers[0].command", "non-empty"),
        ('[[mcp.servers]]\nname = "a"\ncommand = ["x", 3]', "mcp.servers[0].command", "non-empty"),
        ('[mcp]\nservers = "demo"', "mcp.servers", "array of tables"),
        ("[mcp]\nauto_approve_at = 50\nauto_reject_at = 50", "mcp.auto_approve_at", "not below mcp.auto_reject_at"),
        ("[mcp]\nauto_approve_at = 101", "mcp.auto_approve_at", "above the maximum"),
        ('[mcp]\nreview_timeout = "soon"', "mcp.review_timeout", "invalid value"),
    ],
)
def test_config_errors_name_the_key(text: str, key: str, words: str) -> None:
    with pytest.raises(SymbiError) as exc:
        parse(text)
    assert exc.value.code.value == "CONFIG_001"
    rendered = exc.value.render()
    assert key in rendered and words in rendered, rendered


async def test_runtime_starts_configured_servers_and_survives_a_broken_one(tmp_path: Path) -> None:
    cfg = fast_config()
    cfg.mcp = parse(f'''
[[mcp.servers]]
name = "demo"
command = ["{sys.executable}", "{DEMO}"]
allow_unsigned = true
[[mcp.servers]]
name = "broken"
command = ["{sys.executable}", "-c", "import sys; sys.exit(3)"]
''').mcp
    async with Runtime.open(cfg, tmp_path) as rt:
        sub = rt.bus.subscribe([ToolReviewChanged])
        async with asyncio.timeout(30):
            while "broken" not in rt.tools.discovery_errors or len(await rt.tools.registry.list_tools(server="demo")) < 5:
                await asyncio.sleep(0.05)
        queue = await rt.tools.pending_reviews()
        assert {r.id for r in queue} >= {"demo/echo", "demo/add"}
        assert all(r.state == "AwaitingHumanReview" for r in queue)  # unsigned: never auto-approved
        await rt.tools.approve_tool("demo/echo", scope="session")
        seen = []
        while (ev := sub.get_nowait()) is not None:
            seen.append((ev.tool_id, ev.event))
        assert ("demo/echo", "approved") in seen
    async with AuditReader(tmp_path) as reader:
        failed = await reader.query(types="tool.review", limit=100)
    bad = [r for r in failed if r.action == "server-failed"]
    assert bad and bad[0].resource == "broken" and bad[0].details["code"] == "MCP_005"


def test_sandboxed_server_settings_parse_and_round_trip() -> None:
    cfg = parse(f'''
[[mcp.servers]]
name = "files"
command = ["{sys.executable}", "files_server.py", "--root", "/srv/docs"]
sandbox = true
paths = ["/srv/docs"]
writable_paths = ["/srv/out"]
''')
    (server,) = cfg.mcp.servers
    assert (server.sandbox, server.network, server.paths, server.writable_paths) == (True, False, ["/srv/docs"], ["/srv/out"])
    assert parse(dump_toml(cfg)).mcp.servers[0].writable_paths == ["/srv/out"]
    with pytest.raises(SymbiError) as exc:
        parse('[[mcp.servers]]\nname = "x"\ncommand = ["y"]\npaths = [1]\n')
    assert exc.value.code.value == "CONFIG_001" and "paths" in exc.value.render()
