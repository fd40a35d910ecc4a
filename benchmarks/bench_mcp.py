"""MCP tools benchmark: SchemaPin verify latency, stdio spawn+handshake, direct call vs gated call.

Run: ``.venv/bin/python benchmarks/bench_mcp.py``. Prints a table (medians).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace as NS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples" / "mcp_servers"))


from engine.mcp_tools import (  # noqa: E402
    KeyResolver,
    McpClientPool,
    SchemaVerifier,
    ServerConfig,
    ToolRegistry,
    ToolService,
    generate_private_key,
    public_key_pem,
    sign_schema,
    verify_signature,
    well_known_document,
)

TOOL = {"name": "read_file", "description": "Read a file in the work dir", "inputSchema": {
    "type": "object", "properties": {"path": {"type": "string"}, "limit": {"type": "integer"}}, "required": ["path"]}}


def _allow_calls(agent, resource_type, path, operation, **_):
    """A policy check that allows every call (the gate's own overhead is what is measured)."""
    from engine.policy.model import Decision

    return Decision("Allow", "bench-allows-calls", "benchmark", ()), {}


def med(xs: list[float]) -> float:
    return statistics.median(xs) * 1000


async def analyzer_timing() -> list[tuple[str, float, str]]:
    """Offline analyzer cost per tool definition, over the poisoned and the benign example servers' tools."""
    import files_server
    import poisoned_server
    from mcp import Client

    from engine.mcp_tools.analyzer import AnalysisContext, OfflineAnalyzer

    defs: list[tuple[dict, str]] = []
    with tempfile.TemporaryDirectory() as d:
        for server_name, server in (("files", files_server.build_server(d)), ("poisoned", poisoned_server.build_server())):
            async with Client(server) as c:
                for t in (await c.list_tools()).tools:
                    defs.append(({"name": t.name, "description": t.description or "", "inputSchema": dict(t.input_schema)}, server_name))
    others = [(s, d["name"], d["description"]) for d, s in defs]
    work = [(d, AnalysisContext(s, others)) for d, s in defs]
    analyzer = OfflineAnalyzer()
    t: list[float] = []
    for _ in range(300):
        for d, ctx in work:
            t0 = time.perf_counter()
            analyzer.analyze_sync(d, ctx)
            t.append(time.perf_counter() - t0)
    t.sort()
    p50, p95 = t[len(t) // 2] * 1000, t[int(len(t) * 0.95)] * 1000
    note = f"{len(work)} defs (poisoned+benign); p50 {p50 * 1000:.0f} us, p95 {p95 * 1000:.0f} us"
    return [("offline tool analyzer, per definition (p50)", p50, note), ("offline tool analyzer, per definition (p95)", p95, "")]


async def measure() -> list[tuple[str, float, str]]:
    rows: list[tuple[str, float, str]] = []
    rows.extend(await analyzer_timing())
    key = generate_private_key()
    pub = public_key_pem(key)
    sig = sign_schema(TOOL, key)
    from engine.mcp_tools.schemapin import load_public_key

    pk = load_public_key(pub)
    t = []
    for _ in range(500):
        t0 = time.perf_counter()
        verify_signature(TOOL, sig, pk)
        t.append(time.perf_counter() - t0)
    rows.append(("SchemaPin verify (canonicalise+hash+P-256)", med(t), "target < 1 ms"))
    resolver = KeyResolver(allow_network=False)
    resolver.add_document("d", well_known_document(pub))
    v = SchemaVerifier(resolver)
    t = []
    for _ in range(300):
        t0 = time.perf_counter()
        await v.verify(TOOL, sig, "d")
        t.append(time.perf_counter() - t0)
    rows.append(("SchemaVerifier.verify (resolve+revocation+verify)", med(t), ""))

    t = []
    for _ in range(3):
        pool = McpClientPool()
        pool.add(ServerConfig("s", command=sys.executable, args=[str(ROOT / "examples/mcp_servers/demo_server.py")]))
        t0 = time.perf_counter()
        await pool.list_tools("s")
        t.append(time.perf_counter() - t0)
        await pool.close()
    rows.append(("stdio spawn + handshake + tools/list", med(t), "3 runs"))

    with tempfile.TemporaryDirectory() as d:
        pool = McpClientPool()
        pool.add(ServerConfig("s", command=sys.executable, args=[str(ROOT / "examples/mcp_servers/demo_server.py")],
                              allow_unsigned=True))
        svc = ToolService(registry=await ToolRegistry(Path(d) / "t.db").open(), pool=pool, verifier=None,
                          policy_check=_allow_calls, audit=lambda **f: None)
        await svc.discover("s")
        await svc.approve_tool("s/echo", scope="session")  # no operator key here: a session approval
        agent = NS(id="a", config=NS(name="a"))
        direct, gated = [], []
        for _ in range(200):
            t0 = time.perf_counter()
            await pool.call_tool("s", "echo", {"text": "hi"}, 10)
            direct.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await svc.call(agent, "s/echo", {"text": "hi"})
            gated.append(time.perf_counter() - t0)
        rows.append(("direct MCP call_tool over stdio", med(direct), "200 calls"))
        rows.append(("gated ToolService.call over stdio", med(gated), f"overhead {med(gated) - med(direct):.2f} ms"))
        await svc.close()

    return rows


def run() -> list[tuple[str, float, str, str]]:
    """Rows for benchmarks/run_all.py: (measure, value, unit, note)."""
    return [(name, ms, "ms", note) for name, ms, note in asyncio.run(measure())]


if __name__ == "__main__":
    print(f"{'measure':<52} {'median ms':>10}  note")
    for name, ms, _unit, note in run():
        print(f"{name:<52} {ms:>10.3f}  {note}")
